"""``QConfig``: which observers watch a module's activation and weight."""

from __future__ import annotations

from typing import Any, NamedTuple

from engine.ao.quantization.histogram_observer import HistogramObserver
from engine.ao.quantization.observer import (
    default_dynamic_quant_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)


class QConfig(NamedTuple):
    """Observer factories for the activation and the weight (``MinMaxObserver.with_args(...)``)."""

    activation: Any
    weight: Any


QConfigDynamic = QConfig
default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_weight_observer)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)


def get_default_qconfig(backend: str = "x86", version: int = 0) -> QConfig:
    """PyTorch's default static qconfig for ``backend`` ("x86", "fbgemm", "qnnpack", "onednn").

    Activations: HistogramObserver (7-bit on x86/fbgemm); weights: per-channel symmetric qint8
    (per-tensor on qnnpack).
    """
    if backend in ("x86", "fbgemm"):
        return QConfig(activation=HistogramObserver.with_args(reduce_range=True),
                       weight=default_per_channel_weight_observer)
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=default_weight_observer)
    if backend == "onednn":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_per_channel_weight_observer)
    raise ValueError(f"backend {backend!r} is not supported; choose 'x86', 'fbgemm', 'qnnpack' or 'onednn'")


def get_default_qat_qconfig(backend: str = "x86", version: int = 1) -> QConfig:
    raise NotImplementedError("quantization-aware training (get_default_qat_qconfig) is not supported; "
                              "use post-training static quantization (get_default_qconfig) or quantize_dynamic")
