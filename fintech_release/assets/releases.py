"""<env>/release/<service>: what each service runs in an environment, and the one step that changes it.

One multi-asset per environment, one asset per service (not a partition), so that one run is one
deployment of the environment. The step runs in one of three modes:

- **deploy** the approved candidate (the default): each service is rolled out and watched; with
  `auto_rollback` an upgrade that turns unhealthy is rolled back at once;
- **rollback**: undo the last deployment that changed the environment (or a named run, or
  everything after a moment), service by service; a service that already runs what it would get
  back is left alone, and a rollback that would change nothing fails saying so;
- **restore** (self-heal, and the health watch's repair): bring back exactly the release the records
  say serves now — missing replicas restarted, wrong images replaced, never a new version.

Every change is recorded as a materialization with the image, the version before and after, the
settings it ran with and the `pod_health` verdict (a blocking check).
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial

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
    multi_asset,
)
from pydantic import BaseModel, Field

from fintech_release.concurrency import Concurrently
from fintech_release.config import Environment, ReleaseConfig
from fintech_release.config.models import database_name
from fintech_release.errors import DeploymentRefusedError
from fintech_release.health.model import ServiceHealth
from fintech_release.platforms import platform_keys
from fintech_release.records.approvals import ApprovalRecord, approved_candidate
from fintech_release.records.event_log import Recorded
from fintech_release.records.keys import (
    REGISTRY_IMAGE,
    deployment_pool,
    environment_group,
    release_key,
    releases_op_name,
)
from fintech_release.records.releases import (
    CandidateImage,
    RollbackPlan,
    last_healthy_release,
    rollback_plan,
    serving_release,
)
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.runtime import DeployOutcome, DeploySpec, ServiceRuntime

POD_HEALTH = "pod_health"
# Services rolled out side by side in one deployment: each rollout mostly waits (replicas starting, the health
# window), and more at once would start more JVMs than a small machine (or node pool) starts well together.
ROLLOUTS_AT_ONCE = 4


class ReleaseMode(StrEnum):
    """What a run of the environment's releases does."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    RESTORE = "restore"


class ReleaseRunConfig(Config):
    """How a run of the environment's releases behaves."""

    mode: ReleaseMode = Field(
        default=ReleaseMode.DEPLOY,
        description="DEPLOY the approved candidate; ROLLBACK what a deployment changed; RESTORE the recorded release.",
    )
    undo_run: str | None = Field(
        default=None,
        description="ROLLBACK only: the deployment run to undo (default: the last one that changed the environment).",
    )
    restore_to: str | None = Field(
        default=None,
        description="ROLLBACK only: an ISO 8601 time (UTC unless given); every service goes back to its newest "
        "healthy release at or before it.",
    )


class RuntimeSettings(BaseModel, frozen=True):
    """How a release runs besides its image; recorded with it so a rollback restores both."""

    replicas: int
    env: dict[str, str]


def release_assets(release_config: ReleaseConfig, environment: Environment, deps: list[AssetKey]) -> AssetsDefinition:
    """The multi-asset of `environment`'s releases, one asset and one blocking `pod_health` check per service.

    Each release depends on `deps` (the environment's cluster, database, ingress, approval) and on the same
    service upstream only: its release in the environment it promotes from, so the lineage reads one lane per
    service, or the pushed images (registry/image is one partitioned node for every service; a multi-asset can
    map it one way only).
    """
    env = environment.name
    keys = platform_keys(environment)

    def upstream(service: str) -> AssetKey:
        source = environment.promotes_from
        return REGISTRY_IMAGE if source is None else release_key(source, service)

    @multi_asset(
        name=releases_op_name(env),
        specs=[
            AssetSpec(
                release_key(env, name), deps=[*deps, upstream(name)], group_name=environment_group(env),
                kinds=set(keys.release_kinds),
                skippable=True,
            )
            for name in release_config.service_names
        ],
        check_specs=[
            AssetCheckSpec(
                POD_HEALTH, asset=release_key(env, name), blocking=True,
                description="Every replica runs the released image, ready, without restarts; the count is met.",
            )
            for name in release_config.service_names
        ],
        can_subset=True,
        pool=deployment_pool(env),
        required_resource_keys={keys.runtime, keys.ingress, keys.database},
        description=f"Roll the candidate images out in {env} (or roll back, or restore); one run is one deployment.",
    )
    def releases(context: AssetExecutionContext, config: ReleaseRunConfig) -> Iterator[MaterializeResult]:
        step = _ReleaseStep(
            context, release_config, environment, getattr(context.resources, keys.runtime),
            getattr(context.resources, keys.ingress), getattr(context.resources, keys.database),
        )
        selected = context.selected_asset_keys
        services = [name for name in release_config.service_names if release_key(env, name) in selected]
        if config.mode is ReleaseMode.ROLLBACK:
            yield from step.roll_back(services, undo_run=config.undo_run, at=parse_moment(config.restore_to))
        elif config.mode is ReleaseMode.RESTORE:
            yield from step.restore(services)
        else:
            yield from step.deploy(services)

    return releases


