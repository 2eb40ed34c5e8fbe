"""Source control: where commits come from, and where build results go back to.

`SourceControl` is the interface assets use; `LocalGitSource` reads bare git repositories on disk.
The Bitbucket implementations live in `fintech_release.resources.bitbucket`. Checking a commit out
is one piece of code (`checkout_commit`) for every implementation: a local path and an HTTPS remote
differ only in the remote and in the environment git runs with.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Literal

from dagster import ConfigurableResource
from pydantic import BaseModel, Field

from fintech_release.errors import ExternalSystemError, ToolFailedError
from fintech_release.resources._process import run_tool

GIT_HINT = "Install git (apt-get install git)."
# git log fields, separated by the ASCII unit separator; commits are NUL-separated (`git log -z`).
_FIELD_SEPARATOR = "\x1f"
_LOG_FORMAT = _FIELD_SEPARATOR.join(["%H", "%an", "%ae", "%cI", "%s"])


class CommitInfo(BaseModel, frozen=True):
    """One commit of a branch."""

    sha: str
    branch: str
    author_name: str
    author_email: str
    committed_at: datetime
    message: str


BuildState = Literal["INPROGRESS", "SUCCESSFUL", "FAILED"]


class BuildStatus(BaseModel, frozen=True):
    """The result of one pipeline for one commit, as the source platform shows it next to the commit.

    `key` names the pipeline (one key per pipeline, e.g. "fintech-release-ci"): publishing again with
    the same key replaces the earlier status of that commit, so INPROGRESS later becomes SUCCESSFUL.
    """

    sha: str = Field(min_length=7, max_length=64, pattern=r"^[0-9a-f]+$")
    state: BuildState
    key: str = Field(min_length=1, max_length=40)  # Bitbucket Cloud rejects longer keys (HTTP 400)
    name: str = Field(min_length=1, max_length=255)
    url: str = Field(pattern=r"^https?://", max_length=450)  # the Dagster run
    description: str = Field(default="", max_length=255)


class SourceControl(ConfigurableResource):
    """Reads commits from a service's repository, checks them out for a build and reports build results."""

    @abstractmethod
    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        """The commit at the head of `branch`."""

    @abstractmethod
    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        """The commit `sha` (reached from `branch`)."""

    @abstractmethod
    def checkout(self, *, repository: str, sha: str, destination: Path) -> Path:
        """A working tree of `sha` at `destination` (reused when it already holds that commit)."""

    @abstractmethod
    def branch_heads(self, *, repository: str) -> dict[str, str]:
        """Every branch of the repository with the sha of its head commit (branch -> sha), sorted by branch."""

    @abstractmethod
    def recent_commits(self, *, repository: str, branch: str, limit: int = 20) -> list[CommitInfo]:
        """Up to `limit` commits reachable from `branch`, newest first."""

    @abstractmethod
    def publish_build_status(self, *, repository: str, status: BuildStatus) -> bool:
        """Show `status` next to its commit; False when the platform has no build statuses."""


