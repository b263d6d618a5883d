"""``engine.onnx.export``: write a model as an ONNX file that onnxruntime (or any ONNX runtime) runs.

The model is captured like ``engine.jit.trace``; each graph op is lowered by the ONNX lowering
registered for it in the op registry (``engine.onnx.lowerings`` and the ``*_lowerings`` modules next
to it). Recurrent layers become ONNX's own LSTM / GRU / RNN operators (sequence length free);
quantized models (``engine.ao.quantization``) become QDQ models: QuantizeLinear / DequantizeLinear
around float ops, int8 weights per channel, MatMulInteger for dynamic quantized Linear. An op
without a lowering raises ``UnsupportedOperatorError`` naming the op and the module it ran in.
Needs the ``onnx`` package (``pip install 'kiln[onnx]'``), imported only when exporting.

Example:
    >>> engine.onnx.export(model.eval(), (x,), "model.onnx", input_names=["x"],
    ...                    dynamic_axes={"x": {0: "batch"}})  # doctest: +SKIP
"""

from engine.onnx._context import UnsupportedOperatorError
from engine.onnx._export import ONNXProgram, export, is_in_onnx_export

__all__ = ["ONNXProgram", "UnsupportedOperatorError", "export", "is_in_onnx_export"]
