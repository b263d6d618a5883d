"""Run one attempt of a run: sandboxed subprocess, live results, cancel and limits.

The loop wakes every 0.25 s: it stores log lines and events at most ~1 s old, checks the
run's state in the database every second (a cancel stops the job within seconds), enforces
the wall-clock, output and disk limits, and samples system metrics every 10 s.

While the database is unreachable the job goes on: events stay in the job's file and log
lines in memory until it answers again. When the job has ended, its last results are stored
with retries for `db_patience` seconds; past that the attempt is left running with its folder
kept (`ResultsUnsaved`), and the worker's heartbeat later hands it back as lost.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db.models import Max

from webapp.cluster.services import isolation_holds
from webapp.experiments.models import LogLine, Run, RunState
from webapp.experiments.results import logs_append, metrics_log
from webapp.experiments.superseding import metrics_supersede_after
from worker.canary import isolation_verdict, refusal_reason
from worker.cgroup import JobCgroup
from worker.cpus import CPU_GRANTS
from worker.diskusage import folder_usage, size_text
from worker.events import EventIngestor, EventReader
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
from worker.sandbox import JOB_CODE_DIRS, sandbox_for
from worker.shutdown import worker_stopping
from worker.sysmetrics import SystemSampler
from worker.workdir import prepare_workdir

log = logging.getLogger(__name__)
ENGINE_PARENT = Path(__file__).resolve().parent.parent  # the folder holding the `engine` package
RECIPE_COMMAND = ("-m", "worker.recipes.run")
TICK = 0.25
FLUSH_EVERY = 0.5
STATE_EVERY = 1.0
SYSTEM_EVERY = 10.0
DISK_EVERY = 1.0  # at least; a walk that takes longer is spaced out so it costs at most ~5% of a core
DB_PATIENCE = 30.0


def execute(run: Run, *, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits | None = None,
            db_patience: float = DB_PATIENCE) -> Outcome:
    """Run `run` (already claimed as running at `attempt`) to the end and say how it ended.

    Raises ResultsUnsaved when the database stayed away `db_patience` seconds after the job ended.
    """
    limits = limits or limits_for_run(run.max_minutes, memory_gb=run.memory_limit_gb)
    return _Execution(run, attempt, worker_name, data_dir, limits, db_patience).run()


class _Execution:
    def __init__(self, run: Run, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits,
                 db_patience: float):
        self.run_row, self.attempt, self.limits, self.data_dir = run, attempt, limits, data_dir
        self.db_patience = db_patience
        self.cgroup_name = f"{cgroup_prefix(worker_name)}{run.id}-{attempt}"  # only this instance's clean-up removes it
        self.run_dir = data_dir / "runs" / str(run.id) / str(attempt)
        first_seq = (LogLine.objects.filter(run_id=run.id).aggregate(m=Max("seq"))["m"] or -1) + 1
        self.pump = LogPump(first_seq=first_seq, max_bytes=limits.log_bytes, max_lines=limits.log_lines,
                            kill_bytes=limits.output_kill_bytes)
        self.pump.note(f"attempt {attempt} on worker {worker_name}")
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
        try:
            workdir = prepare_workdir(self.run_row, self.attempt, self.data_dir, owner_uid=sandbox.uid)
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
            gpu_indices=list(self.run_row.gpu_indices), python_bin=Path(sys.executable).parent,
        )
        program = [str(workdir.entrypoint)] if workdir.entrypoint else list(RECIPE_COMMAND)
        command = [sys.executable, "-u", *program]
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
        sampler = SystemSampler(job.pids, list(self.run_row.gpu_indices))
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
                # a sample the database cannot take now is dropped
                self.db.attempt(functools.partial(metrics_log, run_id=self.run_row.id, points=sampler.sample(), attempt=self.attempt))
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
                logs_append(run_id=self.run_row.id, lines=lines)
            except BaseException:
                self.pump.put_back(lines)
                raise

    def _finish_early(self, reason: str) -> Outcome:
        self.pump.note(reason)
        lines = self.pump.take()
        self.db.insist(lambda: logs_append(run_id=self.run_row.id, lines=lines), patience=self.db_patience,
                       what=f"run {self.run_row.id} attempt {self.attempt}: storing its log")
        return Outcome(FAILED, reason=reason)
