"""Which runs change an environment now, and whether the process behind one still lives.

Every run that changes an environment (deploy, rollback, restore, teardown) carries
`fintech-release/deployment=<env>`; one that executes in a `fintech-release` process (the CLI, the
demo) also carries `fintech-release/process=<host>:<boot id>:<pid>:<start ticks>`. The start time
(from /proc) and the boot id make the identity survive PID reuse and reboots: a process is alive
only if a process with that pid started at that moment in this boot. A run launched by `dagster
dev` records its worker's pid in Dagster's own "Started process for run (pid: N)" engine event.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, DefaultRunLauncher, RunsFilter

from fintech_release.records.keys import DEPLOYMENT_TAG, PROCESS_TAG

# A run in one of these states may be changing its environment (queued runs have not started).
CHANGING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later one that reuses its pid."""

    host: str
    boot_id: str
    pid: int
    start_ticks: int

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process."""
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, _start_ticks(pid) or 0)

    @classmethod
    def from_tag(cls, value: str | None) -> ProcessIdentity | None:
        """The identity a run's process tag holds, or None for runs without one."""
        parts = (value or "").rsplit(":", 3)
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), int(parts[3]))

    def tag(self) -> str:
        """The value of the process tag."""
        return f"{self.host}:{self.boot_id}:{self.pid}:{self.start_ticks}"

    def is_alive(self) -> bool | None:
        """False when the process is gone; None when it runs on another host (nothing can be told from here)."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id != _boot_id():
            return False  # the machine restarted since
        return _start_ticks(self.pid) == self.start_ticks


def changing_runs(instance: DagsterInstance, environment: str) -> list[DagsterRun]:
    """Runs tagged as changing `environment` that have started and not ended, oldest first."""
    records = instance.get_run_records(RunsFilter(tags={DEPLOYMENT_TAG: environment}, statuses=CHANGING))
    return [record.dagster_run for record in sorted(records, key=lambda record: record.create_timestamp)]


def run_process(instance: DagsterInstance, run: DagsterRun) -> ProcessIdentity | None:
    """The process executing `run`: the CLI's tag, or the pid a run worker of `dagster dev` reported.

    The reported pid is only read on an instance whose runs are workers on this machine (the
    DefaultRunLauncher), and only trusted to tell that a process is gone, never that it lives.
    """
    tagged = ProcessIdentity.from_tag(run.tags.get(PROCESS_TAG))
    if tagged is not None or not isinstance(instance.run_launcher, DefaultRunLauncher):
        return tagged
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        text = getattr(pid, "value", pid)
        if isinstance(text, str) and text.isdigit():
            start = _start_ticks(int(text))
            return ProcessIdentity(socket.gethostname(), _boot_id(), int(text), -1 if start is None else start)
    return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None if none runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])
