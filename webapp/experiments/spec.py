"""The experiment spec: what a user submits, validated so that every error names its field.

A spec is a dict (from YAML, JSON, a form or the API). Exactly one of two kinds:
- a code run: a Python file or a .zip project is uploaded beside the spec; `params` reach
  the script through `engine.track.config`;
- a recipe run: `recipe` configures a built-in training recipe (model, dataset, optimizer, ...).
An optional `sweep` block expands one spec into one run per point (grid, random), or hands it to the
scheduler's sweep controller (bayes, cmaes, or any sweep with `parallel` or `early_terminate`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from webapp.experiments.spec_limits import SpecShapeError, check_spec_shape, check_spec_text

Scalar = bool | int | float | str
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")]
TagName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
MAX_SWEEP_RUNS = 1000
MAX_MEMORY_GB = 4096.0  # resources.memory_gb: a sanity bound (4 TB), past any one host
MAX_CPUS = 1024  # resources.cpus: a sanity bound, past any one host
MAX_NODES = 64  # resources.nodes
MAX_PROCESSES_PER_NODE = 256  # distributed.processes_per_node


class SpecError(ValueError):
    """Invalid spec; `errors` is a list of {"field": "recipe.epochs", "message": "..."}."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(error_line(e) for e in errors))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """What a run holds. One worker: `gpus`, `cpus`. Several (a gang placed all at once):
    `nodes` with `gpus_per_node` and/or `cpus_per_node`, each node on its own worker."""

    gpus: int = Field(0, ge=0, le=64, description="GPUs the run holds on its worker (default 0).")
    cpus: int = Field(1, ge=1, le=MAX_CPUS, description="CPU slots the run holds on its worker, pinned by CPU "
                      "affinity (default 1).")
    nodes: int = Field(1, ge=1, le=MAX_NODES, description="Workers the run spans (a gang, placed all or nothing).")
    gpus_per_node: int | None = Field(None, ge=0, le=64, description="GPUs on each node (with `nodes`).")
    cpus_per_node: int | None = Field(None, ge=1, le=MAX_CPUS, description="CPU slots on each node (with `nodes`).")
    max_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    memory_gb: float | None = Field(None, description="Host memory the run may use, in GB (2**30 bytes); "
                                    "unset: the server's KILN_RUN_MEMORY_GB.")

    @field_validator("memory_gb", mode="before")
    @classmethod
    def _memory_is_a_number(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML's `yes` is not a size
            raise ValueError("must be a number of GB")
        return value

    @field_validator("cpus", "gpus", "nodes", "gpus_per_node", "cpus_per_node", mode="before")
    @classmethod
    def _cpus_is_a_count(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        return value

    @model_validator(mode="after")
    def _one_way_to_size_a_node(self) -> Resources:
        per_node = self.gpus_per_node is not None or self.cpus_per_node is not None
        # NOTE: a stored spec repeats the per-node sizes as gpus/cpus (what one worker holds), so equal is fine
        clash = ("gpus" in self.model_fields_set and self.gpus_per_node is not None and self.gpus != self.gpus_per_node) \
            or ("cpus" in self.model_fields_set and self.cpus_per_node is not None and self.cpus != self.cpus_per_node)
        if clash:
            raise ValueError("give gpus/cpus for one worker, or nodes with gpus_per_node/cpus_per_node; not both")
        if self.nodes > 1 and not per_node:
            raise ValueError("with nodes, size each node with gpus_per_node and/or cpus_per_node")
        return self

    @property
    def node_gpus(self) -> int:
        """GPUs on each node (all of them for a one-worker run)."""
        return self.gpus if self.gpus_per_node is None else self.gpus_per_node

    @property
    def node_cpus(self) -> int:
        """CPU slots on each node."""
        return self.cpus if self.cpus_per_node is None else self.cpus_per_node

    @field_validator("memory_gb")
    @classmethod
    def _memory_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= MAX_MEMORY_GB:  # NOTE: NaN fails this too
            raise ValueError(f"must be more than 0 and at most {MAX_MEMORY_GB:g} GB")
        return value


class DistributedSpec(_Strict):
    """Data-parallel ranks: `processes_per_node` ranks on each node, started by `engine.distributed.run`."""

    processes_per_node: int = Field(1, ge=1, le=MAX_PROCESSES_PER_NODE)

    @field_validator("processes_per_node", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        return value


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)


class LRSchedulerSpec(_Strict):
    name: Literal["none", "step", "cosine", "exponential", "onecycle"] = "none"
    step_size: int = Field(1, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)


class RecipeSpec(_Strict):
    model: Literal["mlp", "cnn", "lstm", "gpt"]
    dataset: Literal["digits", "blobs", "spirals", "regression", "bars", "text"] = "digits"
    optimizer: OptimizerSpec = OptimizerSpec()
    scheduler: LRSchedulerSpec = LRSchedulerSpec()
    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536)
    hidden_size: int = Field(128, ge=1, le=65536)
    layers: int = Field(2, ge=1, le=64)
    dropout: float = Field(0.0, ge=0, lt=1)
    seed: int = Field(0, ge=0)


class SweepValues(_Strict):
    values: list[Scalar] | None = Field(None, min_length=1, max_length=MAX_SWEEP_RUNS)
    min: float | None = None
    max: float | None = None
    distribution: Literal["uniform", "log_uniform", "int_uniform", "categorical"] = "uniform"

    @model_validator(mode="after")
    def _values_or_range(self) -> SweepValues:
        if self.distribution == "categorical" and self.values is None:
            raise ValueError("categorical needs values: [...]")
        if self.values is None and (self.min is None or self.max is None):
            raise ValueError("give either values: [...] or min and max")
        if self.values is None and self.min is not None and self.max is not None:
            if self.min > self.max:
                raise ValueError("min must not exceed max")
            if self.distribution == "log_uniform" and self.min <= 0:
                raise ValueError("log_uniform needs min > 0")
            if self.distribution == "int_uniform" and math.ceil(self.min) > math.floor(self.max):
                raise ValueError("int_uniform needs a whole number between min and max")
        return self


class SweepMetric(_Strict):
    """The objective a sweep optimises: a metric the runs log, and which way is better."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    goal: Literal["minimize", "maximize"]


