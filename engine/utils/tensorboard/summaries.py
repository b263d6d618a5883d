"""TensorBoard summary protos (scalars, text, histograms, images, hparams) built with the `tensorboard` package's own protos.

Imported only when event files are written, so the engine does not need tensorboard installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

from engine.utils.tensorboard.png import png


def scalar(tag: str, value: float) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])


def text(tag: str, body: str) -> Summary:
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    tensor = TensorProto(dtype="DT_STRING", string_val=[body.encode("utf-8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])


def histogram(tag: str, counts: np.ndarray, limits: np.ndarray, values: np.ndarray) -> Summary:
    proto = HistogramProto(min=float(values.min()), max=float(values.max()), num=int(values.size),
                           sum=float(values.sum()), sum_squares=float((values.astype(np.float64) ** 2).sum()),
                           bucket_limit=limits.tolist(), bucket=counts.tolist())
    return Summary(value=[Summary.Value(tag=tag, histo=proto)])


def image(tag: str, pixels: np.ndarray) -> Summary:
    """`pixels`: uint8 HWC with 1, 3 or 4 channels."""
    height, width, channels = pixels.shape
    encoded = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png(pixels))
    return Summary(value=[Summary.Value(tag=tag, image=encoded)])


def hparams(hparam_dict: dict[str, Any], metric_dict: dict[str, float],
            domain_discrete: dict[str, list[Any]] | None = None) -> tuple[Summary, Summary, Summary]:
    """The experiment, session-start and session-end summaries TensorBoard's HParams dashboard reads."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams.api_pb2 import (
        DataType,
        Experiment,
        HParamInfo,
        MetricInfo,
        MetricName,
        Status,
    )
    from tensorboard.plugins.hparams.metadata import (
        EXPERIMENT_TAG,
        PLUGIN_DATA_VERSION,
        PLUGIN_NAME,
        SESSION_END_INFO_TAG,
        SESSION_START_INFO_TAG,
    )
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    domain_discrete = domain_discrete or {}
    infos, start = [], SessionStartInfo()
    for name, value in hparam_dict.items():
        if value is None:
            continue
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
            kind, field = "DATA_TYPE_BOOL", "bool_value"
        elif isinstance(value, int | float):
            start.hparams[name].number_value = float(value)
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        else:
            start.hparams[name].string_value = str(value)
            kind, field = "DATA_TYPE_STRING", "string_value"
        discrete = None
        if name in domain_discrete:
            discrete = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d}) for d in domain_discrete[name]])
        infos.append(HParamInfo(name=name, type=DataType.Value(kind), domain_discrete=discrete))

    def wrapped(tag: str, content: HParamsPluginData) -> Summary:
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=content.SerializeToString()))
        return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])

    experiment = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    return (
        wrapped(EXPERIMENT_TAG, HParamsPluginData(experiment=experiment, version=PLUGIN_DATA_VERSION)),
        wrapped(SESSION_START_INFO_TAG, HParamsPluginData(session_start_info=start, version=PLUGIN_DATA_VERSION)),
        wrapped(SESSION_END_INFO_TAG, HParamsPluginData(
            session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS")), version=PLUGIN_DATA_VERSION)),
    )
