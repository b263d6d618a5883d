"""`kiln import mlflow` and `kiln import tensorboard`: history from MLflow servers and TensorBoard event files into Kiln.

Both write through Kiln's MLflow API (/api/2.0/mlflow/...) with the stored API token, so imported runs are
ordinary external runs. Each imported run carries the tag `kiln.import.source` naming where it came from;
a run already imported is skipped, so a second import adds nothing. A run whose import was interrupted
(still running in Kiln) is deleted and imported again. Client code: no Django here.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from webapp.client.client import Client, KilnError

SOURCE_TAG = "kiln.import.source"
METRICS_PER_CALL = 1000  # MLflow's log-batch limits, which Kiln's MLflow API keeps
PARAMS_PER_CALL = 100
STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Report:
    imported: int = 0
    already: int = 0
    repeated: int = 0  # metric values logged at a step that already had one: all kept, as MLflow keeps them
    skipped: list[str] = field(default_factory=list)  # "what: why"

    def lines(self) -> list[str]:
        out = [f"imported {self.imported} run(s); {self.already} already imported"]
        if self.repeated:
            out.append(f"kept {self.repeated} repeated metric value(s) logged at a step already logged "
                       "(MLflow's get-history returns them all; Kiln's charts show the latest at each step)")
        out += [f"skipped {item}" for item in self.skipped]
        return out


class Progress:
    """A one-line progress bar on a terminal, one line per run elsewhere."""

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr  # NOTE: sys.stderr at call time

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = f"[{'#' * filled}{' ' * (width - filled)}] {self.done}/{self.total} {label[:60]}"
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(100) + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class KilnMlflow:
    """Kiln's MLflow endpoints over urllib, with a Kiln API token."""

    def __init__(self, client: Client):
        self.url, self.token, self.timeout = client.url, client.token, client.timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.url}/api/2.0/mlflow/{path}" + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        answer = self._send(Request(url, data=data, method=method, headers=self._headers("application/json")))  # noqa: S310
        return json.loads(answer) if answer else {}

    def put_artifact(self, experiment_id: str, run_id: str, name: str, data: bytes) -> None:
        url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{quote(name)}"
        self._send(Request(url, data=data, method="PUT", headers=self._headers("application/octet-stream")))  # noqa: S310

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": content_type, "User-Agent": "kiln-import"}

    def _send(self, request: Request) -> bytes:
        if not request.full_url.startswith(("http://", "https://")):
            raise KilnError(0, "bad_url", f"the server URL must start with http:// or https://, got {self.url!r}")
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 -- scheme checked above
                return bytes(response.read())
        except HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            raise KilnError(exc.code, str(body.get("error_code") or "http_error"),
                            str(body.get("message") or exc.reason)) from None
        except URLError as exc:
            raise KilnError(0, "unreachable", f"cannot reach {self.url}: {exc.reason}") from None

    # -- what the importers need ---------------------------------------------------------------------------------

    def experiment_id(self, project: str) -> str:
        """The project's experiment id, creating the project when the caller may."""
        try:
            return str(self.call("GET", "experiments/get-by-name", params={"experiment_name": project})["experiment"]["experiment_id"])
        except KilnError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        return str(self.call("POST", "experiments/create", {"name": project})["experiment_id"])

    def imported(self, experiment_id: str, source: str) -> dict[str, Any] | None:
        """The run imported from `source` before, if any."""
        escaped = source.replace("\\", "\\\\").replace("'", "\\'")
        found = self.call("POST", "runs/search", {"experiment_ids": [experiment_id], "max_results": 1,
                                                  "filter": f"tags.`{SOURCE_TAG}` = '{escaped}'"})
        runs = found.get("runs") or []
        return runs[0] if runs else None

    def log_run(self, experiment_id: str, *, source: str, name: str, start_ms: int, end_ms: int | None, status: str,
                params: dict[str, str], tags: dict[str, str], metrics: Iterable[dict[str, Any]],
                artifacts: Iterable[tuple[str, bytes]]) -> str:
        """One run, written whole; returns its id. A run left half-imported by an earlier attempt is replaced."""
        earlier = self.imported(experiment_id, source)
        if earlier is not None:
            self.call("POST", "runs/delete", {"run_id": earlier["info"]["run_id"]})
        all_tags = [{"key": k, "value": v} for k, v in tags.items() if k != SOURCE_TAG] + [{"key": SOURCE_TAG, "value": source}]
        run = self.call("POST", "runs/create", {"experiment_id": experiment_id, "run_name": name, "start_time": start_ms,
                                                "tags": [*all_tags[:PARAMS_PER_CALL - 1], all_tags[-1]]})["run"]["info"]
        run_id = run["run_id"]
        for chunk in _chunks([{"key": k, "value": v} for k, v in params.items()], PARAMS_PER_CALL):
            self.call("POST", "runs/log-batch", {"run_id": run_id, "params": chunk})
        for chunk in _chunks(all_tags[PARAMS_PER_CALL - 1:-1], PARAMS_PER_CALL):
            self.call("POST", "runs/log-batch", {"run_id": run_id, "tags": chunk})
        for chunk in _chunks(metrics, METRICS_PER_CALL):
            self.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": chunk})
        for artifact_name, data in artifacts:
            self.put_artifact(experiment_id, run_id, artifact_name, data)
        # NOTE: the run ends last: an imported run still running is one an interrupted import left half done
        self.call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": end_ms or start_ms})
        return str(run_id)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _already(kiln: KilnMlflow, experiment_id: str, source: str) -> bool:
    """Imported whole before: a run is ended only once its import completed."""
    earlier = kiln.imported(experiment_id, source)
    return earlier is not None and earlier["info"]["status"] != "RUNNING"