def parse_moment(text: str | None) -> datetime | None:
    """An ISO 8601 time as a timezone-aware datetime (UTC when none is given); `DeploymentRefusedError` if malformed."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DeploymentRefusedError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-29T10:15:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def nothing_to_roll_back(plan: RollbackPlan, already: dict[str, str]) -> str:
    """The one line a rollback that would change nothing ends with."""
    if not plan.targets and not plan.not_restorable:
        return f"{plan.environment}: nothing to roll back: no deployment has changed {plan.environment} yet"
    reasons = [f"{name} already runs {version}" for name, version in already.items()]
    reasons += [f"{name}: {why}" for name, why in plan.not_restorable.items()]
    return f"{plan.environment}: nothing to roll back ({plan.undoes}): " + "; ".join(reasons)


class _ReleaseStep:
    """One run of the releases step: the run's context, the environment and the resources that act on it."""

    def __init__(
        self, context: AssetExecutionContext, config: ReleaseConfig, environment: Environment,
        runtime: ServiceRuntime, ingress: Ingress, database: DatabaseAdmin,
    ) -> None:
        self.context, self.config, self.environment = context, config, environment
        self.runtime, self.ingress, self.database = runtime, ingress, database
        self.env = environment.name

    def deploy(self, services: list[str]) -> Iterator[MaterializeResult]:
        """Roll the approved candidate of `services` out; with auto_rollback, undo an upgrade that turns unhealthy."""
        try:
            candidate, approvals = approved_candidate(self.context.instance, self.config, self.env, services)
        except DeploymentRefusedError as refused:
            raise Failure(str(refused)) from None
        missing = [name for name in services if name not in candidate]
        if missing:
            source = (
                "pushed image" if self.environment.promotes_from is None
                else f"release that passed pod_health in {self.environment.promotes_from}"
            )
            raise Failure(f"{self.env}: nothing to deploy for {', '.join(missing)} (no {source} yet)")
        instance = self.context.instance
        plans = [
            (name, candidate[name], self._configured_settings(name), serving_release(instance, self.env, name))
            for name in services
        ]
        notes: list[list[str]] = [[] for _ in plans]
        rollouts = [
            partial(self._roll_out, name, image.reference, settings, say=said.append)
            for (name, image, settings, _), said in zip(plans, notes, strict=True)
        ]
        reported: set[int] = set()
        # Side by side (each rollout mostly waits: replicas starting, the health window), reported in service order.
        # An interruption or a failure stops the rollouts still going (each removes the replicas it started); those
        # that had finished are recorded before the step ends, as the sequential loop had recorded them.
        with Concurrently(rollouts, at_once=ROLLOUTS_AT_ONCE, name=f"{self.env}-rollout") as running:
            try:
                for index, plan in enumerate(plans):
                    outcome, health = running.result(index)
                    reported.add(index)
                    yield self._deployed(plan, outcome, health, approvals, notes[index], may_roll_back=True)
            except GeneratorExit:
                raise
            except BaseException:
                running.stop()
                for index, plan in enumerate(plans):
                    if index not in reported and running.succeeded(index):
                        outcome, health = running.result(index)
                        yield self._deployed(plan, outcome, health, approvals, notes[index], may_roll_back=False)
                raise

    def _deployed(
        self, plan: tuple[str, CandidateImage, RuntimeSettings, Recorded | None], outcome: DeployOutcome,
        health: ServiceHealth, approvals: dict[str, ApprovalRecord], notes: list[str], *, may_roll_back: bool,
    ) -> MaterializeResult:
        """The record of one service's rollout; with auto_rollback, an upgrade that turned unhealthy is undone first."""
        name, image, settings, before = plan
        for note in notes:
            self.context.log.info(note)
        status, serving = _deploy_status(outcome, image, settings, before), outcome.image
        if (
            may_roll_back and status == "deployed" and not health.healthy and self.environment.auto_rollback
            and outcome.previous_image
        ):
            self.context.log.warning(
                f"{self.env}/{name}: unhealthy after the upgrade, rolling back to {outcome.previous_image}"
            )
            healthy_before = last_healthy_release(self.context.instance, self.env, name)
            settings = _recorded_settings(healthy_before) or settings  # what ran before comes back whole
            restored, _ = self._roll_out(name, outcome.previous_image, settings)
            status = "auto_rolled_back" if restored.status != "failed" else "auto_rollback_failed"
            serving = restored.image
        return self._result(
            name, image, status=status, serving=serving, outcome=outcome, before=before, health=health,
            settings=settings, extra=self._approval_metadata(approvals.get(name), before),
        )

    def roll_back(
        self, services: list[str], *, undo_run: str | None, at: datetime | None
    ) -> Iterator[MaterializeResult]:
        """Bring back, per service, the healthy release the plan names; fail when that changes nothing."""
        try:
            plan = rollback_plan(self.context.instance, self.env, services, undo_run=undo_run, at=at)
        except DeploymentRefusedError as refused:
            raise Failure(str(refused)) from None
        already: dict[str, str] = {}
        for name, target in plan.targets.items():
            image = CandidateImage.from_metadata(name, target.metadata)
            settings = _recorded_settings(target.metadata) or self._configured_settings(name)
            before = serving_release(self.context.instance, self.env, name)
            running = self.runtime.running_image(environment=self.env, service=name)
            if running == image.reference and before is not None and _recorded_settings(before.metadata) == settings:
                already[name] = f"{image.version} ({image.digest})"
                continue
            outcome, health = self._roll_out(name, image.reference, settings)
            yield self._result(
                name, image, status="rolled_back" if outcome.status != "failed" else "rollback_failed",
                serving=outcome.image, outcome=outcome, before=before, health=health, settings=settings,
                extra={
                    "rolled_back_to": image.version,
                    "undoes": plan.undoes,
                    **(
                        {"approved_by": str(target.metadata["approved_by"])}
                        if "approved_by" in target.metadata else {}
                    ),
                },
            )
        for name, why in plan.not_restorable.items():
            self.context.log.warning(f"{self.env}/{name}: not rolled back: {why}")
        if len(already) == len(plan.targets):
            raise Failure(nothing_to_roll_back(plan, already))

    def restore(self, services: list[str]) -> Iterator[MaterializeResult]:
        """Bring back exactly the release recorded as serving: the same image and settings, never a new version."""
        for name in services:
            record = serving_release(self.context.instance, self.env, name)
            if record is None:
                self.context.log.info(f"{self.env}/{name}: no release recorded as serving; nothing to restore")
                continue
            image = CandidateImage.from_metadata(name, record.metadata)
            settings = _recorded_settings(record.metadata) or self._configured_settings(name)
            outcome, health = self._roll_out(name, image.reference, settings)
            yield self._result(
                name, image, status="restored" if outcome.status == "deployed" else outcome.status,
                serving=outcome.image, outcome=outcome, before=record, health=health, settings=settings,
                extra={"restores_release_of_run": record.run_id},
            )

    def _approval_metadata(self, approval: ApprovalRecord | None, before: Recorded | None) -> dict:
        """Who approved what serves: this run's approval, else (nothing changed) the one the serving release had."""
        if approval is not None:
            approved_by, run_id = approval.approver, approval.run_id
        elif before is not None and "approval_run" in before.metadata:
            approved_by, run_id = str(before.metadata.get("approved_by", "")), str(before.metadata["approval_run"])
        else:
            return {}
        url = f"{self.config.notifications.dagster_url}/runs/{run_id}"
        return {"approved_by": approved_by, "approval_run": run_id, "approval": MetadataValue.url(url)}

    def _configured_settings(self, name: str) -> RuntimeSettings:
        """The settings release.yaml gives `name` in this environment now."""
        values = self.config.service(name).deployment_in(self.env)
        return RuntimeSettings(replicas=values.replicas, env={**values.env, "APP_ENV": self.env})

    def _roll_out(
        self, name: str, image: str, settings: RuntimeSettings, *, say: Callable[[str], None] | None = None
    ) -> tuple[DeployOutcome, ServiceHealth]:
        """Deploy `image` with `settings` and the database credentials in use now, then watch it.

        Credentials are never part of the recorded settings, so a rollback or restore after a rotation
        gets the current ones. Once every replica runs with them, the standby account is locked. `say` takes
        what is worth logging (default: the step's log; a rollout in another thread hands its notes back instead).
        """
        say = say or self.context.log.info
        service = self.config.service(name)
        database = database_name(self.env, service.database) if service.database else None
        access = self.database.service_access(database=database) if database else None
        spec = DeploySpec(
            environment=self.env,
            service=name,
            image=image,
            replicas=settings.replicas,
            address=self.config.environment_address(self.env),
            health_path=service.health_path,
            env=settings.env,
            database=access,
        )
        started = datetime.now(UTC)
        outcome = self.runtime.deploy(
            spec=spec,
            on_backends_changed=lambda backends: self.ingress.set_backends(
                environment=self.env, service=name, backends=backends
            ),
        )
        if outcome.status == "failed":
            return outcome, outcome.health
        if access is not None and (retired := self.database.retire_standby_account(database=access.name)):
            say(f"{self.env}/{name}: every replica uses {access.user}; {retired} is locked")
        if outcome.status == "unchanged":
            # Nothing was started, so there is no window to watch: the look the runtime just took to find every
            # replica fitting (running the image, ready, never restarted) is the verdict; a second look adds nothing.
            return outcome, outcome.health
        window = self.environment.health_window_seconds if outcome.status == "deployed" else 0
        health = self.runtime.health(
            environment=self.env, service=name, desired_replicas=settings.replicas, expected_image=outcome.image,
            window_seconds=window, since=started,
        )
        return outcome, health

    def _result(
        self,
        name: str,
        image: CandidateImage,
        *,
        status: str,
        serving: str | None,
        outcome: DeployOutcome,
        before: Recorded | None,
        health: ServiceHealth,
        settings: RuntimeSettings,
        extra: dict,
    ) -> MaterializeResult:
        healthy = health.healthy and serving == image.reference
        serving_digest = serving.rsplit("@", 1)[-1] if serving else "none"
        previous_version = before.metadata.get("version", "none") if before is not None else "none"
        key = release_key(self.env, name)
        return MaterializeResult(
            asset_key=key,
            metadata={
                "status": status,
                "healthy": healthy,
                "pinned_reference": image.reference,
                "digest": image.digest,
                "version": image.version,
                "commit": image.commit,
                "author_email": image.author_email,
                "committed_at": image.committed_at,
                "image": f"{image.version} · {image.digest[:19]}… · commit {image.commit[:12]}",
                "serving": serving or "nothing",
                "previous": outcome.previous_image or "nothing",
                "previous_version": str(previous_version),
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
                    asset_key=key,
                    check_name=POD_HEALTH,
                    passed=healthy,
                    severity=AssetCheckSeverity.ERROR,
                    description="; ".join(health.problems) or f"{health.ready_replicas} replicas ready",
                    metadata={"problems": MetadataValue.json(list(health.problems))},
                )
            ],
        )


def _deploy_status(
    outcome: DeployOutcome, image: CandidateImage, settings: RuntimeSettings, before: Recorded | None
) -> str:
    """The runtime's outcome, except that replacing replicas of the release already in place is a repair.

    A repair (e.g. a replica removed by hand, brought back) changes nothing a rollback could undo,
    so it is not recorded as `deployed`.
    """
    if outcome.status != "deployed" or before is None:
        return outcome.status
    same = before.metadata.get("pinned_reference") == image.reference
    return "repaired" if same and _recorded_settings(before.metadata) == settings else outcome.status


def _recorded_settings(metadata: dict | None) -> RuntimeSettings | None:
    """The settings a release materialization recorded (None for records that predate them)."""
    if not metadata or "runtime_env" not in metadata:
        return None
    return RuntimeSettings(replicas=int(metadata["desired_replicas"]), env=dict(metadata["runtime_env"]))
