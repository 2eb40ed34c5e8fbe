"""A secret's environment variable that is not set is one line naming it and how to set it: from a CLI command
before any run starts, and from a run executed as the UI launches it (a run worker per step, the multiprocess
executor), at the step that sets the resource up, before it touches anything. No Docker engine or database is
needed: nothing gets that far. The resources' own reading of the variables is tested with each resource."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from fintech_release.cli import report
from fintech_release_tests.release_setup import REPO_ROOT, quiet_instance

VARIABLE = "FINTECH_RELEASE_DB_PASSWORD"
ONE_LINE = f"the environment variable {VARIABLE} is not set (the password of fintech_release on MariaDB 127.0.0.1:"


@pytest.fixture
def release_yaml(tmp_path: Path) -> Path:
    """The demo's release.yaml, its state kept in the test's folder."""
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    document["local"]["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


@pytest.mark.usefixtures("without_the_password")
def test_a_command_stops_before_any_run_with_one_line(release_yaml: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "fintech_release.cli", "--config", str(release_yaml), "teardown", "ci", "--in-process"],
        env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"fintech-release: {ONE_LINE}") and done.stderr.count("\n") == 1, done.stderr
    assert f"export {VARIABLE}=" in done.stderr and "Warning" not in done.stderr
    with quiet_instance(home) as instance:
        assert instance.get_runs() == []


@pytest.mark.usefixtures("without_the_password")
def test_a_run_launched_as_the_ui_does_fails_at_its_step_with_the_same_line(
    release_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINTECH_RELEASE_CONFIG", str(release_yaml))  # what the code location loads in the run worker
    job = ReconstructableRepository.for_module("fintech_release.definitions", "defs").get_reconstructable_job(
        "teardown_ci"
    )
    with quiet_instance(tmp_path) as instance:
        result = execute_job(job, instance=instance, raise_on_error=False)
    assert not result.success
    [line] = report.failure_lines(result)
    assert line.startswith(ONE_LINE) and f"export {VARIABLE}=" in line and "\n" not in line
    assert not [event for event in result.all_events if event.is_step_success]
