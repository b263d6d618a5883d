"""The state of one ONNX export: value names, initializers and the nodes built so far."""

from __future__ import annotations

from typing import Any

import numpy as np

# engine dtype name -> ONNX TensorProto element type
ELEM_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
              "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16,
              "quint8": 2, "qint8": 3, "qint32": 6}  # a quantized value is its integers (qparams kept aside)


class UnsupportedOperatorError(RuntimeError):
    """An op of the captured graph has no ONNX lowering (``torch.onnx.errors.UnsupportedOperatorError``)."""


class LoweringContext:
    """Builds ONNX nodes for the lowerings; a lowering returns the output value name(s)."""

    def __init__(self, helper, numpy_helper):
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self.dtypes: dict[str, Any] = {}  # value name -> engine dtype (where known)
        self.qparams: dict[str, Any] = {}  # quantized value name -> its QParams (engine.onnx.quantized_lowerings)
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list, n_out: int = 1, **attrs):
        """Add one ONNX node; returns its output name (or a tuple of names when ``n_out > 1``)."""
        outputs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, [i or "" for i in inputs], outputs,
                                                name=self.fresh(op_type), **attrs))
        return outputs[0] if n_out == 1 else tuple(outputs)

    def const(self, value, dtype=None, hint: str = "const") -> str:
        """An initializer holding ``value`` (a NumPy array or Python number / list)."""
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def ints(self, values) -> str:
        """A 1-D int64 tensor from ints and scalar int64 value names (symbolic sizes)."""
        values = list(values)
        if all(isinstance(v, int) for v in values):
            return self.const(np.array(values, dtype=np.int64), hint="shape")
        parts = [self.const(np.array([v], dtype=np.int64)) if isinstance(v, int)
                 else self.op("Unsqueeze", [v, self.const(np.array([0], dtype=np.int64))]) for v in values]
        return self.op("Concat", parts, axis=0)

    def scalar_int(self, v) -> str:
        return self.const(np.array(v, dtype=np.int64)) if isinstance(v, int) else v

    def tensor(self, v, like: str | None = None) -> str:
        """A value name for ``v``: names pass through; numbers become constants of ``like``'s dtype."""
        if isinstance(v, str):
            return v
        dtype = self.dtypes.get(like) if like is not None else None
        np_dtype = dtype.np if dtype is not None else (np.float32 if isinstance(v, float) else np.int64)
        return self.const(np.array(v, dtype=np_dtype), hint="scalar")