# -- MLflow ---------------------------------------------------------------------------------------------------


def import_mlflow(client: Client, *, source_uri: str, project: str, experiments: list[str] | None = None,
                  stream: TextIO | None = None) -> Report:
    """Copy the runs (params, tags, full metric histories, artifacts) of a running MLflow server into `project`."""
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise KilnError(0, "missing_dependency", "kiln import mlflow reads with the MLflow client: "
                        "pip install mlflow-skinny") from None
    source = MlflowClient(tracking_uri=source_uri)
    kiln = KilnMlflow(client)
    experiment_id = kiln.experiment_id(project)
    report = Report()
    if experiments:
        chosen = []
        for name in experiments:
            found = source.get_experiment_by_name(name)
            if found is None:
                report.skipped.append(f"experiment {name!r}: not on {source_uri}")
            else:
                chosen.append(found)
    else:
        chosen = list(source.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=50_000))
    runs = [(exp, run) for exp in chosen for run in _all_runs(source, exp.experiment_id)]
    progress = Progress(len(runs), stream)
    for experiment, run in runs:
        origin = f"mlflow:{source_uri.rstrip('/')}#{run.info.run_id}"
        label = f"{experiment.name}/{run.info.run_name or run.info.run_id}"
        if run.info.status not in STATUSES:
            report.skipped.append(f"run {label}: still {run.info.status.lower()} on the MLflow server")
        elif _already(kiln, experiment_id, origin):
            report.already += 1
        else:
            repeated: list[int] = []
            kiln.log_run(
                experiment_id, source=origin, name=run.info.run_name or run.info.run_id, start_ms=run.info.start_time,
                end_ms=run.info.end_time, status=run.info.status, params=dict(run.data.params),
                tags={**{k: v for k, v in run.data.tags.items() if k != "mlflow.runName"},
                      "kiln.import.experiment": experiment.name},
                metrics=_mlflow_history(source, run, repeated), artifacts=_mlflow_artifacts(source, run.info.run_id),
            )
            report.imported += 1
            report.repeated += sum(repeated)
        progress.step(label)
    return report


