from __future__ import annotations

from django.conf import settings
from django.db import models


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    LOST = "lost", "Lost"
    # a sweep trial its pruner ended at a rung: a good outcome (not a failure), its metrics and checkpoints kept
    STOPPED_EARLY = "stopped_early", "Stopped early"
    # a sweep trial ASHA's promotion variant halted at a rung: not active, its metrics and checkpoints kept;
    # later promoted (re-queued, resuming from its checkpoint) or, when the sweep ends, stopped early
    PAUSED = "paused", "Paused"


ACTIVE_STATES = (RunState.QUEUED, RunState.SCHEDULED, RunState.RUNNING, RunState.LOST)
FINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.STOPPED_EARLY)
STATE_LENGTH = 16  # the longest state name, stopped_early, fits


def run_memory_gb(memory_gb: float | None) -> float:
    """A run's host memory in GB: its own, or KILN_RUN_MEMORY_GB when unset (None; 0 in rows from before the field)."""
    return memory_gb or settings.CONFIG.run_memory_gb


def run_cpus(cpus: object) -> int:
    """A run's CPU slots: `resources.cpus` of its stored spec (no column), 1 in specs from before the field."""
    return cpus if isinstance(cpus, int) and not isinstance(cpus, bool) and cpus > 0 else 1


class SweepState(models.TextChoices):
    RUNNING = "running", "Running"  # making trials as slots free (a controlled sweep) or its runs still going
    PAUSED = "paused", "Paused"  # no new trials; those running go on (and are still stopped early)
    STOPPED = "stopped", "Stopped"  # stopped by its user: no new trials, queued ones cancelled
    FINISHED = "finished", "Finished"  # max_runs trials made and all of them ended


