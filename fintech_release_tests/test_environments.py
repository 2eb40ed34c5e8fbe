"""Environments on the local platform, for real: Docker engine, registry, MariaDB and nginx.

One story, in order, on one service: an unapproved or rejected candidate is refused; four eyes
are enforced; v1 deploys and answers through the ingress; v2 rolls out with zero failed requests;
a crashing v3 fails pod_health within 30 s while v2 keeps answering; a rollback undoes the last
deployment that changed something (v2 → v1), a second one refuses, one to a moment brings v2 back;
production gets exactly the digest that passed staging; v4, which dies after it started, is
rolled back automatically; two deployments at once queue; a failed CI run is torn down by the
sensor, leaving nothing behind; the database password never reaches the event log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SkipReason,
    build_run_status_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from fintech_release.assets.source import report_head_commits
from fintech_release.cli import launch, report
from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError
from fintech_release.jobs import BUILD_AND_PUSH
from fintech_release.records.approvals import Decision, approval_history
from fintech_release.records.event_log import latest_materialization_metadata, materializations
from fintech_release.records.keys import REGISTRY_IMAGE, database_key, release_key
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.conftest import EXAMPLES_DIR
from fintech_release_tests.release_setup import quiet_instance, write_release_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]

SERVICE = "contact-us"
AUTHOR = "ada@bank.example"
APPROVER = "carol@bank.example"
ENVIRONMENTS = [
    {"name": "ci", "ephemeral": True, "address": "127.0.41.1", "health_window_seconds": 2, "deploy_after_build": True},
    {"name": "staging", "address": "127.0.42.1", "approval": {"required": True}, "health_window_seconds": 3},
    {
        "name": "production",
        "address": "127.0.43.1",
        "promotes_from": "staging",
        "approval": {"required": True, "four_eyes": True},
        "health_window_seconds": 2,
    },
]


TEST_SCOPE = "fintech-release-test"


def _labels(environment: str) -> list[str]:
    return [f"io.fintech-release.scope={TEST_SCOPE}", f"io.fintech-release.environment={environment}"]


class Story:
    """The shared state of the story: config, definitions, instance, repository."""

    def __init__(self, root: Path, repo: GitBareRepo, registry_host: str, mariadb) -> None:  # noqa: ANN001
        self.root, self.repo, self.registry_host, self.mariadb = root, repo, registry_host, mariadb
        self.config = self.configure()
        self.defs = build_definitions(self.config)
        self.instance: DagsterInstance
        self.home: Path

    def configure(
        self, variant: str = "normal", service_env: dict[str, str] | None = None, **staging: object
    ) -> ReleaseConfig:
        """release.yaml for the story: `service_env` sets demo flags, `staging` overrides staging's settings."""
        folder = self.root / variant
        folder.mkdir(exist_ok=True)
        environments = [{**e, **staging} if e["name"] == "staging" else e for e in ENVIRONMENTS]
        return write_release_config(
            folder,
            {SERVICE: self.repo.bare_path},
            registry_host=self.registry_host,
            environments=environments,
            local={
                "scope": TEST_SCOPE,
                "state_dir": str(self.root / "state"),
                "database": {"host": "127.0.0.1", "port": self.mariadb.port, "user": self.mariadb.user},
            },
            service_env=service_env,
        )

    def push(self, message: str) -> str:
        """Commit, observe, build and push; return the pushed digest."""
        self.repo.commit({"CHANGES.md": f"{message}\n"}, message, author_email=AUTHOR)
        sha = report_head_commits(self.instance, self.config, self.defs.resources["source"])[SERVICE]
        result = launch.build_and_push(self.defs, self.instance, SERVICE, sha)
        assert result.success, report.failure_message(result)
        return latest_materialization_metadata(self.instance, REGISTRY_IMAGE, SERVICE)["digest"]

    def approve(self, environment: str, decision: Decision = Decision.YES, approver: str = APPROVER):  # noqa: ANN201
        return launch.approve(
            self.config, self.defs, self.instance, environment, decision=decision, approver=approver, reason="test"
        )

    def release(self, environment: str) -> dict:
        return latest_materialization_metadata(self.instance, release_key(environment, SERVICE))

    def mariadb_databases(self, prefix: str) -> list[str]:
        return self.defs.resources["database"].databases(prefix=prefix)

    def cli_env(self) -> dict[str, str]:
        """The environment a `fintech-release` process needs to work on the story's instance and release.yaml."""
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "FINTECH_RELEASE_CONFIG": str(self.config.source),
            "FINTECH_RELEASE_DB_PASSWORD": self.mariadb.password,
        }

    def url(self, environment: str) -> str:
        address = self.config.environment_address(environment)
        return f"http://{address}:8000/{SERVICE}/health"


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, registry, mariadb) -> Iterator[Story]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("environments")
    repo = GitBareRepo.create(
        root / "git", EXAMPLES_DIR / SERVICE, author_name="Ada", author_email=AUTHOR, message="Import", name=SERVICE
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)
        story = Story(root, repo, registry.host, mariadb)
        story.home = tmp_path_factory.mktemp("dagster-home")
        with quiet_instance(story.home) as instance:
            story.instance = instance
            try:
                yield story
            finally:
                for environment in ("ci", "staging", "production"):
                    launch.teardown(story.config, story.defs, instance, environment)


