"""The webhook against a real Dagster webserver: accepted deliveries outlive Dagster being down and a SIGTERM.

Runs the real `fintech-release webhook` command (uvicorn on loopback) while no Dagster answers, stops it
with SIGTERM, then starts a real `dagster dev` (run queue paused: runs stay QUEUED and build nothing) and
the endpoint again on the same state directory: the pending deliveries launch once, the superseded one
never, the installed sensor daemon's run-key check finds the webhook's run, and a replayed body launches
nothing after its run was deleted. One `dagster dev` start (about 20 s) for all of it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.sensor import fetch_existing_runs

from fintech_release.config.loader import CONFIG_ENV_VAR
from fintech_release.records.keys import COMMIT_TAG
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release.triggers.webhook import WebhookEndpoint
from fintech_release_tests.components import free_port
from fintech_release_tests.fixtures_dagster import (  # noqa: F401 - fixture
    REPO_ROOT,
    TELEMETRY_OFF,
    DagsterDev,
    dagster_dev_factory,
)
from fintech_release_tests.fixtures_webhook import (  # noqa: F401 - fixture
    SECRET,
    SECRET_ENV,
    cloud_push,
    commit,
    deliver,
    start_webhook,
    wait_for,
    write_config,
)

ANSWER_WITHIN = 2.0  # seconds: the bound for every answer


def runs_of(home: Path, sha: str) -> list:
    with DagsterInstance.from_config(str(home)) as instance:
        return [record.dagster_run for record in instance.get_run_records(RunsFilter(tags={COMMIT_TAG: sha}))]


@pytest.mark.integration
def test_deliveries_outlive_dagster_down_and_sigterm_then_launch_once_and_replays_never(
    tmp_path: Path,
    dagster_dev_factory: Callable[..., DagsterDev],
    start_webhook: Callable[..., WebhookEndpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dagster_port = free_port()
    config = write_config(tmp_path / "release", f"http://127.0.0.1:{dagster_port}/graphql", port=free_port())
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("FINTECH_RELEASE_BITBUCKET_TOKEN", "unused")  # the commit sensor's Bitbucket is unreachable
    url = f"http://127.0.0.1:{config.webhook.port}/"
    command = subprocess.Popen(
        [sys.executable, "-m", "fintech_release.cli", "--config", str(config.source), "webhook"],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: _answers(url), timeout=60, what="the webhook command serving")
        bodies = [
            cloud_push("acme/contact-us", "master", sha=commit(1)),
            cloud_push("acme/payments", "feature/login", sha=commit(2)),
            cloud_push("acme/contact-us", "master", sha=commit(3), old=commit(1)),  # supersedes commit 1
        ]
        answered_in = []
        for body in bodies:  # nothing listens on Dagster's port
            started = time.monotonic()
            response = deliver(url, body)
            answered_in.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
        command.send_signal(signal.SIGTERM)
        output, _ = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()

    assert max(answered_in) < ANSWER_WITHIN, answered_in
    assert command.returncode == 0, output
    assert output.count("answer 202 accepted") == 3 and "fintech-release webhook stopped" in output
    assert "Traceback" not in output and SECRET not in output

    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TELEMETRY_OFF + "concurrency:\n  runs:\n    max_concurrent_runs: 0\n")
    dagster_dev_factory(config.source, home, port=dagster_port)
    webhook = start_webhook(config)  # the same state directory: the pending launches are retried at start

    wait_for(lambda: webhook.store.pending() == 0, timeout=60, what="the pending launches")
    [release_run] = runs_of(home, commit(3))
    [branch_run] = runs_of(home, commit(2))
    assert runs_of(home, commit(1)) == []
    assert [launch.state for launch in webhook.store.launches()] == ["superseded", "launched", "launched"]
    assert release_run.job_name == "build_and_push" and release_run.status == DagsterRunStatus.QUEUED
    assert release_run.tags["dagster/partition"] == "contact-us"
    assert release_run.tags["dagster/run_key"] == f"build_and_push:contact-us:{commit(3)}"
    assert branch_run.job_name == "branch_ci"

    # The sensor daemon's own check before it launches a request: it finds the webhook's run.
    monkeypatch.setenv(CONFIG_ENV_VAR, str(config.source))
    request = RunRequest(run_key=f"build_and_push:contact-us:{commit(3)}", job_name="build_and_push",
                         partition_key="contact-us")
    with (
        DagsterInstance.from_config(str(home)) as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget([str(REPO_ROOT / "workspace.yaml")])) as workspace,
    ):
        location = workspace.create_request_context().get_code_location("fintech_release")
        remote_sensor = location.get_repository("__repository__").get_sensor(COMMIT_SENSOR)
        existing = fetch_existing_runs(instance, remote_sensor, [request])
        assert existing[request.run_key].run_id == release_run.run_id
        instance.delete_run(branch_run.run_id)

    replay = deliver(webhook.url, bodies[1])

    assert replay.status_code == 200 and replay.json()["result"] == "duplicate"
    assert len(webhook.store.launches()) == 3 and runs_of(home, commit(2)) == []


def _answers(url: str) -> bool:
    try:
        with requests.Session() as http:
            http.trust_env = False
            return http.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
