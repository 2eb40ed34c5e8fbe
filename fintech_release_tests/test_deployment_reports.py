"""Deployment reports: deploy_*, rollback_* and restore_* runs that end are emailed to the release group and shown
as a Bitbucket build status on each deployed commit.

The runs are real runs of the product's own jobs (`approve_staging`, `deploy_staging`, `rollback_staging`) on a
real Dagster instance, with the real approval rules and release step; the one stand-in is the environment
itself: `StandInRuntime` keeps "running" images in a file, answers healthy unless an image is listed as
crashing, and the ingress and database stand-ins only answer. Candidates are registry/image
materializations reported as a push records them. The email goes through the real EmailNotifier to a real
SMTP server (aiosmtpd on loopback); build statuses go through the real BitbucketCloudSource to the
Bitbucket contract stand-in (fixtures_bitbucket.py), which serves a real bare git repository.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetMaterialization,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    build_run_status_sensor_context,
)

from fintech_release.config import load_release_config
from fintech_release.health.model import ServiceHealth
from fintech_release.jobs import approval_op_name, deploy_job_name, rollback_job_name
from fintech_release.notifications.deployments import deployment_report_sensor_name, deployment_status_key
from fintech_release.records.keys import REGISTRY_IMAGE
from fintech_release.release_graph import build_definitions, resolved
from fintech_release.resources.bitbucket import BitbucketCloudSource
from fintech_release.resources.database import BackupRecord, DatabaseAdmin, MigrationResult
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.ingress import Ingress, IngressInfo
from fintech_release.resources.runtime import BackendsChanged, DeployOutcome, DeploySpec, ServiceRuntime
from fintech_release_tests.fixtures_bitbucket import FakeBitbucket, bitbucket_factory  # noqa: F401
from fintech_release_tests.fixtures_smtp import SmtpServer, smtp_server, start_smtp  # noqa: F401

pytestmark = pytest.mark.integration

SERVICE, ENV = "contact-us", "staging"
GROUP = ("release-team@bank.example",)
APPROVER = "carol@bank.example"
DAGSTER_URL = "https://dagster.bank.example"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class StandInRuntime(ServiceRuntime):
    """Images "run" in `state_file`; an image in `crashing` never becomes healthy (the old one keeps serving)."""

    state_file: str
    crashing: list[str] = []

    def _state(self) -> dict[str, str]:
        path = Path(self.state_file)
        return json.loads(path.read_text()) if path.exists() else {}

    def ensure_environment(self, *, environment: str, address: str) -> dict[str, str]:
        return {}

    def running_image(self, *, environment: str, service: str) -> str | None:
        return self._state().get(service)

    def deploy(self, *, spec: DeploySpec, on_backends_changed: BackendsChanged) -> DeployOutcome:
        state = self._state()
        previous = state.get(spec.service)
        if spec.image in self.crashing:
            health = self._health(spec, healthy=False)
            return DeployOutcome(status="failed", image=previous, previous_image=previous, health=health,
                                 detail="crashed at start")
        state[spec.service] = spec.image
        Path(self.state_file).write_text(json.dumps(state))
        status = "unchanged" if previous == spec.image else "deployed"
        return DeployOutcome(status=status, image=spec.image, previous_image=previous,
                             health=self._health(spec, healthy=True), detail="")

    def health(
        self, *, environment: str, service: str, desired_replicas: int, expected_image: str | None,
        window_seconds: float, since: datetime | None = None,
    ) -> ServiceHealth:
        healthy = self._state().get(service) == expected_image
        return ServiceHealth(environment=environment, service=service, healthy=healthy,
                             ready_replicas=desired_replicas if healthy else 0, desired_replicas=desired_replicas,
                             problems=() if healthy else (f"{service} runs another image",), replicas=())

    @staticmethod
    def _health(spec: DeploySpec, *, healthy: bool) -> ServiceHealth:
        problems = () if healthy else (f"fr-{spec.environment}-{spec.service}-1 exited with code 1: boom",)
        return ServiceHealth(environment=spec.environment, service=spec.service, healthy=healthy,
                             ready_replicas=spec.replicas if healthy else 0, desired_replicas=spec.replicas,
                             problems=problems, replicas=())

    def teardown(self, *, environment: str) -> list[str]:
        return []


class StandInIngress(Ingress):
    """Answers; routes nothing."""

    def ensure(self, *, environment: str, address: str, port: int, services: list[str]) -> IngressInfo:
        return IngressInfo(environment=environment, url=f"http://{address}:{port}", routes={})

    def set_backends(self, *, environment: str, service: str, backends: list[str]) -> IngressInfo:
        return IngressInfo(environment=environment, url="http://127.0.2.1:8000", routes={service: backends})

    def remove(self, *, environment: str) -> list[str]:
        return []


class NoDatabase(DatabaseAdmin):
    """The services here have no database; never called."""

    def migrate(self, *, database: str, migrations_dir: Path | None) -> MigrationResult:
        raise AssertionError("no service here has a database")

    def pending_migrations(self, *, database: str, migrations_dir: Path | None) -> tuple[str, ...]:
        raise AssertionError("no service here has a database")

    def backup(self, *, environment: str, databases: list[str]) -> BackupRecord:
        raise AssertionError("no service here has a database")

    def drop(self, *, database: str) -> bool:
        raise AssertionError("not used")

    def databases(self, *, prefix: str) -> list[str]:
        return []


class Story:
    """A staging environment behind an approval, its Bitbucket and the release group's mailbox."""

    def __init__(self, tmp_path: Path, repo, bitbucket: FakeBitbucket, smtp: SmtpServer) -> None:  # noqa: ANN001
        document = {
            "source_control": {"platform": "bitbucket", "bitbucket": {
                "flavor": "cloud", "owner": bitbucket.owner, "base_url": bitbucket.base_url}},
            "notifications": {"dagster_url": DAGSTER_URL, "email": {
                "host": smtp.host, "port": smtp.port, "sender": "releases@bank.example",
                "master_recipients": list(GROUP)}},
            "services": [{"name": SERVICE, "repository": SERVICE, "port": 18081, "database": None}],
            "environments": [{"name": ENV, "approval": {"required": True}}],
        }
        path = tmp_path / "release.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        self.config = load_release_config(path)
        self.repo, self.bitbucket, self.smtp = repo, bitbucket, smtp
        self.runtime = StandInRuntime(state_file=str(tmp_path / "running.json"))
        self.sensor_resources = {
            "source": BitbucketCloudSource(owner=bitbucket.owner, token=bitbucket.token, base_url=bitbucket.base_url),
            "notifier": EmailNotifier(host=smtp.host, port=smtp.port, sender="releases@bank.example", attempts=1),
        }
        self.resources = {"runtime": self.runtime, "ingress": StandInIngress(), "database": NoDatabase()}

    def defs(self, crashing: tuple[str, ...] = ()) -> Definitions:
        base = build_definitions(self.config)
        runtime = StandInRuntime(state_file=self.runtime.state_file, crashing=list(crashing))
        return resolved(Definitions(
            assets=base.assets, jobs=base.jobs, sensors=base.sensors,
            resources={**base.resources, **self.sensor_resources, **self.resources, "runtime": runtime},
        ))

    def push(self, instance: DagsterInstance, version: str, digest_hex: str) -> tuple[str, str]:
        """Record a push of a new commit as registry/image does; return (commit, digest)."""
        sha = self.repo.commit({"VERSION": version}, f"release {version}", author_email="dev@bank.example")
        digest = "sha256:" + digest_hex * 64
        instance.report_runless_asset_event(AssetMaterialization(
            asset_key=REGISTRY_IMAGE, partition=SERVICE,
            metadata={"commit": sha, "author_email": "dev@bank.example", "version": version, "digest": digest,
                      "reference": f"registry.bank.example/{SERVICE}:{version}",
                      "pinned_reference": f"registry.bank.example/{SERVICE}@{digest}"},
        ))
        return sha, digest

    def approve(self, instance: DagsterInstance) -> None:
        config = {"decision": "yes", "approver": APPROVER, "reason": "CAB-142"}
        result = self.defs().resolve_job_def(f"approve_{ENV}").execute_in_process(
            instance=instance, run_config={**QUIET, "ops": {approval_op_name(ENV): {"config": config}}})
        assert result.success

    def run(self, instance: DagsterInstance, job: str, crashing: tuple[str, ...] = ()) -> str:
        result = self.defs(crashing).resolve_job_def(job).execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False)
        return result.run_id

    def report(self, instance: DagsterInstance, run_id: str) -> None:
        """Evaluate the report sensor for the run's end, as the daemon would."""
        run = instance.get_run_by_id(run_id)
        event_type = {DagsterRunStatus.SUCCESS: DagsterEventType.RUN_SUCCESS,
                      DagsterRunStatus.FAILURE: DagsterEventType.RUN_FAILURE}[run.status]
        (record,) = instance.all_logs(run_id, of_type=event_type)
        sensor = self.defs().resolve_sensor_def(deployment_report_sensor_name(run.status))
        sensor(build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=record.dagster_event, dagster_instance=instance,
            dagster_run=run, resources=self.sensor_resources))

    def statuses(self, sha: str) -> list[dict]:
        return [r.json() for r in self.bitbucket.api_requests()
                if r.method == "POST" and r.path.endswith(f"/commit/{sha}/statuses/build")]


