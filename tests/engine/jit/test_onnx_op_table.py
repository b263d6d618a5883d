"""Every case of the op table exports to ONNX and onnxruntime computes what the engine does.

The few ops without a lowering are listed here by case: each must raise UnsupportedOperatorError
naming its op (a new lowering moves its case off the list, a lost one fails).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from op_table import OPS, Case
from test_op_table import _draw

import engine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NOT_LOWERED = {
    "cumprod": "engine.cumprod",
    "repeat_interleave": "engine.repeat_interleave",
    "index_int_list_repeated": "Tensor.__getitem__",  # a Python list of ints as an index
    "index_mixed": "Tensor.__getitem__",
    "index_two_tensors": "Tensor.__getitem__",  # advanced indexing that broadcasts two index tensors
    # NOTE: breadth ops not lowered yet; each entry is a gap to close (a lowering or a decomposition)
    "lgamma_method": "Tensor.lgamma", "digamma": "Tensor.digamma",  # no ONNX operator for these
    "corrcoef": "engine.corrcoef", "renorm": "engine.renorm",
    "index_put": "engine.index_put", "index_put_accumulate": "engine.index_put", "put": "engine.put",
    "scatter_reduce_sum": "engine.scatter_reduce", "scatter_reduce_mean_exclude": "engine.scatter_reduce",
    "scatter_reduce_amax": "engine.scatter_reduce", "scatter_reduce_amin_exclude": "engine.scatter_reduce",
    "scatter_reduce_prod": "engine.scatter_reduce", "index_reduce_mean": "engine.index_reduce",
    "diagflat": "engine.diagflat", "block_diag": "engine.block_diag",
    "slice_scatter": "engine.slice_scatter", "select_scatter": "engine.select_scatter",
    "diagonal_scatter": "engine.diagonal_scatter", "diagonal_scatter_3d": "engine.diagonal_scatter",
    "cdist": "engine.cdist", "cdist_p1": "engine.cdist",
    "torch_layer_norm": "engine.layer_norm", "torch_kl_div_sum": "engine.kl_div",
    "torch_bce_logits": "engine.binary_cross_entropy_with_logits",
}


def _flat(value) -> list:
    if isinstance(value, tuple | list):
        return [x for v in value for x in _flat(v)]
    return [value]


def _inputs(case: Case) -> list:
    return [engine.tensor(a) if a.dtype.kind != "f" else engine.tensor(a.astype(np.float32)) for a in _draw(case)]


@pytest.mark.parametrize("case", OPS, ids=[c.name for c in OPS])
def test_op_exports_and_onnxruntime_agrees(case: Case):
    inputs = _inputs(case)
    names = [f"x{i}" for i in range(len(inputs))]
    buffer = io.BytesIO()

    def fn(*ts):
        return case.fn(engine, *ts)

    with engine.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", engine.jit.TracerWarning)  # data-dependent ops (nonzero ...) warn
        if case.name in NOT_LOWERED:
            with pytest.raises(engine.onnx.UnsupportedOperatorError, match=NOT_LOWERED[case.name].replace(".", r"\.")):
                engine.onnx.export(fn, tuple(inputs), buffer, input_names=names)
            return
        engine.onnx.export(fn, tuple(inputs), buffer, input_names=names)
        expected = _flat(fn(*inputs))
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    used = {i.name for i in session.get_inputs()}
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True) if n in used})
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        e = e.numpy() if isinstance(e, engine.Tensor) else np.asarray(e)
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-5), equal_nan=True)
