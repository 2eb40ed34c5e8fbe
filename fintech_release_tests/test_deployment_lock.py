"""No environment is ever locked by a process that died, and nothing waits silently.

Against a real Dagster instance (SQLite, the suite's dagster.yaml with one-step pools) and real
processes: runs tagged as changing `staging` whose process is gone (a child process of the test,
ended) are marked failed and their `deploy-staging` pool slots freed before the next command
goes on; a run whose process lives is waited for, saying which run, since when and where; another
command holding the environment's lock is waited for, naming its command and pid; the process
identity tells a reused pid from the process that had it. No Docker engine is involved.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from fintech_release.cli.deployment_lock import exclusive_deployment
from fintech_release.records.keys import DEPLOYMENT_TAG, PROCESS_TAG, deployment_pool
from fintech_release.records.runs import ProcessIdentity
from fintech_release_tests.components import wait_until

ENV = "staging"
POOL = deployment_pool(ENV)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process of the test's own, ended at the end of the test if still running."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _identity(process: subprocess.Popen) -> ProcessIdentity:
    current = ProcessIdentity.current()
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    start = int(stat.rsplit(")", 1)[1].split()[19])
    return ProcessIdentity(current.host, current.boot_id, process.pid, start)


def _run_of(instance: DagsterInstance, process: ProcessIdentity) -> DagsterRun:
    run = create_run_for_test(
        instance, job_name=f"deploy_{ENV}", status=DagsterRunStatus.STARTED,
        tags={DEPLOYMENT_TAG: ENV, PROCESS_TAG: process.tag()},
    )
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "staging_releases")
    return run


def test_a_run_whose_process_died_is_failed_and_its_slots_freed(
    instance: DagsterInstance, sleeper: subprocess.Popen
) -> None:
    dead = _identity(sleeper)
    sleeper.kill()
    sleeper.wait()
    run = _run_of(instance, dead)
    said: list[str] = []
    with exclusive_deployment(instance, ENV, command="deploy staging", say=said.append):
        holder = json.loads((Path(instance.root_directory) / "locks" / f"deployment-{ENV}.lock").read_text())
        assert holder["command"] == "deploy staging" and holder["pid"] == ProcessIdentity.current().pid
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
    assert any(f"run {run.run_id} (deploy_staging) was left STARTED by process {dead.pid}" in line for line in said)
    failure = instance.all_logs(run.run_id)[-1]
    assert "is gone; marked failed" in failure.message


def test_a_run_whose_process_lives_is_waited_for_and_said_so(
    instance: DagsterInstance, sleeper: subprocess.Popen
) -> None:
    run = _run_of(instance, _identity(sleeper))
    said: list[str] = []
    entered = threading.Event()

    def deploy() -> None:
        with exclusive_deployment(instance, ENV, command="deploy staging", say=said.append):
            entered.set()

    waiter = threading.Thread(target=deploy, daemon=True)
    waiter.start()
    assert wait_until(lambda: bool(said), timeout=10)
    assert not entered.is_set()
    assert f"staging: waiting for run {run.run_id} (deploy_staging, STARTED since" in said[0]
    assert f"pid {sleeper.pid} on" in said[0] and "Ctrl-C to stop; nothing has been started" in said[0]
    sleeper.kill()  # the run's process dies while the other command waits: it is failed, the wait ends
    sleeper.wait()
    assert entered.wait(timeout=10)
    waiter.join(5)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE


def test_another_command_holding_the_lock_is_named_and_waited_for(instance: DagsterInstance, tmp_path: Path) -> None:
    ready = tmp_path / "holding"
    holder_script = (
        "import sys, time\n"
        "from dagster import DagsterInstance\n"
        "from fintech_release.cli.deployment_lock import exclusive_deployment\n"
        f"instance = DagsterInstance.from_config({instance.root_directory!r})\n"
        f"with exclusive_deployment(instance, {ENV!r}, command='rollback staging', say=print):\n"
        f"    open({str(ready)!r}, 'w').close()\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", holder_script])
    try:
        assert wait_until(ready.exists, timeout=30, abort=lambda: holder.poll() is not None)
        said: list[str] = []
        started = time.monotonic()
        done = threading.Event()

        def deploy() -> None:
            with exclusive_deployment(instance, ENV, command="deploy staging", say=said.append):
                done.set()

        threading.Thread(target=deploy, daemon=True).start()
        assert wait_until(lambda: bool(said), timeout=10)
        assert said[0].startswith(f"staging: waiting for `rollback staging` (pid {holder.pid} on ")
        holder.kill()  # the kernel releases the lock of a killed process
        holder.wait()
        assert done.wait(timeout=10), f"still waiting after {time.monotonic() - started:.0f} s"
    finally:
        holder.kill()
        holder.wait()


def test_a_process_identity_tells_a_reused_pid_and_another_host_apart(sleeper: subprocess.Popen) -> None:
    alive = _identity(sleeper)
    assert alive.is_alive() is True
    assert ProcessIdentity.from_tag(alive.tag()) == alive
    reused = ProcessIdentity(alive.host, alive.boot_id, alive.pid, alive.start_ticks + 1)
    assert reused.is_alive() is False  # same pid, started at another moment: not the run's process
    rebooted = ProcessIdentity(alive.host, "another-boot", alive.pid, alive.start_ticks)
    assert rebooted.is_alive() is False
    elsewhere = ProcessIdentity("another-host", alive.boot_id, alive.pid, alive.start_ticks)
    assert elsewhere.is_alive() is None  # cannot be told from here: waited for, never failed
    assert ProcessIdentity.from_tag("garbage") is None and ProcessIdentity.from_tag(None) is None