def test_unapproved_candidate_is_refused_and_nothing_runs(story: Story, docker_client) -> None:  # noqa: ANN001
    story.push("v1")
    runs_before = len(story.instance.get_runs())
    with pytest.raises(DeploymentRefusedError, match=r"staging: no one approved contact-us 1\.0\.0-1"):
        launch.deploy(story.config, story.defs, story.instance, "staging")
    assert len(story.instance.get_runs()) == runs_before  # the CLI refuses before launching a run
    # Launched as the UI would, the job refuses in its first step that touches the environment.
    result = story.defs.resolve_job_def("deploy_staging").execute_in_process(
        instance=story.instance, raise_on_error=False
    )
    assert not result.success
    assert "staging: no one approved contact-us 1.0.0-1" in report.failure_message(result)
    assert story.release("staging") is None
    assert latest_materialization_metadata(story.instance, database_key("staging")) is None
    assert not docker_client.containers.list(all=True, filters={"label": _labels("staging")})


def test_rejected_candidate_is_recorded_and_not_deployed(story: Story) -> None:
    assert story.approve("staging", Decision.NO).success
    with pytest.raises(DeploymentRefusedError, match="was rejected by carol@bank.example"):
        launch.deploy(story.config, story.defs, story.instance, "staging")
    assert story.release("staging") is None
    latest = approval_history(story.instance, "staging")[0]
    assert (latest.decision, latest.approver, latest.reason) == (Decision.NO, APPROVER, "test")


def test_approved_v1_deploys_and_answers_through_the_ingress(story: Story) -> None:
    assert story.approve("staging").success
    result = launch.deploy(story.config, story.defs, story.instance, "staging")
    assert result.success, report.failure_message(result)
    release = story.release("staging")
    assert (release["status"], release["healthy"], release["version"]) == ("deployed", True, "1.0.0-1")
    assert release["approved_by"] == APPROVER
    body = requests.get(story.url("staging"), timeout=5).json()
    assert body["version"] == "1.0.0-1" and body["env"] == "staging"


def test_redeploying_the_same_digest_reports_unchanged(story: Story) -> None:
    result = launch.deploy(story.config, story.defs, story.instance, "staging")
    assert result.success
    assert story.release("staging")["status"] == "unchanged"


def test_rolling_upgrade_fails_no_request_through_the_ingress(story: Story) -> None:
    story.push("v2")
    assert story.approve("staging").success
    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        # A new connection per request: a client reusing an idle keep-alive connection that a
        # reloading nginx worker closes must retry (browsers do); a fresh connection must never fail.
        while not stop.is_set():
            try:
                response = requests.get(story.url("staging"), timeout=5, headers={"Connection": "close"})
                if response.status_code == 200:
                    answered.append(response.json()["version"])
                else:
                    failures.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        result = launch.deploy(story.config, story.defs, story.instance, "staging")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    assert result.success, report.failure_message(result)
    assert failures == []
    assert len(answered) > 50 and answered[0] == "1.0.0-1" and answered[-1] == "1.0.0-2"


def test_crashing_v3_fails_pod_health_fast_and_v2_keeps_serving(story: Story) -> None:
    story.push("v3")
    assert story.approve("staging").success
    crashing = story.configure("crash-on-start", {"CRASH_ON_START": "true"})
    crash_defs = build_definitions(crashing)
    started = time.monotonic()
    result = launch.deploy(crashing, crash_defs, story.instance, "staging")
    elapsed = time.monotonic() - started
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "pod_health")
    assert not check.passed and ("exited" in check.description or "crash" in check.description)
    assert elapsed < 30
    release = story.release("staging")
    assert (release["status"], release["version"], release["healthy"]) == ("failed", "1.0.0-3", False)
    assert requests.get(story.url("staging"), timeout=5).json()["version"] == "1.0.0-2"



