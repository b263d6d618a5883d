"""tests/fake_cupy is as strict as CuPy: only CuPy's names, no implicit host conversion, no NumPy mixing."""

from __future__ import annotations

import importlib
import pickle

import fake_cupy as cp
import numpy as np
import pytest
from fake_cupy._core import NAMES

import engine
from engine import backend

SUBMODULES = {"cupy": cp, "cupy.cuda": cp.cuda, "cupy.random": cp.random, "cupy.linalg": cp.linalg,
              "cupy.fft": cp.fft, "cupy.lib.stride_tricks": cp.lib.stride_tricks}


def _public(module) -> set[str]:
    return {n for n in vars(module) if not n.startswith("_")}


@pytest.mark.parametrize("key", sorted(SUBMODULES))
def test_offers_only_names_the_real_cupy_has(key):
    module = SUBMODULES[key]
    for name in ("zeros", "exp", "add", "float32", "inf", "asnumpy", "concatenate", "qr", "fft", "as_strided"):
        try:
            getattr(module, name)
        except AttributeError:
            pass
    extra = _public(module) - NAMES[key] - {"annotations"}
    assert not extra, f"fake {key} offers names CuPy lacks: {sorted(extra)}"
    assert set(vars(cp.cuda.runtime)) <= NAMES["cupy.cuda.runtime"]
    with pytest.raises(AttributeError, match="has no attribute"):
        module.surely_not_a_cupy_name  # noqa: B018


def test_classes_offer_only_cupys_attributes():
    classes = {"cupy.ndarray": cp.ndarray, "cupy.cuda.Device": cp.cuda.Device, "cupy.cuda.Stream": cp.cuda.Stream,
               "cupy.cuda.Event": cp.cuda.Event, "cupy.cuda.MemoryPool": cp.cuda.MemoryPool,
               "cupy.random.RandomState": cp.random.RandomState}
    for key, cls in classes.items():
        extra = {n for n in vars(cls) if not n.startswith("_")} - NAMES[key]
        assert not extra, f"fake {key} has attributes CuPy's lacks: {sorted(extra)}"


def test_names_match_the_installed_cupy_when_there_is_one():
    """Wherever CuPy is installed (it imports without a GPU), every name the fake offers exists in it too."""
    real = pytest.importorskip("cupy")
    for key, module in SUBMODULES.items():
        real_module = importlib.import_module(key)
        offered = {n for n in NAMES[key] if _offers(module, n)}
        missing = offered - set(dir(real_module))
        assert not missing, f"fake {key} offers names that cupy {real.__version__} lacks: {sorted(missing)}"
    methods = {n for n in NAMES["cupy.ndarray"] if hasattr(cp.ndarray, n) or callable(getattr(np.ndarray, n, None))}
    assert methods <= set(dir(real.ndarray))


def _offers(module, name: str) -> bool:
    try:
        getattr(module, name)
    except (AttributeError, NotImplementedError):
        return False
    return True


def test_implicit_host_conversion_is_refused_and_get_is_the_way_back():
    x = cp.arange(6.0).reshape(2, 3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        np.ones(3) * x
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.concatenate([x, np.ones((1, 3))])
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.maximum(x, np.zeros(3))
    with pytest.raises(TypeError):
        float(x)  # only 0-d arrays convert, as in NumPy/CuPy
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 1)
    before = cp._Stats.host_syncs
    assert float(x.sum()) == 15.0 and int(x[1, 2]) == 5  # 0-d: allowed, but each one is a host copy
    assert cp._Stats.host_syncs == before + 2
    host = cp.asnumpy(x)
    assert isinstance(host, np.ndarray) and isinstance(x.get(), np.ndarray) and host.tolist() == x.tolist()
    assert not hasattr(x, "__index__") and not isinstance(x, np.ndarray)


def test_arrays_stay_on_the_device_through_numpy_protocols():
    x = cp.asarray(np.linspace(-1, 1, 6, dtype=np.float32))
    for out in (np.exp(x), np.concatenate([x, x]), x.sum(), x[x > 0], cp.where(x > 0, x, 0.0), x * np.float32(2),
                cp.linalg.norm(x), x.T, x.flat[0]):
        assert isinstance(out, cp.ndarray), type(out)
    v = x[1:4]
    assert v.base is x and v.reshape(3, 1).base is x  # views keep their owner's identity, as in CuPy
    assert cp.float32 is np.float32 and x.dtype == np.float32 and x.device.id == 0
    y = cp.zeros(4)
    cp.add.at(y, cp.asarray([0, 0, 3]), 1.0)
    assert y.tolist() == [2.0, 0.0, 0.0, 1.0]
    assert pickle.loads(pickle.dumps(x)).tolist() == x.tolist()  # noqa: S301 - our own bytes
    with pytest.raises(AttributeError, match=r"'cupy\.ndarray' object has no attribute"):
        x.tofile_not_there  # noqa: B018


def test_cuda_namespace_and_the_engine_hook(cuda_backend):
    if cuda_backend is not cp:
        pytest.skip("checks the fake backend")
    assert engine.cuda.is_available() and engine.cuda.device_count() == 1
    assert engine.cuda.current_device() == 0 and "Fake" in engine.cuda.get_device_name()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    end.record()
    assert cp.cuda.get_elapsed_time(start, end) >= 0.0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        cp.cuda.Device(1)
    t = engine.ones(3, device="cuda")
    assert isinstance(t._data, cp.ndarray) and backend._TEST_MODULE is cp
    with pytest.raises(TypeError, match="cpu"):
        t.numpy()
    with pytest.raises(RuntimeError, match="same device"):
        t + engine.ones(3)
