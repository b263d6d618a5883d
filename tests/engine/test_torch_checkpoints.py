"""PyTorch's checkpoint formats: torch.save -> engine.load, engine.save -> torch.load(weights_only=True).

The reader is a restricted unpickler with PyTorch's weights-only rules; a pickle naming anything
else is refused before it runs.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import engine
from engine import nn

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def torch_bytes(torch, obj, legacy=False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def engine_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    engine.save(obj, buffer, format="torch")
    return buffer.getvalue()


def to_numpy(t):
    return t.float().numpy() if t.dtype.__repr__().endswith("bfloat16") else t.numpy()


def assert_same(torch, ours, theirs):
    """Engine value ``ours`` equals torch value ``theirs`` (containers, tensors, dtypes, plain values)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, engine.Tensor), type(ours)
        assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.requires_grad == theirs.requires_grad
        assert isinstance(ours, nn.Parameter) == isinstance(theirs, torch.nn.Parameter)
        np.testing.assert_array_equal(np.asarray(ours.detach().float().numpy() if ours.dtype == engine.bfloat16
                                                 else ours.detach().numpy()),
                                      theirs.detach().float().numpy() if theirs.dtype == torch.bfloat16
                                      else theirs.detach().numpy())
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        assert isinstance(ours, OrderedDict) == isinstance(theirs, OrderedDict)
        for key in theirs:
            assert_same(torch, ours[key], theirs[key])
    elif isinstance(theirs, list | tuple):
        assert type(ours) is type(theirs) or (isinstance(theirs, torch.Size) and isinstance(ours, engine.Size))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same(torch, a, b)
    elif isinstance(theirs, torch.dtype):
        assert ours == getattr(engine, str(theirs).split(".")[1])
    elif isinstance(theirs, torch.device):
        assert str(ours) == str(theirs)
    elif isinstance(theirs, float) and theirs != theirs:
        assert ours != ours
    else:
        assert type(ours) is type(theirs) and ours == theirs


