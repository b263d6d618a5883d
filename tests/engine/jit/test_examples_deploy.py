"""Each model of examples/ traces, saves, loads in a process without its class, and exports to ONNX.

The models are the examples' own classes (imported from the scripts, untrained, small widths):
trace equals eager at two batch sizes (and two sequence lengths for the text models), a fresh
process that never imports the script runs the saved file, and onnxruntime equals the engine.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import engine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(batch, _):
    return engine.randn(batch, 1, 8, 8)


def _codes(batch, step):
    return engine.randint(0, 30, (batch, 12 + 5 * step))


def _time_major_codes(batch, step):
    return engine.randint(0, 30, (12 + 5 * step, batch))


# example -> (model, inputs(batch, step), ONNX dynamic axes of the input and the first output)
MODELS = {
    "mlp_digits": (lambda m: m.MLP(32, 0.1), _images, {0: "batch"}),
    "cnn_digits": (lambda m: m.CNN(8, 0.1), _images, {0: "batch"}),
    "gpt_char": (lambda m: m.GPT(30, 32, 32, 2, 2, 0.1), _codes, {0: "batch", 1: "time"}),
    "lstm_char_lm": (lambda m: m.CharLSTM(30, 16, 16, 2, 0.1), _time_major_codes, {0: "time", 1: "batch"}),
}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.fixture(scope="module")
def built():
    engine.manual_seed(0)
    return {name: (build(_example(name)).eval(), make, axes) for name, (build, make, axes) in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_trace_and_onnx_equal_eager_at_two_batch_sizes(built, name):
    model, make, axes = built[name]
    with engine.no_grad():
        traced = engine.jit.trace(model, (make(4, 0),))
    buffer = io.BytesIO()
    engine.onnx.export(model, (make(4, 0),), buffer, input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": axes, "y": axes})
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch, step in ((4, 0), (7, 1)):
        x = make(batch, step)
        with engine.no_grad():
            expected = _first(model(x)).numpy()
            np.testing.assert_allclose(_first(traced(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
        got = session.run(None, {"x": x.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_a_fresh_process_runs_every_saved_example_without_its_script(built, tmp_path):
    expected = {}
    for name, (model, make, _) in built.items():
        with engine.no_grad():
            engine.jit.save(engine.jit.trace(model, (make(4, 0),)), tmp_path / f"{name}.pt")
            x = make(7, 1)
            expected[name] = _first(model(x)).numpy()
        engine.save({"x": x}, tmp_path / f"{name}.x.safetensors")
    script = textwrap.dedent(f"""
        import sys
        import engine
        for name in {list(built)!r}:
            m = engine.jit.load(name + ".pt")
            x = engine.load(name + ".x.safetensors")["x"]
            with engine.no_grad():
                out = m(x)
            engine.save({{"y": out[0] if isinstance(out, tuple) else out}}, name + ".y.safetensors")
        assert not any(k.startswith("example_") for k in sys.modules)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    for name, want in expected.items():
        got = engine.load(tmp_path / f"{name}.y.safetensors")["y"]
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