class EarlyTerminate(_Strict):
    """Stop weak trials at rungs min_iter * eta**k (Optuna's successive halving / Hyperband pruners).

    `iteration`: epoch (the n-th reported value of the objective is iteration n: one per validation
    pass, as recipes report it) or step (the step it was logged at, `track.log(..., step=)`).
    `variant` (asha only): stopping (a weak trial ends at its rung, Optuna's pruner decides) or
    promotion (every trial pauses at each rung; the top 1/eta of a rung are promoted and resume from
    their checkpoint, Li et al.'s ASHA; trials reaching max_iter finish).
    """

    type: Literal["asha", "hyperband"]
    min_iter: int = Field(1, ge=1, le=1_000_000)
    max_iter: int | None = Field(None, ge=1, le=1_000_000)
    eta: int = Field(3, ge=2, le=100)
    iteration: Literal["epoch", "step"] = "epoch"
    variant: Literal["stopping", "promotion"] = "stopping"

    @model_validator(mode="after")
    def _iters_in_order(self) -> EarlyTerminate:
        if self.type == "hyperband" and self.max_iter is None:
            raise ValueError("hyperband needs max_iter (the most iterations a trial runs)")
        if self.max_iter is not None and self.max_iter < self.min_iter:
            raise ValueError("max_iter must not be less than min_iter")
        if self.variant == "promotion" and self.type != "asha":
            raise ValueError("variant promotion is ASHA's: it needs type asha")
        if self.variant == "promotion" and self.max_iter is None:
            raise ValueError("variant promotion needs max_iter (the iterations a fully trained trial runs)")
        return self

    @property
    def promotes(self) -> bool:
        return self.variant == "promotion"


