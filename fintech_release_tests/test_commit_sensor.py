"""The commit sensor against real bare git repositories (git, on disk) and a real Dagster instance.

Ticks are evaluated with `build_sensor_context`, carrying the cursor from one tick to the next as
the daemon does; a launched run is stood in for by a run record with the request's tags on the
instance (what the daemon, the webhook or the CLI would leave behind). `CountingSource` is
LocalGitSource counting the calls made to it. No Gradle or Docker here.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.jobs import BRANCH_CI, BUILD_AND_PUSH
from fintech_release.records.keys import (
    BRANCH_TAG,
    COMMIT_TAG,
    SERVICE_TAG,
    SOURCE_COMMIT,
)
from fintech_release.release_graph import build_definitions
from fintech_release.resources.source import CommitInfo, LocalGitSource
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.release_setup import write_release_config

pytestmark = pytest.mark.integration

SERVICES = ("contact-us", "payments", "accounts")


class CountingSource(LocalGitSource):
    """LocalGitSource that appends the name of every method called on it to `record_path`.

    (A file, not a field: Dagster hands the sensor a copy of the resource.)
    """

    record_path: str

    def calls(self) -> Counter[str]:
        """How often each method was called since the last `forget()`."""
        path = Path(self.record_path)
        return Counter(path.read_text().split()) if path.exists() else Counter()

    def forget(self) -> None:
        """Start counting from zero."""
        Path(self.record_path).unlink(missing_ok=True)

    def _record(self, method: str) -> None:
        with open(self.record_path, "a") as record:
            record.write(method + "\n")

    def branch_heads(self, *, repository: str) -> dict[str, str]:
        self._record("branch_heads")
        return super().branch_heads(repository=repository)

    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        self._record("commit")
        return super().commit(repository=repository, sha=sha, branch=branch)

    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        self._record("latest_commit")
        return super().latest_commit(repository=repository, branch=branch)

    def recent_commits(self, *, repository: str, branch: str, limit: int = 20) -> list[CommitInfo]:
        self._record("recent_commits")
        return super().recent_commits(repository=repository, branch=branch, limit=limit)


class Ticker:
    """Evaluates the commit sensor tick after tick, keeping its cursor as the daemon does."""

    def __init__(self, config: ReleaseConfig, instance: DagsterInstance, source: LocalGitSource | None = None) -> None:
        self.sensor = build_definitions(config).resolve_sensor_def(COMMIT_SENSOR)
        self.instance = instance
        self.source = source or LocalGitSource()
        self.cursor: str | None = None

    def tick(self, cursor: str | None = None) -> SensorResult:
        context = build_sensor_context(
            instance=self.instance,
            cursor=cursor if cursor is not None else self.cursor,
            resources={"source": self.source},
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


def test_a_new_release_head_is_observed_with_the_commits_and_authors_since_the_last_one(
    ticker: Ticker, repos: dict[str, GitBareRepo]
) -> None:
    repo = repos["contact-us"]
    repo.commit({"1.txt": "1\n"}, "One", author_email="grace@bank.example")
    repo.commit({"2.txt": "2\n"}, "Two", author_email="ada@bank.example")
    head = repo.commit({"3.txt": "3\n"}, "Three", author_email="grace@bank.example")
    (observation,) = ticker.tick().asset_events
    assert observation.partition == "contact-us" and observation.metadata["sha"].value == head
    assert observation.metadata["commits_since_last"].value == 3
    assert observation.metadata["authors_since_last"].value == ["ada@bank.example", "grace@bank.example"]
    assert observation.metadata["history_complete"].value is True


def test_a_quiet_tick_lists_branches_once_per_repository_and_reads_no_commit(
    tmp_path: Path, repos: dict[str, GitBareRepo], instance: DagsterInstance
) -> None:
    for name in SERVICES:
        _commit_on(repos[name], "feature/login", f"Login {name}")
    source = CountingSource(record_path=str(tmp_path / "calls.txt"))
    ticker = Ticker(_config(tmp_path, repos), instance, source)
    ticker.tick()
    # The baseline reads each release-branch head once, for its observation; the feature heads need no read.
    assert source.calls() == {"branch_heads": 3, "commit": 3}
    source.forget()
    assert ticker.tick().run_requests == []
    assert source.calls() == {"branch_heads": 3}
    source.forget()
    _commit_on(repos["payments"], "feature/login", "More login")
    (request,) = ticker.tick().run_requests
    assert request.job_name == BRANCH_CI and source.calls() == {"branch_heads": 3}
    source.forget()
    repos["payments"].commit({"m.txt": "m\n"}, "On master", author_email="ada@bank.example")
    (request,) = ticker.tick().run_requests
    assert request.job_name == BUILD_AND_PUSH
    assert source.calls() == {"branch_heads": 3, "commit": 1, "recent_commits": 1}


def test_a_branch_pattern_added_later_builds_only_what_is_pushed_after_it(
    tmp_path: Path, repos: dict[str, GitBareRepo], instance: DagsterInstance
) -> None:
    _commit_on(repos["accounts"], "release/2.0", "Old release branch")
    before = Ticker(_config(tmp_path, repos, patterns=("feature/*",)), instance)
    before.tick()
    assert before.tick().run_requests == []
    after = Ticker(_config(tmp_path, repos, patterns=("feature/*", "release/*")), instance)
    after.cursor = before.cursor
    assert after.tick().run_requests == []  # the existing release/2.0 head was in the cursor already
    sha = _commit_on(repos["accounts"], "release/2.0", "Fix on the release branch")
    (request,) = after.tick().run_requests
    assert request.job_name == BRANCH_CI and dict(request.tags)[BRANCH_TAG] == "release/2.0"
    assert request.tags[COMMIT_TAG] == sha
