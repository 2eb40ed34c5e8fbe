"""source/commit: the commit at the head of each service's branch, observed (Dagster does not build it)."""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    AssetSpec,
    DagsterInstance,
    Failure,
    PartitionsDefinition,
)
from pydantic import BaseModel

from fintech_release.records.event_log import latest_observation_metadata
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SOURCE_COMMIT
from fintech_release.config import ReleaseConfig
from fintech_release.resources.source import CommitInfo, SourceControl


# The tag Dagster reads an observation's data version from (what `DataVersion` means for observations).
DATA_VERSION_TAG = "dagster/data_version"


class CommitRef(BaseModel, frozen=True):
    """The commit a run builds, and who wrote it (four-eyes approvals need the author)."""

    sha: str
    branch: str
    author_email: str


def source_commit_spec(partitions_def: PartitionsDefinition) -> AssetSpec:
    """The observed asset at the root of the graph; its data version is the commit sha."""
    return AssetSpec(
        key=SOURCE_COMMIT,
        description="Head commit of the service's release branch; data version = commit sha.",
        partitions_def=partitions_def,
        group_name="source",
        kinds={"git"},
    )


def observe_head_commit(config: ReleaseConfig, source: SourceControl, service: str) -> AssetObservation:
    """Read the head of `service`'s branch and describe it as an observation of source/commit."""
    settings = config.service(service)
    commit = source.latest_commit(repository=config.repository_ref(settings), branch=settings.branch)
    return commit_observation(service, commit)


def commit_observation(service: str, commit: CommitInfo) -> AssetObservation:
    """An observation of source/commit[service] whose data version is the commit sha."""
    return AssetObservation(
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
        return CommitRef(sha=commit.sha, branch=branch, author_email=commit.author_email)
    observed = latest_observation_metadata(context.instance, SOURCE_COMMIT, service.name)
    if observed is None:
        raise Failure(
            f"no commit of {service.name} has been observed yet: run `fintech-release observe` "
            f"(or the commit sensor), or launch the run with the tag {COMMIT_TAG}=<sha>"
        )
    return CommitRef(
        sha=str(observed["sha"]), branch=str(observed["branch"]), author_email=str(observed["author_email"])
    )


def report_head_commits(instance: DagsterInstance, config: ReleaseConfig, source: SourceControl) -> dict[str, str]:
    """Record an observation of every service's head commit outside any run; return service -> sha."""
    heads: dict[str, str] = {}
    for service in config.service_names:
        observation = observe_head_commit(config, source, service)
        instance.report_runless_asset_event(observation)
        heads[service] = str(observation.metadata["sha"].value)
    return heads