ADAPTIVE_METHODS = ("bayes", "cmaes")
MAX_SWEEP_PARALLEL = 100
DEFAULT_SWEEP_PARALLEL = 4


class SweepSpec(_Strict):
    method: Literal["grid", "random", "bayes", "cmaes"] = "grid"
    parameters: dict[ParamName, SweepValues] = Field(min_length=1)
    max_runs: int = Field(MAX_SWEEP_RUNS, ge=1, le=MAX_SWEEP_RUNS)
    seed: int = 0
    metric: SweepMetric | None = None
    parallel: int | None = Field(None, ge=1, le=MAX_SWEEP_PARALLEL,
                                 description="Trials queued or running at once (controlled sweeps; default 4).")
    early_terminate: EarlyTerminate | None = None

    @model_validator(mode="after")
    def _grid_needs_values(self) -> SweepSpec:
        if self.method == "grid":
            ranged = [name for name, p in self.parameters.items() if p.values is None]
            if ranged:
                raise ValueError(f"grid sweeps need explicit values for: {', '.join(ranged)}")
        if self.method == "cmaes" and all(p.values is not None for p in self.parameters.values()):
            raise ValueError("cmaes searches numeric ranges: give at least one parameter min and max")
        return self

    @property
    def controlled(self) -> bool:
        """Run by the scheduler's sweep controller (trials made one by one), not expanded at submit."""
        return self.method in ADAPTIVE_METHODS or self.parallel is not None or self.early_terminate is not None

    @property
    def slots(self) -> int:
        """How many trials may be queued or running at once."""
        return self.parallel or DEFAULT_SWEEP_PARALLEL


def default_sweep_metric(recipe: RecipeSpec | None) -> SweepMetric | None:
    """A recipe's validation metric: val_loss for regression, val_accuracy otherwise; none for code runs."""
    if recipe is None:
        return None
    if recipe.dataset == "regression":
        return SweepMetric(name="val_loss", goal="minimize")
    return SweepMetric(name="val_accuracy", goal="maximize")


class ExperimentSpec(_Strict):
    name: str | None = Field(None, max_length=200)
    recipe: RecipeSpec | None = None
    entrypoint: str | None = Field(None, max_length=255, description="Script to run inside a .zip project.")
    params: dict[ParamName, Scalar] = Field(default_factory=dict, max_length=200)
    resources: Resources = Resources()
    distributed: DistributedSpec | None = None
    priority: int = Field(0, ge=-100, le=100)
    tags: list[TagName] = Field(default_factory=list, max_length=20)
    notes: str = Field("", max_length=10_000)
    sweep: SweepSpec | None = None


def parse_spec_text(text: str) -> dict[str, Any]:
    """Parse a YAML or JSON document (JSON is YAML) into a dict, or raise SpecError."""
    try:
        _within_limits(check_spec_text, text)
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError([{"field": "spec", "message": f"not valid YAML or JSON{where}"}]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([{"field": "spec", "message": "must be a mapping of fields (e.g. recipe:, params:)"}])
    _within_limits(check_spec_shape, data)  # YAML aliases can make a small text a huge tree
    return data


def validate_spec(data: dict[str, Any], *, has_code: bool) -> ExperimentSpec:
    """Validate a spec dict; SpecError lists every problem with its dotted field path."""
    _within_limits(check_spec_shape, data)
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_error(e) for e in exc.errors()]) from None
    unstorable = _unstorable(spec.model_dump(), "")
    if unstorable:
        raise SpecError(unstorable)
    if has_code and spec.recipe is not None:
        raise SpecError([{"field": "recipe", "message": "give either code or a recipe, not both"}])
    if not has_code and spec.recipe is None:
        raise SpecError([{"field": "recipe", "message": "a run needs code (a .py or .zip file) or a recipe"}])
    distributed = _distributed_problems(spec)
    if distributed:
        raise SpecError(distributed)
    if spec.sweep:
        spec = _with_sweep_metric(spec)
        if spec.sweep is not None and spec.sweep.controlled:
            for point in sample_points(spec.sweep):
                apply_point(spec, point)  # a trial's point is chosen later: check the names and bounds now
        else:
            expand_points(spec)  # every point must itself be a valid spec
    return spec


