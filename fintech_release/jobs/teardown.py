"""Teardown of an ephemeral environment: its ingress, its runtime (containers, or a Terraform root on gke) and
its databases.

The ingress goes first, while the cluster it runs in still exists: on gke `helm uninstall` needs the
cluster, and the ingress-nginx LoadBalancer's forwarding rules would otherwise block the destroy of the
network; a runtime that refuses the environment (gke: a permanent one) says so before anything is
removed. The runtime goes next. Databases are dropped last, once no service uses them, and only where
the database server outlives the environment (local MariaDB); a CloudSQL instance is destroyed with it.
"""

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    JobDefinition,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    job,
    op,
)

from fintech_release.assets.environments import ENVIRONMENT_UP, database_name
from fintech_release.assets.releases import POD_HEALTH
from fintech_release.config import ReleaseConfig
from fintech_release.jobs.names import teardown_job_name
from fintech_release.platforms import platform_keys
from fintech_release.records.keys import (
    DEPLOYMENT_TAG,
    TORN_DOWN,
    cluster_key,
    dagster_name,
    deployment_pool,
    release_key,
)
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.runtime import ServiceRuntime


def teardown_op(release_config: ReleaseConfig, environment: str) -> OpDefinition:
    """The op that removes everything `environment` holds, recorded as a materialization of its cluster."""

    keys = platform_keys(release_config.environment(environment))

    @op(
        name=f"remove_{dagster_name(environment)}",
        pool=deployment_pool(environment),
        required_resource_keys={keys.runtime, keys.ingress, keys.database},
    )
    def teardown(context: OpExecutionContext) -> None:
        runtime: ServiceRuntime = getattr(context.resources, keys.runtime)
        ingress: Ingress = getattr(context.resources, keys.ingress)
        database: DatabaseAdmin = getattr(context.resources, keys.database)
        runtime.refuse_teardown(environment=environment)
        routes = ingress.remove(environment=environment)
        removed = runtime.teardown(environment=environment)
        dropped = [
            name
            for service in release_config.services
            if service.database
            and not database.dropped_with_environment
            and database.drop(database=(name := database_name(environment, service)))
        ]
        databases = f"{len(dropped)} databases" if not database.dropped_with_environment else "databases went with it"
        context.log.info(
            f"{environment} torn down: {len(routes)} ingress objects, {len(removed)} runtime objects, {databases}"
        )
        context.log_event(
            AssetMaterialization(
                asset_key=cluster_key(environment),
                description=f"{environment} torn down",
                metadata={
                    "state": TORN_DOWN,
                    "removed_from_runtime": MetadataValue.json(removed),
                    "removed_ingress": MetadataValue.json(routes),
                    "dropped_databases": MetadataValue.json(dropped),
                },
            )
        )
        # Warnings the UI shows on the environment's nodes: torn down, nothing runs (not a green "materialized").
        gone = f"{environment} was torn down by run {context.run_id}: nothing runs here"
        _torn_down(context, cluster_key(environment), ENVIRONMENT_UP, gone)
        for service in release_config.service_names:
            _torn_down(context, release_key(environment, service), POD_HEALTH, gone)

    return teardown


def _torn_down(context: OpExecutionContext, key: AssetKey, check: str, description: str) -> None:
    """A failed WARN evaluation of `check` on `key`, recorded by the op."""
    evaluation = AssetCheckEvaluation(
        asset_key=key, check_name=check, passed=False, severity=AssetCheckSeverity.WARN, description=description
    )
    # log_event records an AssetCheckEvaluation too; Dagster 1.13's annotation (UserEvent) just does not name it.
    context.log_event(evaluation)  # type: ignore[arg-type]


def teardown_job(config: ReleaseConfig, environment: str) -> JobDefinition:
    """Remove everything the ephemeral environment holds."""

    @job(
        name=teardown_job_name(environment),
        tags={DEPLOYMENT_TAG: environment},
        description=f"Remove the ephemeral {environment} environment.",
    )
    def teardown() -> None:
        teardown_op(config, environment)()

    return teardown
