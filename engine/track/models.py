"""Models as run files: a traced ``engine.jit`` file and an ONNX file, with their input/output signature.

``write_model`` traces the model once, checks nothing about its accuracy, and writes
``NAME.pt`` (``engine.jit.save``) and ``NAME.onnx`` (``engine.onnx.export``, dim 0 of every
input and output symbolic as "batch") into a folder. The signature lists each input and
output as ``{"name", "dtype", "shape"}`` with the batch dim as the string "batch".
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMATS = {"engine": ".pt", "onnx": ".onnx"}
BATCH = "batch"


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The formats as a tuple; raises for an unknown one, or for "onnx" without the onnx package."""
    chosen = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ValueError(f"log_model formats must be some of {sorted(FORMATS)}, got {list(chosen)!r}")
    if "onnx" in chosen and importlib.util.find_spec("onnx") is None:
        raise ImportError("log_model(formats=('onnx',)) needs the onnx package: pip install 'kiln[onnx]'")
    return tuple(dict.fromkeys(chosen))


def write_model(directory: Path, model: Any, example_inputs: Any, *, name: str,
                formats: Sequence[str]) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write the model's files under `directory`; returns ({format: path}, signature)."""
    import engine
    from engine import Tensor

    chosen = check_formats(formats)
    inputs = (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError("log_model example_inputs must be a tensor or a tuple of tensors")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with engine.no_grad():
            outputs = _flat(model(*inputs))
            traced = engine.jit.trace(model, inputs)
        input_names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
        output_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
        signature = {"inputs": [_spec(n, t) for n, t in zip(input_names, inputs, strict=True)],
                     "outputs": [_spec(n, t) for n, t in zip(output_names, outputs, strict=True)]}
        directory.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        try:
            for fmt in chosen:
                paths[fmt] = path = directory / f"{name}{FORMATS[fmt]}"
                if fmt == "engine":
                    engine.jit.save(traced, str(path))
                else:
                    engine.onnx.export(model, inputs, str(path), input_names=input_names, output_names=output_names,
                                       dynamic_axes={n: {0: BATCH} for n in input_names + output_names})
        except BaseException:
            for path in paths.values():  # all formats or none: a failed export leaves no half-logged model
                path.unlink(missing_ok=True)
            raise
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return paths, signature


def _flat(output: Any) -> list[Any]:
    from engine import Tensor

    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and all(isinstance(t, Tensor) for t in output):
        return list(output)
    raise TypeError(f"log_model needs a model returning a tensor or a tuple of tensors, got {type(output).__name__}")


def _spec(name: str, tensor: Any) -> dict[str, Any]:
    shape: list[Any] = list(tensor.shape)
    if shape:
        shape[0] = BATCH
    return {"name": name, "dtype": str(tensor.dtype).removeprefix("engine."), "shape": shape}
