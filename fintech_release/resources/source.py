"""Source control: where commits come from. `LocalGitSource` reads bare git repositories on disk."""

from __future__ import annotations

import os
import shutil
from abc import abstractmethod
from datetime import datetime
from pathlib import Path
from subprocess import CompletedProcess

from dagster import ConfigurableResource
from pydantic import BaseModel

from fintech_release.errors import ExternalSystemError, ToolFailedError
from fintech_release.resources._process import run_tool

GIT_HINT = "Install git (apt-get install git)."


class CommitInfo(BaseModel, frozen=True):
    """One commit at the head of a branch."""

    sha: str
    branch: str
    author_name: str
    author_email: str
    committed_at: datetime
    message: str


class SourceControl(ConfigurableResource):
    """Reads commits from a service's repository and checks them out for a build."""

    @abstractmethod
    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        """The commit at the head of `branch`."""

    @abstractmethod
    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        """The commit `sha` (reached from `branch`)."""

    @abstractmethod
    def checkout(self, *, repository: str, sha: str, destination: Path) -> Path:
        """A working tree of `sha` at `destination` (reused when it already holds that commit)."""


class LocalGitSource(SourceControl):
    """Bare git repositories on disk, as a Bitbucket project would hold them."""

    git_executable: str = "git"
    timeout_seconds: float = 120

    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        return self._describe(repository, branch, branch=branch, what="branch")

    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        return self._describe(repository, sha, branch=branch, what="commit")

    def _describe(self, repository: str, revision: str, *, branch: str, what: str) -> CommitInfo:
        self._require_repository(repository)
        separator = "\x1f"
        fields = separator.join(["%H", "%an", "%ae", "%cI", "%s"])
        try:
            completed = self._git("--git-dir", repository, "log", "-1", f"--format={fields}", revision, "--")
        except ToolFailedError:
            raise ExternalSystemError(f"repository {repository}: {what} {revision!r} not found") from None
        sha, name, email, when, subject = completed.stdout.rstrip("\n").split(separator, 4)
        return CommitInfo(
            sha=sha,
            branch=branch,
            author_name=name,
            author_email=email,
            committed_at=datetime.fromisoformat(when),
            message=subject,
        )

    def checkout(self, *, repository: str, sha: str, destination: Path) -> Path:
        self._require_repository(repository)
        if self._head_of(destination) == sha:
            return destination
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        # Clone beside the destination and rename, so a concurrent step never sees half a tree.
        staging = destination.with_name(f"{destination.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        self._git("clone", "--quiet", "--no-checkout", repository, str(staging))
        self._git("-C", str(staging), "checkout", "--quiet", "--detach", sha)
        try:
            staging.rename(destination)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if self._head_of(destination) != sha:
                raise
        return destination

    def _head_of(self, worktree: Path) -> str | None:
        if not (worktree / ".git").exists():
            return None
        completed = self._git("-C", str(worktree), "rev-parse", "HEAD", check=False)
        return completed.stdout.strip() if completed.returncode == 0 else None

    def _require_repository(self, repository: str) -> None:
        completed = self._git("--git-dir", repository, "rev-parse", "--git-dir", check=False)
        if completed.returncode != 0:
            raise ExternalSystemError(f"repository {repository} does not exist or is not a git repository")

    def _git(self, *args: str, check: bool = True) -> CompletedProcess[str]:
        return run_tool(
            [self.git_executable, *args],
            tool="git",
            install_hint=GIT_HINT,
            timeout_seconds=self.timeout_seconds,
            check=check,
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
