"""engine.save of whole objects (a module, an optimizer): PyTorch's zip format with a real pickle.

engine.load keeps weights_only=True by default, as torch >= 2.6: such a file is refused with
torch's message and nothing in it runs, unless its classes are allowlisted (safe_globals) or the
caller passes weights_only=False.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile

import numpy as np
import pytest

import engine
from engine import nn
from engine.serialization import safe_globals

SET_STATE_CALLS: list = []


class LanguageModel(nn.Module):
    """The shape of pytorch/examples' word_language_model: tied embedding/decoder weights."""

    def __init__(self, tokens=11, width=6):
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.encoder = nn.Embedding(tokens, width)
        self.rnn = nn.LSTM(width, width, 2)
        self.norm = nn.BatchNorm1d(width)
        self.decoder = nn.Linear(width, tokens)
        self.decoder.weight = self.encoder.weight
        self.rnn.bias_hh_l1.requires_grad_(False)
        self.model_type = "LSTM"

    def forward(self, tokens):
        out, _ = self.rnn(self.drop(self.encoder(tokens)))
        return self.decoder(self.norm(out.reshape(-1, out.shape[-1])))


LM_CLASSES = [LanguageModel, nn.modules.dropout.Dropout, nn.modules.sparse.Embedding, nn.modules.rnn.LSTM,
              nn.modules.batchnorm.BatchNorm1d, nn.modules.linear.Linear]


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Recorder:
    """Records every __setstate__ call: a refused load must never reach it."""

    def __setstate__(self, state):
        SET_STATE_CALLS.append(state)
        self.__dict__.update(state)


class MadeWhilePickling:
    """Its state is a tensor created by __getstate__, after the storages were planned."""

    def __init__(self, values):
        self.values = values

    def __getstate__(self):
        return {"values": engine.tensor(self.values)}


def trained_model() -> LanguageModel:
    engine.manual_seed(0)
    model = LanguageModel()
    model(engine.randint(0, 11, (5, 3))).sum().backward()  # BatchNorm's running stats move
    return model.eval()


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    engine.save(obj, buffer)
    return buffer.getvalue()


def pickle_globals(data: bytes) -> set:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {arg for op, arg, _ in pickletools.genops(archive.read("archive/data.pkl")) if op.name == "GLOBAL"}


def test_a_whole_module_round_trips_with_weights_only_false():
    model = trained_model()
    data = saved(model)
    assert zipfile.is_zipfile(io.BytesIO(data))
    assert {"torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter", "torch FloatStorage",
            "engine.nn.modules.rnn LSTM"} <= pickle_globals(data)
    loaded = engine.load(io.BytesIO(data), weights_only=False)
    assert type(loaded) is LanguageModel and not loaded.training and loaded.model_type == "LSTM"
    tokens = engine.randint(0, 11, (4, 2))
    np.testing.assert_array_equal(loaded(tokens).detach().numpy(), model(tokens).detach().numpy())
    for (name, ours), (_, theirs) in zip(loaded.named_parameters(), model.named_parameters(), strict=True):
        assert isinstance(ours, nn.Parameter), name
        assert ours.requires_grad == theirs.requires_grad, name
    assert not loaded.rnn.bias_hh_l1.requires_grad
    assert loaded.decoder.weight is loaded.encoder.weight  # tied weights stay one Parameter
    np.testing.assert_array_equal(loaded.norm.running_mean.numpy(), model.norm.running_mean.numpy())
    loaded(tokens).sum().backward()
    assert loaded.encoder.weight.grad is not None


def test_map_location_applies_to_a_whole_module():
    data = saved(trained_model())
    seen = []
    loaded = engine.load(io.BytesIO(data), weights_only=False,
                         map_location=lambda t, location: seen.append(location) or t)
    assert seen and set(seen) == {"cpu"} and isinstance(loaded.decoder.bias, nn.Parameter)
    assert engine.load(io.BytesIO(data), weights_only=False, map_location="cpu").decoder.bias.device.type == "cpu"


def test_an_optimizer_saved_whole_resumes_on_its_parameters():
    model = trained_model()
    opt = engine.optim.Adam(model.parameters(), lr=0.1)
    opt.step()
    loaded = engine.load(io.BytesIO(saved({"model": model, "optimizer": opt, "epoch": 3})), weights_only=False)
    assert loaded["epoch"] == 3 and type(loaded["optimizer"]) is engine.optim.Adam
    assert loaded["optimizer"].param_groups[0]["params"][0] is next(loaded["model"].parameters())
    np.testing.assert_array_equal(loaded["optimizer"].state_dict()["state"][0]["exp_avg"].numpy(),
                                  opt.state_dict()["state"][0]["exp_avg"].numpy())


