"""Jobs people launch from the UI or the CLI."""

from typing import TYPE_CHECKING

from dagster import AssetSelection, JobDefinition, define_asset_job, job

from fintech_release.assets.environments import ReleaseMode
from fintech_release.records.keys import (
    BUILD_BASE_IMAGE,
    DEPLOYMENT_TAG,
    approval_key,
    dagster_name,
    environment_group,
    release_key,
    releases_op_name,
)
from fintech_release.config import Environment, ReleaseConfig
from fintech_release.teardown import teardown_op

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

BUILD_AND_PUSH = "build_and_push"
BRANCH_CI = "branch_ci"
BASE_IMAGE = "base_image"


def deploy_job_name(environment: str) -> str:
    """`deploy_<env>`: prepare the environment and roll the candidate out (one run, one deployment)."""
    return f"deploy_{dagster_name(environment)}"


def approve_job_name(environment: str) -> str:
    """`approve_<env>`: record a yes/no decision on the environment's candidate (config in the launchpad)."""
    return f"approve_{dagster_name(environment)}"


def rollback_job_name(environment: str) -> str:
    """`rollback_<env>`: restore the last healthy release of every service the last deployment changed."""
    return f"rollback_{dagster_name(environment)}"


def teardown_job_name(environment: str) -> str:
    """`teardown_<env>`: remove an ephemeral environment."""
    return f"teardown_{dagster_name(environment)}"


def build_and_push_job() -> "UnresolvedAssetJobDefinition":
    """Commit to pushed image for one service: analysis, tests, jar, image, push (with their gates)."""
    return define_asset_job(
        BUILD_AND_PUSH,
        selection=AssetSelection.groups("build", "registry"),
        description="Take one service's commit to a pushed image. Partition = service.",
    )


def base_image_job() -> "UnresolvedAssetJobDefinition":
    """Rebuild the JRE base image; every service image then shows as stale until it is rebuilt."""
    return define_asset_job(
        BASE_IMAGE,
        selection=AssetSelection.assets(BUILD_BASE_IMAGE),
        description="Rebuild the JRE base image (after a JDK update or a change of build.jre_modules).",
    )


def environment_jobs(config: ReleaseConfig, environment: Environment) -> list:
    """Deploy, rollback, approval and (for ephemeral environments) teardown jobs of one environment."""
    env = environment.name
    releases = AssetSelection.assets(*[release_key(env, name) for name in config.service_names])
    prepare_and_release = AssetSelection.groups(environment_group(env))
    if environment.approval.required:
        prepare_and_release -= AssetSelection.assets(approval_key(env))
    # A run queue with a per-value limit on this tag admits one deployment of an environment at a time
    # (deploy/dagster/dagster.yaml); the deploy-<env> pool serializes their steps everywhere else.
    deployment = {DEPLOYMENT_TAG: env}
    jobs: list = [
        define_asset_job(
            deploy_job_name(env),
            selection=prepare_and_release,
            tags=deployment,
            description=f"Prepare {env} (cluster, databases, ingress) and deploy the candidate images.",
        ),
        define_asset_job(
            rollback_job_name(env),
            selection=releases,
            tags=deployment,
            config={"ops": {releases_op_name(env): {"config": {"mode": ReleaseMode.ROLLBACK.name}}}},
            description=f"Restore the last healthy release of every service the last {env} deployment changed.",
        ),
    ]
    if environment.approval.required:
        jobs.append(
            define_asset_job(
                approve_job_name(env),
                selection=AssetSelection.assets(approval_key(env)),
                description=f"Approve (or reject) the {env} candidate: decision, approver, reason.",
            )
        )
    if environment.ephemeral:
        jobs.append(teardown_job(config, env))
    return jobs


def teardown_job(config: ReleaseConfig, environment: str) -> JobDefinition:
    """Remove everything the ephemeral environment holds."""

    @job(name=teardown_job_name(environment), description=f"Remove the ephemeral {environment} environment.")
    def teardown() -> None:
        teardown_op(config, environment)()

    return teardown
