"""<env>/*: an environment's runtime, databases, ingress and approvals; its releases are in releases.py.

Each environment is an asset-key prefix with its own gates. The databases are migrated for the
services the run deploys, each of which must be approved where the environment requires it.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    Config,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pydantic import Field

from fintech_release.assets.delivery import delivery_spec
from fintech_release.assets.releases import release_assets
from fintech_release.config import Environment, ReleaseConfig, Service
from fintech_release.config.models import database_name as mysql_database_name
from fintech_release.errors import DeploymentRefusedError
from fintech_release.platforms import CLOUDSQL_ADMIN_KEY, platform_keys
from fintech_release.records.approvals import approved_candidate
from fintech_release.records.keys import (
    REGISTRY_IMAGE,
    approval_key,
    cluster_key,
    dagster_name,
    database_key,
    deployment_pool,
    environment_group,
    ingress_key,
    release_key,
)
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.runtime import ServiceRuntime
from fintech_release.resources.source import SourceControl

if TYPE_CHECKING:  # the Cloud SQL Admin client (google-cloud-sql, grpc) is imported only where gke uses it
    from fintech_release.resources.cloudsql_admin import CloudSqlAdmin

CLOUDSQL_READY = "cloudsql_backups_and_failover"
ENVIRONMENT_UP = "environment_up"


class DatabaseRunConfig(Config):
    """What a run of an environment's databases does: migrate (the default) or rotate the application passwords."""

    rotate_application_passwords: bool = Field(
        default=False,
        description="Give every service's application account a new password instead of migrating; the run's "
        "releases (RESTORE) then replace the replicas, and the old account is locked once none uses it.",
    )


def database_name(environment: str, service: Service) -> str:
    """The environment's database for `service`, e.g. staging_contact_us."""
    return mysql_database_name(environment, str(service.database))


