"""The notification sensors on finished runs: real git repositories, a real Dagster instance, a real
SMTP server (aiosmtpd on loopback) and the real EmailNotifier.

The runs are real `branch_ci` and `build_and_push` runs of the product's own ops and assets, with one
stand-in: `FixedResultsBuildTool` reports fixed JUnit results instead of running Gradle, and
`PassingAnalyzer` finds no issues instead of running Checkstyle (test_branch_ci.py and
test_build_chain.py run both for real). `StatusRecordingSource` is LocalGitSource (so
publish_build_status returns False) that also writes each status it is asked to publish, and each
commit it is asked to read, to a file, and can be made slow. A run that is still running is a run
record in the STARTED state with a RUN_START event, as the run worker leaves them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    ExecuteInProcessResult,
    build_run_status_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.jobs import BRANCH_CI, BUILD_AND_PUSH
from fintech_release.notifications import sensors as notification_sensors
from fintech_release.notifications.sensors import notification_sensor_name
from fintech_release.records.keys import BRANCH_TAG, BUILD_TESTS, COMMIT_TAG, SERVICE_TAG
from fintech_release.release_graph import build_definitions, resolved
from fintech_release.resources import build_tool
from fintech_release.resources.analysis import AnalysisReport, CodeAnalyzer
from fintech_release.resources.build_tool import BuildTool, JarArtifact
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.source import BuildStatus, CommitInfo, LocalGitSource
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.fixtures_smtp import (  # noqa: F401
    SmtpServer,
    free_port,
    smtp_server,
    start_smtp,
)
from fintech_release_tests.release_setup import write_release_config

pytestmark = pytest.mark.integration

SERVICE = "contact-us"
GROUP = ("release-team@bank.example", "qa@bank.example")
AUTHOR = "ada@bank.example"
DAGSTER_URL = "http://dagster.bank.example:3000"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class FixedResultsBuildTool(BuildTool):
    """Reports `failed_tests` as failing out of `tests` (no Gradle)."""

    tests: int = 3
    failed_tests: list[str]

    def project_version(self, *, project_dir: Path) -> str:
        return "1.0.0"

    def run_tests(self, *, project_dir: Path) -> build_tool.TestSummary:
        return build_tool.TestSummary(
            tests=self.tests, failures=len(self.failed_tests), errors=0, skipped=0, duration_seconds=0.1,
            failed_tests=tuple(self.failed_tests), report_dir=str(project_dir),
        )

    def build_jar(self, *, project_dir: Path, version: str) -> JarArtifact:
        raise AssertionError("not reached in these tests")


class PassingAnalyzer(CodeAnalyzer):
    """Finds no issues (no Checkstyle)."""

    def analyze(self, *, source_dir: Path, report_dir: Path, project: str | None = None) -> AnalysisReport:
        return AnalysisReport(tool="none", files_analyzed=0, issues=(), report_path=str(report_dir))


class StatusRecordingSource(LocalGitSource):
    """LocalGitSource that appends every build status it is asked to publish to `record_path` (after
    `publish_delay_seconds`), and the sha of every commit it is asked to read to `lookups_path`."""

    record_path: str
    lookups_path: str
    publish_delay_seconds: float = 0

    def publish_build_status(self, *, repository: str, status: BuildStatus) -> bool:
        time.sleep(self.publish_delay_seconds)
        with open(self.record_path, "a") as record:
            record.write(status.model_dump_json() + "\n")
        return super().publish_build_status(repository=repository, status=status)

    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        with open(self.lookups_path, "a") as lookups:
            lookups.write(sha + "\n")
        return super().commit(repository=repository, sha=sha, branch=branch)


def _config(root: Path, repo: GitBareRepo, smtp_port: int | None) -> ReleaseConfig:
    config = write_release_config(root, {SERVICE: repo.bare_path}, registry_host="127.0.0.1:5000")
    document = yaml.safe_load(config.source.read_text())
    document["source_control"] = {"branch_patterns": ["feature/*"]}
    document["notifications"] = {"dagster_url": DAGSTER_URL}
    if smtp_port is not None:
        document["notifications"]["email"] = {
            "host": "127.0.0.1", "port": smtp_port, "sender": "ci@bank.example", "master_recipients": list(GROUP),
        }
    config.source.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(config.source)


@pytest.fixture
def repo(git_bare_repo_factory) -> GitBareRepo:
    return git_bare_repo_factory(SERVICE, author_name="Ada Lovelace", author_email=AUTHOR, message="Import")


class Setup:
    """Definitions with the stand-in build steps, and the notification sensors' resources."""

    def __init__(self, config: ReleaseConfig, tmp_path: Path, smtp: SmtpServer | None, tool: BuildTool,
                 publish_delay_seconds: float = 0):
        self.config = config
        self.statuses = tmp_path / "statuses.jsonl"
        self.lookups = tmp_path / "lookups.txt"
        self.source = StatusRecordingSource(record_path=str(self.statuses), lookups_path=str(self.lookups),
                                            publish_delay_seconds=publish_delay_seconds)
        self.sensor_resources: dict = {"source": self.source}
        if smtp is not None:
            self.sensor_resources["notifier"] = EmailNotifier(
                host=smtp.host, port=smtp.port, sender="ci@bank.example", attempts=2, retry_wait_seconds=0.1,
                timeout_seconds=5,
            )
        base = build_definitions(config)
        self.defs = resolved(Definitions(
            assets=base.assets, jobs=base.jobs, sensors=base.sensors,
            resources={**base.resources, **self.sensor_resources, "build_tool": tool,
                       "analyzer": PassingAnalyzer()},
        ))

    def evaluate(
        self, instance: DagsterInstance, result: ExecuteInProcessResult | str, status: DagsterRunStatus
    ) -> None:
        """Evaluate the sensor for `status` on the run's event for it (the run or its id), as the daemon would."""
        run_id = result if isinstance(result, str) else result.run_id
        event_type = {
            DagsterRunStatus.STARTED: DagsterEventType.RUN_START,
            DagsterRunStatus.SUCCESS: DagsterEventType.RUN_SUCCESS,
            DagsterRunStatus.FAILURE: DagsterEventType.RUN_FAILURE,
        }[status]
        (record,) = instance.all_logs(run_id, of_type=event_type)
        sensor = self.defs.resolve_sensor_def(notification_sensor_name(status))
        context = build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=record.dagster_event,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run_id),
            resources=self.sensor_resources,
        )
        sensor(context)

    def looked_up(self) -> list[str]:
        """The shas of the commits the sensors read (for an author)."""
        return self.lookups.read_text().split() if self.lookups.exists() else []

    def published(self) -> list[BuildStatus]:
        if not self.statuses.exists():
            return []
        return [BuildStatus.model_validate(json.loads(line)) for line in self.statuses.read_text().splitlines()]


