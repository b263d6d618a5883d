"""engine.save / engine.load: round trips, safetensors interop both ways, atomic writes; pickles never run."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct

import numpy as np
import pytest

import engine
from engine.serialization import dumps, loads


def round_trip(obj, **load_kwargs):
    buffer = io.BytesIO()
    engine.save(obj, buffer)
    return engine.load(io.BytesIO(buffer.getvalue()), **load_kwargs)


@pytest.mark.parametrize("dtype", [engine.float32, engine.float64, engine.float16, engine.bfloat16, engine.int64,
                                   engine.int32, engine.int16, engine.int8, engine.uint8, engine.bool])
def test_tensor_round_trip_keeps_values_dtype_and_shape(dtype):
    t = (engine.arange(24) % 5).reshape(2, 3, 4).to(dtype)
    out = round_trip(t)
    assert out.dtype == dtype and out.shape == t.shape and engine.equal(out, t)


def test_zero_dim_empty_and_non_contiguous_tensors():
    scalar, empty, strided = engine.tensor(3.5), engine.zeros(0, 3), engine.arange(12.0).reshape(3, 4).t()
    out = round_trip([scalar, empty, strided])
    assert out[0].shape == engine.Size([]) and out[0].item() == 3.5
    assert out[1].shape == engine.Size([0, 3])
    assert engine.equal(out[2], strided)


def test_nested_checkpoint_round_trip():
    w = engine.randn(3, 2, requires_grad=True)
    checkpoint = {
        "model": {"fc.weight": w, "fc.bias": engine.zeros(2)},
        "optimizer": {"state": {0: {"step": engine.tensor(3.0), "exp_avg": engine.ones(3, 2)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0], "foreach": None}]},
        "scheduler": {"milestones": {3: 1, 7: 2}, "best": float("inf"), "worst": float("-inf")},
        "epoch": 3, "name": "run", "flags": {True, False}, "blob": b"\x00\x01", "array": np.arange(4),
        "rng": engine.get_rng_state(), "dtype": engine.float16, "device": engine.device("cpu"),
        "$odd": {"$tensor": "not a reference"},
    }
    out = round_trip(checkpoint)
    assert engine.equal(out["model"]["fc.weight"], w) and out["model"]["fc.weight"].requires_grad
    assert out["optimizer"]["state"][0]["step"].item() == 3.0
    assert out["optimizer"]["param_groups"] == checkpoint["optimizer"]["param_groups"]
    assert out["scheduler"] == checkpoint["scheduler"]
    assert (out["epoch"], out["name"], out["flags"], out["blob"]) == (3, "run", {True, False}, b"\x00\x01")
    assert isinstance(out["array"], np.ndarray) and out["array"].tolist() == [0, 1, 2, 3]
    assert engine.equal(out["rng"], checkpoint["rng"])
    assert out["dtype"] is engine.float16 and out["device"] == engine.device("cpu")
    assert out["$odd"] == {"$tensor": "not a reference"}


def test_shared_tensors_are_stored_once_and_stay_shared():
    w = engine.randn(4)
    data = dumps({"a": [w, w], "b": w})
    assert data.count(w.numpy().tobytes()) == 1
    out = loads(bytearray(data))
    assert out["a"][0] is out["a"][1] is out["b"]


def test_loaded_tensors_are_writable():
    out = round_trip({"w": engine.zeros(3)})
    out["w"].add_(1)
    assert out["w"].tolist() == [1.0, 1.0, 1.0]


def test_objects_are_refused_in_safetensors():
    with pytest.raises(TypeError, match=r"can't store object at 'model\.extra' in safetensors"):
        engine.save({"model": {"extra": object()}}, io.BytesIO(), format="safetensors")
    with pytest.raises(ValueError, match="never pickles"):
        engine.save({}, io.BytesIO(), pickle_module=pickle)


def test_state_dict_loads_into_torch_with_safetensors(torch, tmp_path):
    from safetensors.torch import load_file

    state = {"layer.weight": engine.randn(3, 4), "layer.bias": engine.randn(3),
             "norm.steps": engine.tensor(7), "half": engine.randn(2).to(engine.bfloat16)}
    path = tmp_path / "model.safetensors"
    engine.save(state, path)
    loaded = load_file(str(path))
    assert set(loaded) == set(state)
    for name, t in state.items():
        assert str(loaded[name].dtype) == f"torch.{t.dtype.name}"
        np.testing.assert_array_equal(loaded[name].float().numpy(), t.float().numpy())
    module = torch.nn.Linear(4, 3)
    module.load_state_dict({"weight": loaded["layer.weight"], "bias": loaded["layer.bias"]})


def test_torch_safetensors_file_loads_into_engine(torch, tmp_path):
    from safetensors.torch import save_file

    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    state["bf16"] = torch.randn(5).to(torch.bfloat16)
    path = tmp_path / "torch.safetensors"
    save_file(state, str(path), metadata={"format": "pt"})
    loaded = engine.load(path, map_location="cpu")
    assert set(loaded) == set(state)
    for name, t in state.items():
        assert loaded[name].dtype.name == str(t.dtype).split(".")[1]
        np.testing.assert_array_equal(loaded[name].float().numpy(), t.float().numpy())


def test_map_location_forms(tmp_path):
    path = tmp_path / "w.safetensors"
    engine.save({"w": engine.ones(2)}, str(path))
    assert engine.load(path, map_location="cpu")["w"].device.type == "cpu"
    assert engine.load(path, map_location=engine.device("cpu"))["w"].device.type == "cpu"
    assert engine.load(path, map_location={"cuda:0": "cpu"})["w"].device.type == "cpu"
    seen = []
    out = engine.load(path, map_location=lambda t, location: seen.append(location) or t * 2)
    assert seen == ["cpu"] and out["w"].tolist() == [2.0, 2.0]
    assert engine.load(path, weights_only=True)["w"].tolist() == [1.0, 1.0]


def test_a_pickle_file_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL (posix|nt)\.system was not an allowed global"):
        engine.load(path)
    assert not marker.exists()


def test_crafted_metadata_cannot_name_objects(tmp_path):
    tree = {"$object": {"module": "os", "name": "system", "args": ["touch pwned"]}}
    header = json.dumps({"__metadata__": {"kiln.tree": json.dumps(tree)}}).encode()
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError, match="unknown entry '\\$object'"):
        engine.load(path)


@pytest.mark.parametrize("payload", [
    b"",
    struct.pack("<Q", 10 ** 12) + b"{}",
    struct.pack("<Q", 2) + b"[]",
    struct.pack("<Q", 60) + json.dumps({"w": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}
                                       ).encode().ljust(60),
    struct.pack("<Q", 60) + json.dumps({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 8]}}
                                       ).encode().ljust(60) + b"\x00" * 8,
])
def test_corrupt_files_raise_value_error(payload):
    with pytest.raises(ValueError):
        engine.load(io.BytesIO(payload))


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    engine.save({"epoch": 1}, path)
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        engine.save({"epoch": 2}, path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert engine.load(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_engine_source_never_uses_pickle():
    import pathlib

    root = pathlib.Path(engine.__file__).parent
    for name in ("serialization.py", "optim", "amp", "datasets"):
        files = [root / name] if name.endswith(".py") else list((root / name).rglob("*.py"))
        for file in files:
            text = file.read_text()
            assert "import pickle" not in text and "pickle.load" not in text, file
    # PyTorch's formats go through the one restricted unpickler, never pickle.load/loads
    text = (root / "_torch_format.py").read_text()
    assert "pickle.load" not in text and "class _RestrictedUnpickler(pickle._Unpickler)" in text
