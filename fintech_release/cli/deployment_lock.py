"""One deployment of an environment at a time, for whole runs; never an environment locked by a dead process.

A command that changes an environment (deploy, rollback, teardown) first takes the environment's
lock: an exclusive `flock` on `$DAGSTER_HOME/locks/deployment-<env>.lock`, which the kernel
releases when its process ends however it ends (SIGKILL included). Holding it, the command waits
until no other run changes the environment: runs tagged `fintech-release/deployment=<env>` that
started and have not ended (launched by the UI or a daemon, or executed by another command), and
runs holding the environment's `deploy-<env>` pool. A run whose process is gone is marked failed
and its pool slots freed, so it never holds the environment again; a run that ended but still
holds slots gets them freed. While it waits, the command says what it waits for (which run, since
when, started where), again every `REMIND_SECONDS`, and Ctrl-C or SIGTERM stops it with nothing
started.

On an instance run by the Dagster daemon (deploy/dagster) the run queue admits one deployment per
environment and run monitoring fails runs whose worker died; this lock is what the CLI adds for
runs it executes in its own process.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from dagster import DagsterInstance, DagsterRun, RunsFilter

from fintech_release.records.keys import deployment_pool
from fintech_release.records.runs import ProcessIdentity, changing_runs, run_process

POLL_SECONDS = 1.0
REMIND_SECONDS = 30.0
Say = Callable[[str], None]


@contextmanager
def exclusive_deployment(instance: DagsterInstance, environment: str, *, command: str, say: Say) -> Iterator[None]:
    """Hold `environment` for one run: wait for the lock and for other runs, clearing what dead processes left."""
    path = Path(instance.root_directory) / "locks" / f"deployment-{environment}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        _wait_for_lock(handle, environment, say)
        try:
            _record_holder(handle, command)
            _wait_for_runs(instance, environment, say)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_for_lock(handle: TextIO, environment: str, say: Say) -> None:
    waiting = _Waiting(say)
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waiting.report(f"{environment}: waiting for {_holder(handle)} to finish")
            time.sleep(POLL_SECONDS)


def _record_holder(handle: TextIO, command: str) -> None:
    me = ProcessIdentity.current()
    holder = {"command": command, "pid": me.pid, "host": me.host, "since": datetime.now(UTC).isoformat()}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder))
    handle.flush()


def _holder(handle: TextIO) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read())
        since = datetime.fromisoformat(holder["since"])
        return f"`{holder['command']}` (pid {holder['pid']} on {holder['host']}, since {_clock(since)})"
    except (ValueError, KeyError, TypeError):
        return "another fintech-release command"


def _wait_for_runs(instance: DagsterInstance, environment: str, say: Say) -> None:
    waiting = _Waiting(say)
    while blockers := _blocking_runs(instance, environment, say):
        waiting.report(f"{environment}: waiting for " + "; ".join(_describe(instance, run) for run in blockers))
        time.sleep(POLL_SECONDS)


def _blocking_runs(instance: DagsterInstance, environment: str, say: Say) -> list[DagsterRun]:
    """The runs that change `environment` now, after failing those whose process died and freeing stale slots."""
    pool = instance.event_log_storage.get_concurrency_info(deployment_pool(environment))
    holding = {slot.run_id for slot in pool.claimed_slots} | {step.run_id for step in pool.pending_steps}
    runs = {run.run_id: run for run in changing_runs(instance, environment)}
    if holding - runs.keys():
        runs.update({r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=list(holding - runs.keys())))})
    blocking = []
    for run in runs.values():
        if run.is_finished:
            if run.run_id in holding:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
                say(f"{environment}: freed the deploy-{environment} slots run {run.run_id} held after it ended")
            continue
        process = run_process(instance, run)
        if process is not None and process.is_alive() is False:
            _fail_dead_run(instance, run, process)
            say(
                f"{environment}: run {run.run_id} ({run.job_name}) was left {run.status.value} by process "
                f"{process.pid} on {process.host}, which is gone: marked failed, its slots freed"
            )
            continue
        blocking.append(run)
    return blocking


def _fail_dead_run(instance: DagsterInstance, run: DagsterRun, process: ProcessIdentity) -> None:
    instance.report_run_failed(
        run,
        f"fintech-release: the process that executed this run (pid {process.pid} on {process.host}) is gone; "
        "marked failed so the environment is free again. What it left running is converged by the next deployment.",
    )
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _describe(instance: DagsterInstance, run: DagsterRun) -> str:
    record = instance.get_run_record_by_id(run.run_id)
    since = (record.start_time or record.create_timestamp.timestamp()) if record else None
    when = f" since {_clock(datetime.fromtimestamp(since, UTC))}" if since else ""
    process = run_process(instance, run)
    where = f", pid {process.pid} on {process.host}" if process else ", launched by the Dagster instance"
    return f"run {run.run_id} ({run.job_name}, {run.status.value}{when}{where})"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


class _Waiting:
    """Says what is waited for when it changes, and again every REMIND_SECONDS."""

    def __init__(self, say: Say) -> None:
        self.say, self.started, self.last, self.said_at = say, time.monotonic(), "", 0.0

    def report(self, message: str) -> None:
        now = time.monotonic()
        if message != self.last:
            self.say(f"{message} (Ctrl-C to stop; nothing has been started)")
        elif now - self.said_at >= REMIND_SECONDS:
            self.say(f"{message} (still waiting after {now - self.started:.0f} s)")
        else:
            return
        self.last, self.said_at = message, now