class Sweep(models.Model):
    """A search over params. Grid/random: one submitted spec that became one run per point. Controlled
    (bayes, cmaes, or with `parallel`/`early_terminate`): the scheduler's sweep controller makes one run
    (a trial) per point as slots free, from `template`; the runs are the trials (the source of truth)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sweeps")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sweeps")
    name = models.CharField(max_length=200)
    spec = models.JSONField(help_text="The sweep block as submitted (with its metric filled in).")
    created_at = models.DateTimeField(auto_now_add=True)
    controlled = models.BooleanField(default=False, help_text="Trials made by the scheduler's sweep controller.")
    state = models.CharField(max_length=10, choices=SweepState.choices, default=SweepState.RUNNING, db_index=True)
    max_runs = models.PositiveIntegerField(default=0, help_text="Trials to make in all (a controlled sweep; raisable).")
    template = models.JSONField(default=dict, blank=True,
                                help_text="A controlled sweep's trial template: {spec, code_path, code_sha256, entrypoint}.")
    trial_attrs = models.JSONField(default=dict, blank=True,
                                   help_text="The pruner's bookkeeping per trial (run id -> rung values), kept across restarts.")
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class LiveRunManager(models.Manager["Run"]):
    """`Run.objects`: runs that are not soft-deleted. Every Kiln page, API, selector, count and the scheduler read this."""

    def get_queryset(self) -> models.QuerySet[Run]:
        return super().get_queryset().filter(deleted_at__isnull=True)


class Run(models.Model):
    """One execution of a submitted spec. `spec` and the stored code never change after submit.

    A run the MLflow API deleted keeps its row with `deleted_at` set (MLflow's lifecycle_stage "deleted"):
    `Run.objects` leaves it out, `Run.all_objects` (the MLflow views, the purge) sees it, and
    `webapp.experiments.soft_delete` restores it or purges it after KILN_DELETED_RETENTION_DAYS.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    cloned_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    number = models.PositiveIntegerField(help_text="Sequential within the project: run #1, #2, ...")
    name = models.CharField(max_length=200)
    # "external": logged by an outside client (the MLflow API, TensorBoard's writer, `kiln import`); never scheduled
    kind = models.CharField(max_length=10, choices=[("code", "Code"), ("recipe", "Recipe"), ("external", "External")])
    spec = models.JSONField(help_text="The validated, normalised spec (immutable).")
    params = models.JSONField(default=dict, help_text="Flat params, for filtering and comparing.")
    code_path = models.CharField(max_length=500, blank=True, help_text="Stored code (file or zip) in artifact storage.")
    code_sha256 = models.CharField(max_length=64, blank=True)
    entrypoint = models.CharField(max_length=255, blank=True)
    gpus = models.PositiveSmallIntegerField(default=0, help_text="GPUs on each node (a one-worker run: all of them).")
    nodes = models.PositiveSmallIntegerField(default=1, help_text="Workers the run spans (resources.nodes): a gang.")
    processes_per_node = models.PositiveSmallIntegerField(
        default=1, help_text="Ranks on each node (distributed.processes_per_node), started by engine.distributed.run.")
    max_minutes = models.PositiveIntegerField(default=60)
    memory_gb = models.FloatField(default=0, help_text="Host memory the run may use (resources.memory_gb; 0: KILN_RUN_MEMORY_GB).")
    priority = models.SmallIntegerField(default=0)

    state = models.CharField(max_length=STATE_LENGTH, choices=RunState.choices, default=RunState.QUEUED, db_index=True)
    pending_reason = models.CharField(max_length=300, blank=True)
    failure_reason = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveSmallIntegerField(default=3)
    worker = models.ForeignKey("cluster.Worker", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    gpu_indices = models.JSONField(default=list, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    progress = models.JSONField(default=dict, blank=True, help_text="e.g. {epoch, epochs, eta_seconds}")

    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Soft-deleted through the MLflow API (restorable).")
    metrics_compacted_at = models.DateTimeField(
        null=True, blank=True, help_text="When `kiln compact-metrics` cut its raw points down to what its rollups keep.")

    all_objects = models.Manager()  # soft-deleted rows too
    objects = LiveRunManager()

    class Meta:
        ordering = ["-number"]
        default_manager_name = "objects"
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="unique_run_number_per_project")]
        indexes = [
            models.Index(fields=["project", "-number"], name="run_project_number"),
            # the run list's page and count (newest first): an index-only scan of the project's live runs
            models.Index(fields=["project", "id"], condition=models.Q(deleted_at__isnull=True), name="run_project_live_id"),
            models.Index(fields=["state", "priority", "created_at"], name="run_queue"),
            # the purge's lookup; live rows (nearly all) stay out of it
            models.Index(fields=["deleted_at"], condition=models.Q(deleted_at__isnull=False), name="run_deleted_at"),
        ]

    def __str__(self) -> str:
        return f"{self.project}#{self.number}"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def memory_limit_gb(self) -> float:
        return run_memory_gb(self.memory_gb)

    @property
    def cpus(self) -> int:
        """CPU slots on each node (a one-worker run: all of them)."""
        resources = self.spec.get("resources") if isinstance(self.spec, dict) else None
        return run_cpus(resources.get("cpus") if isinstance(resources, dict) else None)

    @property
    def is_distributed(self) -> bool:
        """Started through engine.distributed.run: several ranks, or several nodes."""
        return self.nodes > 1 or self.processes_per_node > 1


class NodeState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"


class RunNode(models.Model):
    """One node of a multi-node run's attempt: the worker that runs ranks node_rank*P .. node_rank*P+P-1.

    Written with the scheduler's claim (all nodes in one transaction); each worker moves only its own
    row, by compare-and-swap on (run, attempt, node_rank, state). The run's own state stays in `Run`.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="nodes_of")
    attempt = models.PositiveSmallIntegerField()
    node_rank = models.PositiveSmallIntegerField()
    worker = models.ForeignKey("cluster.Worker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worker_name = models.CharField(max_length=200, help_text="Kept when the worker row goes.")
    gpu_indices = models.JSONField(default=list, blank=True)
    rendezvous_id = models.CharField(max_length=32, blank=True,
                                     help_text="Random per attempt: names its rendezvous keys (never a stale one).")
    state = models.CharField(max_length=10, choices=NodeState.choices, default=NodeState.SCHEDULED)
    exit_code = models.IntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "node_rank"]
        constraints = [models.UniqueConstraint(fields=["run", "attempt", "node_rank"], name="unique_run_node")]
        indexes = [models.Index(fields=["worker", "state"], name="run_node_worker_state")]

    def __str__(self) -> str:
        return f"{self.run} attempt {self.attempt} node {self.node_rank}"


class RendezvousKey(models.Model):
    """A key of a distributed attempt's rendezvous store, bridged between its nodes' local stores.

    Used when the installation has no Redis (with Redis the bridge uses `kiln:rdzv:<run>:<attempt>`).
    Keys are written once (first writer wins) and go with their run.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)
    attempt = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=300)
    value = models.TextField(help_text="Base64 of the value, as the ranks' FileStore keeps it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "attempt", "key"], name="unique_rendezvous_key")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.attempt}/{self.key}"


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=250, db_index=True)
    value = models.TextField(blank=True, help_text="A tag's value (MLflow tags are key=value); empty for a plain label.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="unique_tag_per_run")]

    def __str__(self) -> str:
        return self.name


class RunEvent(models.Model):
    """One recorded state transition of a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    from_state = models.CharField(max_length=STATE_LENGTH, choices=RunState.choices, blank=True)
    to_state = models.CharField(max_length=STATE_LENGTH, choices=RunState.choices)
    attempt = models.PositiveSmallIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.run}: {self.from_state or '-'} -> {self.to_state}"


class Metric(models.Model):
    """One logged value. (run, key, step) is unique, so a redelivered batch never duplicates."""

    # NOTE: no index of its own: the unique (run, key, step) index serves run lookups too. No
    # database-level FK either: its per-row check at commit halved ingestion. `metrics_log` holds the
    # run's row lock while it inserts, and a trigger on the run table deletes a deleted run's points
    # (migration 0004), so no point outlives its run; the ORM relation and its CASCADE stay.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="metrics", db_index=False, db_constraint=False
    )
    key = models.CharField(max_length=200)
    step = models.BigIntegerField()
    value = models.FloatField(null=True, help_text="NULL stands for NaN (SQLite cannot store NaN; JSON cannot carry it).")
    wall_time = models.FloatField(help_text="Seconds since the epoch, as logged.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key", "step"], name="unique_metric_point")]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value}"


class SupersededMetric(models.Model):
    """A point an earlier attempt logged past the step a later attempt resumed from: kept for audit, never charted.

    Moved here from `Metric` by `metrics_supersede_after` (or stored here directly when a lost
    attempt's results arrive late); no database-level FK, the run's delete trigger covers it too.
    """

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="superseded_metrics", db_index=False, db_constraint=False
    )
    key = models.CharField(max_length=200)
    step = models.BigIntegerField()
    value = models.FloatField(null=True, help_text="NULL stands for NaN, as in Metric.")
    wall_time = models.FloatField()
    superseded_by = models.PositiveSmallIntegerField(help_text="The attempt whose resume superseded the point.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key", "step", "superseded_by"], name="unique_superseded_point")]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value} (superseded by attempt {self.superseded_by})"


class ReplacedMetric(models.Model):
    """A value an outside client logged at a step where it then logged another: MLflow keeps every value logged.

    `metrics_log_latest` keeps the latest value at a step in `Metric` (what Kiln charts and summarises)
    and moves the one it replaces here, so MLflow's get-history returns all of them; never charted.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="replaced_metrics", db_index=False)
    key = models.CharField(max_length=200)
    step = models.BigIntegerField()
    value = models.FloatField(null=True, help_text="NULL stands for NaN, as in Metric.")
    wall_time = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step"], name="replaced_metric_run_key_step")]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value} (replaced)"


class MetricResume(models.Model):
    """Where an attempt's series starts: points earlier attempts logged past `after_step` were superseded.

    One row per attempt (so superseding happens once); `after_step` NULL means from before step 0 (no checkpoint).
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_resumes", db_index=False)
    attempt = models.PositiveSmallIntegerField()
    after_step = models.BigIntegerField(null=True, help_text="The checkpoint step resumed from; NULL: none.")
    superseded = models.BigIntegerField(default=0, help_text="Points moved to SupersededMetric at the start.")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "attempt"], name="unique_metric_resume")]

    def __str__(self) -> str:
        return f"{self.run} attempt {self.attempt} after step {self.after_step}"


class MetricSummary(models.Model):
    """Per-(run, key) summary for run tables and sorting."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="summaries")
    key = models.CharField(max_length=200)
    last = models.FloatField(null=True, help_text="NULL when the last value was NaN.")
    last_step = models.BigIntegerField()
    min = models.FloatField(null=True, help_text="Over the non-NaN values; NULL when there is none.")
    max = models.FloatField(null=True)
    count = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="unique_summary_per_key")]
        indexes = [models.Index(fields=["key", "last"], name="summary_key_last")]

    def __str__(self) -> str:
        return f"{self.run} {self.key}"