def environment_assets(
    release_config: ReleaseConfig, environment: Environment
) -> list[AssetsDefinition | AssetSpec]:
    """Every asset of one environment."""
    env = environment.name
    address = release_config.environment_address(env)
    group = environment_group(env)
    source = environment.promotes_from
    promoted_from = (
        [REGISTRY_IMAGE] if source is None else [release_key(source, name) for name in release_config.service_names]
    )

    pool = deployment_pool(env)
    keys = platform_keys(environment)
    check_cloudsql = environment.gke is not None and environment.gke.require_backups_and_failover
    where = f"on {address}" if environment.platform == "local" else f"on {environment.platform}"

    @asset(
        key=cluster_key(env),
        group_name=group,
        kinds=set(keys.cluster_kinds),
        pool=pool,
        required_resource_keys={keys.runtime, *([CLOUDSQL_ADMIN_KEY] if check_cloudsql else [])},
        check_specs=[
            AssetCheckSpec(
                ENVIRONMENT_UP,
                asset=cluster_key(env),
                description="The environment exists: passes when it is converged, warns once it is torn down.",
            ),
            # Blocking: an instance without backups or failover stops the run before any migration or release.
            *(
                [
                    AssetCheckSpec(
                        CLOUDSQL_READY,
                        asset=cluster_key(env),
                        blocking=True,
                        description="Cloud SQL Admin API: automated backups with a window, and high availability.",
                    )
                ]
                if check_cloudsql
                else []
            ),
        ],
        description=f"The {env} runtime {where}.",
    )
    def cluster(context: AssetExecutionContext) -> MaterializeResult:
        runtime: ServiceRuntime = getattr(context.resources, keys.runtime)
        facts = runtime.ensure_environment(environment=env, address=address)
        up = AssetCheckResult(
            asset_key=cluster_key(env), check_name=ENVIRONMENT_UP, passed=True, description=f"{env} is up {where}"
        )
        readiness = (
            [_cloudsql_readiness(getattr(context.resources, CLOUDSQL_ADMIN_KEY), environment)] if check_cloudsql else []
        )
        return MaterializeResult(
            metadata={"environment": env, "platform": environment.platform, **facts}, check_results=[up, *readiness]
        )

    @asset(
        key=database_key(env),
        deps=[cluster_key(env), REGISTRY_IMAGE if source is None else database_key(source)],
        group_name=group,
        kinds=set(keys.database_kinds),
        pool=pool,
        required_resource_keys={keys.database, "source"},
        description=f"{env} databases, migrated to the candidate commits before any service starts.",
    )
    def database(context: AssetExecutionContext, config: DatabaseRunConfig) -> MaterializeResult:
        database: DatabaseAdmin = getattr(context.resources, keys.database)
        owned = [service for service in release_config.services if service.database is not None]
        if config.rotate_application_passwords:
            return _rotate(context, database, [database_name(env, service) for service in owned])
        source: SourceControl = context.resources.source
        # The services this run deploys (all of them when it deploys none, e.g. the database alone from the UI).
        selection = context.run.asset_selection or set()
        deploying = [name for name in release_config.service_names if release_key(env, name) in selection]
        services = deploying or release_config.service_names
        try:
            candidate, _ = approved_candidate(context.instance, release_config, env, services)
        except DeploymentRefusedError as refused:
            raise Failure(str(refused)) from None
        plans: dict[str, Path | None] = {}
        for service in owned:
            if service.name not in services:
                continue
            migrations = None
            if service.migrations and service.name in candidate:
                tree = _checkout(release_config, source, service, candidate[service.name].commit)
                migrations = tree / service.migrations
            plans[database_name(env, service)] = migrations
        # Every pending migration is checked before any runs, and backed up before where the environment says so.
        pending = {name: database.pending_migrations(database=name, migrations_dir=d) for name, d in plans.items()}
        backup_metadata: dict[str, MetadataValue | str | int] = {}
        if any(pending.values()) and environment.backs_up_before_migrations:
            existing = sorted(set(database.databases(prefix=mysql_database_name(env, ""))) & set(plans))
            if existing:
                backup = database.backup(environment=env, databases=existing)
                context.log.info(f"{env}: backed up {', '.join(existing)} before migrating: {backup.location}")
                backup_metadata = {
                    "backup": MetadataValue.path(backup.location),
                    "backup_databases": MetadataValue.json(list(backup.databases)),
                    "backup_size_bytes": backup.size_bytes if backup.size_bytes is not None else -1,
                    "backup_sha256": backup.sha256 or "none",
                }
            else:
                backup_metadata = {"backup": "none: the databases are new"}
        applied: dict[str, list[str]] = {}
        already: dict[str, list[str]] = {}
        accounts: dict[str, list[str]] = {}
        for name, migrations in plans.items():
            result = database.migrate(database=name, migrations_dir=migrations)
            applied[result.database] = list(result.applied)
            already[result.database] = list(result.already_applied)
            accounts[result.database] = list(database.accounts(database=name))
        newly = sum(len(files) for files in applied.values())
        context.log.info(f"{env}: applied {newly} migrations" if newly else f"{env}: nothing to apply")
        return MaterializeResult(
            metadata={
                "databases": MetadataValue.json(sorted(applied)),
                "applied_now": MetadataValue.json(applied),
                "already_applied": MetadataValue.json(already),
                "migrations_applied_now": newly,
                "accounts": MetadataValue.json(accounts),
                **backup_metadata,
            },
        )

    @asset(
        key=ingress_key(env),
        deps=[cluster_key(env)],
        group_name=group,
        kinds=set(keys.ingress_kinds),
        pool=pool,
        required_resource_keys={keys.ingress},
    )
    def ingress(context: AssetExecutionContext) -> MaterializeResult:
        """The environment's single HTTP entry point: /<service>/… routed to that service's replicas."""
        ingress: Ingress = getattr(context.resources, keys.ingress)
        info = ingress.ensure(
            environment=env, address=address, port=environment.ingress_port, services=release_config.service_names
        )
        return MaterializeResult(
            metadata={"url": MetadataValue.url(info.url), "routes": MetadataValue.json(info.routes)}
        )

    definitions: list[AssetsDefinition | AssetSpec] = [cluster, database, ingress]
    release_deps: list[AssetKey] = [cluster_key(env), database_key(env), ingress_key(env)]

    if environment.approval.required:
        definitions.append(
            AssetSpec(
                approval_key(env), deps=promoted_from, group_name=group, kinds={"approval"},
                description=f"Each materialization is one decision on the {env} candidate (the audit trail), "
                f"recorded by the approve_{dagster_name(env)} job.",
            )
        )
        release_deps.append(approval_key(env))

    definitions.append(release_assets(release_config, environment, release_deps))
    if not environment.ephemeral:
        definitions.append(delivery_spec(release_config, environment))
    return definitions


def _cloudsql_readiness(admin: "CloudSqlAdmin", environment: Environment) -> AssetCheckResult:
    """Whether the environment's Cloud SQL instance has backups and a failover, as the Admin API reports it."""
    assert environment.gke is not None
    readiness = admin.production_readiness(environment.gke.cloudsql_instance)
    return AssetCheckResult(
        asset_key=cluster_key(environment.name),
        check_name=CLOUDSQL_READY,
        passed=readiness.passed,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(readiness.findings) or f"{readiness.instance}: backups and failover are on",
        metadata={
            "findings": MetadataValue.json(list(readiness.findings)),
            "availability_type": readiness.availability_type,
            "backup_start_time": readiness.backup_start_time or "none",
            "failover_replica": readiness.failover_replica or "none",
        },
    )


def _rotate(context: AssetExecutionContext, database: DatabaseAdmin, names: list[str]) -> MaterializeResult:
    """New application passwords for `names`: each standby account gets one and becomes the one in use."""
    rotated = {name: database.rotate_application_password(database=name) for name in names}
    context.log.info(f"rotated the application passwords of {', '.join(names)}; replicas follow in this run")
    return MaterializeResult(
        metadata={
            "databases": MetadataValue.json(sorted(names)),
            "rotated_to": MetadataValue.json({name: user or "platform-managed" for name, user in rotated.items()}),
            "migrations_applied_now": 0,
        }
    )


def _checkout(config: ReleaseConfig, source: SourceControl, service: Service, sha: str) -> Path:
    workspace = config.resolve_path(config.build.workspace) / service.name / sha[:12] / "release"
    return source.checkout(repository=config.repository_ref(service), sha=sha, destination=workspace)

