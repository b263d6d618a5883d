"""`SummaryWriter` with `torch.utils.tensorboard`'s path, signature and methods: TensorBoard scripts run unchanged.

Inside a Kiln run (the worker set KILN_RUN_DIR and KILN_EVENTS) everything goes through `engine.track`:
scalars become the run's metrics, hparams the run's params (`track.log_params`: the run table and compare
view show them) with their metrics logged as metrics, and text, histograms, images and figures become artifacts under `tensorboard/` that
the run page lists. Outside Kiln it writes real TensorBoard event files (with the `tensorboard` package's
own writer and protos) when tensorboard is installed, else it logs through `engine.track` to the local
run folder (./kiln-runs/...).

Example:
    >>> from engine.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter() as writer:
    ...     for step in range(3):
    ...         writer.add_scalar("loss", 1.0 / (step + 1), step)
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SummaryWriter"]


def _in_kiln() -> bool:
    return bool(os.environ.get("KILN_RUN_DIR") and os.environ.get("KILN_EVENTS"))


def _array(values: Any) -> np.ndarray:
    """A tensor (engine or torch), a NumPy array, or a list as a NumPy array on the host."""
    if hasattr(values, "detach"):
        values = values.detach()
    if hasattr(values, "cpu"):
        values = values.cpu()
    if hasattr(values, "numpy"):
        values = values.numpy()
    return np.asarray(values)


def _scalar(value: Any) -> float:
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, bool) or not isinstance(item, int | float | np.integer | np.floating):
        raise TypeError(f"scalar_value must be a number or a one-element tensor, got {type(value).__name__}")
    return float(item)


def _hparam(name: str, value: Any) -> bool | int | float | str:
    """An hparam as PyTorch's writer takes it: text, a boolean, a number or a one-element tensor."""
    if isinstance(value, bool | int | float | str):
        return value
    values = _array(value) if hasattr(value, "item") else None
    if values is not None and values.size == 1:
        item: bool | int | float | str = values.reshape(-1)[0].item()
        return item
    raise ValueError(f"hparam {name!r}: value should be one of int, float, str, bool, or torch.Tensor, "
                     f"got {type(value).__name__}")


def _hwc(img_tensor: Any, dataformats: str) -> np.ndarray:
    """An image in `dataformats` (CHW, HWC, HW, ...) as uint8 HWC; floats are taken as [0, 1]."""
    pixels = _array(img_tensor)
    formats = dataformats.upper()
    if sorted(formats) not in (sorted("CHW"), sorted("HW")) or pixels.ndim != len(formats):
        raise ValueError(f"dataformats {dataformats!r} does not describe an image of shape {pixels.shape}")
    if "C" not in formats:
        pixels, formats = pixels[..., None], formats + "C"
    pixels = np.transpose(pixels, [formats.index(axis) for axis in "HWC"])
    if pixels.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image has 1, 3 or 4 channels, got {pixels.shape[2]}")
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(pixels)


