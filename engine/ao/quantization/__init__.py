"""``engine.ao.quantization``: int8 quantization in eager mode, with PyTorch's names.

Dynamic: ``quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=engine.qint8)``.
Static: ``fuse_modules`` -> ``model.qconfig = get_default_qconfig("x86")`` -> ``prepare`` -> calibrate
-> ``convert``.
"""

from engine.ao.quantization.fuse import fuse_known_modules, fuse_modules
from engine.ao.quantization.histogram_observer import HistogramObserver
from engine.ao.quantization.observer import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    default_dynamic_quant_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)
from engine.ao.quantization.qconfig import (
    QConfig,
    QConfigDynamic,
    default_dynamic_qconfig,
    default_qconfig,
    get_default_qat_qconfig,
    get_default_qconfig,
    per_channel_dynamic_qconfig,
)
from engine.ao.quantization.qtensor import QTensor, quantize_per_channel, quantize_per_tensor
from engine.ao.quantization.quantize import (
    DeQuantStub,
    QuantStub,
    QuantWrapper,
    convert,
    get_default_dynamic_quant_module_mappings,
    get_default_static_quant_module_mappings,
    prepare,
    propagate_qconfig_,
    quantize,
    quantize_dynamic,
)

__all__ = ["DeQuantStub", "HistogramObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "ObserverBase", "PerChannelMinMaxObserver",
           "PlaceholderObserver", "QConfig", "QConfigDynamic", "QTensor", "QuantStub", "QuantWrapper", "convert",
           "default_dynamic_qconfig", "default_dynamic_quant_observer", "default_observer",
           "default_per_channel_weight_observer", "default_qconfig", "default_weight_observer",
           "fuse_known_modules", "fuse_modules", "get_default_dynamic_quant_module_mappings",
           "get_default_qat_qconfig", "get_default_qconfig", "get_default_static_quant_module_mappings",
           "per_channel_dynamic_qconfig", "prepare", "propagate_qconfig_", "quantize", "quantize_dynamic",
           "quantize_per_channel", "quantize_per_tensor"]
