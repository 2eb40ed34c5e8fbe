"""Which run a commit starts: one place for the commit sensor and the webhook to agree on.

A commit on a service's release branch runs `build_and_push` for that service's partition (its
lineage is the release's lineage); a commit on a branch matching `source_control.branch_patterns`
runs `branch_ci`, which builds and tests without pushing, deploying or touching master's assets.
Both carry the same tags, and the run key makes a commit start one run however often it is seen.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.jobs import BRANCH_CI, BUILD_AND_PUSH
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SERVICE_TAG

PARTITION_TAG = "dagster/partition"  # the tag Dagster gives every partitioned run


class CiRun(BaseModel, frozen=True):
    """The run one commit of one service should start."""

    job_name: str
    service: str
    branch: str
    sha: str
    partition_key: str | None  # build_and_push is partitioned by service; branch_ci is not

    @property
    def run_key(self) -> str:
        """Unique per job, service and commit: the same commit never starts a second run."""
        return f"{self.job_name}:{self.service}:{self.sha}"

    @property
    def tags(self) -> dict[str, str]:
        """Tags every CI run carries; the build assets read the commit from them."""
        return {COMMIT_TAG: self.sha, BRANCH_TAG: self.branch, SERVICE_TAG: self.service}

    @property
    def identity_tags(self) -> dict[str, str]:
        """Tags that say a run of this job already builds this commit, however it was launched.

        Runs the CLI and the demo launch carry the commit and their partition but no service tag, so
        build_and_push is matched on (commit, partition) and branch_ci on (commit, service).
        """
        if self.partition_key is not None:
            return {COMMIT_TAG: self.sha, PARTITION_TAG: self.partition_key}
        return {COMMIT_TAG: self.sha, SERVICE_TAG: self.service}


def ci_run_for(config: ReleaseConfig, service: str, branch: str, sha: str) -> CiRun | None:
    """The run a commit on `branch` of `service` starts, or None when that branch is not built."""
    settings = config.service(service)
    if branch == settings.branch:
        return CiRun(job_name=BUILD_AND_PUSH, service=service, branch=branch, sha=sha, partition_key=service)
    if is_watched_branch(config, branch):
        return CiRun(job_name=BRANCH_CI, service=service, branch=branch, sha=sha, partition_key=None)
    return None


def is_watched_branch(config: ReleaseConfig, branch: str) -> bool:
    """True when `branch` matches one of `source_control.branch_patterns` (fnmatch, case-sensitive)."""
    return any(fnmatchcase(branch, pattern) for pattern in config.source_control.branch_patterns)


def service_for_repository(config: ReleaseConfig, repository: str) -> str | None:
    """The service whose `repository` is `repository`: a Bitbucket slug, or a local bare repository's name.

    A local `.demo/git/payments.git` answers to `payments`, as its Bitbucket twin would.
    """
    for service in config.services:
        name = service.repository.rstrip("/").split("/")[-1].removesuffix(".git")
        if repository in (service.repository, name):
            return service.name
    return None