def _with_sweep_metric(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with `sweep.metric` filled in from the recipe, or SpecError when a controlled sweep lacks one."""
    sweep = spec.sweep
    assert sweep is not None
    if sweep.metric is not None:
        return spec
    metric = default_sweep_metric(spec.recipe)
    if metric is None:
        if sweep.controlled:
            method = f"a {sweep.method} sweep" if sweep.method in ADAPTIVE_METHODS else "a sweep with parallel or early_terminate"
            raise SpecError([{"field": "sweep.metric", "message": f"{method} of a code run needs its objective: "
                              "metric: {name: val_loss, goal: minimize}"}])
        return spec
    return spec.model_copy(update={"sweep": sweep.model_copy(update={"metric": metric})})


def sample_points(sweep: SweepSpec) -> list[dict[str, Scalar]]:
    """Points that reach each parameter's extremes (each end of a range, each listed value), to validate them."""
    names = sorted(sweep.parameters)
    width = max(len(p.values) if p.values is not None else 2 for p in sweep.parameters.values())
    points = []
    for i in range(width):
        point: dict[str, Scalar] = {}
        for name in names:
            p = sweep.parameters[name]
            if p.values is not None:
                point[name] = p.values[i % len(p.values)]
            else:
                low, high = float(p.min or 0), float(p.max or 0)
                if p.distribution == "int_uniform":
                    point[name] = math.ceil(low) if i % 2 == 0 else math.floor(high)
                else:
                    point[name] = low if i % 2 == 0 else high
        points.append(point)
    return points


def _distributed_problems(spec: ExperimentSpec) -> list[dict[str, str]]:
    """Ranks that cannot fit their node, gangs without ranks, recipes asked to run distributed."""
    resources, distributed = spec.resources, spec.distributed
    if distributed is None:
        if resources.nodes > 1:
            return [{"field": "distributed", "message": f"a run on {resources.nodes} nodes needs "
                     "distributed: {processes_per_node: N} (its ranks are started by engine.distributed.run)"}]
        return []
    if spec.recipe is not None:
        return [{"field": "distributed", "message": "built-in recipes run in one process; "
                 "distributed training needs a code run (engine.distributed + DistributedDataParallel)"}]
    per_node = distributed.processes_per_node
    gpus, cpus = resources.node_gpus, resources.node_cpus
    where = "each node" if resources.nodes > 1 else "the worker"
    if gpus > 0 and per_node > gpus:
        return [{"field": "distributed.processes_per_node", "message": f"{per_node} processes but {gpus} "
                 f"GPU{'s' if gpus != 1 else ''} on {where}: one process per GPU at most"}]
    if gpus == 0 and per_node > cpus:
        field = "resources.cpus_per_node" if resources.nodes > 1 or resources.cpus_per_node else "resources.cpus"
        return [{"field": "distributed.processes_per_node", "message": f"{per_node} processes but {cpus} CPU "
                 f"slot{'s' if cpus != 1 else ''} on {where}: each process needs one (raise {field})"}]
    return []


def expand_points(spec: ExperimentSpec) -> list[dict[str, Scalar]]:
    """The sweep's points as {param: value}; [{}] without a sweep. Each point is validated."""
    if spec.sweep is None:
        return [{}]
    sweep = spec.sweep
    if sweep.controlled:
        return []  # the scheduler's sweep controller makes each trial as a slot frees
    names = sorted(sweep.parameters)
    if sweep.method == "grid":
        grid = itertools.product(*(sweep.parameters[n].values or [] for n in names))
        points = [dict(zip(names, combo, strict=True)) for combo in itertools.islice(grid, sweep.max_runs)]
    else:
        rng = random.Random(sweep.seed)  # noqa: S311 -- reproducible sampling, not security
        points = [{n: _sample(sweep.parameters[n], rng) for n in names} for _ in range(sweep.max_runs)]
    for point in points:
        apply_point(spec, point)
    return points


def apply_point(spec: ExperimentSpec, point: dict[str, Scalar]) -> ExperimentSpec:
    """The spec of one sweep point: recipe fields (dotted paths) or params take the point's values."""
    data = spec.model_dump(exclude={"sweep"})
    for name, value in point.items():
        if spec.recipe is not None:
            _set_path(data["recipe"], name.split("."), value, name)
        else:
            data["params"][name] = value
    try:
        result = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([{**_error(e), "field": f"sweep.parameters.{_dotted(e['loc'])}"} for e in exc.errors()]) from None
    unstorable = _unstorable(point, "sweep.parameters")
    if unstorable:
        raise SpecError(unstorable)
    return result


def flat_params(spec: ExperimentSpec) -> dict[str, Scalar]:
    """Params as one flat dict: recipe fields as dotted paths, or the code run's params."""
    if spec.recipe is None:
        return dict(spec.params)
    flat: dict[str, Scalar] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}{key}.", inner)
        else:
            flat[prefix[:-1]] = value

    walk("", spec.recipe.model_dump())
    flat.update(spec.params)
    return flat


