"""Deployments that survive faults, on the local platform for real: Docker engine, registry, MariaDB,
nginx, and `fintech-release` as separate processes that are interrupted and killed.

One story on staging, in order: a command that waits for another says what it waits for and stops
cleanly on SIGTERM, as does a deployment interrupted while its new replicas start (nothing left
behind, the old version serving); a deployment killed with SIGKILL mid-rollout locks nothing: the
next deployment fails the dead run, frees its slots, removes what it left and finishes; repairing
one service needs only that service's approval; after a deployment that changed nothing, a
rollback undoes the last one that did, and a second rollback says there is nothing to roll back;
the health watch reports a replica stopped by hand, emails (a real SMTP server on loopback),
restores it with self_heal and reports the recovery; a failed deployment says why in a line or two,
with no traceback; a push waits out a registry restart.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
import yaml
from dagster import AssetCheckEvaluation, DagsterInstance, DagsterRunStatus, RunsFilter, build_sensor_context
from dagster._core.definitions.sensor_definition import SensorExecutionData

from fintech_release.assets.source import report_head_commits
from fintech_release.cli import launch, report
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.errors import DeploymentRefusedError
from fintech_release.records.approvals import Decision
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import PROCESS_TAG, REGISTRY_IMAGE, deployment_pool, release_key
from fintech_release.release_graph import build_definitions
from fintech_release.resources.registry import LocalRegistry
from fintech_release_tests.components import GitBareRepo, RegistryServer, wait_until
from fintech_release_tests.conftest import DOCKER_HOST, EXAMPLES_DIR
from fintech_release_tests.fixtures_smtp import SmtpServer, smtp_server, start_smtp  # noqa: F401 (fixtures)
from fintech_release_tests.release_setup import quiet_instance, write_release_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]

SCOPE = "fintech-release-test"
ENV = "staging"
ADDRESS = "127.0.44.1"
AUTHOR, APPROVER = "ada@bank.example", "carol@bank.example"
SERVICES = ("contact-us", "payments")


class Command:
    """`fintech-release …` in a process of its own, its output collected line by line while it runs."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fintech_release.cli", *args], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:  # noqa: ANN001 - a text stream
        for line in stream:
            lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.err + self.out)

    def finish(self, timeout: float = 180) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(5)
        return code


class Faults:
    """The story's shared state: repositories, release.yaml variants, the instance, the CLI's environment."""

    def __init__(self, root: Path, registry_host: str, mariadb, smtp_port: int | None = None) -> None:  # noqa: ANN001
        self.root, self.registry_host, self.mariadb = root, registry_host, mariadb
        self.repos = {
            name: GitBareRepo.create(
                root / "git", EXAMPLES_DIR / name, author_name="Ada", author_email=AUTHOR, message="Import", name=name
            )
            for name in SERVICES
        }
        self.config = self.configure()
        self.defs = build_definitions(self.config)
        self.home = root / "dagster-home"
        self.home.mkdir()
        self.instance: DagsterInstance

    def configure(
        self, variant: str = "normal", *, health_path: str | None = None, service_env: dict | None = None,
        staging: dict | None = None, notifications: dict | None = None,
    ) -> ReleaseConfig:
        """release.yaml of a variant: contact-us's health path or settings, staging's settings, notifications."""
        folder = self.root / variant
        folder.mkdir(exist_ok=True)
        config = write_release_config(
            folder, {name: repo.bare_path for name, repo in self.repos.items()}, registry_host=self.registry_host,
            environments=[{
                "name": ENV, "address": ADDRESS, "approval": {"required": True}, "health_window_seconds": 2,
                **(staging or {}),
            }],
            local={
                "scope": SCOPE, "state_dir": str(self.root / "state"),
                "database": {"host": "127.0.0.1", "port": self.mariadb.port, "user": self.mariadb.user},
            },
        )
        document = yaml.safe_load(config.source.read_text())
        contact_us = document["services"][0]
        contact_us["deployment"]["env"] = service_env or {}
        if health_path:
            contact_us["health_path"] = health_path
        if notifications:
            document["notifications"] = notifications
        config.source.write_text(yaml.safe_dump(document, sort_keys=False))
        return load_release_config(config.source)

    def push(self, service: str, message: str) -> str:
        """Commit, observe, build and push; return the pushed version."""
        self.repos[service].commit({"CHANGES.md": f"{message}\n"}, message, author_email=AUTHOR)
        sha = report_head_commits(self.instance, self.config, self.defs.resources["source"])[service]
        result = launch.build_and_push(self.defs, self.instance, service, sha)
        assert result.success, report.failure_message(result)
        return latest_materialization_metadata(self.instance, REGISTRY_IMAGE, service)["version"]

    def approve(self) -> None:
        result = launch.approve(
            self.config, self.defs, self.instance, ENV, decision=Decision.YES, approver=APPROVER, reason="CAB-1"
        )
        assert result.success, report.failure_message(result)

    def cli(self, *args: str, config: ReleaseConfig | None = None) -> Command:
        env = {
            **os.environ, "DAGSTER_HOME": str(self.home),
            "FINTECH_RELEASE_CONFIG": str((config or self.config).source),
            "FINTECH_RELEASE_DB_PASSWORD": self.mariadb.password,
        }
        return Command(list(args), env)

    def answering_version(self) -> str:
        return requests.get(f"http://{ADDRESS}:8000/contact-us/health", timeout=5).json()["version"]

    def release(self, service: str = "contact-us") -> dict:
        return latest_materialization_metadata(self.instance, release_key(ENV, service))

    def deploy_runs(self) -> list:
        return self.instance.get_runs(RunsFilter(job_name=f"deploy_{ENV}"))