class MetricRollup(models.Model):
    """A slice of the min/max rollup of one (run, key): CHUNK_BUCKETS buckets from `chunk * CHUNK_BUCKETS` on.

    See `webapp.experiments.rollup`. Written with the points and their summary in one transaction,
    so the rollup covers exactly `MetricSummary.count` points; charts read it instead of the points.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_rollups", db_index=False)
    key = models.CharField(max_length=200)
    chunk = models.IntegerField()
    buckets = models.BinaryField(help_text="Packed buckets: rollup.BUCKET records, little-endian.")
    count = models.BigIntegerField(help_text="Points of the series when this chunk was written; the last chunk's is current.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key", "chunk"], name="unique_rollup_chunk")]

    def __str__(self) -> str:
        return f"{self.run} {self.key} #{self.chunk}"


class LogLine(models.Model):
    """A line of a run's stdout/stderr; `seq` is the offset clients tail from."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.BigIntegerField()
    stream = models.CharField(max_length=6, default="stdout")
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_log_seq")]
        ordering = ["seq"]

    def __str__(self) -> str:
        return self.text[:80]


class Artifact(models.Model):
    """A file a run produced (or its checkpoint), kept in Django storage."""

    KIND_CHOICES = [("artifact", "Artifact"), ("checkpoint", "Checkpoint"), ("model", "Model")]

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default="artifact")
    step = models.BigIntegerField(null=True, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_path = models.CharField(max_length=500)
    # a model's {"model", "format", "signature": {"inputs", "outputs"}}; {} for other kinds
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="unique_artifact_name")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name
