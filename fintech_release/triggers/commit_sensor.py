"""The commit sensor: poll every service's repository and start one CI run per new head commit.

Every `source_control.poll_interval_seconds` it lists, for each service, the branches of its
repository with their head shas (one listing per repository and tick; `READ_THREADS` repositories
are read at once, each read being a git process or a Bitbucket request). A head it has not seen on
the release branch or on a branch matching `source_control.branch_patterns` starts the run
ci_runs.py names (`build_and_push` for the release branch, `branch_ci` otherwise). A new head of
the release branch is also recorded as a materialization of source/commit: only then is the commit
itself read (author, message), and, when an earlier head was seen, the commits since it
(`commits_since_last`, `authors_since_last`; at most 50 looked at, `history_complete` says whether
the earlier head was among them).

* One run per commit, whoever sees it first: a commit that already has a run (started by the
  webhook, the CLI, the demo or an earlier tick) is not requested again; the run key guards the
  rest. The check reads the instance's runs, so it holds across restarts.
* The cursor (JSON: repository -> branch -> head sha) holds every branch, watched or not, so a
  branch pattern added later builds only the commits pushed after it, not every existing branch
  it matches. It advances only for what was handled: a repository that cannot be read is logged
  and skipped and keeps its old entry; the other services still progress.
* The first time the sensor sees a repository (an empty cursor, or a service added to
  release.yaml) it records the heads as a baseline and builds nothing: switching the sensor on
  over a dozen services must not start a dozen builds of code that is already built or released.
  Branches created later, and every later commit, are built. Launch a build of a current head
  from the UI or with `fintech-release` when you need one.
* It runs by default (`make ui` starts it for the demo too): its first tick is the baseline, so it
  never rebuilds what `make demo` built; a commit pushed to `.demo/git/<service>.git` afterwards is.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from dagster import (
    AssetMaterialization,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from fintech_release.assets.source import commit_record
from fintech_release.config import ReleaseConfig, Service
from fintech_release.errors import ExternalSystemError
from fintech_release.resources.source import SourceControl
from fintech_release.triggers.ci_runs import CiRun, ci_run_for

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

COMMIT_SENSOR = "commit_sensor"
COMMITS_SINCE_LAST_LIMIT = 50  # how far back a head's record looks for the previously seen head
# Repositories read at once. Reads only: what the tick decides (run requests, the cursor) is decided in order,
# on the sensor's thread, as before. Bounded, so a Bitbucket workspace sees a few requests at a time, not 200.
READ_THREADS = 8

# A repository's read: its branch heads and the record of its moved release-branch head, or why it failed.
_Read = tuple[dict[str, str], AssetMaterialization | None] | ExternalSystemError


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
        reads = _read_repositories(config, source, seen)
        requests: list[RunRequest] = []
        heads_seen: list[AssetMaterialization] = []
        for service in config.services:
            repository = config.repository_ref(service)
            read = reads[service.name]
            if isinstance(read, ExternalSystemError):
                context.log.warning(f"{service.name}: skipped this tick, its repository cannot be read: {read}")
                continue
            heads, head = read
            requests += _new_runs(context, config, service.name, heads, seen.get(repository))
            if head is not None:
                heads_seen.append(head)
            seen[repository] = heads
        return SensorResult(run_requests=requests, asset_events=heads_seen, cursor=json.dumps(seen, sort_keys=True))

    return poll_commits


def _read_repositories(
    config: ReleaseConfig, source: SourceControl, seen: dict[str, dict[str, str]]
) -> dict[str, _Read]:
    """Every service's read (service -> read), `READ_THREADS` repositories at a time."""

    def read(service: Service) -> _Read:
        repository = config.repository_ref(service)
        try:
            return _read(config, source, service.name, repository, seen.get(repository))
        except ExternalSystemError as error:
            return error

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="commit-sensor-read") as pool:
        return dict(zip(config.service_names, pool.map(read, config.services), strict=True))


def _read(
    config: ReleaseConfig, source: SourceControl, service: str, repository: str, known: dict[str, str] | None
) -> tuple[dict[str, str], AssetMaterialization | None]:
    """The repository's branch heads, and the record of its release-branch head when that moved since `known`."""
    heads = source.branch_heads(repository=repository)
    branch = config.service(service).branch
    sha = heads.get(branch)
    previous = known.get(branch) if known is not None else None
    if sha is None or sha == previous or ci_run_for(config, service, branch, sha) is None:
        return heads, None
    return heads, _record_head(source, service, repository, branch, sha, previous)


def _new_runs(
    context: SensorEvaluationContext,
    config: ReleaseConfig,
    service: str,
    heads: dict[str, str],
    known: dict[str, str] | None,
) -> list[RunRequest]:
    """The runs the moved heads of one repository start."""
    if known is None:
        return []  # first sight of this repository: the baseline, nothing is built
    requests: list[RunRequest] = []
    for branch, sha in heads.items():
        ci_run = ci_run_for(config, service, branch, sha)
        if sha == known.get(branch) or ci_run is None or _already_started(context, ci_run):
            continue
        context.log.info(f"{service}: new commit {sha[:12]} on {branch} -> {ci_run.job_name}")
        requests.append(
            RunRequest(
                run_key=ci_run.run_key, job_name=ci_run.job_name, partition_key=ci_run.partition_key, tags=ci_run.tags
            )
        )
    return requests


def _record_head(
    source: SourceControl, service: str, repository: str, branch: str, sha: str, previous: str | None
) -> AssetMaterialization:
    """source/commit[service] for the new head `sha`; with a `previous` head, also who committed since then."""
    record = commit_record(service, source.commit(repository=repository, sha=sha, branch=branch))
    if previous is None:
        return record
    recent = source.recent_commits(repository=repository, branch=branch, limit=COMMITS_SINCE_LAST_LIMIT)
    shas = [commit.sha for commit in recent]
    # The branch may have moved on since its head was listed: count from `sha` back to `previous`.
    newest = shas.index(sha) if sha in shas else 0
    since = recent[newest: shas.index(previous)] if previous in shas[newest:] else recent[newest:]
    return AssetMaterialization(
        asset_key=record.asset_key,
        partition=record.partition,
        tags=record.tags,
        metadata={
            **record.metadata,
            "commits_since_last": len(since),
            "authors_since_last": sorted({commit.author_email for commit in since}),
            # False when the previous head is not among the newest commits (a force push, or more than the limit).
            "history_complete": previous in shas[newest:],
        },
    )


def _already_started(context: SensorEvaluationContext, ci_run: CiRun) -> bool:
    """True when a run of `ci_run`'s job already builds this commit of this service, however it was launched."""
    runs = context.instance.get_run_records(RunsFilter(job_name=ci_run.job_name, tags=ci_run.identity_tags), limit=1)
    return bool(runs)
