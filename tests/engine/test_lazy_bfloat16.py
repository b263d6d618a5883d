"""bfloat16's NumPy type (ml_dtypes, ~0.7 s to import) is loaded on first use, and found however it was loaded."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_engine_does_not_load_ml_dtypes_and_bfloat16_loads_it_on_use():
    out = _run("""
        import sys
        import engine
        before = "ml_dtypes" in sys.modules
        assert engine.bfloat16.itemsize == 2 and engine.bfloat16.is_floating_point
        t = engine.tensor([1.5, 2.0], dtype=engine.bfloat16)
        print(before, "ml_dtypes" in sys.modules, t.dtype, t.float().tolist(), engine.finfo(engine.bfloat16).eps)
    """)
    assert out == "False True engine.bfloat16 [1.5, 2.0] 0.0078125"


def test_a_bfloat16_array_made_by_another_library_maps_to_engine_bfloat16():
    out = _run("""
        import engine
        import ml_dtypes
        import numpy as np
        array = np.array([1.0, 3.0], dtype=ml_dtypes.bfloat16)
        t = engine.from_numpy(array)
        print(t.dtype, engine.dtypes.FROM_NUMPY[array.dtype], array.dtype in engine.dtypes.FROM_NUMPY,
              (t * 2).tolist())
    """)
    assert out == "engine.bfloat16 engine.bfloat16 True [2.0, 6.0]"


def test_bfloat16_checkpoints_load_in_a_fresh_process(tmp_path):
    path = tmp_path / "bf16.safetensors"
    pt = tmp_path / "bf16.pt"
    _run(f"""
        import engine
        state = {{"w": engine.tensor([0.5, -2.0], dtype=engine.bfloat16)}}
        engine.save(state, {str(path)!r}); engine.save(state, {str(pt)!r})
    """)
    out = _run(f"""
        import engine
        for p in ({str(path)!r}, {str(pt)!r}):
            w = engine.load(p)["w"]
            print(w.dtype, w.float().tolist())
    """)
    assert out == "engine.bfloat16 [0.5, -2.0]\nengine.bfloat16 [0.5, -2.0]"