def test_a_tensor_made_while_pickling_gets_its_own_storage():
    loaded = engine.load(io.BytesIO(saved({"w": engine.ones(2), "made": MadeWhilePickling([1.0, 2.0])})),
                         weights_only=False)
    assert loaded["made"].values.tolist() == [1.0, 2.0] and loaded["w"].tolist() == [1.0, 1.0]


def test_the_default_load_refuses_a_whole_module_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    SET_STATE_CALLS.clear()
    path = tmp_path / "model.pt"
    recorder = Recorder()
    recorder.x = 1
    engine.save({"recorder": recorder, "model": trained_model(), "payload": Exploit(marker)}, path)
    with pytest.raises(pickle.UnpicklingError) as refused:
        engine.load(path)
    message = str(refused.value)
    assert "Weights only load failed" in message and "`weights_only` set to `False` will likely succeed" in message
    assert f"GLOBAL {__name__}.Recorder was not an allowed global" in message
    assert f"engine.serialization.add_safe_globals([{__name__}.Recorder])" in message
    assert not marker.exists() and SET_STATE_CALLS == []
    with safe_globals([Recorder, *LM_CLASSES]):  # trusting these classes does not trust os.system
        with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL (posix|nt)\.system was not an allowed global"):
            engine.load(path)
    assert not marker.exists()
    SET_STATE_CALLS.clear()
    engine.load(io.BytesIO(saved({"recorder": recorder})), weights_only=False)  # trusted: its code runs
    assert SET_STATE_CALLS == [{"x": 1}]


def test_safe_globals_load_a_whole_module_weights_only_as_word_language_model_does():
    model = trained_model()
    data = saved(model)
    with safe_globals(LM_CLASSES[:-1]):
        with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL engine\.nn\.modules\.linear\.Linear was not"):
            engine.load(io.BytesIO(data))
    with safe_globals(LM_CLASSES):
        loaded = engine.load(io.BytesIO(data), map_location="cpu")
    tokens = engine.randint(0, 11, (4, 2))
    np.testing.assert_array_equal(loaded(tokens).detach().numpy(), model(tokens).detach().numpy())
    assert loaded.decoder.weight is loaded.encoder.weight and not loaded.rnn.bias_hh_l1.requires_grad


def test_plain_data_keeps_its_formats(tmp_path):
    model = trained_model()
    assert not zipfile.is_zipfile(io.BytesIO(saved(model.state_dict())))  # safetensors, as before
    engine.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "ckpt.pt")
    assert all(name.startswith(("torch", "collections", "builtins", "_codecs"))
               for name in pickle_globals((tmp_path / "ckpt.pt").read_bytes()))
    assert zipfile.is_zipfile(io.BytesIO(saved({"model": model})))  # holds an object: pickled
    with pytest.raises(TypeError, match=r"can't store LanguageModel at 'model' in safetensors"):
        engine.save({"model": model}, io.BytesIO(), format="safetensors")


def test_torch_reads_plain_values_and_refuses_engine_objects_by_default(torch, tmp_path):
    path = tmp_path / "mixed.pt"
    engine.save({"w": engine.ones(2), "ids": np.arange(3)}, path)
    with pytest.raises(pickle.UnpicklingError, match="multiarray"):
        torch.load(path)
    theirs = torch.load(path, weights_only=False)
    assert theirs["w"].tolist() == [1.0, 1.0] and theirs["ids"].tolist() == [0, 1, 2]
    with pytest.raises(pickle.UnpicklingError, match="multiarray"):
        engine.load(path)
    assert engine.load(path, weights_only=False)["ids"].tolist() == [0, 1, 2]


def test_the_hub_reads_a_download_weights_only_unless_told_otherwise(tmp_path):
    source = tmp_path / "whole.pt"
    engine.save(trained_model(), source)
    cache = tmp_path / "cache"
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        engine.hub.load_state_dict_from_url(source.as_uri(), model_dir=str(cache))
    loaded = engine.hub.load_state_dict_from_url(source.as_uri(), model_dir=str(cache), weights_only=False)
    assert type(loaded) is LanguageModel
