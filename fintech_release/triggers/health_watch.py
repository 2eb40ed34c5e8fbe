"""The health watch: between deployments, every released service is judged on an interval, as Argo CD does.

`watch_<env>_health` looks at each service's serving release (records/releases.py) every
`health_interval_seconds` of the environment (default 20) through the environment's runtime —
containers locally, the Kubernetes API on gke — with the same `pod_health` judgement a deployment
uses: every replica runs the recorded image, ready, no restart since the last look, the count met.
When a verdict changes it

- records it on the release asset as a `pod_health` check evaluation (the UI shows the check
  turn red, and green again), with the problems and which release was judged;
- emails the environment's `notify` addresses (else `notifications.email.master_recipients`)
  once when services turn bad and once when they recover;
- with `self_heal: true`, requests `restore_<env>` for the services that turned bad: their
  recorded release comes back (missing replicas started, wrong images replaced), never a new
  version; once per bad spell, so a release that keeps failing is not restarted in a loop.

It stays out of the way of deployments: while a run changes the environment it looks at nothing.
Ephemeral environments (ci) are not watched: they live for one deployment.
"""

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DefaultSensorStatus,
    JobDefinition,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fintech_release.assets.releases import POD_HEALTH
from fintech_release.config import Environment, ReleaseConfig
from fintech_release.health.model import ServiceHealth
from fintech_release.notifications.messages import HealthChange, compose_health_email
from fintech_release.platforms import platform_keys
from fintech_release.records.event_log import Recorded
from fintech_release.records.keys import DEPLOYMENT_TAG, dagster_name, environment_group, release_key
from fintech_release.records.releases import serving_release
from fintech_release.records.runs import changing_runs
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.runtime import ServiceRuntime

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

NOTIFIER_KEY = "notifier"
LOOKED_AT = "_looked_at"  # cursor entry: when the last tick looked, so only restarts since then count


def health_watch_name(environment: str) -> str:
    """`watch_<env>_health`."""
    return f"watch_{dagster_name(environment)}_health"


def health_watch_sensor(
    config: ReleaseConfig,
    environment: Environment,
    restore_job: "JobDefinition | UnresolvedAssetJobDefinition | None",
) -> SensorDefinition:
    """The watch of `environment`; `restore_job` is requested for services that turn bad (with self_heal)."""
    env = environment.name
    runtime_key = platform_keys(environment).runtime
    email = config.notifications.email
    emails = email is not None
    recipients = environment.notify or (email.master_recipients if email is not None else ())

    @sensor(
        name=health_watch_name(env),
        minimum_interval_seconds=environment.health_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={runtime_key, *([NOTIFIER_KEY] if emails else [])},
        job=restore_job if environment.self_heal else None,
        description=f"Judge every released service of {env} each {environment.health_interval_seconds} s; record, "
        f"email{' and restore' if environment.self_heal else ''} when a verdict changes.",
    )
    def watch(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        busy = changing_runs(context.instance, env)
        if busy:
            return SkipReason(f"{env}: run {busy[0].run_id} ({busy[0].job_name}) is changing it; not judged now")
        state: dict = json.loads(context.cursor) if context.cursor else {}
        now = datetime.now(UTC)
        since = datetime.fromisoformat(state[LOOKED_AT]) if LOOKED_AT in state else None
        runtime: ServiceRuntime = getattr(context.resources, runtime_key)
        evaluations, changes, to_restore = [], [], []
        for service in config.service_names:
            release = serving_release(context.instance, env, service)
            if release is None:
                state.pop(service, None)
                continue
            health = runtime.health(
                environment=env, service=service, desired_replicas=int(release.metadata["desired_replicas"]),
                expected_image=str(release.metadata["serving"]), window_seconds=0, since=since or release.recorded_at,
            )
            # The last verdict the watch gave, else what the release recorded when it went out.
            was_healthy = state[service] if service in state else bool(release.metadata.get("healthy"))
            state[service] = health.healthy
            if health.healthy == was_healthy:
                continue
            heal = not health.healthy and environment.self_heal
            if heal:
                to_restore.append(service)
            evaluations.append(_evaluation(env, service, health, release))
            changes.append(_change(service, health, release, "restore requested (self_heal)" if heal else None))
            context.log.info(f"{env}/{service}: {'healthy again' if health.healthy else '; '.join(health.problems)}")
        state[LOOKED_AT] = now.isoformat()
        if changes and emails:
            _email(context, env, changes, config, recipients)
        requests = (
            [
                RunRequest(
                    run_key=f"restore-{env}-{now:%Y%m%dT%H%M%S%f}",
                    asset_selection=[release_key(env, service) for service in to_restore],
                    tags={DEPLOYMENT_TAG: env},
                )
            ]
            if to_restore
            else []
        )
        return SensorResult(run_requests=requests, asset_events=evaluations, cursor=json.dumps(state))

    return watch


def _evaluation(env: str, service: str, health: ServiceHealth, release: Recorded) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=release_key(env, service),
        check_name=POD_HEALTH,
        passed=health.healthy,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(health.problems) or f"{health.ready_replicas} replicas ready (health watch)",
        metadata={
            "judged_by": "health watch",
            "release_version": str(release.metadata["version"]),
            "release_run": release.run_id,
            "problems": MetadataValue.json(list(health.problems)),
        },
    )


def _change(service: str, health: ServiceHealth, release: Recorded, action: str | None) -> HealthChange:
    return HealthChange(
        service=service, version=str(release.metadata["version"]), digest=str(release.metadata["digest"]),
        healthy=health.healthy, problems=health.problems, action=action,
    )


def _email(
    context: SensorEvaluationContext, env: str, changes: list[HealthChange], config: ReleaseConfig,
    recipients: tuple[str, ...],
) -> None:
    settings = config.notifications.email
    assert settings is not None
    url = f"{config.notifications.dagster_url}/asset-groups/{environment_group(env)}"
    notifier: EmailNotifier = getattr(context.resources, NOTIFIER_KEY)
    report = notifier.send(compose_health_email(env, changes, settings, recipients, url))
    if report.delivered:
        context.log.info(f"{env}: emailed the health change to {', '.join(report.recipients)}")
    else:
        context.log.warning(f"{env}: the health change was not emailed: {report.reason}")
