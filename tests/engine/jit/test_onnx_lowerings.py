"""ONNX lowerings of shape, creation, padding, resizing, masking and reduction ops, checked in onnxruntime.

Each case is exported with every input's first dim dynamic and run at two sizes of it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine

F = engine.nn.functional
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _run_both(fn, make, batches=(3, 5), atol=1e-5):
    inputs = make(batches[0])
    names = [f"x{i}" for i in range(len(inputs))]
    buffer = io.BytesIO()
    engine.onnx.export(fn, tuple(inputs), buffer, input_names=names, dynamic_axes={n: {0: "n"} for n in names})
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch in batches:
        inputs = make(batch)
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
        expected = fn(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == tuple(e.shape)
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=atol)


def _x(*rest):
    return lambda n: [engine.randn(n, *rest)]


CASES = {
    "flatten_middle": (lambda x: x.flatten(1, 2), _x(2, 3, 4)),
    "flatten_leading": (lambda x: x.flatten(0, 1), _x(2, 3)),
    "flatten_all": (lambda x: engine.flatten(x), _x(2, 3)),
    "arange_symbolic": (lambda x: x + engine.arange(x.size(1)).float(), _x(4)),
    "arange_of_batch": (lambda x: engine.arange(1, x.shape[0] * 2, 2), _x(2)),
    "pad_constant": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), _x(2, 3, 4)),
    "pad_reflect": (lambda x: F.pad(x, (2, 1), mode="reflect"), _x(2, 5)),
    "pad_replicate": (lambda x: F.pad(x, (1, 1, 2, 0), mode="replicate"), _x(1, 3, 4)),
    "interpolate_nearest": (lambda x: F.interpolate(x, scale_factor=2), _x(2, 3, 4)),
    "interpolate_bilinear": (lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"), _x(2, 3, 4)),
    "interpolate_align": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
                          _x(1, 3, 4)),
    "interpolate_linear": (lambda x: F.interpolate(x, size=9, mode="linear"), _x(2, 4)),
    "masked_fill": (lambda x: x.masked_fill(x > 0.5, -1.0), _x(4)),
    "masked_fill_inplace": (lambda x: x.clone().masked_fill_(x < 0, 0.0), _x(4)),
    "mask_index": (lambda x: x[x > 0], _x(4)),
    "mask_rows": (lambda x: x[x.sum(1) > 0], _x(4)),
    "mask_assign": (lambda x: _assign(x), _x(4)),
    "masked_select": (lambda x: engine.masked_select(x, x > 0.2), _x(3)),
    "tensor_index": (lambda x, i: x[:, i], lambda n: [engine.randn(n, 5), engine.randint(0, 5, (n, 2))]),
    "symbolic_int_index": (lambda x: x[:, x.size(1) - 1], _x(4, 3)),
    "squeeze_expand": (lambda x: x.unsqueeze(1).expand(-1, 3, -1).squeeze(0), _x(4)),
    "repeat_tile": (lambda x: x.repeat(1, 2) + engine.tile(x, (2,)), _x(3)),
    "reductions": (lambda x: (x.amax(1), x.amin(1), x.prod(1), x.var(1), x.std(1, unbiased=False),
                              x.logsumexp(1), x.argmax(1), x.max(1)[0], x.min(dim=1).indices), _x(4)),
    "cumsum_flip": (lambda x: x.cumsum(1).flip(1), _x(4)),
    "comparisons": (lambda x: ((x >= 0) & (x <= 1)).float() + (x != 0).float(), _x(4)),
    "like_and_new": (lambda x: engine.zeros_like(x) + engine.ones_like(x) + engine.full_like(x, 2.0)
                     + x.new_zeros(x.shape) + x.new_ones(x.size(0), 4), _x(4)),
    "gather_index_select": (lambda x, i: engine.gather(x, 1, i) + engine.index_select(x, 1, i[0]),
                            lambda n: [engine.randn(n, 4), engine.randint(0, 4, (n, 4))]),
    "activations": (lambda x: F.hardswish(x) + F.mish(x) + F.selu(x) + F.logsigmoid(x) + F.softsign(x)
                    + F.celu(x) + F.glu(x, -1).repeat(1, 2) + F.threshold(x, 0.1, 2.0) + engine.expm1(x)
                    + engine.log1p(x.abs()) + engine.trunc(x * 3) + engine.atan(x), _x(4)),
    "normalize_softmin": (lambda x: F.normalize(x, dim=1) + F.softmin(x, dim=1), _x(4)),
    "remainder_floor_divide": (lambda x: engine.remainder(x, 0.7) + engine.floor_divide(x * 4, 3), _x(4)),
    "unflatten_movedim": (lambda x: engine.movedim(x.unflatten(1, (2, 3)), 1, 2), _x(6)),
    "select_narrow": (lambda x: engine.select(x, 1, 2) + engine.narrow(x, 1, 1, 1).squeeze(1), _x(4)),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), _x(8, 2, 3)),
    "keyword_sizes": (lambda x: x.view(size=(x.size(0), 2, 3)).permute(dims=(0, 2, 1)).reshape(shape=(-1, 6))
                      + engine.zeros(size=(6,)) + x.unsqueeze(1).expand(size=(-1, 2, -1)).sum(1), _x(6)),
}


def _assign(x):
    y = x.clone()
    y[y < 0] = 0.0
    return y


@pytest.mark.parametrize("name", sorted(CASES))
def test_lowering_matches_onnxruntime_at_two_sizes(name):
    engine.manual_seed(0)
    fn, make = CASES[name]
    with engine.no_grad():
        _run_both(fn, make)


def test_one_hot_and_integer_arange():
    with engine.no_grad():
        _run_both(lambda i: F.one_hot(i, 6), lambda n: [engine.randint(0, 6, (n, 3))])


def test_two_tensor_indices_and_circular_padding_are_refused_by_name():
    with pytest.raises(engine.onnx.UnsupportedOperatorError, match="more than one tensor"):
        engine.onnx.export(lambda x, i: x[i, i], (engine.randn(3, 3), engine.tensor([0, 1])), io.BytesIO())
    with pytest.raises(engine.onnx.UnsupportedOperatorError, match="pad mode 'circular'"):
        engine.onnx.export(lambda x: F.pad(x, (1, 1), mode="circular"), (engine.randn(1, 2, 3),), io.BytesIO())
