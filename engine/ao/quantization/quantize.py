"""Eager-mode workflows: ``quantize_dynamic``, ``prepare`` / calibrate / ``convert``, and the stubs."""

from __future__ import annotations

import copy

from engine import nn
from engine.ao.nn import intrinsic as nni
from engine.ao.nn import quantized as nnq
from engine.ao.nn.quantized import dynamic as nnqd
from engine.ao.quantization.qconfig import default_dynamic_qconfig
from engine.dtypes import as_dtype


class QuantStub(nn.Module):
    """Marks where float tensors become quantized; ``convert`` swaps it for ``nnq.Quantize``."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class DeQuantStub(nn.Module):
    """Marks where quantized tensors become float again; ``convert`` swaps it for ``nnq.DeQuantize``."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantWrapper(nn.Module):
    """``QuantStub -> module -> DeQuantStub``, so a float model can be quantized without editing it."""

    def __init__(self, module):
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X):
        return self.dequant(self.module(self.quant(X)))


def get_default_static_quant_module_mappings() -> dict:
    return {QuantStub: nnq.Quantize, DeQuantStub: nnq.DeQuantize, nn.Linear: nnq.Linear, nn.Conv2d: nnq.Conv2d,
            nni.ConvReLU2d: nni.quantized.ConvReLU2d, nni.LinearReLU: nni.quantized.LinearReLU,
            nnq.FloatFunctional: nnq.QFunctional, nn.ReLU: nnq.ReLU, nn.MaxPool2d: nnq.MaxPool2d}


def get_default_dynamic_quant_module_mappings() -> dict:
    return {nn.Linear: nnqd.Linear, nn.LSTM: nnqd.LSTM, nn.GRU: nnqd.GRU}


# modules that need an output observer during calibration (the others run on quantized tensors as is)
_OBSERVED = (QuantStub, nn.Linear, nn.Conv2d, nni.ConvReLU2d, nni.LinearReLU)


def propagate_qconfig_(module, qconfig_dict=None) -> None:
    """Give every submodule its parent's ``qconfig`` unless it has its own (or one in ``qconfig_dict``)."""
    qconfig_dict = qconfig_dict or {}

    def visit(mod, name: str, inherited):
        qconfig = qconfig_dict.get(type(mod), qconfig_dict.get(name, getattr(mod, "qconfig", inherited)))
        mod.qconfig = qconfig
        if isinstance(mod, nni._FusedModule):
            return
        for child_name, child in mod.named_children():
            visit(child, f"{name}.{child_name}" if name else child_name, qconfig)

    visit(module, "", None)


def _observer_hook(module, input, output):
    return module.activation_post_process(output)


def prepare(model, inplace: bool = False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    """Attach observers (from each module's ``qconfig``) to the modules ``convert`` will quantize."""
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    inside_fused = {id(c) for m in model.modules() if isinstance(m, nni._FusedModule) for c in m.children()}
    for module in list(model.modules()):
        qconfig = getattr(module, "qconfig", None)
        if qconfig is None or id(module) in inside_fused:
            continue
        if isinstance(module, nnq.FloatFunctional):
            module.activation_post_process = qconfig.activation()
        elif isinstance(module, _OBSERVED) and not isinstance(module, nn.Identity):
            module.activation_post_process = qconfig.activation()
            module.register_forward_hook(_observer_hook)
    return model


def _swap(module, mapping: dict, dynamic: bool):
    for name, child in list(module.named_children()):
        swapped = _swap_one(child, mapping, dynamic)
        if swapped is not child:
            setattr(module, name, swapped)
        elif not isinstance(child, nni._FusedModule):
            _swap(child, mapping, dynamic)
    return module


def _swap_one(mod, mapping: dict, dynamic: bool):
    target = mapping.get(type(mod))
    if target is None or getattr(mod, "qconfig", None) is None:
        return mod
    if not dynamic and isinstance(mod, (*_OBSERVED, nnq.FloatFunctional)) \
            and not hasattr(mod, "activation_post_process"):
        return mod
    return target.from_float(mod)


def convert(module, mapping=None, inplace: bool = False, remove_qconfig: bool = True, is_reference: bool = False,
            convert_custom_config_dict=None, use_precomputed_fake_quant: bool = False):
    """Swap each observed module for its quantized form (``nnq.Linear``, ``nnq.Conv2d`` ...)."""
    if is_reference:
        raise NotImplementedError("convert(is_reference=True) is not supported")
    if not inplace:
        module = copy.deepcopy(module)
    mapping = get_default_static_quant_module_mappings() if mapping is None else mapping
    top = _swap_one(module, mapping, False)
    module = _swap(top, mapping, False)
    if remove_qconfig:
        for m in module.modules():
            if "qconfig" in m.__dict__:
                del m.__dict__["qconfig"]
    return module


def quantize_dynamic(model, qconfig_spec=None, dtype=None, mapping=None, inplace: bool = False):
    """Replace Linear / LSTM / GRU with dynamically quantized versions (int8 weights, per-batch activations).

    Args:
        model: the float module. qconfig_spec: a set of module types (or names), or a dict of
            type/name -> QConfig; by default {nn.Linear, nn.LSTM, nn.GRU}. dtype: engine.qint8.
        mapping: float type -> dynamic quantized type. inplace: change ``model`` itself.

    Example:
        >>> qmodel = quantize_dynamic(model, {nn.Linear}, dtype=engine.qint8)  # doctest: +SKIP
    """
    dtype = as_dtype("qint8") if dtype is None else as_dtype(dtype)
    if dtype is not as_dtype("qint8"):
        raise NotImplementedError(f"quantize_dynamic supports dtype=engine.qint8, got {dtype}")
    if qconfig_spec is None:
        qconfig_spec = {nn.Linear, nn.LSTM, nn.GRU}
    if isinstance(qconfig_spec, set | frozenset | list | tuple):
        qconfig_spec = dict.fromkeys(qconfig_spec, default_dynamic_qconfig)
    mapping = get_default_dynamic_quant_module_mappings() if mapping is None else mapping
    for key in qconfig_spec:
        if isinstance(key, type) and key not in mapping:
            raise NotImplementedError(f"quantize_dynamic: {key.__name__} has no dynamic quantized form "
                                      f"(supported: {', '.join(t.__name__ for t in mapping)})")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model, qconfig_spec)
    top = _swap_one(model, mapping, True)
    model = _swap(top, mapping, True)
    for m in model.modules():
        m.__dict__.pop("qconfig", None)
    return model


def quantize(model, run_fn, run_args, mapping=None, inplace: bool = False):
    """prepare -> ``run_fn(model, *run_args)`` (calibration) -> convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    return convert(model, mapping, inplace=True)