def _all_runs(source: Any, experiment_id: str) -> Iterator[Any]:
    token = None
    while True:
        page = source.search_runs([experiment_id], max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _mlflow_history(source: Any, run: Any, repeated: list[int]) -> Iterator[dict[str, Any]]:
    """Every value of every metric, each step's ordered so that its last is the one MLflow calls latest.

    Kiln's MLflow API keeps them all (the latest charted, the earlier ones for get-history); `repeated`
    gets how many values fell on a step that already had one.
    """
    for key in sorted(run.data.metrics):
        history = source.get_metric_history(run.info.run_id, key)
        steps = [m.step for m in history]
        repeated.append(len(steps) - len(set(steps)))
        for metric in sorted(history, key=_mlflow_order):
            yield {"key": key, "value": _json_double(metric.value), "timestamp": metric.timestamp, "step": metric.step}


def _mlflow_order(metric: Any) -> tuple[int, int, float]:
    """A step's values by timestamp, then value: how MLflow's store picks the latest (it compares NaN as 0)."""
    return metric.step, metric.timestamp, 0.0 if math.isnan(metric.value) else metric.value


def _json_double(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _mlflow_artifacts(source: Any, run_id: str, folder: str | None = None) -> Iterator[tuple[str, bytes]]:
    for item in source.list_artifacts(run_id, folder):
        if item.is_dir:
            yield from _mlflow_artifacts(source, run_id, item.path)
            continue
        with tempfile.TemporaryDirectory() as scratch:
            local = source.download_artifacts(run_id, item.path, scratch)
            yield item.path, Path(local).read_bytes()


# -- TensorBoard ----------------------------------------------------------------------------------------------


def import_tensorboard(client: Client, *, logdir: str | Path, project: str, stream: TextIO | None = None) -> Report:
    """One Kiln run per run folder (a folder holding event files) under `logdir`, read with tensorboard's reader."""
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        raise KilnError(0, "missing_dependency", "kiln import tensorboard reads with tensorboard: pip install tensorboard") from None
    root = Path(logdir)
    if not root.is_dir():
        raise KilnError(0, "not_found", f"{root} is not a folder")
    folders = sorted({path.parent for path in root.rglob("events.out.tfevents.*") if path.is_file()})
    report = Report()
    if not folders:
        report.skipped.append(f"{root}: no TensorBoard event files (events.out.tfevents.*) under it")
        return report
    kiln = KilnMlflow(client)
    experiment_id = kiln.experiment_id(project)
    progress = Progress(len(folders), stream)
    runs: dict[Path, dict[str, Any]] = {}
    for folder in folders:
        reader = event_accumulator.EventAccumulator(str(folder), size_guidance={
            event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0,
            event_accumulator.HISTOGRAMS: 0, event_accumulator.AUDIO: 1, event_accumulator.COMPRESSED_HISTOGRAMS: 1})
        reader.Reload()
        runs[folder] = _tensorboard_run(reader, folder.relative_to(root).as_posix() if folder != root else
                                        root.resolve().name, report)
    for folder in [f for f in folders if _is_hparams_child(f, runs)]:
        _merge_hparams_child(runs[folder.parent], runs.pop(folder))
        progress.step(folder.relative_to(root).as_posix())
    for folder, run in runs.items():
        name = folder.relative_to(root).as_posix() if folder != root else root.resolve().name
        first = min(path.name for path in folder.glob("events.out.tfevents.*"))
        origin = f"tensorboard:{name}/{first}"
        if _already(kiln, experiment_id, origin):
            report.already += 1
            progress.step(name)
            continue
        if run["metrics"] or run["params"] or run["artifacts"]:
            kiln.log_run(experiment_id, source=origin, name=name, start_ms=run["start_ms"], end_ms=run["end_ms"],
                         status="FINISHED", params=run["params"], tags={"kiln.import.tensorboard_dir": name},
                         metrics=run["metrics"], artifacts=run["artifacts"])
            report.imported += 1
        else:
            report.skipped.append(f"run {name}: nothing Kiln can keep in its event files")
        progress.step(name)
    return report


def _is_hparams_child(folder: Path, runs: dict[Path, dict[str, Any]]) -> bool:
    """Whether `folder` is the sub-folder PyTorch's `SummaryWriter.add_hparams` writes beside a run's own events.

    `add_hparams` logs the hparams and its `metric_dict` into `<run folder>/<time.time()>/`; TensorBoard shows
    that as a run of its own, but it describes its parent run, so Kiln folds it into the parent.
    """
    try:
        float(folder.name)
    except ValueError:
        return False
    return folder.parent in runs and bool(runs[folder]["params"]) and not runs[folder]["artifacts"]


def _merge_hparams_child(parent: dict[str, Any], child: dict[str, Any]) -> None:
    for key, value in child["params"].items():
        parent["params"].setdefault(key, value)
    parent["metrics"] += child["metrics"]
    parent["end_ms"] = max(parent["end_ms"], child["end_ms"])


def _tensorboard_run(reader: Any, name: str, report: Report) -> dict[str, Any]:
    """What one run folder holds, as Kiln metrics, params and artifacts; what cannot be kept goes to `report`."""
    tags = reader.Tags()
    metrics: list[dict[str, Any]] = []
    walls: list[float] = []
    repeated = 0
    for tag in tags.get("scalars", []):
        events = reader.Scalars(tag)
        repeated += len(events) - len({e.step for e in events})
        for event in events:
            metrics.append({"key": tag[:200], "value": _json_double(event.value), "timestamp": int(event.wall_time * 1000),
                            "step": event.step})
            walls.append(event.wall_time)
    params: dict[str, str] = {}
    artifacts: list[tuple[str, bytes]] = []
    for tag in tags.get("tensors", []):
        plugin = reader.SummaryMetadata(tag).plugin_data.plugin_name
        events = reader.Tensors(tag)
        walls += [e.wall_time for e in events]
        if plugin == "scalars":  # TF2's tf.summary.scalar writes tensors
            for event in events:
                metrics.append({"key": tag[:200], "value": _json_double(float(_tensor_value(event.tensor_proto))),
                                "timestamp": int(event.wall_time * 1000), "step": event.step})
        elif plugin == "text":
            for event in events:
                text = b"\n".join(event.tensor_proto.string_val).decode("utf-8", "replace")
                artifacts.append((f"tensorboard/text/{tag}-{event.step:010d}.md", text.encode()))
        else:
            report.skipped.append(f"run {name}: tensor {tag!r} of plugin {plugin or 'none'!r} (not kept)")
    for tag in tags.get("images", []):
        for event in reader.Images(tag):
            artifacts.append((f"tensorboard/images/{tag}-{event.step:010d}.png", event.encoded_image_string))
            walls.append(event.wall_time)
    for tag in tags.get("histograms", []):
        for event in reader.Histograms(tag):
            value = event.histogram_value
            record = {"min": value.min, "max": value.max, "num": value.num, "sum": value.sum,
                      "bucket_limit": list(value.bucket_limit), "bucket": list(value.bucket)}
            artifacts.append((f"tensorboard/histograms/{tag}-{event.step:010d}.json", json.dumps(record).encode()))
            walls.append(event.wall_time)
    params.update(_hparams(reader))
    for kind in ("audio", "graph", "meta_graph", "run_metadata"):
        present = tags.get(kind)
        if present:
            report.skipped.append(f"run {name}: {kind} ({present if isinstance(present, bool) else len(present)}) not kept")
    report.repeated += repeated
    start = min(walls) if walls else 0.0
    end = max(walls) if walls else 0.0
    return {"metrics": metrics, "params": params, "artifacts": artifacts, "start_ms": int(start * 1000),
            "end_ms": int(end * 1000)}


def _tensor_value(proto: Any) -> float:
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(proto).item())


def _hparams(reader: Any) -> dict[str, str]:
    """The hparams of a session-start summary (TensorBoard's HParams plugin), as MLflow-style text params."""
    try:
        from tensorboard.plugins.hparams import metadata
    except ImportError:
        return {}
    try:
        content = reader.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:  # no hparams in this run
        content = {}
    params: dict[str, str] = {}
    raw = content.get(metadata.SESSION_START_INFO_TAG)
    if raw is None:
        return {}
    start = metadata.parse_session_start_info_plugin_data(raw)
    for key, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            number = value.number_value
            params[key] = str(int(number)) if number.is_integer() else repr(number)
        elif kind == "bool_value":
            params[key] = str(value.bool_value)
        elif kind == "string_value":
            params[key] = value.string_value
    return params
