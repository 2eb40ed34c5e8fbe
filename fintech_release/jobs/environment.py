"""The jobs of each environment: deploy, rollback, restore, approve and (ephemeral ones) teardown.

Every job that changes the environment carries `fintech-release/deployment=<env>`: the run queue
admits one such run per environment at a time (dagster.yaml), and the CLI waits for them.
"""

from typing import TYPE_CHECKING

from dagster import AssetSelection, JobDefinition, define_asset_job

from fintech_release.assets.releases import ReleaseMode
from fintech_release.config import Environment, ReleaseConfig
from fintech_release.jobs.approval import approve_job
from fintech_release.jobs.names import deploy_job_name, restore_job_name, rollback_job_name, rotate_job_name
from fintech_release.jobs.teardown import teardown_job
from fintech_release.records.keys import (
    DEPLOYMENT_TAG,
    approval_key,
    database_key,
    environment_group,
    release_key,
    releases_op_name,
)

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def environment_jobs(
    config: ReleaseConfig, environment: Environment
) -> list["JobDefinition | UnresolvedAssetJobDefinition"]:
    """Deploy, rollback, restore, approval and (for ephemeral environments) teardown jobs of one environment."""
    env = environment.name
    releases = AssetSelection.assets(*[release_key(env, name) for name in config.service_names])
    prepare_and_release: AssetSelection = AssetSelection.groups(environment_group(env))
    if environment.approval.required:
        prepare_and_release -= AssetSelection.assets(approval_key(env))
    deployment = {DEPLOYMENT_TAG: env}

    def releases_job(name: str, mode: ReleaseMode, description: str) -> "UnresolvedAssetJobDefinition":
        return define_asset_job(
            name,
            selection=releases,
            tags=deployment,
            config={"ops": {releases_op_name(env): {"config": {"mode": mode.name}}}},
            description=description,
        )

    jobs: list[JobDefinition | UnresolvedAssetJobDefinition] = [
        define_asset_job(
            deploy_job_name(env),
            selection=prepare_and_release,
            tags=deployment,
            description=f"Prepare {env} (cluster, databases, ingress) and deploy the candidate images.",
        ),
        releases_job(
            rollback_job_name(env),
            ReleaseMode.ROLLBACK,
            f"Undo the last deployment that changed {env} (or the run in undo_run, or everything after "
            "restore_to): each service it changed goes back to its healthy release before it.",
        ),
        releases_job(
            restore_job_name(env),
            ReleaseMode.RESTORE,
            f"Bring back the release recorded as serving in {env}: missing replicas restarted, wrong images "
            "replaced, never a new version.",
        ),
        define_asset_job(
            rotate_job_name(env),
            selection=releases | AssetSelection.assets(database_key(env)),
            tags=deployment,
            config={
                "ops": {
                    database_key(env).to_python_identifier(): {"config": {"rotate_application_passwords": True}},
                    releases_op_name(env): {"config": {"mode": ReleaseMode.RESTORE.name}},
                }
            },
            description=f"Rotate the application database passwords of {env}: each service's standby account gets "
            "a new password, its replicas are replaced by a rolling restart, then the old account is locked.",
        ),
    ]
    if environment.approval.required:
        jobs.append(approve_job(config, environment))
    if environment.ephemeral:
        jobs.append(teardown_job(config, env))
    return jobs