def containers(client: docker.DockerClient, service: str = "contact-us") -> list:
    labels = [f"io.fintech-release.scope={SCOPE}", f"io.fintech-release.environment={ENV}",
              f"io.fintech-release.service={service}"]
    return client.containers.list(all=True, filters={"label": labels})


def images_of(client: docker.DockerClient, service: str = "contact-us") -> list[str]:
    return sorted(container.labels["io.fintech-release.image"] for container in containers(client, service))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, registry, mariadb) -> Iterator[Faults]:  # noqa: ANN001
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)
        faults = Faults(tmp_path_factory.mktemp("faults"), registry.host, mariadb)
        with quiet_instance(faults.home) as instance:
            faults.instance = instance
            try:
                assert faults.push("contact-us", "v1") == "1.0.0-1"
                faults.approve()
                assert launch.deploy(faults.config, faults.defs, instance, ENV, ["contact-us"]).success
                yield faults
            finally:
                launch.teardown(faults.config, faults.defs, instance, ENV)


def test_a_waiting_command_and_a_starting_deployment_stop_cleanly_on_sigterm(
    story: Faults, docker_client: docker.DockerClient
) -> None:
    v1 = story.release()["pinned_reference"]
    assert story.push("contact-us", "v2") == "1.0.0-2"
    story.approve()
    never_ready = story.configure("never-ready", health_path="/never-ready")
    runs_before = len(story.deploy_runs())
    starting = story.cli("deploy", ENV, "contact-us", config=never_ready)
    assert wait_until(lambda: len(containers(docker_client)) >= 4, timeout=60), starting.err
    waiting = story.cli("deploy", ENV, "contact-us")
    waits = "staging: waiting for `staging: deploying contact-us`"
    assert wait_until(lambda: waiting.said(waits), timeout=60), waiting.err
    assert waiting.said(f"(pid {starting.process.pid} on ")

    waiting.process.send_signal(signal.SIGTERM)
    assert waiting.finish() == 130
    assert waiting.said("stopped (Ctrl-C or SIGTERM) before a run started; nothing was changed")
    starting.process.send_signal(signal.SIGTERM)
    assert starting.finish() == 130
    assert starting.said("the replicas it had started were removed and what served before serves on")
    assert not any("Traceback" in line for line in starting.err + waiting.err), "\n".join(starting.err + waiting.err)

    runs = story.deploy_runs()
    assert len(runs) == runs_before + 1  # the waiting command launched nothing
    assert runs[0].status == DagsterRunStatus.FAILURE
    assert images_of(docker_client) == [v1, v1]  # no new replica left behind
    assert story.answering_version() == "1.0.0-1"


