"""Sensors that follow a run: deploy after a build, tear ephemeral environments down, record delivery metrics.

`deploy_<env>_after_build` runs an environment's deployment after a successful build_and_push
(`deploy_after_build: true`, typically ci), unless a deployment of it is already waiting to start
(queued, not started or starting): that one deploys the newest pushed images anyway, so a backfill
of a dozen services queues one deploy-and-teardown cycle, not a dozen. The teardown sensors remove
an ephemeral environment after every deployment run, however it ended. Together: commit → build →
ci deployed, checked, torn down. `record_delivery_after_<status>` records DORA's four keys on
`<env>/delivery` when a run that changed an environment ends.

The other sensors: new commits start CI runs (commit_sensor.py); CI runs report their result
(notifications/sensors.py); the health watch judges releases between deployments (health_watch.py).
release_graph.py registers them all.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)

from fintech_release.assets.delivery import record_delivery_metrics, summary
from fintech_release.config import ReleaseConfig
from fintech_release.jobs import deploy_job_name
from fintech_release.records.keys import DEPLOYMENT_TAG, dagster_name

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# A deployment run in one of these states has not read the images it deploys yet.
WAITING = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
AFTER_RUN_TAG = "fintech-release/after-run"


def deploy_after_build_sensor(
    environment: str,
    build_job: "JobDefinition | UnresolvedAssetJobDefinition",
    deploy_job: "JobDefinition | UnresolvedAssetJobDefinition",
) -> SensorDefinition:
    """Request the environment's deployment after a successful build_and_push run, unless one is waiting."""

    def deployment_waiting(context: RunStatusSensorContext) -> str | None:
        waiting = context.instance.get_run_records(
            RunsFilter(job_name=deploy_job.name, statuses=list(WAITING)), limit=1
        )
        if not waiting:
            return None
        run = waiting[0].dagster_run
        return (
            f"build {context.dagster_run.run_id} succeeded; {deploy_job.name} run {run.run_id} is "
            f"{run.status.value.lower()} and will deploy the newest pushed images, so no other deployment is requested"
        )

    return _after_run_sensor(
        name=f"deploy_{dagster_name(environment)}_after_build",
        status=DagsterRunStatus.SUCCESS,
        monitored_job=build_job,
        request_job=deploy_job,
        description=f"Deploy {environment} (the newest pushed images) after a successful build_and_push run, "
        "unless a deployment of it is waiting to start.",
        skip_reason=deployment_waiting,
    )


def teardown_sensors(
    environment: str,
    deploy_job: "JobDefinition | UnresolvedAssetJobDefinition",
    teardown_job: "JobDefinition | UnresolvedAssetJobDefinition",
) -> list[SensorDefinition]:
    """One sensor per way a deployment run can end, each requesting the environment's teardown once."""
    return [
        _after_run_sensor(
            name=f"teardown_{dagster_name(environment)}_after_{status.value.lower()}",
            status=status,
            monitored_job=deploy_job,
            request_job=teardown_job,
            description=f"Tear {environment} down when a {deploy_job_name(environment)} run ends in {status.value}.",
        )
        for status in ENDED
    ]


def _after_run_sensor(
    *,
    name: str,
    status: DagsterRunStatus,
    monitored_job: "JobDefinition | UnresolvedAssetJobDefinition",
    request_job: "JobDefinition | UnresolvedAssetJobDefinition",
    description: str,
    skip_reason: Callable[[RunStatusSensorContext], str | None] = lambda context: None,
) -> SensorDefinition:
    """A sensor requesting `request_job` once per `monitored_job` run that ends in `status` (unless skip_reason)."""

    @run_status_sensor(
        name=name,
        run_status=status,
        monitored_jobs=[monitored_job],
        request_job=request_job,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def after_run(context: RunStatusSensorContext) -> RunRequest | SkipReason:
        reason = skip_reason(context)
        if reason is not None:
            context.log.info(reason)
            return SkipReason(reason)
        return RunRequest(
            run_key=f"{request_job.name}:{context.dagster_run.run_id}",
            tags={AFTER_RUN_TAG: context.dagster_run.run_id},
        )

    return after_run


def delivery_metrics_sensors(
    config: ReleaseConfig, monitored: list["JobDefinition | UnresolvedAssetJobDefinition"]
) -> list[SensorDefinition]:
    """Record `<env>/delivery` after every run that changed an environment ends, however it ended."""
    watched = {e.name for e in config.environments if not e.ephemeral}

    def record(context: RunStatusSensorContext) -> None:
        environment = context.dagster_run.tags.get(DEPLOYMENT_TAG)
        if environment in watched:
            metrics = record_delivery_metrics(context.instance, config, environment)
            context.log.info(f"{environment}: {summary(metrics.overall)}")

    return [
        run_status_sensor(
            name=f"record_delivery_after_{status.value.lower()}",
            run_status=status,
            monitored_jobs=monitored,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Record DORA's four keys on <env>/delivery when a deployment, rollback or restore ends in "
            f"{status.value}.",
        )(record)
        for status in ENDED
    ]
