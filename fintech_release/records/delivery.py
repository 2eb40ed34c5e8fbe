"""DORA's four keys, computed from the release records of an environment (nothing else is kept).

Definitions follow the DORA research programme (dora.dev), applied to one environment at a time
(production is the one DORA means; the others show the same figures for their own stage):

- **Deployment frequency**: deployments per day over the window. A *deployment* is a run that put a
  new image or new settings in place for at least one service (a release recorded `deployed`, or
  rolled out and then rolled back automatically: `auto_rolled_back`, `auto_rollback_failed`).
  Rollouts that never served (`failed`: the previous version kept serving), repairs, restores and
  rollbacks are not deployments.
- **Lead time for changes**: for each service a deployment changed and that was healthy, from the
  commit's time to the release being recorded healthy; the median is reported.
- **Change failure rate**: the share of deployments that caused a failure: a release that was
  unhealthy after it went out (pod_health failed, an automatic rollback), or one a later rollback
  undid. DORA counts any remediation (rollback, hotfix, patch); a hotfix cannot be told from a
  feature here, so it is not counted — say so when comparing with other teams.
- **Time to restore** (DORA's "failed deployment recovery time"): for each failed deployment, from
  the start of its run to the moment every service it broke was healthy again (a later release,
  rollback or restore recorded healthy); an automatic rollback restores within its own run. The
  median is reported; failures not yet restored are listed, not counted.

Failures the health watch finds between deployments (a replica dying a day later) are not changes
and are not counted; they show on the release assets' `pod_health` history.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance
from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.records.event_log import Recorded, materializations_since
from fintech_release.records.keys import release_key

CHANGES = ("deployed", "auto_rolled_back", "auto_rollback_failed")


class DeploymentRecord(BaseModel, frozen=True):
    """One deployment: what it changed, whether it failed, how long until it was restored."""

    run_id: str
    started_at: datetime
    services: tuple[str, ...]
    versions: dict[str, str]  # service -> the version it put in place
    broken: dict[str, str] = {}  # service -> why the change counts as a failure
    restored_after_minutes: float | None = None  # failed and restored; None: not failed, or not restored yet
    lead_times_hours: dict[str, float] = {}  # service -> commit to healthy release, for the healthy ones

    @property
    def failed(self) -> bool:
        """Whether the deployment caused a failure."""
        return bool(self.broken)


class Figures(BaseModel, frozen=True):
    """The four keys over one window."""

    deployments: int
    per_day: float
    lead_time_hours: float | None  # median
    change_failure_rate: float | None  # 0..1
    time_to_restore_minutes: float | None  # median
    failed_not_restored: int


class DeliveryMetrics(BaseModel, frozen=True):
    """The four keys of one environment: overall, per service, per week, and the deployments behind them."""

    environment: str
    since: datetime
    until: datetime
    overall: Figures
    per_service: dict[str, Figures]
    weekly: dict[str, Figures]  # ISO week (2026-W48) -> figures
    deployments: tuple[DeploymentRecord, ...]


def delivery_metrics(
    instance: DagsterInstance, config: ReleaseConfig, environment: str, *, since: datetime, until: datetime
) -> DeliveryMetrics:
    """The four keys of `environment` between `since` and `until` (timezone-aware)."""
    histories = {
        service: [r for r in materializations_since(instance, release_key(environment, service), since)
                  if r.recorded_at <= until]
        for service in config.service_names
    }
    deployments = _deployments(instance, histories)
    days = max((until - since).total_seconds() / 86400, 1 / 24)
    weeks: dict[str, list[DeploymentRecord]] = defaultdict(list)
    for deployment in deployments:
        year, week, _ = deployment.started_at.isocalendar()
        weeks[f"{year}-W{week:02d}"].append(deployment)
    return DeliveryMetrics(
        environment=environment,
        since=since,
        until=until,
        overall=_figures(deployments, days),
        per_service={
            service: _figures([_only(d, service) for d in deployments if service in d.services], days)
            for service in config.service_names
        },
        weekly={week: _figures(items, 7) for week, items in sorted(weeks.items())},
        deployments=tuple(deployments),
    )


def _deployments(instance: DagsterInstance, histories: dict[str, list[Recorded]]) -> list[DeploymentRecord]:
    changes: dict[str, list[tuple[str, Recorded]]] = defaultdict(list)
    for service, history in histories.items():
        for record in history:
            if record.metadata.get("status") in CHANGES:
                changes[record.run_id].append((service, record))
    deployments = []
    for run_id, changed in changes.items():
        run = instance.get_run_record_by_id(run_id)
        started = (
            datetime.fromtimestamp(run.start_time, UTC) if run and run.start_time
            else min(record.recorded_at for _, record in changed)
        )
        broken = {service: _why_broken(record, histories[service]) for service, record in changed}
        broken = {service: why for service, why in broken.items() if why}
        restored = [_restored_at(histories[service], record) for service, record in changed if service in broken]
        recovered = [moment for moment in restored if moment is not None]
        deployments.append(
            DeploymentRecord(
                run_id=run_id,
                started_at=started,
                services=tuple(service for service, _ in changed),
                versions={service: str(record.metadata.get("version", "?")) for service, record in changed},
                broken=broken,
                restored_after_minutes=(
                    max((moment - started).total_seconds() for moment in recovered) / 60
                    if broken and len(recovered) == len(restored) else None
                ),
                lead_times_hours={
                    service: hours for service, record in changed if (hours := _lead_time_hours(record)) is not None
                },
            )
        )
    return sorted(deployments, key=lambda deployment: deployment.started_at)


def _why_broken(change: Recorded, history: list[Recorded]) -> str:
    """Why this change counts as a failure ('' when it does not)."""
    status = change.metadata.get("status")
    if status != "deployed":
        return "rolled back automatically (unhealthy after the rollout)"
    if not change.metadata.get("healthy"):
        return "unhealthy after the rollout"
    for later in history:
        undoes = str(later.metadata.get("undoes", ""))
        if later.recorded_at > change.recorded_at and later.metadata.get("status") == "rolled_back" and (
            change.run_id in undoes
        ):
            return f"rolled back by run {later.run_id}"
    return ""


def _restored_at(history: list[Recorded], change: Recorded) -> datetime | None:
    """When the service was healthy again after `change` broke it (an automatic rollback restores at once)."""
    if change.metadata.get("status") == "auto_rolled_back":
        return change.recorded_at
    later = (r for r in history if r.recorded_at > change.recorded_at and r.metadata.get("healthy"))
    return next((r.recorded_at for r in later if r.metadata.get("serving") == r.metadata.get("pinned_reference")), None)


def _lead_time_hours(change: Recorded) -> float | None:
    committed = str(change.metadata.get("committed_at", ""))
    if not committed or change.metadata.get("status") != "deployed" or not change.metadata.get("healthy"):
        return None
    moment = datetime.fromisoformat(committed)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max((change.recorded_at - moment).total_seconds(), 0) / 3600


def _only(deployment: DeploymentRecord, service: str) -> DeploymentRecord:
    """The deployment as far as `service` is concerned (for the per-service figures)."""
    broken = {name: why for name, why in deployment.broken.items() if name == service}
    return deployment.model_copy(update={
        "services": (service,), "broken": broken,
        "restored_after_minutes": deployment.restored_after_minutes if broken else None,
        "lead_times_hours": {name: h for name, h in deployment.lead_times_hours.items() if name == service},
    })


def _figures(deployments: list[DeploymentRecord], days: float) -> Figures:
    failed = [d for d in deployments if d.failed]
    restored = [d.restored_after_minutes for d in failed if d.restored_after_minutes is not None]
    lead = [hours for d in deployments for hours in d.lead_times_hours.values()]
    return Figures(
        deployments=len(deployments),
        per_day=round(len(deployments) / days, 3),
        lead_time_hours=round(statistics.median(lead), 3) if lead else None,
        change_failure_rate=round(len(failed) / len(deployments), 3) if deployments else None,
        time_to_restore_minutes=round(statistics.median(restored), 2) if restored else None,
        failed_not_restored=len(failed) - len(restored),
    )


def default_window(now: datetime | None = None, days: int = 30) -> tuple[datetime, datetime]:
    """The last `days` days up to now."""
    until = now or datetime.now(UTC)
    return until - timedelta(days=days), until