def test_a_deployment_killed_mid_rollout_locks_nothing(story: Faults, docker_client: docker.DockerClient) -> None:
    never_ready = story.configure("never-ready", health_path="/never-ready")
    killed = story.cli("deploy", ENV, "contact-us", config=never_ready)
    assert wait_until(lambda: len(containers(docker_client)) >= 4, timeout=60), killed.err
    killed.process.kill()
    killed.finish()
    dead_run = story.deploy_runs()[0]
    assert dead_run.status == DagsterRunStatus.STARTED  # nobody could say otherwise: the process is gone
    assert story.instance.event_log_storage.get_concurrency_info(deployment_pool(ENV)).claimed_slots

    said: list[str] = []
    result = launch.deploy(story.config, story.defs, story.instance, ENV, ["contact-us"], say=said.append)
    assert result.success, report.failure_message(result)
    assert any(f"run {dead_run.run_id} (deploy_staging) was left STARTED by process {killed.process.pid}" in s
               for s in said), said
    assert story.instance.get_run_by_id(dead_run.run_id).status == DagsterRunStatus.FAILURE
    assert story.instance.event_log_storage.get_concurrency_info(deployment_pool(ENV)).claimed_slots == []
    v2 = story.release()["pinned_reference"]
    assert (story.release()["status"], story.release()["version"]) == ("deployed", "1.0.0-2")
    assert images_of(docker_client) == [v2, v2]  # what the killed run left was removed
    assert {c.status for c in containers(docker_client)} == {"running"}
    assert story.answering_version() == "1.0.0-2"


def test_repairing_one_service_needs_only_its_own_approval(story: Faults, docker_client: docker.DockerClient) -> None:
    assert story.push("payments", "payments v1") == "1.0.0-1"  # a candidate no one approved
    containers(docker_client)[0].remove(force=True)
    result = launch.deploy(story.config, story.defs, story.instance, ENV, ["contact-us"])
    assert result.success, report.failure_message(result)
    assert (story.release()["status"], story.release()["version"]) == ("repaired", "1.0.0-2")
    assert len(containers(docker_client)) == 2
    with pytest.raises(DeploymentRefusedError, match=r"staging: no one approved payments 1\.0\.0-1"):
        launch.deploy(story.config, story.defs, story.instance, ENV)


def test_rollback_after_a_deployment_that_changed_nothing_undoes_the_last_change(story: Faults) -> None:
    unchanged = launch.deploy(story.config, story.defs, story.instance, ENV, ["contact-us"])
    assert unchanged.success and story.release()["status"] == "unchanged"

    rollback = story.cli("rollback", ENV)
    assert rollback.finish() == 0, rollback.err
    assert rollback.said("staging: rolled back (run ")
    assert re.search(r"contact-us\s+rolled_back\s+1\.0\.0-2 → 1\.0\.0-1", "\n".join(rollback.out)), rollback.out
    assert story.answering_version() == "1.0.0-1"

    again = story.cli("rollback", ENV)
    assert again.finish() == 2
    assert len(again.err) == 1, again.err
    assert again.err[0].startswith("fintech-release: staging: nothing to roll back (deployment run ")
    assert again.said("contact-us already runs 1.0.0-1 (sha256:")

    history = story.cli("releases", ENV)
    assert history.finish() == 0
    assert [line.split()[5] for line in history.out[:3]] == ["rolled_back", "unchanged", "repaired"]


def test_the_health_watch_reports_a_stopped_replica_and_self_heal_restores_it(
    story: Faults, docker_client: docker.DockerClient, smtp_server: SmtpServer  # noqa: F811 (fixture)
) -> None:
    watched = story.configure(
        "watched", staging={"self_heal": True, "health_interval_seconds": 10, "notify": ["ops@bank.example"]},
        notifications={"email": {"host": smtp_server.host, "port": smtp_server.port, "sender": "fr@bank.example"}},
    )
    defs = build_definitions(watched)
    watch = defs.resolve_sensor_def("watch_staging_health")
    assert watch.minimum_interval_seconds == 10
    cursor: str | None = None

    def look() -> SensorExecutionData:
        """One tick, evaluated as the sensor daemon evaluates it."""
        nonlocal cursor
        context = build_sensor_context(instance=story.instance, cursor=cursor, resources=defs.resources)
        result = watch.evaluate_tick(context)
        cursor = result.cursor
        return result

    assert look().asset_events == []  # healthy, as recorded: nothing to say
    stopped = containers(docker_client)[0]
    stopped.stop(timeout=5)

    bad = look()
    [evaluation] = bad.asset_events
    assert isinstance(evaluation, AssetCheckEvaluation)
    assert (evaluation.asset_key, evaluation.check_name, evaluation.passed) == (
        release_key(ENV, "contact-us"), "pod_health", False
    )
    assert stopped.name in evaluation.description and "exited" in evaluation.description
    [request] = bad.run_requests
    assert request.asset_selection == [release_key(ENV, "contact-us")]
    assert wait_until(lambda: len(smtp_server.received) == 1, timeout=10)
    email = smtp_server.received[0]
    assert email.rcpt_tos == ["ops@bank.example"]
    assert email.message["Subject"] == "[fintech-release] staging UNHEALTHY: contact-us"
    assert "action: restore requested (self_heal)" in email.message.get_content()
    assert look().asset_events == []  # still bad: said once, restored once

    restore = defs.resolve_job_def("restore_staging").execute_in_process(
        instance=story.instance, asset_selection=request.asset_selection, tags=request.tags, raise_on_error=False
    )
    assert restore.success, report.failure_message(restore)
    assert (story.release()["status"], story.release()["version"], story.release()["healthy"]) == (
        "restored", "1.0.0-1", True
    )
    assert len([c for c in containers(docker_client) if c.status == "running"]) == 2

    recovered = look()
    assert [e.passed for e in recovered.asset_events] == [True] and not recovered.run_requests
    assert wait_until(lambda: len(smtp_server.received) == 2, timeout=10)
    assert smtp_server.received[1].message["Subject"] == "[fintech-release] staging RECOVERED: contact-us"


