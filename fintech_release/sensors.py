"""Environment sensors: deploy after a build where release.yaml says so, tear ephemeral environments down.

`deploy_<env>_after_build` runs an environment's deployment after every successful build_and_push
(`deploy_after_build: true`, typically ci); the teardown sensors remove an ephemeral environment after
every deployment run, however it ended. Together: commit → build → ci deployed, checked, torn down.

The other sensors: new commits start CI runs (commit_sensor.py); CI runs report their result
(notification_sensors.py). release_graph.py registers them all.
"""

from typing import TYPE_CHECKING

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    run_status_sensor,
)

from fintech_release.jobs import deploy_job_name, teardown_job_name

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def deploy_after_build_sensor(
    environment: str, build_job: "UnresolvedAssetJobDefinition", deploy_job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """Request the environment's deployment once for every build_and_push run that succeeds."""

    @run_status_sensor(
        name=f"deploy_{environment}_after_build",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[build_job],
        request_job=deploy_job,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Deploy {environment} (the newest pushed images) after every successful build_and_push run.",
    )
    def deploy_after_build(context: RunStatusSensorContext) -> RunRequest:
        return RunRequest(
            run_key=f"{deploy_job_name(environment)}:{context.dagster_run.run_id}",
            tags={"fintech-release/after-run": context.dagster_run.run_id},
        )

    return deploy_after_build


def teardown_sensors(
    environment: str, deploy_job: "UnresolvedAssetJobDefinition", teardown_job: JobDefinition
) -> list[SensorDefinition]:
    """One sensor per way a deployment run can end, each requesting the environment's teardown once."""
    sensors = []
    for status in ENDED:

        @run_status_sensor(
            name=f"teardown_{environment}_after_{status.value.lower()}",
            run_status=status,
            monitored_jobs=[deploy_job],
            request_job=teardown_job,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Tear {environment} down when a {deploy_job_name(environment)} run ends in {status.value}.",
        )
        def teardown_after(context: RunStatusSensorContext) -> RunRequest:
            return RunRequest(
                run_key=f"{teardown_job_name(environment)}:{context.dagster_run.run_id}",
                tags={"fintech-release/after-run": context.dagster_run.run_id},
            )

        sensors.append(teardown_after)
    return sensors