def test_rollback_undoes_the_last_deployment_that_changed_something(story: Story) -> None:
    """v3 failed and changed nothing: the last change was v2's rollout, so a rollback brings v1 back; a second
    rollback has nothing to undo; a rollback to a moment when v2 served brings v2 back."""
    v2_served_at = datetime.now(UTC)
    rolled = launch.rollback(story.config, story.defs, story.instance, "staging")
    assert rolled.success, report.failure_message(rolled)
    release = story.release("staging")
    assert (release["status"], release["version"], release["previous_version"], release["healthy"]) == (
        "rolled_back", "1.0.0-1", "1.0.0-2", True
    )
    assert requests.get(story.url("staging"), timeout=5).json()["version"] == "1.0.0-1"
    line, replaced = report.release_lines(rolled)  # what the command prints: the one service it changed
    assert "contact-us" in line and "rolled_back" in line and "1.0.0-2 → 1.0.0-1" in line and release["digest"] in line
    assert replaced.split()[:2] == ["replaced", "1.0.0-2"] and replaced.endswith(release["previous"].split("@")[1])

    runs_before = len(story.instance.get_runs())
    nothing = r"staging: nothing to roll back \(deployment run .*\): contact-us already runs 1\.0\.0-1"
    with pytest.raises(DeploymentRefusedError, match=nothing):
        launch.rollback(story.config, story.defs, story.instance, "staging")
    assert len(story.instance.get_runs()) == runs_before  # refused before a run was launched

    back = launch.rollback(story.config, story.defs, story.instance, "staging", at=v2_served_at)
    assert back.success, report.failure_message(back)
    assert (story.release("staging")["version"], story.release("staging")["healthy"]) == ("1.0.0-2", True)
    assert requests.get(story.url("staging"), timeout=5).json()["version"] == "1.0.0-2"


def test_four_eyes_forbids_the_author_approving_production(story: Story) -> None:
    result = story.approve("production", approver=AUTHOR)
    assert not result.success
    assert "four eyes" in report.failure_message(result) and AUTHOR in report.failure_message(result)


def test_production_gets_exactly_the_digest_that_passed_staging(story: Story) -> None:
    healthy_in_staging = story.release("staging")["digest"]
    newest_pushed = latest_materialization_metadata(story.instance, REGISTRY_IMAGE, SERVICE)["digest"]
    assert newest_pushed != healthy_in_staging  # v3 was pushed but never passed staging
    assert story.approve("production").success
    result = launch.deploy(story.config, story.defs, story.instance, "production")
    assert result.success, report.failure_message(result)
    assert story.release("production")["digest"] == healthy_in_staging
    assert requests.get(story.url("production"), timeout=5).json()["version"] == "1.0.0-2"