@pytest.fixture
def story(
    tmp_path: Path, git_bare_repo_factory, bitbucket_factory, smtp_server: SmtpServer  # noqa: ANN001, F811
) -> Story:
    repo = git_bare_repo_factory(SERVICE, author_email="dev@bank.example")
    bitbucket = bitbucket_factory("cloud")
    bitbucket.add_repository(SERVICE, repo.bare_path)
    return Story(tmp_path, repo, bitbucket, smtp_server)


def test_deployments_and_a_rollback_are_mailed_with_versions_digests_and_approver(
    story: Story, instance: DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    first_sha, first = story.push(instance, "1.0.0-1", "a")
    story.approve(instance)
    story.report(instance, story.run(instance, deploy_job_name(ENV)))
    second_sha, second = story.push(instance, "1.0.0-2", "b")
    story.approve(instance)
    deployed = story.run(instance, deploy_job_name(ENV))
    story.report(instance, deployed)

    mail = story.smtp.received[1].message
    assert story.smtp.received[1].rcpt_tos == list(GROUP)
    assert mail["Subject"] == f"[fintech-release] {ENV} deploy SUCCESS: {SERVICE} 1.0.0-2"
    body = mail.get_content()
    assert f"{SERVICE}: deployed 1.0.0-1 → 1.0.0-2 ({first} → {second}), approved by {APPROVER}" in body
    assert f"Run: {DAGSTER_URL}/runs/{deployed}" in body
    (status,) = story.statuses(second_sha)
    assert status["key"] == deployment_status_key(ENV) == "fintech-release-deploy-staging"
    assert (status["state"], status["description"]) == ("SUCCESSFUL", "deployed 1.0.0-2 in staging")
    assert status["url"] == f"{DAGSTER_URL}/runs/{deployed}"

    rolled_back = story.run(instance, rollback_job_name(ENV))
    story.report(instance, rolled_back)

    mail = story.smtp.received[2].message
    assert mail["Subject"] == f"[fintech-release] {ENV} rollback SUCCESS: {SERVICE} 1.0.0-1"
    rolled = f"{SERVICE}: rolled_back 1.0.0-2 → 1.0.0-1 ({second} → {first}), approved by {APPROVER}"
    assert rolled in mail.get_content()
    assert [s["description"] for s in story.statuses(first_sha)] == [
        "deployed 1.0.0-1 in staging", "rolled_back 1.0.0-1 in staging"]
    assert "build status SUCCESSFUL (staging)" in capfd.readouterr().err


def test_a_failed_deployment_names_the_service_and_why_and_fails_its_commit(
    story: Story, instance: DagsterInstance
) -> None:
    story.push(instance, "1.0.0-1", "a")
    story.approve(instance)
    story.run(instance, deploy_job_name(ENV))
    crashing_sha, crashing = story.push(instance, "1.0.0-2", "c")
    story.approve(instance)

    failed = story.run(instance, deploy_job_name(ENV), crashing=(f"registry.bank.example/{SERVICE}@{crashing}",))
    assert instance.get_run_by_id(failed).status == DagsterRunStatus.FAILURE  # the blocking pod_health failed
    story.report(instance, failed)

    (received,) = story.smtp.received
    assert received.message["Subject"] == f"[fintech-release] {ENV} deploy FAILURE: {SERVICE} 1.0.0-2"
    body = received.message.get_content()
    assert f"{SERVICE}: failed 1.0.0-1 → 1.0.0-2" in body and "NOT healthy" in body
    assert "  - fr-staging-contact-us-1 exited with code 1: boom" in body
    assert "Failed at staging_releases: 1 blocking asset check failed" in body
    (status,) = story.statuses(crashing_sha)
    assert (status["state"], status["description"]) == ("FAILED", "failed 1.0.0-2 in staging")


def test_a_refused_deployment_says_why_without_a_release(story: Story, instance: DagsterInstance) -> None:
    story.push(instance, "1.0.0-1", "a")  # never approved

    refused = story.run(instance, deploy_job_name(ENV))
    story.report(instance, refused)

    mail = story.smtp.received[0].message
    assert mail["Subject"] == f"[fintech-release] {ENV} deploy FAILURE: no service"
    body = mail.get_content()
    assert "No service was changed." in body
    assert f"Failed at {ENV}/database: {ENV}: no one approved {SERVICE} 1.0.0-1" in body
    assert story.bitbucket.api_requests() == []