def _figure_pixels(figure: Any) -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def _histogram(values: np.ndarray, bins: Any, max_bins: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(counts, right bucket limits), as torch's writer makes them ("tensorflow" bins: exponential buckets)."""
    values = values.astype(np.float64).ravel()
    if values.size == 0:
        raise ValueError("add_histogram needs at least one value")
    if isinstance(bins, str) and bins == "tensorflow":  # NOTE: TensorFlow's buckets: ±1e-12 * 1.1**k up to 1e20, and 0
        positive = 1e-12 * 1.1 ** np.arange(int(np.ceil(np.log(1e32) / np.log(1.1))))
        edges = np.concatenate([-positive[::-1], [0.0], positive])
    else:
        edges = np.histogram_bin_edges(values, bins=bins)
    counts, edges = np.histogram(values, bins=edges)
    if max_bins is not None and len(counts) > max_bins:
        factor = -(-len(counts) // max_bins)
        padded = np.pad(counts, (0, factor * max_bins - len(counts)))
        counts = padded.reshape(max_bins, factor).sum(axis=1)
        edges = np.concatenate([edges[:1], edges[1:][factor - 1::factor], edges[-1:]])[: len(counts) + 1]
    used = np.nonzero(counts)[0]
    first, last = max(used[0] - 1, 0), min(used[-1] + 1, len(counts) - 1)
    return counts[first:last + 1].astype(np.float64), edges[first + 1:last + 2]


class SummaryWriter:
    """Writes scalars, text, histograms, images and hparams for TensorBoard, or into the Kiln run it runs in.

    Args:
        log_dir: where event files go (default ``runs/<date>_<host><comment>``, as PyTorch's).
        comment: appended to the default log_dir.
        purge_step: accepted for PyTorch's signature; TensorBoard itself hides events past a restart step.
        max_queue: events held before a write. flush_secs: seconds between flushes.
        filename_suffix: appended to event file names.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, comment: str = "", purge_step: int | None = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""):
        self.purge_step = purge_step
        self._max_queue, self._flush_secs, self._suffix = max_queue, flush_secs, filename_suffix
        self._kiln = _in_kiln()
        self._events = not self._kiln and importlib.util.find_spec("tensorboard") is not None
        self._writers: dict[str, Any] = {}
        self._closed = False
        if self._kiln:
            from engine import track

            self._track = track
            self.log_dir = str(Path(log_dir) if log_dir is not None else track.run_dir() / "tensorboard")
        elif self._events:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            self.log_dir = str(log_dir) if log_dir is not None else os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
            self._writer(self.log_dir)
        else:
            from engine import track

            self._track = track
            self.log_dir = str(Path(log_dir) if log_dir is not None else track.run_dir() / "tensorboard")
        self._files = Path(self.log_dir)

    def get_logdir(self) -> str:
        return self.log_dir

    # -- what goes where ---------------------------------------------------------------------------------------

    def _writer(self, folder: str) -> Any:
        writer = self._writers.get(folder)
        if writer is None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            writer = EventFileWriter(folder, self._max_queue, self._flush_secs, self._suffix)
            self._writers[folder] = writer
        return writer

    def _event(self, summary: Any, global_step: int | None, walltime: float | None, folder: str | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(global_step)
        self._writer(folder or self.log_dir).add_event(event)

    def _artifact(self, kind: str, tag: str, global_step: int | None, suffix: str, data: bytes) -> None:
        step = "" if global_step is None else f"-{int(global_step):010d}"
        name = f"tensorboard/{kind}/{tag.strip('/') or kind}{step}{suffix}"
        path = self._files / name.removeprefix("tensorboard/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._track.log_artifact(path, name=name)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this SummaryWriter is closed")

    # -- PyTorch's methods -------------------------------------------------------------------------------------

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None, walltime: float | None = None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """Log one number under `tag` at `global_step` (a Kiln metric inside Kiln)."""
        self._check_open()
        value = _scalar(scalar_value)
        if self._events:
            from engine.utils.tensorboard import summaries

            self._event(summaries.scalar(tag, value), global_step, walltime)
        else:
            self._track.log({tag: value}, step=None if global_step is None else int(global_step))

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, Any], global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Several curves on one chart: event files in `<log_dir>/<main_tag>_<tag>`, Kiln metrics `<main_tag>/<tag>`."""
        self._check_open()
        values = {tag: _scalar(value) for tag, value in tag_scalar_dict.items()}
        if self._events:
            from engine.utils.tensorboard import summaries

            for tag, value in values.items():
                folder = os.path.join(self.log_dir, f"{main_tag}_{tag}".replace("/", "_"))
                self._event(summaries.scalar(main_tag, value), global_step, walltime, folder)
        else:
            self._track.log({f"{main_tag}/{tag}": value for tag, value in values.items()},
                            step=None if global_step is None else int(global_step))

    def add_hparams(self, hparam_dict: dict[str, Any], metric_dict: dict[str, Any],
                    hparam_domain_discrete: dict[str, list[Any]] | None = None, run_name: str | None = None,
                    global_step: int | None = None) -> None:
        """Hyperparameters with the metrics they reached (TensorBoard's HParams tab; Kiln: params and metrics)."""
        self._check_open()
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("hparam_dict and metric_dict should be dictionaries")
        hparams = {key: _hparam(key, value) for key, value in hparam_dict.items() if value is not None}
        metrics = {key: _scalar(value) for key, value in metric_dict.items()}
        if self._events:
            from engine.utils.tensorboard import summaries

            folder = os.path.join(self.log_dir, run_name or str(time.time()))
            for summary in summaries.hparams(hparams, metrics, hparam_domain_discrete):
                self._event(summary, None, None, folder)
            for key, value in metrics.items():
                self._event(summaries.scalar(key, value), global_step, None, folder)
            return
        self._track.log_params(hparams)
        self._artifact("hparams", run_name or "hparams", global_step, ".json",
                       json.dumps({"hparams": hparams, "metrics": metrics}, indent=2).encode())
        if metrics:
            self._track.log(metrics, step=None if global_step is None else int(global_step))

    def add_text(self, tag: str, text_string: str, global_step: int | None = None, walltime: float | None = None) -> None:
        self._check_open()
        if self._events:
            from engine.utils.tensorboard import summaries

            self._event(summaries.text(tag, str(text_string)), global_step, walltime)
        else:
            self._artifact("text", tag, global_step, ".md", str(text_string).encode("utf-8"))

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None, bins: Any = "tensorflow",
                      walltime: float | None = None, max_bins: int | None = None) -> None:
        self._check_open()
        data = _array(values)
        counts, limits = _histogram(data, bins, max_bins)
        if self._events:
            from engine.utils.tensorboard import summaries

            self._event(summaries.histogram(tag, counts, limits, data.astype(np.float64).ravel()), global_step, walltime)
        else:
            record = {"min": float(data.min()), "max": float(data.max()), "num": int(data.size),
                      "sum": float(data.sum()), "bucket_limit": limits.tolist(), "bucket": counts.tolist()}
            self._artifact("histograms", tag, global_step, ".json", json.dumps(record).encode())

    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None, walltime: float | None = None,
                  dataformats: str = "CHW") -> None:
        self._check_open()
        self._image(tag, _hwc(img_tensor, dataformats), global_step, walltime)

    def add_figure(self, tag: str, figure: Any, global_step: int | None = None, close: bool = True,
                   walltime: float | None = None) -> None:
        """A matplotlib figure (or a list of them) as an image."""
        self._check_open()
        figures = figure if isinstance(figure, list) else [figure]
        pixels = np.stack([_figure_pixels(f) for f in figures]) if len(figures) > 1 else _figure_pixels(figures[0])
        if close:
            import matplotlib.pyplot as plt

            for f in figures:
                plt.close(f)
        if pixels.ndim == 4:  # several figures side by side, as one image
            pixels = np.concatenate(list(pixels), axis=1)
        self._image(tag, pixels, global_step, walltime)

    def _image(self, tag: str, pixels: np.ndarray, global_step: int | None, walltime: float | None) -> None:
        from engine.utils.tensorboard.png import png

        if self._events:
            from engine.utils.tensorboard.summaries import image

            self._event(image(tag, pixels), global_step, walltime)
        else:
            self._artifact("images", tag, global_step, ".png", png(pixels))

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        if self._closed:
            return
        for writer in self._writers.values():
            writer.close()
        self._closed = True

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
