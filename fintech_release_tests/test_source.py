"""The local git source, on real bare repositories: it reads the head commit (sha, author, message), the
branches with their head shas and the newest commits of a branch, checks a commit out for a build, and says it
has no build statuses; a missing repository or branch is a clear error, and no branch, sha or remote is ever
read by git as an option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from fintech_release.assets.source import report_head_commits
from fintech_release.errors import ExternalSystemError, ToolFailedError
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import SOURCE_COMMIT
from fintech_release.resources.source import BuildStatus, LocalGitSource, checkout_commit
from fintech_release_tests.release_setup import quiet_instance, write_release_config


def test_head_commit_carries_sha_author_and_message(git_bare_repo_factory) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory("contact-us", author_name="Grace Hopper", author_email="grace@bank.example")
    sha = repo.commit({"NOTES.md": "hello\n"}, "Add release notes", author_email="alan@bank.example",
                      author_name="Alan Turing")
    commit = LocalGitSource().latest_commit(repository=str(repo.bare_path), branch="master")
    assert commit.sha == sha
    assert (commit.author_name, commit.author_email) == ("Alan Turing", "alan@bank.example")
    assert commit.message == "Add release notes"
    assert commit.committed_at.tzinfo is not None


def test_checkout_gives_the_tree_of_exactly_that_commit(git_bare_repo_factory, tmp_path: Path) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory("contact-us")
    first = repo.head()
    repo.commit({"NOTES.md": "later\n"}, "Later change", author_email="dev@example.com")
    tree = LocalGitSource().checkout(repository=str(repo.bare_path), sha=first, destination=tmp_path / "wt")
    assert (tree / "build.gradle").is_file() and not (tree / "NOTES.md").exists()
    again = LocalGitSource().checkout(repository=str(repo.bare_path), sha=first, destination=tmp_path / "wt")
    assert again == tree


def test_missing_repository_and_branch_are_named(git_bare_repo_factory, tmp_path: Path) -> None:  # noqa: ANN001
    source = LocalGitSource()
    with pytest.raises(ExternalSystemError, match=r"repository .*nowhere\.git does not exist or is not a git repo"):
        source.latest_commit(repository=str(tmp_path / "nowhere.git"), branch="master")
    with pytest.raises(ExternalSystemError, match=r"repository .*nowhere\.git does not exist or is not a git repo"):
        source.branch_heads(repository=str(tmp_path / "nowhere.git"))
    repo = git_bare_repo_factory("contact-us")
    with pytest.raises(ExternalSystemError, match=r"branch 'release/9' not found"):
        source.latest_commit(repository=str(repo.bare_path), branch="release/9")


def test_a_branch_sha_or_remote_starting_with_dash_is_never_an_option(
    git_bare_repo_factory, tmp_path: Path  # noqa: ANN001
) -> None:
    """Read as options, `--output=FILE` would make `git log` write a file and `--upload-pack=CMD` run CMD.

    release.yaml refuses such branches and repositories (test_config.py); run tags and other callers reach
    these methods too, so the git calls themselves keep every such value an argument.
    """
    repo = git_bare_repo_factory("contact-us")
    marker = tmp_path / "written-by-git"
    source = LocalGitSource()
    with pytest.raises(ExternalSystemError, match=r"branch '--output=.*' not found"):
        source.latest_commit(repository=str(repo.bare_path), branch=f"--output={marker}")
    with pytest.raises(ExternalSystemError, match=r"commit '--output=.*' not found"):
        source.commit(repository=str(repo.bare_path), sha=f"--output={marker}", branch="master")
    with pytest.raises(ExternalSystemError, match=r"'--output=.*' is not a commit sha"):
        source.checkout(repository=str(repo.bare_path), sha=f"--output={marker}", destination=tmp_path / "tree")
    with pytest.raises(ToolFailedError):
        checkout_commit(remote=f"--upload-pack=touch {marker}", sha=repo.head(), destination=tmp_path / "tree",
                        git_executable="git", timeout_seconds=60)
    assert not marker.exists()


def test_a_tag_named_like_the_branch_does_not_hide_the_branch_head(git_bare_repo_factory) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory("contact-us")
    first = repo.head()
    later = repo.commit({"NOTES.md": "later\n"}, "Later change", author_email="dev@example.com")
    subprocess.run(["git", "--git-dir", str(repo.bare_path), "tag", "master", first], check=True)
    source = LocalGitSource()
    assert source.latest_commit(repository=str(repo.bare_path), branch="master").sha == later
    assert source.recent_commits(repository=str(repo.bare_path), branch="master")[0].sha == later


def test_a_head_is_recorded_as_current_with_the_sha_as_data_version(git_bare_repo_factory, tmp_path: Path) -> None:  # noqa: ANN001
    """source/commit[payments] is materialized (the UI shows it current, not Missing) with the sha as data version."""
    repo = git_bare_repo_factory("payments", author_email="ada@bank.example")
    config = write_release_config(tmp_path, {"payments": repo.bare_path}, registry_host="127.0.0.1:5000")
    with quiet_instance(tmp_path) as instance:
        assert report_head_commits(instance, config, LocalGitSource()) == {"payments": repo.head()}
        recorded = latest_materialization_metadata(instance, SOURCE_COMMIT, "payments")
        record = instance.get_latest_data_version_record(SOURCE_COMMIT, partition_key="payments")
        partitions = instance.get_materialized_partitions(SOURCE_COMMIT)
    assert recorded["sha"] == repo.head() and recorded["author_email"] == "ada@bank.example"
    assert record.asset_materialization.tags["dagster/data_version"] == repo.head()
    assert partitions == {"payments"}


def test_branch_heads_are_listed_with_their_shas(git_bare_repo_factory) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory("contact-us")
    first = repo.head()
    later = repo.commit({"NOTES.md": "later\n"}, "Later change", author_email="dev@example.com")
    for branch in ("feature/login", "release/1.0"):
        subprocess.run(["git", "--git-dir", str(repo.bare_path), "branch", branch, first], check=True)
    # A tag named like a branch must not make the branch's short name ambiguous.
    subprocess.run(["git", "--git-dir", str(repo.bare_path), "tag", "feature/login", later], check=True)
    heads = LocalGitSource().branch_heads(repository=str(repo.bare_path))
    assert heads == {"feature/login": first, "master": later, "release/1.0": first}
    assert list(heads) == ["feature/login", "master", "release/1.0"]


def test_recent_commits_are_newest_first_and_limited(git_bare_repo_factory) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory(None, author_email="grace@bank.example")
    shas = [repo.head()]
    for number, email in enumerate(["alan@bank.example", "ada@bank.example", "edsger@bank.example"], start=1):
        shas.append(repo.commit({f"{number}.txt": "x\n"}, f"Change {number}\n\nBody.", author_email=email))
    source = LocalGitSource()
    recent = source.recent_commits(repository=str(repo.bare_path), branch="master", limit=3)
    assert [c.sha for c in recent] == shas[::-1][:3]
    assert [c.author_email for c in recent] == ["edsger@bank.example", "ada@bank.example", "alan@bank.example"]
    assert recent[0].message == "Change 3" and {c.branch for c in recent} == {"master"}
    assert len(source.recent_commits(repository=str(repo.bare_path), branch="master")) == 4
    with pytest.raises(ExternalSystemError, match=r"branch 'nope' not found"):
        source.recent_commits(repository=str(repo.bare_path), branch="nope")


def test_a_bare_repository_has_no_build_status(git_bare_repo_factory) -> None:  # noqa: ANN001
    repo = git_bare_repo_factory("contact-us")
    status = BuildStatus(sha=repo.head(), state="SUCCESSFUL", key="fintech-release-ci", name="CI",
                         url="http://127.0.0.1:3000/runs/1")
    assert LocalGitSource().publish_build_status(repository=str(repo.bare_path), status=status) is False


def test_build_status_accepts_only_the_three_states() -> None:
    with pytest.raises(ValidationError, match="state"):
        BuildStatus(
            sha="a" * 40, state="STOPPED", key="ci", name="CI", url="http://127.0.0.1/runs/1"  # type: ignore[arg-type]
        )
