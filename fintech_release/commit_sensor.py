"""The commit sensor: poll every service's repository and start one CI run per new head commit.

Every `source_control.poll_interval_seconds` it reads, for each service, the head of its release
branch and of every branch matching `source_control.branch_patterns`. A head it has not seen
starts the run ci_runs.py names (`build_and_push` for the release branch, `branch_ci` otherwise),
and a new head of the release branch is also recorded as an observation of source/commit.

* One run per commit, whoever sees it first: a commit that already has a run (started by the
  webhook, the CLI, the demo or an earlier tick) is not requested again; the run key guards the
  rest. The check reads the instance's runs, so it holds across restarts.
* The cursor (JSON: repository -> branch -> last handled sha) advances only for what was handled.
  A repository that cannot be read is logged and skipped and keeps its old entry; the other
  services still progress.
* The first time the sensor sees a repository (an empty cursor, or a service added to
  release.yaml) it records the heads as a baseline and builds nothing: switching the sensor on
  over a dozen services must not start a dozen builds of code that is already built or released.
  Branches created later, and every later commit, are built. Launch a build of a current head
  from the UI or with `fintech-release` when you need one.
* It runs by default (`make ui` starts it for the demo too): its first tick is the baseline, so it
  never rebuilds what `make demo` built; a commit pushed to `.demo/git/<service>.git` afterwards is.
"""

import json
from typing import TYPE_CHECKING

from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from fintech_release.assets.source import commit_observation
from fintech_release.ci_runs import CiRun, ci_run_for, is_watched_branch
from fintech_release.config import ReleaseConfig
from fintech_release.errors import ExternalSystemError
from fintech_release.resources.source import CommitInfo, SourceControl

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

COMMIT_SENSOR = "commit_sensor"


def commit_sensor(
    config: ReleaseConfig, build_and_push: "UnresolvedAssetJobDefinition", branch_ci: JobDefinition
) -> SensorDefinition:
    """The sensor that turns new commits of the services in `config` into CI runs."""

    @sensor(
        name=COMMIT_SENSOR,
        jobs=[build_and_push, branch_ci],
        minimum_interval_seconds=config.source_control.poll_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Start build_and_push (release branch) or branch_ci (branch_patterns) for each new head commit.",
    )
    def poll_commits(context: SensorEvaluationContext, source: SourceControl) -> SensorResult:
        seen: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
        requests: list[RunRequest] = []
        observations: list[AssetObservation] = []
        for service in config.services:
            repository = config.repository_ref(service)
            try:
                heads = _heads(config, source, service.name, repository)
            except ExternalSystemError as error:
                context.log.warning(f"{service.name}: skipped this tick, its repository cannot be read: {error}")
                continue
            known = seen.get(repository)
            for branch, commit in heads.items():
                if known is not None and known.get(branch) == commit.sha:
                    continue
                if branch == service.branch:
                    observations.append(commit_observation(service.name, commit))
                if known is None:
                    continue  # first sight of this repository: the baseline, nothing is built
                ci_run = ci_run_for(config, service.name, branch, commit.sha)
                if ci_run is None or _already_started(context, ci_run):
                    continue
                context.log.info(f"{service.name}: new commit {commit.sha[:12]} on {branch} -> {ci_run.job_name}")
                requests.append(
                    RunRequest(
                        run_key=ci_run.run_key,
                        job_name=ci_run.job_name,
                        partition_key=ci_run.partition_key,
                        tags=ci_run.tags,
                    )
                )
            seen[repository] = {branch: commit.sha for branch, commit in heads.items()}
        return SensorResult(run_requests=requests, asset_events=observations, cursor=json.dumps(seen, sort_keys=True))

    return poll_commits


def _heads(config: ReleaseConfig, source: SourceControl, service: str, repository: str) -> dict[str, CommitInfo]:
    """branch -> head CommitInfo of the release branch and every watched branch of the repository."""
    release_branch = config.service(service).branch
    branches = [
        branch
        for branch in source.branches(repository=repository)
        if branch == release_branch or is_watched_branch(config, branch)
    ]
    return {branch: source.latest_commit(repository=repository, branch=branch) for branch in branches}


def _already_started(context: SensorEvaluationContext, ci_run: CiRun) -> bool:
    """True when a run of `ci_run`'s job already builds this commit of this service, however it was launched."""
    runs = context.instance.get_run_records(RunsFilter(job_name=ci_run.job_name, tags=ci_run.identity_tags), limit=1)
    return bool(runs)
