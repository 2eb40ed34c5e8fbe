"""The commit sensor against real bare git repositories (git, on disk) and a real Dagster instance.

Ticks are evaluated with `build_sensor_context`, carrying the cursor from one tick to the next as
the daemon does; a launched run is stood in for by a run record with the request's tags on the
instance (what the daemon, the webhook or the CLI would leave behind). No Gradle or Docker here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from fintech_release.assets.keys import (
    BRANCH_TAG,
    COMMIT_TAG,
    SERVICE_TAG,
    SOURCE_COMMIT,
)
from fintech_release.commit_sensor import COMMIT_SENSOR
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.jobs import BRANCH_CI, BUILD_AND_PUSH
from fintech_release.release_graph import build_definitions
from fintech_release.resources.source import LocalGitSource
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.release_setup import quiet_instance, write_release_config

pytestmark = pytest.mark.integration

SERVICES = ("contact-us", "payments", "accounts")


class Ticker:
    """Evaluates the commit sensor tick after tick, keeping its cursor as the daemon does."""

    def __init__(self, config: ReleaseConfig, instance: DagsterInstance) -> None:
        self.sensor = build_definitions(config).resolve_sensor_def(COMMIT_SENSOR)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self, cursor: str | None = None) -> SensorResult:
        context = build_sensor_context(
            instance=self.instance,
            cursor=cursor if cursor is not None else self.cursor,
            resources={"source": LocalGitSource()},
        )
        result = self.sensor(context)
        self.cursor = result.cursor
        return result


def _config(root: Path, repos: dict[str, GitBareRepo], patterns: tuple[str, ...] = ("feature/*",)) -> ReleaseConfig:
    config = write_release_config(root, {name: repo.bare_path for name, repo in repos.items()},
                                  registry_host="127.0.0.1:5000")
    document = yaml.safe_load(config.source.read_text())
    document["source_control"] = {"branch_patterns": list(patterns), "poll_interval_seconds": 30}
    config.source.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(config.source)


def _commit_on(repo: GitBareRepo, branch: str, message: str) -> str:
    """Commit in the work tree and push it to `branch` of the bare repository."""
    release_branch, repo.branch = repo.branch, branch
    try:
        return repo.commit({f"{message.replace(' ', '-')}.txt": message}, message, author_email="ada@bank.example")
    finally:
        repo.branch = release_branch


def _launched(instance: DagsterInstance, request: RunRequest) -> None:
    """Leave the run record a launched request leaves (job, partition and tags)."""
    tags = dict(request.tags)
    if request.partition_key is not None:
        tags["dagster/partition"] = request.partition_key
    create_run_for_test(instance, job_name=request.job_name, tags=tags)


@pytest.fixture
def repos(git_bare_repo_factory) -> dict[str, GitBareRepo]:
    return {name: git_bare_repo_factory(None, message=f"Start {name}") for name in SERVICES}


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster-home"
    home.mkdir()
    with quiet_instance(home) as instance:
        yield instance


@pytest.fixture
def ticker(tmp_path: Path, repos: dict[str, GitBareRepo], instance: DagsterInstance) -> Ticker:
    """A ticker whose first (baseline) tick has run."""
    ticker = Ticker(_config(tmp_path, repos), instance)
    baseline = ticker.tick()
    assert baseline.run_requests == []
    return ticker


def test_first_tick_records_the_heads_and_builds_nothing(
    tmp_path: Path, repos: dict[str, GitBareRepo], instance: DagsterInstance
) -> None:
    result = Ticker(_config(tmp_path, repos), instance).tick()
    assert result.run_requests == []
    observed = {event.partition: event.tags["dagster/data_version"] for event in result.asset_events}
    assert observed == {name: repo.head() for name, repo in repos.items()}
    assert all(event.asset_key == SOURCE_COMMIT for event in result.asset_events)


def test_a_new_commit_starts_one_run_for_exactly_that_service_over_several_ticks(
    ticker: Ticker, repos: dict[str, GitBareRepo]
) -> None:
    sha = repos["payments"].commit({"fix.txt": "fix\n"}, "Fix rounding", author_email="ada@bank.example")
    ticks = [ticker.tick() for _ in range(3)]
    requests = [request for result in ticks for request in result.run_requests]
    assert len(requests) == 1
    (request,) = requests
    assert request.job_name == BUILD_AND_PUSH
    assert request.partition_key == "payments"
    assert request.run_key == f"{BUILD_AND_PUSH}:payments:{sha}"
    assert dict(request.tags) == {COMMIT_TAG: sha, BRANCH_TAG: "master", SERVICE_TAG: "payments"}
    (observation,) = ticks[0].asset_events
    assert (observation.asset_key, observation.partition) == (SOURCE_COMMIT, "payments")
    assert observation.metadata["sha"].value == sha
    assert ticks[1].asset_events == [] and ticks[2].asset_events == []


def test_a_commit_that_already_has_a_run_is_not_requested_again_even_with_a_lost_cursor(
    ticker: Ticker, repos: dict[str, GitBareRepo]
) -> None:
    before = ticker.cursor
    sha = repos["accounts"].commit({"a.txt": "a\n"}, "Add a", author_email="ada@bank.example")
    create_run_for_test(
        ticker.instance, job_name=BUILD_AND_PUSH, tags={COMMIT_TAG: sha, "dagster/partition": "accounts"}
    )  # e.g. the webhook (or `fintech-release`) started it first
    assert ticker.tick().run_requests == []
    other = repos["contact-us"].commit({"b.txt": "b\n"}, "Add b", author_email="ada@bank.example")
    (request,) = ticker.tick().run_requests
    _launched(ticker.instance, request)
    # The sensor restarts from an old cursor: the runs on the instance still say both commits are built.
    assert ticker.tick(cursor=before).run_requests == []
    assert request.tags[COMMIT_TAG] == other


def test_a_commit_on_a_matching_branch_starts_branch_ci(ticker: Ticker, repos: dict[str, GitBareRepo]) -> None:
    sha = _commit_on(repos["contact-us"], "feature/login", "Login form")
    result = ticker.tick()
    (request,) = result.run_requests
    assert request.job_name == BRANCH_CI and request.partition_key is None
    assert dict(request.tags) == {COMMIT_TAG: sha, BRANCH_TAG: "feature/login", SERVICE_TAG: "contact-us"}
    assert result.asset_events == []  # master's source/commit is not a feature branch's head
    assert ticker.tick().run_requests == []


def test_a_commit_on_a_branch_that_matches_no_pattern_starts_nothing(
    ticker: Ticker, repos: dict[str, GitBareRepo]
) -> None:
    _commit_on(repos["contact-us"], "experiment/spike", "Try something")
    result = ticker.tick()
    assert result.run_requests == [] and result.asset_events == []


def test_an_unreadable_repository_is_skipped_and_the_others_still_progress(
    ticker: Ticker, repos: dict[str, GitBareRepo], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    hidden = tmp_path / "hidden.git"
    payments = repos["payments"].bare_path
    shutil.move(payments, hidden)
    sha = repos["accounts"].commit({"c.txt": "c\n"}, "Add c", author_email="ada@bank.example")
    (request,) = ticker.tick().run_requests
    assert request.partition_key == "accounts" and request.tags[COMMIT_TAG] == sha
    assert "payments: skipped this tick, its repository cannot be read" in capfd.readouterr().err
    # Once readable again, the commit it missed meanwhile is built (its cursor entry was kept, not reset).
    shutil.move(hidden, payments)
    missed = repos["payments"].commit({"d.txt": "d\n"}, "Add d", author_email="ada@bank.example")
    (request,) = ticker.tick().run_requests
    assert request.partition_key == "payments" and request.tags[COMMIT_TAG] == missed