def mixed_checkpoint(torch):
    """A checkpoint with what real ones hold: a module and an optimizer state dict, views, plain values."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    base = torch.arange(24.0).reshape(4, 6)
    return {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "best": float("inf"),
        "nan": float("nan"), "name": "run-\u00e9", "flags": [True, None, (1, 2.5, "x")], "ids": {1, 2, 3},
        "blob": b"\x00\xffkiln", "big": 2 ** 70, "neg": -(2 ** 40), "c": 1 + 2j,
        "tensors": {dtype: (torch.arange(6) % 3).reshape(2, 3).to(getattr(torch, dtype)) for dtype in DTYPES},
        "base": base, "row": base[1], "cols": base[:, 2:5], "transposed": base.t(), "expanded": base[0].expand(3, 6),
        "scalar": torch.tensor(2.5, dtype=torch.float64), "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.ones(2)), "frozen": torch.nn.Parameter(torch.ones(1), requires_grad=False),
        "grad_leaf": torch.ones(2, requires_grad=True),
        "dtype": torch.bfloat16, "size": torch.Size([2, 3]), "device": torch.device("cpu"),
        7: "an int key", (1, "a"): "a tuple key",
    }


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_save_loads_in_the_engine_and_equals(torch, legacy):
    saved = mixed_checkpoint(torch)
    loaded = engine.load(io.BytesIO(torch_bytes(torch, saved, legacy)))
    assert_same(torch, loaded, saved)


def test_views_loaded_from_torch_share_their_storage(torch):
    base = torch.arange(12.0).reshape(3, 4)
    loaded = engine.load(io.BytesIO(torch_bytes(torch, {"base": base, "cols": base[:, 1:3], "t": base.t()})))
    loaded["base"][0, 1] = 100.0
    assert loaded["cols"][0, 0].item() == 100.0 and loaded["t"][1, 0].item() == 100.0


def test_a_torch_state_dict_loads_into_the_engine_model(torch, tmp_path):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(12, 2))
    path = tmp_path / "model.pth"
    torch.save(theirs.state_dict(), path)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    ours.load_state_dict(engine.load(path))
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    theirs.eval()
    ours.eval()
    np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_a_torch_optimizer_state_resumes_in_the_engine(torch):
    torch.manual_seed(0)
    w0 = torch.randn(3, 2, dtype=torch.float64)
    tw = torch.nn.Parameter(w0.clone())
    topt = torch.optim.Adam([tw], lr=0.1, weight_decay=0.01)
    for _ in range(3):
        topt.zero_grad()
        (tw ** 2).sum().backward()
        topt.step()
    checkpoint = engine.load(io.BytesIO(torch_bytes(torch, {"w": tw.detach(), "opt": topt.state_dict()})))
    ew = nn.Parameter(checkpoint["w"].clone())
    eopt = engine.optim.Adam([ew], lr=0.1, weight_decay=0.01)
    eopt.load_state_dict(checkpoint["opt"])
    for _ in range(3):
        topt.zero_grad()
        (tw ** 2).sum().backward()
        topt.step()
        eopt.zero_grad()
        (ew ** 2).sum().backward()
        eopt.step()
    np.testing.assert_allclose(ew.detach().numpy(), tw.detach().numpy(), rtol=1e-12)


def test_engine_save_in_torch_format_loads_with_weights_only_and_equals(torch):
    saved = mixed_checkpoint(torch)
    ours = engine.load(io.BytesIO(torch_bytes(torch, saved)))
    again = torch.load(io.BytesIO(engine_bytes(ours)), weights_only=True)
    assert_same(torch, ours, again)


def test_engine_views_keep_sharing_storage_under_torch(torch):
    base = engine.arange(10.0)
    data = engine_bytes({"a": base[2:5], "b": base[::2], "c": base.reshape(2, 5).t(), "base": base})
    loaded = torch.load(io.BytesIO(data), weights_only=True)
    assert loaded["c"].stride() == (1, 5)
    loaded["base"][4] = -1.0
    assert loaded["a"][2].item() == -1.0 and loaded["b"][2].item() == -1.0 and loaded["c"][4, 0].item() == -1.0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert [n for n in archive.namelist() if n.startswith("archive/data/")] == ["archive/data/0"]


def test_an_engine_model_and_optimizer_load_into_torch(torch, tmp_path):
    engine.manual_seed(0)
    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = engine.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    ours(engine.randn(6, 3)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.pt"
    engine.save({"model": ours.state_dict(), "optimizer": opt.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    theirs.load_state_dict(checkpoint["model"])
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    topt.load_state_dict(checkpoint["optimizer"])
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(), ours(engine.tensor(x)).detach().numpy(),
                               rtol=1e-6)
    assert topt.state_dict()["param_groups"][0]["momentum"] == 0.9


def test_the_format_follows_the_path_or_the_argument(tmp_path):
    state = {"w": engine.ones(2)}
    engine.save(state, tmp_path / "a.pt")
    engine.save(state, tmp_path / "b.pth")
    engine.save(state, tmp_path / "c.safetensors")
    engine.save(state, tmp_path / "d.bin", format="torch")
    engine.save(state, tmp_path / "e.pt", format="safetensors")
    engine.save(state, tmp_path / "f.ckpt", _use_new_zipfile_serialization=True)
    for name, zipped in [("a.pt", True), ("b.pth", True), ("c.safetensors", False), ("d.bin", True),
                         ("e.pt", False), ("f.ckpt", True)]:
        assert zipfile.is_zipfile(tmp_path / name) == zipped, name
        assert engine.load(tmp_path / name)["w"].tolist() == [1.0, 1.0]
    buffer = io.BytesIO()
    engine.save(state, buffer)  # a file object without a format stays safetensors
    assert not zipfile.is_zipfile(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("kwargs, message", [
    ({"format": "pickle"}, "format must be"),
    ({"_use_new_zipfile_serialization": False}, "legacy"),
    ({"format": "safetensors", "_use_new_zipfile_serialization": True}, "asks for PyTorch's format"),
    ({"pickle_protocol": 4}, "protocol 2"),
])
def test_bad_save_arguments_are_refused_and_write_nothing(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        engine.save({"w": engine.ones(1)}, tmp_path / "x.pt", **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", [argparse.Namespace(lr=0.1), np.ones(2)], ids=["namespace", "ndarray"])
def test_other_objects_are_pickled_and_refused_by_both_weights_only_loads(torch, tmp_path, value):
    path = tmp_path / "x.pt"
    engine.save({"x": value}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        engine.load(path)
    np.testing.assert_equal(torch.load(path, weights_only=False)["x"], value)
    np.testing.assert_equal(engine.load(path, weights_only=False)["x"], value)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_malicious_torch_checkpoint_is_refused_and_runs_nothing(torch, tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "payload": Exploit(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL (posix|nt)\.system was not an allowed global"):
        engine.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    # a global outside the allow-list
    b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\nobject\nX\x03\x00\x00\x00abc\x86R.",
    # REDUCE on an allowed name that is not a function to call
    b"\x80\x02ctorch\nFloatStorage\n)R.",
    # an allowed container whose state tries to set an arbitrary attribute
    b"\x80\x02ccollections\nOrderedDict\n)R}X\x05\x00\x00\x00hooksNsb.",
    # an opcode that builds arbitrary instances
    b"\x80\x02(ccollections\nOrderedDict\no.",
])
def test_crafted_pickles_are_refused(tmp_path, payload):
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        engine.load(path)


def test_a_tensor_reaching_past_its_storage_is_refused(torch, tmp_path):
    data = torch_bytes(torch, {"w": torch.ones(4)})
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        records = {name: source.read(name) for name in source.namelist()}
    records["archive/data/0"] = records["archive/data/0"][:8]  # 2 of the 4 floats
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in records.items():
            archive.writestr(name, content)
    with pytest.raises(pickle.UnpicklingError, match="shorter than 4 elements"):
        engine.load(path)


def test_map_location_applies_to_torch_checkpoints(torch):
    data = torch_bytes(torch, {"w": torch.ones(2)})
    seen = []
    out = engine.load(io.BytesIO(data), map_location=lambda t, location: seen.append(location) or t * 3)
    assert seen == ["cpu"] and out["w"].tolist() == [3.0, 3.0]
    assert engine.load(io.BytesIO(data), map_location="cpu")["w"].device.type == "cpu"


def test_a_cuda_checkpoint_without_cuda_names_map_location():
    ours = engine.load(io.BytesIO(engine_bytes({"w": engine.ones(2)})))
    assert ours["w"].device.type == "cpu"
    data = bytearray(engine_bytes({"w": engine.ones(2)}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as source:
        records = {name: source.read(name) for name in source.namelist()}
    records["archive/data.pkl"] = records["archive/data.pkl"].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in records.items():
            archive.writestr(name, content)
    if engine.cuda.is_available():
        pytest.skip("a CUDA device is present: the tensor would load there")
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        engine.load(io.BytesIO(buffer.getvalue()))
    assert engine.load(io.BytesIO(buffer.getvalue()), map_location="cpu")["w"].tolist() == [1.0, 1.0]


def test_a_jit_like_zip_without_data_pkl_is_named(tmp_path):
    path = tmp_path / "other.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/code.py", "print(1)")
    with pytest.raises(ValueError, match=r"no <archive>/data\.pkl"):
        engine.load(path)


def test_a_whole_pickled_module_is_refused_naming_its_class(torch, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    with pytest.raises(pickle.UnpicklingError, match=r"torch\.nn\.modules\.container\.Sequential.*state dict"):
        engine.load(path)


def test_trusted_classes_load_after_add_safe_globals_as_in_torch(torch, tmp_path):
    from engine import serialization

    path = tmp_path / "with_args.pt"
    torch.save({"args": argparse.Namespace(lr=0.1, name="run"), "w": torch.ones(2)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"argparse\.Namespace.*add_safe_globals\(\[argparse\.Namespace\]\)"):
        engine.load(path)
    with serialization.safe_globals([argparse.Namespace]):
        assert serialization.get_safe_globals() == [argparse.Namespace]
        loaded = engine.load(path)
    assert serialization.get_safe_globals() == []
    assert loaded["args"] == argparse.Namespace(lr=0.1, name="run") and loaded["w"].tolist() == [1.0, 1.0]
    with torch.serialization.safe_globals([argparse.Namespace]):
        assert torch.load(path, weights_only=True)["args"] == loaded["args"]
    serialization.add_safe_globals([argparse.Namespace])
    try:
        assert engine.load(path)["args"].lr == 0.1
        marker = tmp_path / "pwned"
        torch.save({"payload": Exploit(marker)}, tmp_path / "evil.pt")
        with pytest.raises(pickle.UnpicklingError, match="system"):  # trusting one class trusts nothing else
            engine.load(tmp_path / "evil.pt")
        assert not marker.exists()
    finally:
        serialization.clear_safe_globals()
    with pytest.raises(TypeError, match="classes or functions"):
        serialization.add_safe_globals([3])
