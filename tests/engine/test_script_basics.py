"""The small things a PyTorch script touches first, against torch: torch.accelerator, tensor flags,
sizes as keywords, bare grad-mode decorators, set/get_num_threads, torch.hub weights by URL."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import engine


def test_accelerator_answers_as_torch_without_a_gpu(torch):
    if engine.cuda.is_available():
        assert engine.accelerator.current_accelerator() == engine.device("cuda")
        assert engine.accelerator.device_count() == engine.cuda.device_count()
        assert engine.accelerator.current_device_index() == engine.cuda.current_device()
        return
    assert engine.accelerator.is_available() is torch.accelerator.is_available() is False
    assert engine.accelerator.current_accelerator() is torch.accelerator.current_accelerator() is None
    assert engine.accelerator.device_count() == torch.accelerator.device_count() == 0
    for name in ("current_device_index", "synchronize"):
        with pytest.raises(RuntimeError) as theirs:
            getattr(torch.accelerator, name)()
        with pytest.raises(RuntimeError, match=str(theirs.value)):
            getattr(engine.accelerator, name)()
    with engine.accelerator.device_index(None):  # None: no change, no device needed
        pass
    engine.accelerator.empty_cache()


def test_tensor_device_and_layout_flags_match_torch(torch):
    ours, theirs = engine.zeros(2, 3), torch.zeros(2, 3)
    for flag in ("is_cpu", "is_cuda", "is_xpu", "is_mps", "is_sparse", "is_sparse_csr", "is_quantized", "is_meta",
                 "is_nested"):
        assert getattr(ours, flag) is getattr(theirs, flag), flag


@pytest.mark.parametrize("factory", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("size", [(2, 3), [4], (), (0, 2)])
def test_factories_take_size_as_keyword_or_tuple(torch, factory, size):
    want = tuple(getattr(torch, factory)(size=size).shape)
    assert tuple(getattr(engine, factory)(size=size).shape) == want
    assert tuple(getattr(engine, factory)(size).shape) == want
    assert tuple(getattr(engine, factory)(*size).shape) == want
    assert tuple(getattr(engine, factory)(size=engine.Size(size)).shape) == want


@pytest.mark.parametrize("factory", ["zeros", "ones", "empty", "rand", "randn"])
def test_factory_size_mistakes_raise_as_torch(torch, factory):
    for kwargs, args in (({"size": 3}, ()), ({"size": (2,)}, (3,))):
        with pytest.raises(TypeError):
            getattr(torch, factory)(*args, **kwargs)
        with pytest.raises(TypeError, match="size"):
            getattr(engine, factory)(*args, **kwargs)


KEYWORD_CALLS = {
    "new_zeros": lambda x: x.new_zeros(size=(3, 1)), "new_ones": lambda x: x.new_ones(size=(2,)),
    "new_empty": lambda x: x.new_empty(size=(1, 2)), "view": lambda x: x.view(size=(3, 2)),
    "reshape": lambda x: x.reshape(shape=(6,)), "expand": lambda x: x[0].expand(size=(2, 2, 3)),
    "permute": lambda x: x.permute(dims=(1, 0)), "repeat": lambda x: x.repeat(repeats=(2, 1)),
    "flip": lambda x: x.flip(dims=(0,)), "flip-list": lambda x: x.flip(dims=[0, 1]),
    "sum": lambda x: x.sum(dim=1, keepdim=True),
}


@pytest.mark.parametrize("name", list(KEYWORD_CALLS))
def test_keyword_spellings_of_shape_methods_match_torch(torch, name):
    data = np.arange(6.0).reshape(2, 3)
    ours, theirs = KEYWORD_CALLS[name](engine.tensor(data)), KEYWORD_CALLS[name](torch.tensor(data))
    assert tuple(ours.shape) == tuple(theirs.shape)
    if name != "new_empty":
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_a_shape_given_twice_is_refused_as_torch(torch):
    with pytest.raises(TypeError, match="multiple values for argument 'shape'"):
        torch.ones(6).reshape((6,), shape=(6,))
    with pytest.raises(TypeError, match="multiple values for argument 'shape'"):
        engine.ones(6).reshape((6,), shape=(6,))


@pytest.mark.parametrize("name", ["no_grad", "enable_grad", "inference_mode"])
def test_grad_mode_context_managers_work_as_bare_decorators(torch, name):
    def probe(lib):
        @getattr(lib, name)
        def step(x):
            """doc"""
            return (x * 2).requires_grad, lib.is_grad_enabled()

        with lib.no_grad() if name == "enable_grad" else lib.enable_grad():
            inside = step(lib.ones(1, requires_grad=True))
        return inside, step.__name__, step.__doc__, lib.is_grad_enabled()

    assert probe(engine) == probe(torch)


def test_grad_mode_decorators_with_parentheses_still_work(torch):
    @engine.no_grad()
    def f(x):
        return x * 2

    @engine.inference_mode(False)
    def g(x):
        return x * 2

    x = engine.ones(1, requires_grad=True)
    assert not f(x).requires_grad and g(x).requires_grad
    with engine.no_grad():
        assert engine.is_grad_enabled() is False
    assert engine.is_grad_enabled()


def test_set_and_get_num_threads(torch):
    before = engine.get_num_threads()
    assert before >= 1
    try:
        engine.set_num_threads(1)
        assert engine.get_num_threads() == 1
        a = np.random.default_rng(0).standard_normal((64, 64))
        np.testing.assert_allclose((engine.tensor(a) @ engine.tensor(a)).numpy(), a @ a)
    finally:
        engine.set_num_threads(before)
    assert engine.get_num_threads() == before
    for bad in (0, -2):
        with pytest.raises(RuntimeError) as theirs:
            torch.set_num_threads(bad)
        with pytest.raises(RuntimeError, match=str(theirs.value)):
            engine.set_num_threads(bad)


def saved_by_torch(torch, path):
    torch.manual_seed(0)
    state = torch.nn.Linear(3, 2).state_dict()
    torch.save(state, path)
    return state


def test_hub_loads_a_torch_checkpoint_by_url_and_caches_it(torch, tmp_path):
    source = tmp_path / "source" / "linear.pth"
    source.parent.mkdir()
    state = saved_by_torch(torch, source)
    cache = tmp_path / "cache"
    loaded = engine.hub.load_state_dict_from_url(source.as_uri(), model_dir=str(cache), map_location="cpu")
    np.testing.assert_array_equal(loaded["weight"].numpy(), state["weight"].numpy())
    assert (cache / "linear.pth").read_bytes() == source.read_bytes()
    source.unlink()  # the cached copy is used from now on, without the network
    again = engine.hub.load_state_dict_from_url(source.as_uri(), model_dir=str(cache))
    np.testing.assert_array_equal(again["bias"].numpy(), state["bias"].numpy())


def test_hub_checks_the_hash_in_the_file_name(torch, tmp_path):
    source = tmp_path / "weights.pth"
    saved_by_torch(torch, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    good = tmp_path / f"linear-{digest[:8]}.pth"
    bad = tmp_path / "linear-deadbeef.pth"
    good.write_bytes(source.read_bytes())
    bad.write_bytes(source.read_bytes())
    cache = tmp_path / "cache"
    assert "weight" in engine.hub.load_state_dict_from_url(good.as_uri(), model_dir=str(cache), check_hash=True)
    with pytest.raises(RuntimeError, match="invalid hash value"):
        engine.hub.load_state_dict_from_url(bad.as_uri(), model_dir=str(cache), check_hash=True)
    assert sorted(p.name for p in cache.iterdir()) == [good.name]


def test_hub_without_network_says_where_to_put_the_file(tmp_path):
    url = "http://127.0.0.1:9/models/resnet18-f37072fd.pth"  # the discard port: nothing listens
    with pytest.raises(RuntimeError, match=r"could not download .*place it at .*resnet18-f37072fd\.pth"):
        engine.hub.load_state_dict_from_url(url, model_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="http://, https:// and file://"):
        engine.hub.download_url_to_file("ftp://example.com/x.pt", tmp_path / "x.pt")


def test_hub_dir_follows_torch_home(torch, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert engine.hub.get_dir() == torch.hub.get_dir() == str(tmp_path / "th" / "hub")