def test_an_upgrade_that_dies_after_starting_is_rolled_back_automatically(story: Story) -> None:
    serving = story.release("staging")
    assert (serving["version"], serving["healthy"]) == ("1.0.0-2", True)
    story.push("v4: dies a few seconds after it starts")
    assert story.approve("staging").success
    dying = story.configure("late-crash", {"CRASH_AFTER_SECONDS": "3"}, auto_rollback=True, health_window_seconds=10)
    result = launch.deploy(dying, build_definitions(dying), story.instance, "staging")
    assert not result.success
    release = story.release("staging")
    assert (release["status"], release["version"], release["healthy"]) == ("auto_rolled_back", "1.0.0-4", False)
    assert release["serving"] == serving["pinned_reference"]
    assert release["runtime_env"] == {"APP_ENV": "staging"}  # restored with v2's own settings, not v4's flag
    time.sleep(4)  # longer than CRASH_AFTER_SECONDS: the restored replicas must not have inherited it
    response = requests.get(story.url("staging"), timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "1.0.0-2"


def test_two_deployments_of_one_environment_run_one_after_the_other(story: Story) -> None:
    """Two `fintech-release deploy staging` at once: one runs, the other says what it waits for, then runs.
    Whole runs never overlap (not only their release steps)."""
    command = [sys.executable, "-m", "fintech_release.cli", "deploy", "staging"]
    processes = [
        subprocess.Popen(command, env=story.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    run_ids = [re.search(r"\(run ([0-9a-f-]{36})\)", stdout).group(1) for stdout, _ in outputs]
    assert any("staging: waiting for" in stderr for _, stderr in outputs), outputs
    records = sorted((story.instance.get_run_record_by_id(run_id) for run_id in run_ids), key=lambda r: r.start_time)
    assert records[0].end_time <= records[1].start_time, "the two deployments overlapped"


def test_database_is_migrated_once_per_environment(story: Story) -> None:
    history = materializations(story.instance, database_key("staging"), limit=20)
    first, latest = history[-1].metadata, history[0].metadata
    assert first["applied_now"] == {"staging_contact_us": ["V1__create_contact_messages.sql"]}
    assert latest["migrations_applied_now"] == 0
    assert latest["already_applied"] == {"staging_contact_us": ["V1__create_contact_messages.sql"]}


def test_a_successful_build_deploys_ci_once(story: Story, capfd: pytest.CaptureFixture[str]) -> None:
    story.push("deployed to ci by the sensor")
    builds = story.instance.get_runs(RunsFilter(job_name=BUILD_AND_PUSH, statuses=[DagsterRunStatus.SUCCESS]), limit=1)
    sensor = story.defs.resolve_sensor_def("deploy_ci_after_build")

    def evaluate() -> RunRequest | SkipReason:
        return sensor(build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=story.instance,
            dagster_run=builds[0],
            dagster_event=next(
                e for e in story.instance.all_logs(builds[0].run_id) if e.dagster_event and e.dagster_event.event_type
                == DagsterEventType.RUN_SUCCESS
            ).dagster_event,
        ))

    request = evaluate()
    assert request.run_key == f"deploy_ci:{builds[0].run_id}"
    assert sensor.job_name == "deploy_ci"
    assert "deploy_staging_after_build" not in {s.name for s in story.defs.sensors}
    # A deployment of ci waiting to start (e.g. requested for the previous build of a backfill) deploys the
    # newest images anyway: no second one is requested, and the sensor says why.
    waiting = create_run_for_test(story.instance, job_name="deploy_ci", status=DagsterRunStatus.NOT_STARTED)
    try:
        skipped = evaluate()
    finally:
        story.instance.delete_run(waiting.run_id)
    assert isinstance(skipped, SkipReason)
    assert f"deploy_ci run {waiting.run_id} is not_started and will deploy the newest pushed images" in (
        skipped.skip_message or ""
    )
    assert skipped.skip_message in capfd.readouterr().err
    assert evaluate().run_key == request.run_key  # nothing waits any more: the deployment is requested again


def test_failed_ci_run_is_torn_down_by_the_sensor(story: Story, docker_client) -> None:  # noqa: ANN001
    ci_containers = {"label": _labels("ci")}
    assert launch.deploy(story.config, story.defs, story.instance, "ci").success
    assert docker_client.containers.list(filters=ci_containers)
    story.push("v5")
    crashing = story.configure("crash-on-start", {"CRASH_ON_START": "true"})
    crash_defs = build_definitions(crashing)
    result = launch.deploy(crashing, crash_defs, story.instance, "ci")
    assert not result.success
    run = story.instance.get_run_by_id(result.run_id)
    assert run.status == DagsterRunStatus.FAILURE
    sensor = crash_defs.resolve_sensor_def("teardown_ci_after_failure")
    context = build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=story.instance,
        dagster_run=run,
        dagster_event=next(
            e for e in story.instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type
            == DagsterEventType.RUN_FAILURE
        ).dagster_event,
    )
    request = sensor(context)
    assert request.run_key == f"teardown_ci:{run.run_id}"
    teardown = crash_defs.resolve_job_def("teardown_ci").execute_in_process(instance=story.instance)
    assert teardown.success
    assert docker_client.containers.list(all=True, filters=ci_containers) == []
    assert not (story.root / "state" / "ingress" / "ci").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(story.url("ci"), timeout=2)
    assert story.mariadb_databases("ci_") == []


def test_database_password_never_reaches_the_event_log(story: Story) -> None:
    assert len(story.mariadb.password) >= 16
    for run in story.instance.get_runs():
        assert story.mariadb.password not in str(run.run_config)
        for entry in story.instance.all_logs(run.run_id):
            assert story.mariadb.password not in str(entry)
