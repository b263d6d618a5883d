"""Run one attempt of a run: sandboxed subprocess, live results, cancel and time limit.

The loop wakes every 0.25 s: it stores log lines and events at most ~1 s old, checks the
run's state in the database every second (a cancel stops the job within seconds), enforces
the wall-clock and output limits, and samples system metrics every 10 s.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from django.db.models import Max

from webapp.experiments.models import LogLine, Run, RunState
from webapp.experiments.results import logs_append, metrics_log
from worker.cgroup import PidsCgroup
from worker.events import EventIngestor, EventReader
from worker.job_env import job_environment
from worker.limits import JobLimits, limits_for_run
from worker.logpump import LogPump
from worker.outcome import CANCELLED, FAILED, SUCCEEDED, TAKEN, Outcome, describe_exit
from worker.process import JobProcess
from worker.sandbox import sandbox_for
from worker.sysmetrics import SystemSampler
from worker.workdir import prepare_workdir

log = logging.getLogger(__name__)
ENGINE_PARENT = Path(__file__).resolve().parent.parent  # the folder holding the `engine` package
# What a job may import from this installation: the engine, and the built-in recipes (which
# import only the engine; `worker/__init__.py` is a docstring).
JOB_CODE_DIRS = (ENGINE_PARENT / "engine", ENGINE_PARENT / "worker")
RECIPE_COMMAND = ("-m", "worker.recipes.run")
TICK = 0.25
FLUSH_EVERY = 0.5
STATE_EVERY = 1.0
SYSTEM_EVERY = 10.0


def execute(run: Run, *, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits | None = None) -> Outcome:
    """Run `run` (already claimed as running at `attempt`) to the end and say how it ended."""
    return _Execution(run, attempt, worker_name, data_dir, limits or limits_for_run(run.max_minutes)).run()


class _Execution:
    def __init__(self, run: Run, attempt: int, worker_name: str, data_dir: Path, limits: JobLimits):
        self.run_row, self.attempt, self.limits, self.data_dir = run, attempt, limits, data_dir
        self.cgroup_name = f"kiln-{worker_name}-{run.id}-{attempt}"
        self.run_dir = data_dir / "runs" / str(run.id) / str(attempt)
        first_seq = (LogLine.objects.filter(run_id=run.id).aggregate(m=Max("seq"))["m"] or -1) + 1
        self.pump = LogPump(first_seq=first_seq, max_bytes=limits.log_bytes, max_lines=limits.log_lines,
                            kill_bytes=limits.output_kill_bytes)
        self.pump.note(f"attempt {attempt} on worker {worker_name}")

    def run(self) -> Outcome:
        sandbox = sandbox_for(self.run_row.id, self.run_dir, JOB_CODE_DIRS)
        try:
            workdir = prepare_workdir(self.run_row, self.attempt, self.data_dir, owner_uid=sandbox.uid)
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
        cgroup = PidsCgroup.create(self.cgroup_name, self.limits.processes)
        if cgroup is None:
            self.pump.note("no pids cgroup here: the process limit is RLIMIT_NPROC only")
        try:
            job = JobProcess(sandbox.argv(command), cwd=workdir.path, env=env, rlimits=self.limits.rlimits(),
                             cgroup=cgroup)
        except OSError as exc:
            if cgroup:
                cgroup.remove()
            return self._finish_early(f"could not start the job: {exc}")
        assert job.popen.stdout is not None and job.popen.stderr is not None
        self.pump.attach("stdout", job.popen.stdout)
        self.pump.attach("stderr", job.popen.stderr)
        ingestor = EventIngestor(self.run_row.id, workdir.path, self.pump.note)
        outcome = self._supervise(job, EventReader(workdir.events), ingestor, sandboxed=sandbox.bwrap is not None)
        shutil.rmtree(workdir.path, ignore_errors=True)
        return outcome

    def _supervise(self, job: JobProcess, reader: EventReader, ingestor: EventIngestor, *, sandboxed: bool) -> Outcome:
        started = time.monotonic()
        sampler = SystemSampler(job.pids, list(self.run_row.gpu_indices))
        last_flush = last_state = 0.0
        last_system = started
        stopped: Outcome | None = None
        while (code := job.poll()) is None:
            time.sleep(TICK)
            now = time.monotonic()
            if now - last_flush >= FLUSH_EVERY or self.pump.pending() > 5000:
                self._flush(reader, ingestor)
                last_flush = now
            if now - last_system >= SYSTEM_EVERY:
                metrics_log(run_id=self.run_row.id, points=sampler.sample())
                last_system = now
            if now - last_state >= STATE_EVERY:
                last_state = now
                stopped = self._stop_reason(now - started)
                if stopped is not None:
                    code = job.stop()
                    stopped = replace(stopped, exit_code=code)
                    break
        hit_process_limit = job.cgroup is not None and job.cgroup.hit_limit()
        job.reap_stragglers()
        self.pump.join(timeout=2.0)
        if stopped is None:
            stopped = self._ended(code, hit_process_limit, sandboxed)
        if stopped.state == CANCELLED:
            self.pump.note("cancelled: the job's processes were stopped")
        self._flush(reader, ingestor, final=True)
        return stopped

    def _stop_reason(self, elapsed: float) -> Outcome | None:
        """Why the job must stop now, or None."""
        row = Run.objects.filter(id=self.run_row.id).values_list("state", "attempt").first()
        if row is None:
            return Outcome(TAKEN, reason="the run was deleted")
        if row != (RunState.RUNNING, self.attempt):
            return Outcome(CANCELLED if row[0] == RunState.CANCELLED else TAKEN, reason=f"run is now {row[0]}")
        if elapsed > self.limits.wall_seconds:
            minutes = self.limits.wall_seconds / 60
            return Outcome(FAILED, reason=f"stopped: exceeded its time limit of {minutes:g} minutes")
        if self.pump.flooded:
            mb = self.limits.output_kill_bytes // 1_000_000
            return Outcome(FAILED, reason=f"stopped: printed more than {mb} MB of output")
        return None

    def _ended(self, code: int, hit_process_limit: bool, sandboxed: bool) -> Outcome:
        if code == 0:
            return Outcome(SUCCEEDED, exit_code=0)
        reason = describe_exit(code, sandboxed=sandboxed)
        if hit_process_limit:
            reason += f"; it reached its limit of {self.limits.processes} processes"
        if self.pump.last_error:
            reason += f": {self.pump.last_error}"
        return Outcome(FAILED, exit_code=code, reason=reason)

    def _flush(self, reader: EventReader, ingestor: EventIngestor, *, final: bool = False) -> None:
        while True:
            events, problems = reader.read()
            for problem in problems:
                self.pump.note(problem)
            if events:
                ingestor.ingest(events)
            if not final or not (events or problems):
                break
        lines = self.pump.take()
        if lines:
            logs_append(run_id=self.run_row.id, lines=lines)

    def _finish_early(self, reason: str) -> Outcome:
        self.pump.note(reason)
        logs_append(run_id=self.run_row.id, lines=self.pump.take())
        return Outcome(FAILED, reason=reason)
