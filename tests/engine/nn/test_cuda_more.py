"""The layers added in test_*_more.py on device ``cuda`` (real CuPy, or tests/fake_cupy in CI) equal CPU."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend"),
              pytest.mark.filterwarnings("ignore:`nn.functional.upsample_")]
RNG = np.random.default_rng(17)
X4 = RNG.standard_normal((2, 4, 5, 6))
X5 = RNG.standard_normal((2, 4, 3, 4, 5))
X2 = RNG.standard_normal((5, 4))
SIGNS = np.where(RNG.random((5, 4)) < 0.5, -1.0, 1.0)
ML = np.array([[3, 0, -1, 1], [1, 2, 3, -1], [0, -1, 2, 2], [2, 1, 0, 3], [-1, 1, 2, 3]])

class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


# (id, build(nn) -> module, differentiated inputs, constant inputs (targets))
LAYERS = [
    ("conv3d", lambda nn: nn.Conv3d(4, 3, (2, 3, 2), stride=(1, 2, 1), padding=1, groups=1), [X5], []),
    ("conv_transpose3d", lambda nn: nn.ConvTranspose3d(4, 2, 2, stride=2, padding=(1, 0, 0)), [X5], []),
    ("max_pool3d", lambda nn: nn.MaxPool3d(2, padding=1), [X5], []),
    ("avg_pool3d", lambda nn: nn.AvgPool3d(2, ceil_mode=True, count_include_pad=False), [X5], []),
    ("adaptive_max_pool3d", lambda nn: nn.AdaptiveMaxPool3d((2, 3, 3)), [X5], []),
    ("lp_pool2d", lambda nn: nn.LPPool2d(2, 2), [X4], []),
    ("reflection_pad3d", lambda nn: nn.ReflectionPad3d(1), [X5], []),
    ("circular_pad2d", lambda nn: nn.CircularPad2d((1, 2, 0, 1)), [X4], []),
    ("channel_shuffle", lambda nn: nn.ChannelShuffle(2), [X4], []),
    ("fold", lambda nn: nn.Fold((4, 5), 2), [RNG.standard_normal((2, 8, 12))], []),
    ("upsampling_bilinear", lambda nn: nn.UpsamplingBilinear2d(scale_factor=2), [X4], []),
    ("multilabel_margin", lambda nn: nn.MultiLabelMarginLoss(), [X2], [ML]),
    ("multi_margin", lambda nn: nn.MultiMarginLoss(p=2), [X2], [np.array([0, 3, 1, 1, 2])]),
    ("gaussian_nll", lambda nn: nn.GaussianNLLLoss(), [X2, X2[::-1].copy(), np.abs(X2) + 0.1], []),
    ("hinge_embedding", lambda nn: nn.HingeEmbeddingLoss(), [X2], [SIGNS]),
    ("embedding_bag_max", lambda nn: nn.EmbeddingBag(10, 4, mode="max", padding_idx=0), [],
     [np.array([1, 2, 0, 5, 4, 3, 9]), np.array([0, 3, 3])]),
    ("embedding_bag_mean_2d", lambda nn: nn.EmbeddingBag(10, 4), [], [np.array([[1, 2, 2], [0, 9, 3]])]),
    ("pdist", lambda nn: _Fn(lambda x: F.pdist(x, 3.0)), [X2], []),
    ("max_unpool2d", lambda nn: _Fn(lambda x: F.max_unpool2d(*F.max_pool2d_with_indices(x, 2), 2)), [X4], []),
    ("triplet_margin", lambda nn: nn.TripletMarginLoss(), [X2, X2 * 0.5, X2[::-1].copy()], []),
]


@pytest.mark.parametrize(("name", "build", "floats", "ints"), LAYERS, ids=[c[0] for c in LAYERS])
def test_new_layer_on_cuda_matches_cpu(name, build, floats, ints):
    engine.manual_seed(0)
    cpu = build(nn).double()
    cuda = build(nn).double()
    cuda.load_state_dict(cpu.state_dict())
    cuda = cuda.to("cuda")
    results = []
    for device, module in (("cpu", cpu), ("cuda", cuda)):
        xs = [engine.tensor(x).to(device).requires_grad_() for x in floats]
        out = module(*xs, *[engine.tensor(t).to(device) for t in ints])
        out.backward(engine.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape))).to(device))
        results.append((out, xs, dict(module.named_parameters())))
    (c_out, c_in, c_par), (g_out, g_in, g_par) = results
    assert g_out.device.type == "cuda"
    np.testing.assert_allclose(g_out.detach().cpu().numpy(), c_out.detach().numpy(), rtol=1e-9, atol=1e-10)
    for c, g in zip(c_in, g_in, strict=True):
        np.testing.assert_allclose(g.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-9, atol=1e-10)
    for key, p in c_par.items():
        np.testing.assert_allclose(g_par[key].grad.cpu().numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-10)
