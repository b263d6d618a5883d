"""Run one attempt of a run: sandboxed subprocess, live results, cancel and limits.

The loop wakes every 0.25 s: it stores log lines and events at most ~1 s old, checks the
run's state in the database every second (a cancel stops the job within seconds), enforces
the wall-clock, output and disk limits, and samples system metrics every 10 s.

While the database is unreachable the job goes on: events stay in the job's file and log
lines in memory until it answers again. When the job has ended, its last results are stored
with retries for `db_patience` seconds; past that the attempt is left running with its folder
kept (`ResultsUnsaved`), and the worker's heartbeat later hands it back as lost.

Distributed runs (`distributed.processes_per_node`, `resources.nodes`) start the entrypoint through
`python -m engine.distributed.run` inside the same sandbox: one node's ranks share it (loopback is all
they need). Each node of a multi-node run is its own execution on its own worker (`node_rank`); its
ranks meet the other nodes' through a FileStore in the run folder that `worker.rendezvous_bridge`
copies to and from the attempt's key space, and reach them over `worker.gang_network` (nodes on one
host) or, only with KILN_DISTRIBUTED_HOST_NETWORK, the host's network. Node k > 0 logs its system
metrics under sys/node<k>/; log lines of every node go to the run's one log, each rank's prefixed
"[rank N]" by the launcher.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db.models import Max

from webapp.cluster.services import isolation_holds
from webapp.experiments.models import LogLine, Metric, Run, RunNode, RunState, Sweep
from webapp.experiments.results import logs_append, logs_append_next, metrics_log, system_next_step
from webapp.experiments.spec import SweepSpec
from webapp.experiments.superseding import metrics_supersede_after
from worker.canary import isolation_verdict, refusal_reason
from worker.cgroup import JobCgroup
from worker.cpus import CPU_GRANTS
from worker.diskusage import folder_usage, size_text
from worker.events import EventIngestor, EventReader
from worker.gang_network import GangNetwork, NetworkUnavailable, gang_network_possible, sweep_stale
from worker.identity import cgroup_prefix
from worker.job_env import job_environment
from worker.limits import JobLimits, limits_for_run
from worker.logpump import LogPump
from worker.outage import DatabaseGate
from worker.outcome import (
    CANCELLED,
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    TAKEN,
    Outcome,
    describe_exit,
    out_of_memory,
    refused_allocation,
)
from worker.process import JobProcess
from worker.rendezvous_bridge import RendezvousBridge, key_space
from worker.sandbox import JOB_CODE_DIRS, NETWORK_GANG, NETWORK_HOST, Sandbox, sandbox_for
from worker.shutdown import worker_stopping
from worker.sysmetrics import SystemSampler
from worker.workdir import attempt_folder, prepare_workdir

log = logging.getLogger(__name__)
ENGINE_PARENT = Path(__file__).resolve().parent.parent  # the folder holding the `engine` package
RECIPE_COMMAND = ("-m", "worker.recipes.run")
LAUNCHER = ("-m", "engine.distributed.run")
RENDEZVOUS_FILE = "rendezvous/store.json"  # in the run folder: the ranks' FileStore the worker bridges
TICK = 0.25
FLUSH_EVERY = 0.5
STATE_EVERY = 1.0
SYSTEM_EVERY = 10.0
DISK_EVERY = 1.0  # at least; a walk that takes longer is spaced out so it costs at most ~5% of a core
DB_PATIENCE = 30.0


def execute(run: Run, *, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits | None = None,
            db_patience: float = DB_PATIENCE, node_rank: int = 0) -> Outcome:
    """Run `run` (already claimed as running at `attempt`) to the end and say how it ended.

    `node_rank`: which node of a multi-node run this worker runs (0 for every other run).
    Raises ResultsUnsaved when the database stayed away `db_patience` seconds after the job ended.
    """
    limits = limits or limits_for_run(run.max_minutes, memory_gb=run.memory_limit_gb)
    return _Execution(run, attempt, worker_name, data_dir, limits, db_patience, node_rank).run()


def launcher_command(run: Run, attempt: int, node_rank: int, entrypoint: Path) -> list[str]:
    """`python -m engine.distributed.run ...` for one node of a distributed run (torchrun's flags)."""
    flags = [f"--nnodes={run.nodes}", f"--node-rank={node_rank}", f"--nproc-per-node={run.processes_per_node}",
             f"--rdzv-id=kiln-{run.id}-{attempt}"]
    if run.nodes == 1:
        flags.append("--standalone")
    return [sys.executable, "-u", *LAUNCHER, *flags, str(entrypoint)]


def sweep_rung(run: Run) -> str | None:
    """KILN_SWEEP_RUNG (`engine.track.rung`) for a trial of an ASHA promotion sweep that trains toward a rung:
    the job waits there for the controller to pause it. None for one promoted past the last rung (it trains
    to max_iter) and for every other run. Read after the earlier attempts' later points were superseded."""
    if run.sweep_id is None:
        return None
    row = Sweep.objects.filter(id=run.sweep_id).values_list("spec", "trial_attrs").first()
    if row is None:
        return None
    spec = SweepSpec.model_validate(row[0])
    early, metric = spec.early_terminate, spec.metric
    if early is None or not early.promotes or metric is None:
        return None
    # NOTE: imported here: the module imports Optuna, which only such trials need
    from scheduler.sweeps.promotion import rung_iterations, rung_toward

    rungs, rung = rung_iterations(early), rung_toward(dict((row[1] or {}).get(str(run.id), {})))
    if rung >= len(rungs):
        return None
    before = Metric.objects.filter(run_id=run.id, key=metric.name).count() if early.iteration == "epoch" else 0
    return json.dumps({"rung": rung, "metric": metric.name, "iteration": early.iteration, "at": rungs[rung],
                       "before": before})


class _Execution:
    def __init__(self, run: Run, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits,
                 db_patience: float, node_rank: int = 0):
        self.run_row, self.attempt, self.limits, self.data_dir = run, attempt, limits, data_dir
        self.db_patience = db_patience
        self.node_rank = node_rank
        self.gang = run.nodes > 1
        self.network: GangNetwork | None = None
        self.cgroup_name = f"{cgroup_prefix(worker_name)}{run.id}-{attempt}"  # only this instance's clean-up removes it
        self.run_dir = attempt_folder(data_dir, run.id, attempt, node_rank)
        last_seq = LogLine.objects.filter(run_id=run.id).aggregate(m=Max("seq"))["m"]
        first_seq = 0 if last_seq is None else last_seq + 1
        self.pump = LogPump(first_seq=first_seq, max_bytes=limits.log_bytes, max_lines=limits.log_lines,
                            kill_bytes=limits.output_kill_bytes)
        where = f" (node {node_rank} of {run.nodes})" if self.gang else ""
        self.pump.note(f"attempt {attempt} on worker {worker_name}{where}")
        self.db = DatabaseGate(self.pump.note)
        self.unstored: list[dict] = []  # events read from the job's file that the database has not taken yet
        self.disk_check_at = 0.0

    def run(self) -> Outcome:
        config = settings.CONFIG
        if self.run_row.kind == "code":  # user code runs only where the start-up canary proved isolation
            verdict = isolation_verdict(config)
            if not isolation_holds(verdict):
                if not config.allow_unisolated_code:
                    return self._finish_early(refusal_reason(verdict))
                self.pump.note(f"this job is NOT isolated ({verdict['summary']}); it runs because "
                               "KILN_ALLOW_UNISOLATED_CODE is set")
        sandbox = sandbox_for(self.run_row.id, self.run_dir, JOB_CODE_DIRS, data_dir=self.data_dir, bwrap=config.bwrap)
        if self.gang:
            sandbox_or_refusal = self._gang_sandbox(sandbox, config.distributed_host_network)
            if isinstance(sandbox_or_refusal, str):
                return self._finish_early(sandbox_or_refusal)
            sandbox = sandbox_or_refusal
        try:
            return self._run_in(sandbox)
        finally:
            if self.network is not None:
                self.network.remove()

    def _gang_sandbox(self, sandbox: Sandbox, host_network_allowed: bool) -> Sandbox | str:
        """The sandbox of one node of a multi-node run, or why it cannot run here.

        Nodes all on this host: a namespace joined only to the other nodes' (`worker.gang_network`).
        Otherwise the host's network, only where the operator set KILN_DISTRIBUTED_HOST_NETWORK."""
        if sandbox.bwrap is None:  # no sandbox network to begin with (the job is not isolated at all)
            return sandbox
        hosts = set(RunNode.objects.filter(run_id=self.run_row.id, attempt=self.attempt)
                    .values_list("worker__hostname", flat=True))
        if hosts == {os.uname().nodename} and gang_network_possible():
            sweep_stale()  # what a worker killed mid-run left behind
            network = GangNetwork.for_node(str(self.data_dir.resolve()), self.run_row.id, self.attempt,
                                           self.node_rank)
            try:
                network.create()
            except NetworkUnavailable as exc:
                if not host_network_allowed:
                    return f"could not make the network between the run's nodes: {exc}"
                self.pump.note(f"could not make the network between the run's nodes ({exc}): using the host's")
            else:
                self.network = network
                return replace(sandbox, network=NETWORK_GANG, netns=network.netns)
        if not host_network_allowed:
            return (f"this run's {self.run_row.nodes} nodes are on hosts {', '.join(sorted(h or '?' for h in hosts))}: "
                    "nodes on different hosts (or a worker that is not root with iproute2) need the host's network, which "
                    "the operator allows with KILN_DISTRIBUTED_HOST_NETWORK=1 (weaker isolation)")
        return replace(sandbox, network=NETWORK_HOST)

    def _run_in(self, sandbox: Sandbox) -> Outcome:
        try:
            workdir = prepare_workdir(self.run_row, self.attempt, self.data_dir, owner_uid=sandbox.uid,
                                      node_rank=self.node_rank)
            # the points earlier attempts logged past the resume point give way to this attempt's
            metrics_supersede_after(run_id=self.run_row.id, step=workdir.resume_step, attempt=self.attempt)
        except Exception as exc:  # missing code, a full disk: the run fails, the worker serves on
            log.exception("could not prepare run %s", self.run_row.id)
            return self._finish_early(f"could not prepare the run folder: {exc}")
        self.pump.note(sandbox.describe())
        if workdir.resume is not None:
            self.pump.note(f"resuming from checkpoint step {workdir.resume_step}")
        env = job_environment(
            run_id=self.run_row.id, attempt=self.attempt, run_dir=workdir.path, events=workdir.events,
            config=workdir.config, resume=workdir.resume, python_path=ENGINE_PARENT,
            gpu_indices=self.gpu_indices, python_bin=Path(sys.executable).parent,
        )
        rung = sweep_rung(self.run_row)
        if rung is not None:
            env["KILN_SWEEP_RUNG"] = rung
        program = [str(workdir.entrypoint)] if workdir.entrypoint else list(RECIPE_COMMAND)
        command = [sys.executable, "-u", *program]
        bridge = None
        if self.run_row.is_distributed and workdir.entrypoint:
            command = launcher_command(self.run_row, self.attempt, self.node_rank, workdir.entrypoint)
            self.pump.note(f"distributed: {self.run_row.processes_per_node} process(es) on each of "
                           f"{self.run_row.nodes} node(s), started by engine.distributed.run")
        if self.gang:
            store = workdir.path / RENDEZVOUS_FILE
            store.parent.mkdir(exist_ok=True)
            if sandbox.uid is not None:
                os.chown(store.parent, sandbox.uid, sandbox.uid)
            env["KILN_RENDEZVOUS_URL"] = f"file://{store}"
            env["UCX_TLS"] = "tcp,self"  # NOTE: nodes on one host have separate /dev/shm: shared memory would hang
            if self.network is not None:
                env["UCX_NET_DEVICES"] = self.network.device
            rendezvous_id = RunNode.objects.filter(run_id=self.run_row.id, attempt=self.attempt).values_list(
                "rendezvous_id", flat=True).first() or ""
            bridge = RendezvousBridge(store, key_space(settings.CONFIG.redis_url, self.run_row.id, self.attempt,
                                                       rendezvous_id))
        cgroup = JobCgroup.create(self.cgroup_name, max_pids=self.limits.processes,
                                  memory_bytes=self.limits.memory_bytes)
        memory_cgroup = cgroup is not None and cgroup.limits_memory
        self.pump.note(f"memory limit: {self.limits.memory_gb:.3g} GB "
                       f"({'memory cgroup' if memory_cgroup else 'RLIMIT_DATA: no memory cgroup here'})")
        if cgroup is None or not cgroup.limits_processes:
            self.pump.note("no pids cgroup here: the process limit is RLIMIT_NPROC only")
        cpus = CPU_GRANTS.grant(self.cgroup_name, self.run_row.cpus)  # resources.cpus, pinned
        if cpus:
            self.pump.note(f"CPUs: {','.join(map(str, cpus))} (resources.cpus: {self.run_row.cpus})")
        try:
            if bridge is not None:
                bridge.start()
            try:
                job = JobProcess(sandbox.argv(command), cwd=workdir.path, env=env,
                                 rlimits=self.limits.rlimits(memory_cgroup=memory_cgroup), cgroup=cgroup,
                                 cpus=cpus)
            except OSError as exc:
                if cgroup:
                    cgroup.remove()
                return self._finish_early(f"could not start the job: {exc}")
            assert job.popen.stdout is not None and job.popen.stderr is not None
            self.pump.attach("stdout", job.popen.stdout)
            self.pump.attach("stderr", job.popen.stderr)
            ingestor = EventIngestor(self.run_row.id, workdir.path, self.pump.note, attempt=self.attempt)
            outcome = self._supervise(job, EventReader(workdir.events), ingestor, sandboxed=sandbox.bwrap is not None)
            shutil.rmtree(workdir.path, ignore_errors=True)  # not reached when results are unsaved: they stay on disk
            return outcome
        finally:
            CPU_GRANTS.release(self.cgroup_name)
            if bridge is not None and bridge.started:
                bridge.stop()
                if self.node_rank == 0:
                    bridge.clear()

    def _supervise(self, job: JobProcess, reader: EventReader, ingestor: EventIngestor, *, sandboxed: bool) -> Outcome:
        try:
            code, stopped = self._watch(job, reader, ingestor)
        except BaseException:
            job.stop()  # a bug in the loop must not leave the job running unwatched
            job.reap_stragglers()
            raise
        hit_process_limit = job.cgroup is not None and job.cgroup.hit_process_limit()
        memory = self._memory_verdict(job.cgroup)  # read before the cgroup goes
        job.reap_stragglers()
        self.pump.join(timeout=2.0)
        if stopped is None:
            stopped = self._ended(code, hit_process_limit, memory, sandboxed)
        if stopped.state == CANCELLED:
            self.pump.note("cancelled: the job's processes were stopped")
        elif stopped.state == INTERRUPTED:
            self.pump.note("the worker is stopping: this attempt ends here and the run goes back to the queue")
        elif stopped.state == FAILED and stopped.reason.startswith(("stopped: ", "out of memory: ")):
            self.pump.note(stopped.reason)  # a limit it broke: said where the user reads the output too
        for _ in range(2):  # the second round stores the note that the database came back
            self.db.insist(lambda: self._flush(reader, ingestor, final=True), patience=self.db_patience,
                           what=f"run {self.run_row.id} attempt {self.attempt}: storing its last results")
            if not self.pump.pending():
                break
        return stopped

    def _watch(self, job: JobProcess, reader: EventReader, ingestor: EventIngestor) -> tuple[int, Outcome | None]:
        """Until the job exits or must stop: (exit status, why it was stopped or None)."""
        started = time.monotonic()
        prefix = f"sys/node{self.node_rank}/" if self.node_rank else "sys/"
        sampler: SystemSampler | None = None  # made once the run's system sequence is read (it continues it)
        last_flush = last_state = 0.0
        last_system = started
        while (code := job.poll()) is None:
            time.sleep(TICK)
            if worker_stopping():
                code = job.stop()
                return code, Outcome(INTERRUPTED, exit_code=code, reason="its worker was stopped while it ran")
            now = time.monotonic()
            if now - last_flush >= FLUSH_EVERY or self.pump.pending() > 5000:
                self.db.attempt(lambda: self._flush(reader, ingestor))
                last_flush = now
            if now - last_system >= SYSTEM_EVERY:
                if sampler is None:
                    read, first_step = self.db.attempt(functools.partial(system_next_step, self.run_row.id))
                    if read and first_step is not None:
                        sampler = SystemSampler(job.pids, self.gpu_indices, prefix=prefix, first_step=first_step)
                if sampler is not None:  # a sample the database cannot take now is dropped
                    self.db.attempt(functools.partial(metrics_log, run_id=self.run_row.id, points=sampler.sample(),
                                                      attempt=self.attempt))
                last_system = now
            if now - last_state >= STATE_EVERY:
                last_state = now
                stopped = self.db.attempt(self._taken_away)[1] or self._limit_reached(now - started)
                if stopped is not None:
                    code = job.stop()
                    return code, replace(stopped, exit_code=code)
        return code, None

    def _taken_away(self) -> Outcome | None:
        """Cancelled, deleted, or no longer this attempt's (per the database), or None."""
        row = Run.objects.filter(id=self.run_row.id).values_list("state", "attempt").first()
        if row is None:
            return Outcome(TAKEN, reason="the run was deleted")
        if row != (RunState.RUNNING, self.attempt):
            return Outcome(CANCELLED if row[0] == RunState.CANCELLED else TAKEN, reason=f"run is now {row[0]}")
        return None

    def _limit_reached(self, elapsed: float) -> Outcome | None:
        """Which of the job's limits it broke, or None (checked here, without the database)."""
        if elapsed > self.limits.wall_seconds:
            minutes = self.limits.wall_seconds / 60
            return Outcome(FAILED, reason=f"stopped: exceeded its time limit of {minutes:g} minutes")
        if self.pump.flooded:
            mb = self.limits.output_kill_bytes // 1_000_000
            return Outcome(FAILED, reason=f"stopped: printed more than {mb} MB of output")
        now = time.monotonic()
        if now >= self.disk_check_at:
            usage = folder_usage(self.run_dir, stop_bytes=self.limits.disk_bytes, stop_files=self.limits.disk_files)
            self.disk_check_at = now + max(DISK_EVERY, 20 * (time.monotonic() - now))
            if usage.bytes > self.limits.disk_bytes:
                return Outcome(FAILED, reason=f"stopped: disk quota exceeded: wrote {size_text(usage.bytes)} of "
                                              f"{size_text(self.limits.disk_bytes)} allowed")
            if usage.files > self.limits.disk_files:
                return Outcome(FAILED, reason=f"stopped: disk quota exceeded: created more than "
                                              f"{self.limits.disk_files:,} files")
        return None

    def _memory_verdict(self, cgroup: JobCgroup | None) -> str | None:
        """"out of memory: used X of Y GB" if the memory cgroup's limit ended a process, "" if it did not,
        None without a memory cgroup (then only the job's own last error can tell)."""
        if cgroup is None or not cgroup.limits_memory:
            return None
        if not cgroup.out_of_memory():
            return ""
        return out_of_memory(peak_bytes=cgroup.memory_peak(), limit_bytes=self.limits.memory_bytes)

    def _ended(self, code: int, hit_process_limit: bool, memory: str | None, sandboxed: bool) -> Outcome:
        if code == 0:
            return Outcome(SUCCEEDED, exit_code=0)
        if memory is None:
            memory = refused_allocation(self.pump.last_error, limit_bytes=self.limits.memory_bytes)
        if memory:
            return Outcome(FAILED, exit_code=code, reason=memory)
        reason = describe_exit(code, sandboxed=sandboxed)
        if hit_process_limit:
            reason += f"; it reached its limit of {self.limits.processes} processes"
        if self.pump.last_error:
            reason += f": {self.pump.last_error}"
        return Outcome(FAILED, exit_code=code, reason=reason)

    def _flush(self, reader: EventReader, ingestor: EventIngestor, *, final: bool = False) -> None:
        """Store new events and log lines; what the database did not take is offered again next time."""
        while True:
            problems: list[str] = []
            if not self.unstored:  # NOTE: nothing new is read until the last batch is stored: memory stays bounded
                self.unstored, problems = reader.read()
                for problem in problems:
                    self.pump.note(problem)
            more = bool(self.unstored or problems)
            if self.unstored:
                ingestor.ingest(self.unstored)  # idempotent, so a batch that failed half-way is simply sent again
                self.unstored = []
            if not final or not more:
                break
        lines = self.pump.take()
        if lines:
            try:
                self._append_logs(lines)
            except BaseException:
                self.pump.put_back(lines)
                raise

    def _append_logs(self, lines: list[tuple[int, str, str]]) -> None:
        """Nodes of a gang share the run's log: their lines take the next free seqs (their own would collide)."""
        if self.gang:
            logs_append_next(run_id=self.run_row.id, lines=lines)
        else:
            logs_append(run_id=self.run_row.id, lines=lines)

    @property
    def gpu_indices(self) -> list[int]:
        if self.gang:
            return list(RunNode.objects.filter(run_id=self.run_row.id, attempt=self.attempt, node_rank=self.node_rank)
                        .values_list("gpu_indices", flat=True).first() or [])
        return list(self.run_row.gpu_indices)

    def _finish_early(self, reason: str) -> Outcome:
        self.pump.note(reason)
        lines = self.pump.take()
        self.db.insist(lambda: self._append_logs(lines), patience=self.db_patience,
                       what=f"run {self.run_row.id} attempt {self.attempt}: storing its log")
        return Outcome(FAILED, reason=reason)
