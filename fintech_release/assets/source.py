"""source/commit: the commit at the head of each service's branch, recorded as it is seen (Dagster does not build it).

Each new head is a runless materialization of source/commit[service] (from the commit sensor, also
for commits the webhook launched, and from `fintech-release observe`), so the UI shows every
service's head as current, with the commit sha as its data version: everything built from an older
commit shows as stale.
"""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    DagsterInstance,
    Failure,
    PartitionsDefinition,
)
from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SOURCE_COMMIT
from fintech_release.resources.source import CommitInfo, SourceControl

# The tag Dagster reads a runless event's data version from (what `DataVersion` means for them).
DATA_VERSION_TAG = "dagster/data_version"


class CommitRef(BaseModel, frozen=True):
    """The commit a run builds, and who wrote it (four-eyes approvals need the author)."""

    sha: str
    branch: str
    author_email: str
    committed_at: str = ""  # ISO 8601; lead time for changes counts from it


def source_commit_spec(partitions_def: PartitionsDefinition) -> AssetSpec:
    """The recorded asset at the root of the graph; its data version is the commit sha."""
    return AssetSpec(
        key=SOURCE_COMMIT,
        description="Head commit of the service's release branch, recorded when the commit sensor or "
        "`fintech-release observe` sees it; data version = commit sha.",
        partitions_def=partitions_def,
        group_name="source",
        kinds={"git"},
    )


def head_commit(config: ReleaseConfig, source: SourceControl, service: str) -> AssetMaterialization:
    """Read the head of `service`'s branch and describe it as a materialization of source/commit."""
    settings = config.service(service)
    commit = source.latest_commit(repository=config.repository_ref(settings), branch=settings.branch)
    return commit_record(service, commit)


def commit_record(service: str, commit: CommitInfo) -> AssetMaterialization:
    """A materialization of source/commit[service] whose data version is the commit sha."""
    return AssetMaterialization(
        asset_key=SOURCE_COMMIT,
        partition=service,
        tags={DATA_VERSION_TAG: commit.sha},
        metadata={
            "sha": commit.sha,
            "branch": commit.branch,
            "author": f"{commit.author_name} <{commit.author_email}>",
            "author_email": commit.author_email,
            "committed_at": commit.committed_at.isoformat(),
            "message": commit.message,
        },
    )


def resolve_commit(context: AssetExecutionContext, config: ReleaseConfig, source: SourceControl) -> CommitRef:
    """The commit this run builds: the run's commit tag, else the last observed head of the branch."""
    service = config.service(context.partition_key)
    tags = context.run.tags
    if COMMIT_TAG in tags:
        branch = tags.get(BRANCH_TAG, service.branch)
        repository = config.repository_ref(service)
        commit = source.commit(repository=repository, sha=tags[COMMIT_TAG], branch=branch)
        return CommitRef(
            sha=commit.sha, branch=branch, author_email=commit.author_email,
            committed_at=commit.committed_at.isoformat(),
        )
    observed = latest_materialization_metadata(context.instance, SOURCE_COMMIT, service.name)
    if observed is None:
        raise Failure(
            f"no commit of {service.name} has been seen yet: run `fintech-release observe` "
            f"(or the commit sensor), or launch the run with the tag {COMMIT_TAG}=<sha>"
        )
    return CommitRef(
        sha=str(observed["sha"]), branch=str(observed["branch"]), author_email=str(observed["author_email"]),
        committed_at=str(observed.get("committed_at", "")),
    )


def report_head_commits(instance: DagsterInstance, config: ReleaseConfig, source: SourceControl) -> dict[str, str]:
    """Record every service's head commit outside any run; return service -> sha."""
    heads: dict[str, str] = {}
    for service in config.service_names:
        head = head_commit(config, source, service)
        instance.report_runless_asset_event(head)
        heads[service] = str(head.metadata["sha"].value)
    return heads