class LocalGitSource(SourceControl):
    """Bare git repositories on disk, as a Bitbucket project would hold them."""

    git_executable: str = "git"
    timeout_seconds: float = 120

    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        return self._log(repository, f"refs/heads/{branch}", branch=branch, what="branch", limit=1)[0]

    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        return self._log(repository, sha, branch=branch, what="commit", limit=1)[0]

    def recent_commits(self, *, repository: str, branch: str, limit: int = 20) -> list[CommitInfo]:
        return self._log(repository, f"refs/heads/{branch}", branch=branch, what="branch", limit=limit)

    def branch_heads(self, *, repository: str) -> dict[str, str]:
        # One git process: the commit sensor lists every repository on every tick. Only a listing that fails
        # asks whether the repository is there at all, to say so.
        try:
            completed = self._git(
                f"--git-dir={repository}", "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"
            )
        except ToolFailedError:
            self._require_repository(repository)
            raise
        heads = (line.split(" ", 1) for line in completed.stdout.splitlines() if line)
        return dict(sorted((ref.removeprefix("refs/heads/"), sha) for sha, ref in heads))

    def publish_build_status(self, *, repository: str, status: BuildStatus) -> bool:
        return False  # a bare repository has nowhere to show a build status

    def checkout(self, *, repository: str, sha: str, destination: Path) -> Path:
        self._require_repository(repository)
        return checkout_commit(
            remote=repository,
            sha=sha,
            destination=destination,
            git_executable=self.git_executable,
            timeout_seconds=self.timeout_seconds,
        )

    def _log(self, repository: str, revision: str, *, branch: str, what: str, limit: int) -> list[CommitInfo]:
        """`git log` of `revision`: a branch as refs/heads/<branch> (never a tag of the same name), or a sha.

        --end-of-options keeps a revision that starts with '-' (from a run tag, say) from being read as an option.
        """
        try:
            completed = self._git(
                f"--git-dir={repository}", "log", "-z", f"--max-count={limit}", f"--format={_LOG_FORMAT}",
                "--end-of-options", revision, "--",
            )
        except ToolFailedError:
            self._require_repository(repository)  # one git process when it works; why, when it does not
            shown = revision.removeprefix("refs/heads/")
            raise ExternalSystemError(f"repository {repository}: {what} {shown!r} not found") from None
        return [_parse_log_entry(entry, branch) for entry in completed.stdout.split("\0") if entry.strip()]

    def _require_repository(self, repository: str) -> None:
        completed = self._git(f"--git-dir={repository}", "rev-parse", "--git-dir", check=False)
        if completed.returncode != 0:
            raise ExternalSystemError(f"repository {repository} does not exist or is not a git repository") from None

    def _git(self, *args: str, check: bool = True) -> CompletedProcess[str]:
        return run_git(*args, git_executable=self.git_executable, timeout_seconds=self.timeout_seconds, check=check)


def _parse_log_entry(entry: str, branch: str) -> CommitInfo:
    sha, name, email, when, subject = entry.strip("\n").split(_FIELD_SEPARATOR, 4)
    return CommitInfo(
        sha=sha,
        branch=branch,
        author_name=name,
        author_email=email,
        committed_at=datetime.fromisoformat(when),
        message=subject,
    )


def run_git(
    *args: str,
    git_executable: str,
    timeout_seconds: float,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> CompletedProcess[str]:
    """Run git non-interactively (it never prompts for credentials); `env` adds to the environment."""
    return run_tool(
        [git_executable, *args],
        tool="git",
        install_hint=GIT_HINT,
        timeout_seconds=timeout_seconds,
        check=check,
        env={"GIT_TERMINAL_PROMPT": "0", **(env or {})},
    )


def checkout_commit(
    *,
    remote: str,
    sha: str,
    destination: Path,
    git_executable: str,
    timeout_seconds: float,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Clone `remote` and check `sha` out at `destination`; reuse `destination` when it already holds `sha`.

    `env` is passed to the clone only (e.g. credentials as GIT_CONFIG_* variables), so nothing of it is
    written into the working tree's configuration. `sha` must be a hexadecimal object name and `remote`
    follows `--`, so neither can be read as an option.
    """
    if not re.fullmatch(r"[0-9a-f]{4,64}", sha):
        raise ExternalSystemError(f"repository {remote}: {sha[:80]!r} is not a commit sha")

    def git(*args: str, check: bool = True, extra_env: Mapping[str, str] | None = None) -> CompletedProcess[str]:
        return run_git(*args, git_executable=git_executable, timeout_seconds=timeout_seconds, env=extra_env,
                       check=check)

    def head_of(worktree: Path) -> str | None:
        if not (worktree / ".git").exists():
            return None
        completed = git("-C", str(worktree), "rev-parse", "HEAD", check=False)
        return completed.stdout.strip() if completed.returncode == 0 else None

    if head_of(destination) == sha:
        return destination
    if destination.exists():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Clone beside the destination and rename, so a concurrent step never sees half a tree.
    staging = destination.with_name(f"{destination.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        git("clone", "--quiet", "--no-checkout", "--", remote, str(staging), extra_env=env)
        git("-C", str(staging), "checkout", "--quiet", "--detach", sha)
        staging.rename(destination)
    except OSError:
        if head_of(destination) != sha:
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
