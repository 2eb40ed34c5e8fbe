"""A real `dagster dev` (webserver + daemon + code server) for tests, started and stopped by the suite.

* ``dagster_dev_factory`` - ``start(config_path, home, port=None) -> DagsterDev(url, home)`` runs
  ``python -m dagster dev -w workspace.yaml`` on 127.0.0.1 (a free port, or `port`) with ``DAGSTER_HOME=home``
  and ``FINTECH_RELEASE_CONFIG=config_path``, and returns once the webserver answers and the
  ``fintech_release`` code location has loaded. Every process it started (the whole process
  group: webserver, daemon, code servers, runs) is stopped at the end of the test.

Nothing here is a mock, and all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from fintech_release_tests.components import LOCALHOST, ComponentError, free_port, log_tail, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCATION_NAME = "fintech_release"
START_TIMEOUT = 90.0
TELEMETRY_OFF = "telemetry:\n  enabled: false\n"

LOCATION_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


@dataclass
class DagsterDev:
    """A running `dagster dev`: its webserver URL, its DAGSTER_HOME and its log."""

    url: str
    home: Path
    log_path: Path
    popen: subprocess.Popen[bytes]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the whole process group, wait for it to go, then SIGKILL whatever is left."""
        group = self.popen.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        wait_until(lambda: not _group_alive(group), timeout=10, interval=0.2)
        _signal_group(group, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def failure(self, what: str) -> ComponentError:
        code = self.popen.poll()
        state = f"exited with code {code}" if code is not None else "still running"
        return ComponentError(
            f"{what} (dagster dev {state}; pid {self.popen.pid}).\n"
            f"Last lines of {self.log_path}:\n{log_tail(self.log_path, 40)}"
        )


def _signal_group(group: int, signum: signal.Signals) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _location_state(url: str) -> str | None:
    """'LOADED', an error message if the code location failed to load, or None while it is not ready."""
    with requests.Session() as http:
        http.trust_env = False
        try:
            if http.get(f"{url}/server_info", timeout=2).status_code != 200:
                return None
            answer = http.post(f"{url}/graphql", json={"query": LOCATION_QUERY}, timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
    workspace = (answer.get("data") or {}).get("workspaceOrError") or {}
    for entry in workspace.get("locationEntries", []):
        if entry["name"] == LOCATION_NAME and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            return "LOADED" if loaded.get("__typename") == "RepositoryLocation" else str(loaded.get("message"))
    return None


def start_dagster_dev(
    config_path: Path, home: Path, log_path: Path, timeout: float = START_TIMEOUT, port: int | None = None
) -> DagsterDev:
    """Start `dagster dev` for `config_path` on the instance in `home`; return once its code location loaded.

    `home` gets a dagster.yaml with telemetry off unless it already has one (e.g. from `quiet_instance`).
    """
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(TELEMETRY_OFF)
    port = port or free_port()
    argv = [
        sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
        "-h", LOCALHOST, "-p", str(port),
    ]
    env = {**os.environ, "DAGSTER_HOME": str(home), "FINTECH_RELEASE_CONFIG": str(config_path)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = DagsterDev(url=f"http://{LOCALHOST}:{port}", home=home, log_path=log_path, popen=popen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and popen.poll() is None:
        state = _location_state(dev.url)
        if state == "LOADED":
            return dev
        if state is not None:
            dev.stop()
            raise dev.failure(f"code location {LOCATION_NAME} failed to load: {state}")
        time.sleep(0.5)
    dev.stop()
    raise dev.failure(f"dagster dev did not serve {LOCATION_NAME} at {dev.url} within {timeout:.0f}s")


@pytest.fixture
def dagster_dev_factory(tmp_path: Path) -> Iterator[Callable[..., DagsterDev]]:
    """``start(config_path, home, port=None) -> DagsterDev``; every `dagster dev` started is stopped at the end."""
    started: list[DagsterDev] = []

    def start(config_path: Path, home: Path, port: int | None = None) -> DagsterDev:
        dev = start_dagster_dev(config_path, home, tmp_path / f"dagster-dev-{len(started) + 1}.log", port=port)
        started.append(dev)
        return dev

    try:
        yield start
    finally:
        for dev in reversed(started):
            dev.stop()
