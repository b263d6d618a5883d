"""nn.Module's API against PyTorch's: registration, traversal order, state_dict, hooks, repr, conversions."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import engine
from engine import nn


def _model(nn):
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 4, 3, padding=1)),
        ("bn", nn.BatchNorm2d(4)),
        ("act", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("flat", nn.Flatten()),
        ("head", nn.Sequential(nn.Linear(16, 5), nn.Linear(5, 2))),
    ]))


class Net:
    """The same small model class written against either library."""

    @staticmethod
    def build(lib_nn, F):
        class Block(lib_nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = lib_nn.Embedding(11, 6)
                self.rnn = lib_nn.GRU(6, 8, batch_first=True)
                self.norm = lib_nn.LayerNorm(8)
                self.out = lib_nn.Linear(8, 11, bias=False)
                self.register_buffer("scale", self.norm.weight.detach()[:1] * 2)
                self.register_buffer("cache", None, persistent=False)

            def forward(self, ids):
                h, _ = self.rnn(self.embed(ids))
                return F.log_softmax(self.out(self.norm(h)) * self.scale, -1)

        return Block()


REPRS = [
    lambda nn: _model(nn),
    lambda nn: nn.Sequential(nn.Linear(2, 3, bias=False), nn.GELU("tanh"), nn.Dropout(0.2), nn.LayerNorm(3)),
    lambda nn: nn.ModuleList([nn.Linear(4, 4) for _ in range(3)] + [nn.ReLU(), nn.ReLU(), nn.Tanh()]),
    lambda nn: nn.ModuleDict({"a": nn.Conv1d(2, 3, 3, stride=2, bias=False), "b": nn.AvgPool2d(3, 2, 1)}),
    lambda nn: nn.TransformerEncoderLayer(8, 2, 16),
    lambda nn: nn.TransformerDecoderLayer(8, 2, 16, norm_first=True, activation="gelu"),
    lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 3, enable_nested_tensor=False),
    lambda nn: nn.Sequential(nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1),
                             nn.GRU(3, 4, bias=False), nn.RNN(3, 4), nn.LSTMCell(3, 4)),
    lambda nn: nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm2d(3, affine=False, track_running_stats=False),
                             nn.GroupNorm(2, 4), nn.RMSNorm(4), nn.InstanceNorm2d(3), nn.LocalResponseNorm(2)),
    lambda nn: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, bias=False,
                                       padding_mode="reflect"), nn.Conv2d(3, 4, 3, padding="same"),
                             nn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1), nn.Embedding(10, 3, padding_idx=0),
                             nn.Embedding(10, 3, max_norm=1.0), nn.Bilinear(2, 3, 4), nn.Identity(), nn.Flatten(),
                             nn.Unflatten(1, (2, 3))),
    lambda nn: nn.Sequential(nn.MaxPool1d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.AvgPool1d(2), nn.AdaptiveMaxPool2d(2),
                             nn.AdaptiveAvgPool1d(3), nn.Upsample(scale_factor=2), nn.PixelShuffle(2),
                             nn.ZeroPad2d(1), nn.ConstantPad2d(1, 0.5), nn.ReflectionPad2d(1), nn.ReplicationPad2d(1)),
    lambda nn: nn.Sequential(nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.SiLU(), nn.Mish(), nn.Tanh(), nn.Sigmoid(),
                             nn.Softplus(), nn.Softmax(dim=1), nn.LogSoftmax(1), nn.Softmax(), nn.Hardtanh(),
                             nn.ReLU6(), nn.PReLU(), nn.Threshold(0.1, 20), nn.CELU(), nn.SELU(), nn.GLU(),
                             nn.Softmin(1), nn.ReLU(inplace=True)),
    lambda nn: nn.Sequential(nn.CrossEntropyLoss(), nn.MSELoss(), nn.SmoothL1Loss(), nn.BCEWithLogitsLoss(),
                             nn.KLDivLoss(), nn.NLLLoss(), nn.CosineSimilarity(), nn.PairwiseDistance()),
    lambda nn: nn.MultiheadAttention(8, 2),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("factory", REPRS, ids=range(len(REPRS)))
def test_repr_matches_torch(torch, factory):
    assert repr(factory(nn)) == repr(factory(torch.nn))


@pytest.mark.parametrize("factory", REPRS[:10], ids=range(10))
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_traversal_order_and_state_dict_keys_match_torch(torch, factory):
    ours, theirs = factory(nn), factory(torch.nn)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_state_dict_round_trip_reproduces_outputs():
    a, b = _model(nn), _model(nn)
    a.train()
    a(engine.randn(2, 3, 4, 4))  # move the running statistics
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    a.eval()
    b.eval()
    x = engine.randn(2, 3, 4, 4)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert int(b.bn.num_batches_tracked) == 1


def test_state_dict_values_share_memory_and_are_detached():
    lin = nn.Linear(2, 2)
    state = lin.state_dict()
    assert not state["weight"].requires_grad
    state["weight"].numpy()[0, 0] = 42.0
    assert lin.weight[0, 0].item() == 42.0
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_strict_errors_match_torch_wording(torch):
    state = nn.Linear(2, 3).state_dict()
    del state["bias"]
    state["extra"] = engine.zeros(1)
    for lib in (nn, torch.nn):
        model = lib.Linear(2, 3)
        converted = state if lib is nn else {k: torch.tensor(v.numpy()) for k, v in state.items()}
        with pytest.raises(RuntimeError) as info:
            model.load_state_dict(converted)
        assert str(info.value) == ('Error(s) in loading state_dict for Linear:\n\tMissing key(s) in state_dict: '
                                   '"bias". \n\tUnexpected key(s) in state_dict: "extra". ')
    result = nn.Linear(2, 3).load_state_dict(state, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    model = nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape "
                                           r"engine.Size\(\[3, 3\]\) from checkpoint, the shape in current model "
                                           r"is engine.Size\(\[3, 2\]\)"):
        model.load_state_dict({"weight": engine.zeros(3, 3), "bias": engine.zeros(3)}, strict=False)


def test_load_state_dict_without_num_batches_tracked_is_accepted():
    bn = nn.BatchNorm1d(3)
    state = {k: v for k, v in nn.BatchNorm1d(3).state_dict().items() if k != "num_batches_tracked"}
    bn.load_state_dict(state)


def test_hooks_can_replace_inputs_and_outputs_and_be_removed():
    lin = nn.Linear(3, 3)
    calls = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(engine.randn(2, 3))
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(lin.bias.detach().numpy() + 1, (2, 3)))
    assert calls == [engine.Size([2, 3])]
    pre.remove()
    post.remove()
    x = engine.randn(2, 3)
    np.testing.assert_allclose(lin(x).detach().numpy(), nn.functional.linear(x, lin.weight, lin.bias).detach().numpy())


def test_forward_hooks_with_kwargs_and_prepend():
    order = []
    model = nn.Identity()
    model.register_forward_hook(lambda m, a, o: order.append("second"))
    model.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    model.register_forward_pre_hook(lambda m, a, kw: (a, {**kw}), with_kwargs=True)
    model(engine.ones(1))
    assert order == ["first", "second"]


def test_weight_tying_lists_once_and_accumulates_both_uses(torch):
    grads = []
    for lib, lib_nn in ((engine, nn), (torch, torch.nn)):
        lib.manual_seed(0)
        embed = lib_nn.Embedding(7, 4)
        head = lib_nn.Linear(4, 7, bias=False)
        head.weight = embed.weight
        model = lib_nn.ModuleDict({"embed": embed, "head": head})
        assert [n for n, _ in model.named_parameters()] == ["embed.weight"]
        w = np.linspace(-1, 1, 28).reshape(7, 4)
        with lib.no_grad():
            embed.weight.copy_(lib.tensor(w, dtype=embed.weight.dtype))
        logits = head(embed(lib.tensor([[1, 2, 3]])))
        logits.sum().backward()
        grads.append(embed.weight.grad.numpy().copy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_attribute_registration_rules(torch):
    m = nn.Module()
    m.w = nn.Parameter(engine.zeros(2))
    m.register_buffer("stat", engine.ones(2))
    m.register_buffer("tmp", engine.ones(1), persistent=False)
    m.child = nn.Linear(1, 1)
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    assert list(m.state_dict()) == ["w", "stat", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "tmp"]
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = engine.zeros(2)
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("child", engine.zeros(1))
    m.w = None
    assert m.w is None and next(iter(m.parameters())) is m.child.weight
    del m.child
    assert not hasattr(m, "child")
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = m.nope
    with pytest.raises(AttributeError, match=r"before Module\.__init__"):
        class Broken(nn.Module):
            def __init__(self):
                self.p = nn.Parameter(engine.zeros(1))

        Broken()


def test_train_eval_zero_grad_requires_grad_and_apply():
    model = _model(nn)
    assert model.training and model.bn.training
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    model(engine.randn(2, 3, 4, 4)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen[0] == "Conv2d"


def test_to_dtype_keeps_parameter_identity_and_integer_buffers():
    model = _model(nn)
    weight = model.conv.weight
    model.to(engine.float64)
    assert model.conv.weight is weight and weight.dtype == engine.float64
    assert isinstance(weight, nn.Parameter)
    assert model.bn.running_mean.dtype == engine.float64
    assert model.bn.num_batches_tracked.dtype == engine.int64
    model.float()
    assert weight.dtype == engine.float32
    model.half()
    assert weight.dtype == engine.float16
    assert model.cpu() is model


def test_parameter_behaves_like_torch_parameter():
    data = engine.ones(2)
    p = nn.Parameter(data)
    assert isinstance(p, nn.Parameter) and isinstance(p, engine.Tensor)
    assert p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    p.numpy(force=True)[0] = 5  # shares memory with data
    assert data[0].item() == 5
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p and q.requires_grad
    r = pickle.loads(pickle.dumps(p))  # noqa: S301 - our own bytes
    assert isinstance(r, nn.Parameter) and r.tolist() == [5.0, 1.0]
    assert not nn.Parameter(engine.ones(1), requires_grad=False).requires_grad
    assert (p * 2).__class__ is engine.Tensor


def test_deepcopy_of_a_module_is_independent():
    model = _model(nn)
    clone = copy.deepcopy(model)
    assert clone.conv.weight is not model.conv.weight
    np.testing.assert_array_equal(clone.conv.weight.detach().numpy(), model.conv.weight.detach().numpy())
    clone.conv.weight.detach().numpy()[...] = 0
    assert model.conv.weight.detach().numpy().any()


def test_sequential_indexing_slicing_and_editing():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    seq.append(nn.Sigmoid())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Sigmoid"]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    seq.insert(1, nn.Tanh())
    assert type(seq[1]).__name__ == "Tanh"
    seq[0] = nn.Linear(2, 2, bias=False)
    assert seq[0].bias is None
    assert seq(engine.randn(4, 2)).shape == engine.Size([4, 1])
    with pytest.raises(IndexError):
        seq[10]


def test_module_list_dict_and_parameter_containers():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.ReLU())
    layers.extend([nn.Linear(2, 3)])
    layers += [nn.Tanh()]
    assert len(layers) == 4 and isinstance(layers[-2], nn.Linear)
    assert len(list(layers.parameters())) == 4
    d = nn.ModuleDict({"a": nn.Linear(1, 1)})
    d["b"] = nn.ReLU()
    assert list(d.keys()) == ["a", "b"] and "a" in d and len(d) == 2
    plist = nn.ParameterList([engine.zeros(2), nn.Parameter(engine.ones(3))])
    assert all(isinstance(p, nn.Parameter) for p in plist) and len(plist) == 2
    assert [n for n, _ in plist.named_parameters()] == ["0", "1"]
    pdict = nn.ParameterDict({"x": engine.zeros(1)})
    pdict["y"] = nn.Parameter(engine.ones(1))
    assert list(pdict.keys()) == ["x", "y"] and isinstance(pdict["x"], nn.Parameter)
    assert [n for n, _ in pdict.named_parameters()] == ["x", "y"]


def test_nn_buffer_assignment_registers_a_buffer():
    m = nn.Module()
    m.steps = nn.Buffer(engine.zeros(1))
    m.scratch = nn.Buffer(engine.zeros(1), persistent=False)
    assert list(m.state_dict()) == ["steps"]
    assert [n for n, _ in m.named_buffers()] == ["steps", "scratch"]


def test_user_module_trains_like_torch(torch):
    """A tiny model class written once, trained a few steps with plain SGD, in both libraries."""
    losses = []
    reference = {}
    for lib, lib_nn, F in ((engine, nn, nn.functional), (torch, torch.nn, torch.nn.functional)):
        model = Net.build(lib_nn, F)
        if lib is torch:
            model.load_state_dict({k: torch.tensor(v) for k, v in reference.items()})
        else:
            reference.update({k: v.numpy().copy() for k, v in model.state_dict().items()})
        ids = lib.tensor(np.arange(12).reshape(2, 6) % 11)
        history = []
        for _ in range(3):
            model.zero_grad()
            loss = F.nll_loss(model(ids).reshape(-1, 11), ids.reshape(-1))
            loss.backward()
            with lib.no_grad():
                for p in model.parameters():
                    p -= 0.5 * p.grad
            history.append(loss.item())
        losses.append(history)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