def _feature_commit(repo: GitBareRepo, files: dict[str, str]) -> str:
    release_branch, repo.branch = repo.branch, "feature/ledger"
    try:
        return repo.commit(files, "Ledger totals", author_email=AUTHOR)
    finally:
        repo.branch = release_branch


def test_failed_branch_run_mails_the_author_with_step_tests_and_link(
    tmp_path: Path, repo: GitBareRepo, instance: DagsterInstance, smtp_server: SmtpServer,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    setup = Setup(_config(tmp_path, repo, smtp_server.port), tmp_path, smtp_server,
                  FixedResultsBuildTool(tests=4, failed_tests=["LedgerTest.totals"]))
    sha = _feature_commit(repo, {"NOTES.md": "ledger\n"})
    result = setup.defs.resolve_job_def(BRANCH_CI).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False,
        tags={SERVICE_TAG: SERVICE, BRANCH_TAG: "feature/ledger", COMMIT_TAG: sha},
    )
    assert not result.success
    setup.lookups.unlink()  # the run read its commit itself; what follows is the sensors' doing

    # The run started and ended between two ticks: the end sensor may report first, then the start sensor.
    setup.evaluate(instance, result, DagsterRunStatus.FAILURE)
    setup.evaluate(instance, result, DagsterRunStatus.STARTED)

    (received,) = smtp_server.received
    assert received.rcpt_tos == [AUTHOR]
    assert received.message["From"] == "ci@bank.example"
    assert received.message["Subject"] == (
        f"[fintech-release] FAILURE: {SERVICE} feature/ledger @ {sha[:12]} (failed at tests)"
    )
    body = received.message.get_content()
    assert "Tests:        3 passed, 1 failed, 0 errors, 0 skipped: LedgerTest.totals" in body
    assert f"Run:          {DAGSTER_URL}/runs/{result.run_id}" in body
    assert f"Commit:       {sha}" in body and "branch_ci" in body
    (ended,) = setup.published()  # no INPROGRESS after the end: FAILED stands
    assert ended.state == "FAILED"
    assert ended.sha == sha and ended.key == f"fintech-release-{BRANCH_CI}" and ended.description == "failed at tests"
    assert ended.url == f"{DAGSTER_URL}/runs/{result.run_id}"
    logs = capfd.readouterr().err
    assert f"build status FAILED of {sha[:12]} not published" in logs
    assert f"emailed the result of run {result.run_id} to {AUTHOR}" in logs
    assert f"run {result.run_id} already ended (FAILURE): its start is not reported" in logs
    assert setup.looked_up() == [sha]  # the author of a branch commit is read once


