"""<env>/*: an environment's runtime, databases, ingress, approvals and the release of each service.

Each environment is an asset-key prefix with its own gates. `<env>/release/<service>` is one
asset per service (not a partition) so that one run is one deployment of the environment: it
holds the environment's deployment pool, a teardown follows the whole CI run, and a rollback
restores every service that run changed.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import BaseModel

from fintech_release.records.keys import (
    REGISTRY_IMAGE,
    approval_key,
    cluster_key,
    database_key,
    deployment_pool,
    environment_group,
    ingress_key,
    release_key,
    releases_op_name,
)
from fintech_release.config import Environment, ReleaseConfig, Service
from fintech_release.config.models import database_name as mysql_database_name
from fintech_release.errors import DeploymentRefusedError
from fintech_release.platforms import CLOUDSQL_ADMIN_KEY, platform_keys
from fintech_release.health.model import ServiceHealth
from fintech_release.records.promotion import (
    ApprovalRecord,
    CandidateImage,
    Decision,
    candidate_for,
    four_eyes_violations,
    last_healthy_release,
    require_approval,
    rollback_target,
)
from fintech_release.resources.cloudsql_admin import CloudSqlAdmin
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.runtime import DeployOutcome, DeploySpec, ServiceRuntime
from fintech_release.resources.source import SourceControl

POD_HEALTH = "pod_health"
CLOUDSQL_READY = "cloudsql_backups_and_failover"


class ApprovalConfig(Config):
    """An approver's decision on the environment's current candidate."""

    decision: Decision
    approver: str
    reason: str


class ReleaseMode(str, Enum):
    """Deploy the candidate, or restore the last healthy release of what the last deployment changed."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"


class ReleaseRunConfig(Config):
    """How a run of the environment's releases behaves."""

    mode: ReleaseMode = ReleaseMode.DEPLOY


def database_name(environment: str, service: Service) -> str:
    """The environment's database for `service`, e.g. staging_contact_us."""
    return mysql_database_name(environment, str(service.database))