def test_a_failed_deployment_says_why_in_a_line_or_two(story: Faults) -> None:
    story.approve()  # contact-us 1.0.0-2 again: its last approval was used by the deployment since rolled back
    crashing = story.configure("crash", service_env={"CRASH_ON_START": "true"})
    deploy = story.cli("deploy", ENV, "contact-us", config=crashing)
    assert deploy.finish() == 1
    first = next(line for line in deploy.err if line.startswith("fintech-release: "))
    assert first.startswith("fintech-release: staging/release/contact-us: pod_health failed: fr-staging-contact-us-")
    assert ("exited with code 1" in first or "crash-looping" in first), first
    assert "last output: " in first and "CRASH_ON_START=true, failing on purpose" in first
    assert deploy.said("run ") and deploy.said("--verbose")
    assert not deploy.said("Traceback") and len(deploy.err) <= 6, deploy.err
    assert story.answering_version() == "1.0.0-1"


REEXECUTE = """
mutation Reexecute($parentRunId: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""


def test_a_deployment_launched_on_the_webserver_queues_and_re_executes_from_the_ui(
    story: Faults, dagster_dev_factory
) -> None:  # noqa: ANN001 - fixture
    """With `dagster dev` serving the story's instance, the CLI launches its deployment there: two at once queue one
    behind the other, each run has a code-location origin, and re-executing one (the UI's button) runs again."""
    dev = dagster_dev_factory(story.config.source, story.home)
    first = story.cli("--url", dev.url, "deploy", ENV, "contact-us")
    second = story.cli("--url", dev.url, "deploy", ENV, "contact-us")
    assert first.finish() == 0, first.err
    assert second.finish() == 0, second.err
    assert first.said(f"launched on {dev.url}") and second.said(f"launched on {dev.url}")
    assert first.said("queued: the run waits its turn") or second.said("queued: the run waits its turn")
    run_ids = [re.search(r"\(run ([0-9a-f-]{36})\)", "\n".join(c.out)).group(1) for c in (first, second)]
    records = sorted((story.instance.get_run_record_by_id(run_id) for run_id in run_ids), key=lambda r: r.start_time)
    assert records[0].end_time <= records[1].start_time  # the run queue admitted one deployment of staging at a time
    assert all(r.dagster_run.remote_job_origin is not None and PROCESS_TAG not in r.dagster_run.tags for r in records)

    with requests.Session() as http:
        http.trust_env = False
        answer = http.post(f"{dev.url}/graphql", json={"query": REEXECUTE, "variables": {"parentRunId": run_ids[0]}},
                           timeout=30).json()
    rerun = answer["data"]["launchRunReexecution"]
    assert rerun["__typename"] == "LaunchRunSuccess", rerun
    rerun_id = rerun["run"]["runId"]
    ended = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    assert wait_until(lambda: story.instance.get_run_by_id(rerun_id).status in ended, timeout=180)
    assert story.instance.get_run_by_id(rerun_id).status == DagsterRunStatus.SUCCESS
    assert story.release()["status"] == "unchanged"


def test_a_push_waits_out_a_registry_restart(
    tmp_path: Path, base_image: str, docker_client: docker.DockerClient
) -> None:
    registry = RegistryServer.start(tmp_path / "registry")
    registry.stop()  # down when the push starts; back a few seconds later, on the same port
    restart = threading.Timer(3, lambda: registry._launch(timeout=30))
    restart.start()
    try:
        pushed = LocalRegistry(host=registry.host, docker_host=DOCKER_HOST, retry_seconds=60).push(
            local_reference=base_image, repository="restart-check", tag="1"
        )
        assert pushed.digest.startswith("sha256:")
    finally:
        restart.join()
        registry.stop()
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(f"{registry.host}/restart-check:1")
