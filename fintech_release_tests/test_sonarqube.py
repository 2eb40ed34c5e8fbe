"""SonarQube analysis (`analysis.platform: sonarqube`): contract tests against a loopback stand-in serving
SonarQube's documented Web API shapes (fixtures_sonarqube.py), not a real SonarQube.

The submission runs for real as far as it can here: the real `SonarQubeAnalyzer` downloads the engine the
stand-in serves (a real jar compiled by the test, which writes report-task.txt as the engine does and analyses
nothing), checks its sha256, runs it with `java -jar` and reads the task id back. The task is then followed
through `api/ce/task` and the gate read from `api/qualitygates/project_status`, and `analyze` (the function
behind the `analysis` asset and branch_ci) turns the server's verdict into the quality_gate result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fintech_release.assets.build import analyze
from fintech_release.config import ReleaseConfig
from fintech_release.resources.sonarqube import SonarQubeAnalyzer, SonarQubeError
from fintech_release_tests.fixtures_sonarqube import (  # noqa: F401 (fixtures)
    TASK_ID,
    TOKEN,
    SonarQubeStandIn,
    fake_engine_jar,
    received_settings,
    sonarqube,
)
from fintech_release_tests.release_setup import EXAMPLES_DIR


def analyzer(sonar: SonarQubeStandIn, tmp_path: Path, **overrides: object) -> SonarQubeAnalyzer:
    settings = {"url": sonar.url, "token": TOKEN, "token_env": "SONAR_TOKEN", "project_key_prefix": "bank:",
                "engine_cache_dir": str(tmp_path / "engine-cache"), "poll_seconds": 0.05, "retry_wait_seconds": 0.01,
                **overrides}
    return SonarQubeAnalyzer(**settings)


@pytest.fixture
def config() -> ReleaseConfig:
    return ReleaseConfig.model_validate({
        "analysis": {"platform": "sonarqube", "sonarqube": {"url": "https://sonar.bank.example"}},
        "services": [{"name": "payments", "repository": "payments", "port": 18082}],
        "environments": [{"name": "ci"}],
    })


def test_a_pending_task_is_followed_to_a_passed_gate(
    sonarqube: SonarQubeStandIn, tmp_path: Path, config: ReleaseConfig  # noqa: F811
) -> None:
    sonarqube.task("PENDING", "IN_PROGRESS", "SUCCESS")
    sonarqube.gate("OK", ("OK", "new_coverage", "LT", "80", "91.5"))
    workdir = tmp_path / "payments"
    workdir.mkdir()

    outcome = analyze(config, analyzer(sonarqube, tmp_path), workdir, "payments")

    assert outcome.passed and outcome.verdict == "every condition met"
    assert outcome.report.server_gate is not None and outcome.report.server_gate.status == "OK"
    assert outcome.report.report_path == f"{sonarqube.url}/dashboard?id=bank:payments"
    sent = received_settings(workdir / "build" / "reports" / "analysis")
    assert sent["sonar.projectKey"] == "bank:payments" and sent["sonar.token"] == TOKEN  # on stdin, not argv
    assert sent["sonar.host.url"] == sonarqube.url and sent["sonar.projectBaseDir"] == str(workdir)
    paths = [path for path, _, _ in sonarqube.requests]
    assert paths.count("/api/ce/task") == 3 and paths[-1] == "/api/qualitygates/project_status"
    assert [accept for path, _, accept in sonarqube.requests if path == "/api/v2/analysis/engine"] == [
        "application/json", "application/octet-stream"]

    sonarqube.task("SUCCESS")
    analyze(config, analyzer(sonarqube, tmp_path), workdir, "payments")
    assert paths.count("/api/v2/analysis/engine") == 2  # the engine is cached by its sha256: asked, not downloaded


def test_a_failed_gate_names_every_condition_sonarqube_reports(
    sonarqube: SonarQubeStandIn, tmp_path: Path, config: ReleaseConfig  # noqa: F811
) -> None:
    sonarqube.task("SUCCESS")
    sonarqube.gate(
        "ERROR",
        ("ERROR", "new_coverage", "LT", "80", "71.2"),
        ("OK", "new_duplicated_lines_density", "GT", "3", "0.4"),
        ("ERROR", "new_security_rating", "GT", "1", "3"),
    )

    outcome = analyze(config, analyzer(sonarqube, tmp_path), tmp_path, "payments")

    assert not outcome.passed
    assert outcome.violations == [
        "new_coverage is 71.2, must not be below 80", "new_security_rating is 3, must not be above 1"]
    assert outcome.gate_metadata(config)["failed_conditions"].value == outcome.violations


def test_a_failed_task_fails_with_the_servers_reason(sonarqube: SonarQubeStandIn, tmp_path: Path) -> None:  # noqa: F811
    sonarqube.task("IN_PROGRESS", "FAILED", error="Unsupported language: the project has no Java files")

    with pytest.raises(SonarQubeError) as failed:
        analyzer(sonarqube, tmp_path).analyze(source_dir=tmp_path, report_dir=tmp_path / "r", project="payments")

    assert str(failed.value) == (
        f"SonarQube task {TASK_ID} of payments ended FAILED: Unsupported language: the project has no Java files "
        f"({sonarqube.url}/api/ce/task?id={TASK_ID})"
    )


def test_a_rejected_token_is_named_by_its_variable_never_shown(
    sonarqube: SonarQubeStandIn, tmp_path: Path  # noqa: F811
) -> None:
    with pytest.raises(SonarQubeError) as rejected:
        analyzer(sonarqube, tmp_path, token="squ_revoked").wait_for_task(TASK_ID)

    assert str(rejected.value) == (
        f"SonarQube at {sonarqube.url} rejected the token (HTTP 401): put a valid user or project analysis token "
        "in the environment variable SONAR_TOKEN"
    )
    assert len(sonarqube.requests) == 1  # refused at once, no retries


def test_a_server_that_is_down_is_asked_a_bounded_number_of_times(
    sonarqube: SonarQubeStandIn, tmp_path: Path  # noqa: F811
) -> None:
    sonarqube.fail_next(503, times=10)
    with pytest.raises(SonarQubeError, match=r"did not answer api/ce/task after 3 attempts: HTTP 503$"):
        analyzer(sonarqube, tmp_path).wait_for_task(TASK_ID)
    assert len(sonarqube.requests) == 3

    stopped = sonarqube.url
    sonarqube.server.shutdown()
    sonarqube.server.server_close()
    down = SonarQubeAnalyzer(url=stopped, token=TOKEN, attempts=2, retry_wait_seconds=0.01)
    with pytest.raises(SonarQubeError, match=f"SonarQube at {stopped} did not answer api/ce/task after 2 attempts: "
                                             "ConnectionError$"):
        down.wait_for_task(TASK_ID)


def test_a_task_that_stays_pending_ends_at_its_time_limit(
    sonarqube: SonarQubeStandIn, tmp_path: Path  # noqa: F811
) -> None:
    sonarqube.task("PENDING")
    with pytest.raises(SonarQubeError, match=rf"task {TASK_ID} was still PENDING after 0.2 s"):
        analyzer(sonarqube, tmp_path, task_timeout_seconds=0.2).wait_for_task(TASK_ID)


def test_the_real_example_sources_are_given_to_the_engine(
    sonarqube: SonarQubeStandIn, tmp_path: Path  # noqa: F811
) -> None:
    sonarqube.task("SUCCESS")
    sonarqube.gate("OK")
    report = analyzer(sonarqube, tmp_path).analyze(
        source_dir=EXAMPLES_DIR / "payments", report_dir=tmp_path / "report", project="payments"
    )
    assert report.server_gate is not None and report.server_gate.violations() == []
    assert received_settings(tmp_path / "report")["sonar.sources"] == "src/main/java"