def environment_assets(release_config: ReleaseConfig, environment: Environment) -> list[AssetsDefinition]:
    """Every asset of one environment."""
    env = environment.name
    address = release_config.environment_address(env)
    group = environment_group(env)
    promoted_from = (
        [REGISTRY_IMAGE]
        if environment.promotes_from is None
        else [release_key(environment.promotes_from, name) for name in release_config.service_names]
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
        # Blocking: an instance without backups or failover stops the run before any migration or release.
        check_specs=[
            AssetCheckSpec(
                CLOUDSQL_READY,
                asset=cluster_key(env),
                blocking=True,
                description="Cloud SQL Admin API: automated backups with a window, and high availability.",
            )
        ]
        if check_cloudsql
        else None,
        description=f"The {env} runtime {where}.",
    )
    def cluster(context: AssetExecutionContext) -> MaterializeResult:
        runtime: ServiceRuntime = getattr(context.resources, keys.runtime)
        facts = runtime.ensure_environment(environment=env, address=address)
        readiness = (
            [_cloudsql_readiness(getattr(context.resources, CLOUDSQL_ADMIN_KEY), environment)] if check_cloudsql else []
        )
        return MaterializeResult(
            metadata={"environment": env, "platform": environment.platform, **facts}, check_results=readiness
        )

    @asset(
        key=database_key(env),
        deps=[cluster_key(env), *promoted_from],
        group_name=group,
        kinds=set(keys.database_kinds),
        pool=pool,
        required_resource_keys={keys.database, "source"},
        description=f"{env} databases, migrated to the candidate commits before any service starts.",
    )
    def database(context: AssetExecutionContext) -> MaterializeResult:
        database: DatabaseAdmin = getattr(context.resources, keys.database)
        source: SourceControl = context.resources.source
        candidate, _ = _approved_candidate(context, release_config, environment, release_config.service_names)
        applied: dict[str, list[str]] = {}
        already: dict[str, list[str]] = {}
        for service in release_config.services:
            if service.database is None:
                continue
            migrations = None
            if service.migrations and service.name in candidate:
                tree = _checkout(release_config, source, service, candidate[service.name].commit)
                migrations = tree / service.migrations
            result = database.migrate(database=database_name(env, service), migrations_dir=migrations)
            applied[result.database] = list(result.applied)
            already[result.database] = list(result.already_applied)
        newly = sum(len(files) for files in applied.values())
        context.log.info(f"{env}: applied {newly} migrations" if newly else f"{env}: nothing to apply")
        return MaterializeResult(
            metadata={
                "databases": MetadataValue.json(sorted(applied)),
                "applied_now": MetadataValue.json(applied),
                "already_applied": MetadataValue.json(already),
                "migrations_applied_now": newly,
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

    definitions: list[AssetsDefinition] = [cluster, database, ingress]
    release_deps: list[AssetKey] = [cluster_key(env), database_key(env), ingress_key(env), *promoted_from]

    if environment.approval.required:

        @asset(key=approval_key(env), deps=promoted_from, group_name=group, kinds={"approval"})
        def approval(context: AssetExecutionContext, config: ApprovalConfig) -> MaterializeResult:
            """An approval decision on the environment's current candidate; the history is the audit trail."""
            candidate = candidate_for(context.instance, release_config, env)
            if not candidate:
                raise Failure(f"{env}: there is nothing to approve (no candidate images yet)")
            if environment.approval.four_eyes and (own := four_eyes_violations(candidate, config.approver)):
                raise Failure(
                    f"{env} requires four eyes: {config.approver} may not approve their own commits ({', '.join(own)})"
                )
            return MaterializeResult(
                metadata={
                    "decision": config.decision.value,
                    "approver": config.approver,
                    "reason": config.reason,
                    "candidate_digests": json.dumps({s: c.digest for s, c in candidate.items()}, sort_keys=True),
                    "candidate": MetadataValue.md(_candidate_table(candidate)),
                    "four_eyes": environment.approval.four_eyes,
                },
                data_version=DataVersion(context.run.run_id),
            )

        definitions.append(approval)
        release_deps.append(approval_key(env))

    @multi_asset(
        name=releases_op_name(env),
        specs=[
            AssetSpec(
                release_key(env, name), deps=release_deps, group_name=group, kinds=set(keys.release_kinds),
                skippable=True,
            )
            for name in release_config.service_names
        ],
        check_specs=[
            AssetCheckSpec(POD_HEALTH, asset=release_key(env, name), blocking=True)
            for name in release_config.service_names
        ],
        can_subset=True,
        pool=pool,
        required_resource_keys={keys.runtime, keys.ingress},
        description=f"Roll the candidate images out in {env}; one run is one deployment.",
    )
    def releases(context: AssetExecutionContext, config: ReleaseRunConfig) -> Iterator[MaterializeResult]:
        runtime: ServiceRuntime = getattr(context.resources, keys.runtime)
        ingress: Ingress = getattr(context.resources, keys.ingress)
        selected = context.selected_asset_keys
        services = [name for name in release_config.service_names if release_key(env, name) in selected]
        if config.mode is ReleaseMode.ROLLBACK:
            yield from _roll_back(context, release_config, environment, services, runtime, ingress)
        else:
            yield from _deploy(context, release_config, environment, services, runtime, ingress)

    definitions.append(releases)
    return definitions


def _deploy(
    context: AssetExecutionContext,
    config: ReleaseConfig,
    environment: Environment,
    services: list[str],
    runtime: ServiceRuntime,
    ingress: Ingress,
) -> Iterator[MaterializeResult]:
    env = environment.name
    candidate, approvals = _approved_candidate(context, config, environment, services)
    missing = [name for name in services if name not in candidate]
    if missing:
        raise Failure(f"{env}: nothing to deploy for {', '.join(missing)} (no {_candidate_source(environment)} yet)")
    for name in services:
        image = candidate[name]
        settings = _configured_settings(config, environment, name)
        serving_before = last_healthy_release(context.instance, env, name)
        outcome, health = _roll_out(config, environment, name, image.reference, settings, runtime, ingress)
        status, serving = outcome.status, outcome.image
        if status == "deployed" and not health.healthy and environment.auto_rollback and outcome.previous_image:
            context.log.warning(f"{env}/{name}: unhealthy after the upgrade, rolling back to {outcome.previous_image}")
            settings = _recorded_settings(serving_before) or settings  # what ran before comes back whole
            restored, _ = _roll_out(config, environment, name, outcome.previous_image, settings, runtime, ingress)
            status = "auto_rolled_back" if restored.status != "failed" else "auto_rollback_failed"
            serving = restored.image
        approval = approvals.get(name)
        yield _release_result(
            environment,
            name,
            image,
            status=status,
            serving=serving,
            previous=outcome.previous_image,
            health=health,
            settings=settings,
            extra={"approved_by": approval.approver, "approval_run": approval.run_id} if approval else {},
        )


def _cloudsql_readiness(admin: CloudSqlAdmin, environment: Environment) -> AssetCheckResult:
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


def _approved_candidate(
    context: AssetExecutionContext, config: ReleaseConfig, environment: Environment, services: list[str]
) -> tuple[dict[str, CandidateImage], dict[str, ApprovalRecord]]:
    """The candidate and, where required, the approval of each of `services`.

    A Failure before anything is touched when one of them is not approved: the databases are not
    migrated and no replica changes for a candidate no one said yes to.
    """
    candidate = candidate_for(context.instance, config, environment.name)
    if not environment.approval.required:
        return candidate, {}
    try:
        approvals = {
            name: require_approval(context.instance, environment.name, candidate[name])
            for name in services
            if name in candidate
        }
    except DeploymentRefusedError as refused:
        raise Failure(str(refused)) from None
    return candidate, approvals


def _roll_back(
    context: AssetExecutionContext,
    config: ReleaseConfig,
    environment: Environment,
    services: list[str],
    runtime: ServiceRuntime,
    ingress: Ingress,
) -> Iterator[MaterializeResult]:
    env = environment.name
    for name in services:
        target = rollback_target(context.instance, env, name)
        if target is None:
            context.log.info(f"{env}/{name}: the last deployment changed nothing; not rolled back")
            continue
        image = CandidateImage.from_metadata(name, target)
        settings = _recorded_settings(target) or _configured_settings(config, environment, name)
        outcome, health = _roll_out(config, environment, name, image.reference, settings, runtime, ingress)
        yield _release_result(
            environment,
            name,
            image,
            status="rolled_back",
            serving=outcome.image,
            previous=outcome.previous_image,
            health=health,
            settings=settings,
            extra={"rolled_back_to": image.version},
        )


class RuntimeSettings(BaseModel, frozen=True):
    """How a release runs besides its image; recorded with it so a rollback restores both."""

    replicas: int
    env: dict[str, str]


def _configured_settings(config: ReleaseConfig, environment: Environment, name: str) -> RuntimeSettings:
    """The settings release.yaml gives `name` in `environment` now."""
    values = config.service(name).deployment_in(environment.name)
    return RuntimeSettings(replicas=values.replicas, env={**values.env, "APP_ENV": environment.name})


def _recorded_settings(metadata: dict | None) -> RuntimeSettings | None:
    """The settings a release materialization recorded (None for records that predate them)."""
    if not metadata or "runtime_env" not in metadata:
        return None
    return RuntimeSettings(replicas=int(metadata["desired_replicas"]), env=dict(metadata["runtime_env"]))


def _roll_out(
    config: ReleaseConfig,
    environment: Environment,
    name: str,
    image: str,
    settings: RuntimeSettings,
    runtime: ServiceRuntime,
    ingress: Ingress,
) -> tuple[DeployOutcome, ServiceHealth]:
    env = environment.name
    spec = DeploySpec(
        environment=env,
        service=name,
        image=image,
        replicas=settings.replicas,
        address=config.environment_address(env),
        health_path=config.service(name).health_path,
        env=settings.env,
    )
    started = datetime.now(UTC)
    outcome = runtime.deploy(
        spec=spec,
        on_backends_changed=lambda backends: ingress.set_backends(environment=env, service=name, backends=backends),
    )
    if outcome.status == "failed":
        return outcome, outcome.health
    window = environment.health_window_seconds if outcome.status == "deployed" else 0
    health = runtime.health(
        environment=env,
        service=name,
        desired_replicas=settings.replicas,
        expected_image=outcome.image,
        window_seconds=window,
        since=started,
    )
    return outcome, health


def _release_result(
    environment: Environment,
    name: str,
    image: CandidateImage,
    *,
    status: str,
    serving: str | None,
    previous: str | None,
    health: ServiceHealth,
    settings: RuntimeSettings,
    extra: dict,
) -> MaterializeResult:
    healthy = health.healthy and serving == image.reference
    serving_digest = serving.rsplit("@", 1)[-1] if serving else "none"
    return MaterializeResult(
        asset_key=release_key(environment.name, name),
        metadata={
            "status": status,
            "healthy": healthy,
            "pinned_reference": image.reference,
            "digest": image.digest,
            "version": image.version,
            "commit": image.commit,
            "author_email": image.author_email,
            "serving": serving or "nothing",
            "previous": previous or "nothing",
            "ready_replicas": health.ready_replicas,
            "desired_replicas": settings.replicas,
            "runtime_env": MetadataValue.json(settings.env),
            "endpoints": MetadataValue.json([r.endpoint for r in health.replicas if r.endpoint]),
            "problems": MetadataValue.json(list(health.problems)),
            **extra,
        },
        data_version=DataVersion(serving_digest),
        check_results=[
            AssetCheckResult(
                asset_key=release_key(environment.name, name),
                check_name=POD_HEALTH,
                passed=healthy,
                severity=AssetCheckSeverity.ERROR,
                description="; ".join(health.problems) or f"{health.ready_replicas} replicas ready",
                metadata={"problems": MetadataValue.json(list(health.problems))},
            )
        ],
    )


def _checkout(config: ReleaseConfig, source: SourceControl, service: Service, sha: str) -> Path:
    workspace = config.resolve_path(config.build.workspace) / service.name / sha[:12] / "release"
    return source.checkout(repository=config.repository_ref(service), sha=sha, destination=workspace)


def _candidate_source(environment: Environment) -> str:
    if environment.promotes_from is None:
        return "pushed image"
    return f"release that passed pod_health in {environment.promotes_from}"


def _candidate_table(candidate: dict[str, CandidateImage]) -> str:
    rows = [
        f"| {c.service} | {c.version} | `{c.digest}` | {c.commit[:12]} | {c.author_email} |" for c in candidate.values()
    ]
    return "| service | version | digest | commit | author |\n|---|---|---|---|---|\n" + "\n".join(rows)