def test_successful_master_run_mails_the_group_with_the_build_tests_summary(
    tmp_path: Path, repo: GitBareRepo, instance: DagsterInstance, smtp_server: SmtpServer  # noqa: F811
) -> None:
    setup = Setup(_config(tmp_path, repo, smtp_server.port), tmp_path, smtp_server,
                  FixedResultsBuildTool(tests=5, failed_tests=[]))
    sha = repo.head()
    result = setup.defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
        instance=instance, partition_key=SERVICE, asset_selection=[BUILD_TESTS], run_config=QUIET,
        tags={COMMIT_TAG: sha},  # as the CLI and the demo launch it: no service or branch tag
    )
    assert result.success
    setup.lookups.unlink()  # the run read its commit itself; what follows is the sensors' doing

    setup.evaluate(instance, result, DagsterRunStatus.SUCCESS)

    (received,) = smtp_server.received
    assert sorted(received.rcpt_tos) == sorted(GROUP)
    assert received.message["Subject"] == f"[fintech-release] SUCCESS: {SERVICE} master @ {sha[:12]}"
    body = received.message.get_content()
    assert "Tests:        5 passed, 0 failed, 0 errors, 0 skipped" in body
    assert "Failing step: -" in body
    (status,) = setup.published()
    assert (status.state, status.key, status.description) == ("SUCCESSFUL", "fintech-release-build_and_push", "passed")
    assert setup.looked_up() == []  # the release branch's result goes to the group: no author needed


def test_undeliverable_email_and_no_email_settings_never_fail_the_sensor(
    tmp_path: Path, repo: GitBareRepo, instance: DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    sha = repo.head()
    nowhere = SmtpServer("127.0.0.1", free_port(), handler=None)  # nothing listens there
    for smtp in (nowhere, None):
        folder = tmp_path / ("nowhere" if smtp else "no-email")
        folder.mkdir()
        setup = Setup(_config(folder, repo, smtp.port if smtp else None), folder, smtp,
                      FixedResultsBuildTool(tests=2, failed_tests=["A.b"]))
        result = setup.defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
            instance=instance, partition_key=SERVICE, asset_selection=[BUILD_TESTS], run_config=QUIET,
            tags={COMMIT_TAG: sha}, raise_on_error=False,
        )
        assert not result.success  # the tests_passed gate failed
        setup.evaluate(instance, result, DagsterRunStatus.FAILURE)
        (status,) = setup.published()
        assert (status.state, status.description) == ("FAILED", "failed at build/tests")
    logs = capfd.readouterr().err
    assert "the result of run" in logs and "was not emailed" in logs and "ConnectionRefusedError" in logs


def test_a_running_run_is_reported_in_progress(
    tmp_path: Path, repo: GitBareRepo, instance: DagsterInstance
) -> None:
    setup = Setup(_config(tmp_path, repo, None), tmp_path, None, FixedResultsBuildTool(failed_tests=[]))
    sha = _feature_commit(repo, {"NOTES.md": "ledger\n"})
    run = create_run_for_test(
        instance, job_name=BRANCH_CI, status=DagsterRunStatus.STARTED,
        tags={SERVICE_TAG: SERVICE, BRANCH_TAG: "feature/ledger", COMMIT_TAG: sha},
    )
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=BRANCH_CI), run_id=run.run_id
    )

    setup.evaluate(instance, run.run_id, DagsterRunStatus.STARTED)

    (status,) = setup.published()
    assert (status.state, status.sha, status.description) == ("INPROGRESS", sha, "running")
    assert status.url == f"{DAGSTER_URL}/runs/{run.run_id}"


def test_a_report_stops_waiting_when_its_time_budget_is_spent(
    tmp_path: Path, repo: GitBareRepo, instance: DagsterInstance, smtp_server: SmtpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(notification_sensors, "REPORT_BUDGET_SECONDS", 1.0)
    delay = 4.0
    setup = Setup(_config(tmp_path, repo, smtp_server.port), tmp_path, smtp_server,
                  FixedResultsBuildTool(failed_tests=[]), publish_delay_seconds=delay)
    result = setup.defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
        instance=instance, partition_key=SERVICE, asset_selection=[BUILD_TESTS], run_config=QUIET,
        tags={COMMIT_TAG: repo.head()},
    )

    started = time.monotonic()
    setup.evaluate(instance, result, DagsterRunStatus.SUCCESS)

    assert time.monotonic() - started < delay  # did not wait for the slow build status
    logs = capfd.readouterr().err
    assert f"build status of {SERVICE} {repo.head()[:12]} abandoned: not done within this report's 1 s" in logs
    assert f"email of run {result.run_id} skipped: this report's 1 s were spent" in logs
    assert smtp_server.received == []