def _sample(values: SweepValues, rng: random.Random) -> Scalar:
    if values.values is not None:
        return rng.choice(values.values)
    low, high = float(values.min or 0), float(values.max or 0)
    if values.distribution == "log_uniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if values.distribution == "int_uniform":
        return rng.randint(math.ceil(low), math.floor(high))
    return rng.uniform(low, high)


def _set_path(target: dict[str, Any], path: list[str], value: Scalar, name: str) -> None:
    for key in path[:-1]:
        inner = target.get(key)
        if not isinstance(inner, dict):
            raise SpecError([{"field": f"sweep.parameters.{name}", "message": "is not a recipe field"}])
        target = inner
    if path[-1] not in target:
        raise SpecError([{"field": f"sweep.parameters.{name}", "message": "is not a recipe field"}])
    target[path[-1]] = value


def _unstorable(value: Any, path: str) -> list[dict[str, str]]:
    """Values JSON and the databases cannot hold: NaN/Infinity and NUL characters (PostgreSQL refuses both)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [{"field": path or "spec", "message": "must be a finite number"}]
    if isinstance(value, str) and "\x00" in value:
        return [{"field": path or "spec", "message": "must not contain NUL characters"}]
    if isinstance(value, dict):
        return [e for key, inner in value.items() for e in _unstorable(inner, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [e for i, inner in enumerate(value) for e in _unstorable(inner, f"{path}.{i}")]
    return []


def _within_limits(check: Callable[[Any], None], spec: Any) -> None:
    try:
        check(spec)
    except SpecShapeError as exc:
        raise SpecError([{"field": "spec", "message": str(exc)}]) from None


_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
           "less_than_equal": ("le", "<=")}


def _error(error: Any) -> dict[str, str]:
    """One pydantic error as {field, message}, worded as the form, the API and the CLI all show it."""
    field = _dotted(error["loc"]) or "spec"
    kind, context = error["type"], error.get("ctx") or {}
    message = str(error["msg"])
    if kind == "extra_forbidden":
        message = "not a recipe field" if field.startswith("recipe.") else "unknown field"
    elif kind in _BOUNDS and _BOUNDS[kind][0] in context:
        bound = context[_BOUNDS[kind][0]]
        message = f"must be {_BOUNDS[kind][1]} {bound:g}" if isinstance(bound, float) else f"must be {_BOUNDS[kind][1]} {bound}"
    elif kind == "string_pattern_mismatch" and field.startswith("tags."):
        message = f"{error.get('input')!r} is not a tag: use letters, digits and _ . : - (at most 64 characters)"
    return {"field": field, "message": message}


def error_line(error: dict[str, str]) -> str:
    """An error as one line naming its subject ("recipe.optimizer.lr: must be > 0"): SpecError's text, the form's."""
    return f"{error['field']}: {error['message']}"


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)
