"""What runs where, from the release records: candidates, the release serving now, and rollback plans.

- The **candidate** of an environment is, per service, the image it would deploy: the newest pushed
  image for an environment that promotes from the registry (ci, staging); for an environment that
  promotes from another (production ← staging), the newest image that passed that environment's
  `pod_health` — exactly those digests, nothing else.
- The **serving release** is the newest release put in place and still serving (a failed rollout
  left the previous one serving); the health watch judges it and a restore brings it back.
- A **rollback plan** undoes the last deployment that changed the environment, a named one, or
  everything after a moment: per service, the newest healthy release before it.
"""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance
from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError
from fintech_release.records.event_log import Recorded, latest_materialization_metadata, materializations
from fintech_release.records.keys import REGISTRY_IMAGE, TORN_DOWN, cluster_key, release_key

RELEASE_HISTORY_SCAN = 100
# Release statuses that leave something other than the release asked for, or nothing healthy, in place.
NOT_IN_PLACE = ("failed", "rollback_failed", "auto_rolled_back", "auto_rollback_failed")


class CandidateImage(BaseModel, frozen=True):
    """One service's image as a candidate for an environment."""

    service: str
    reference: str  # pinned: registry/repository@sha256:…
    digest: str
    version: str
    commit: str
    author_email: str
    committed_at: str = ""  # ISO 8601 ("" for records older than this field)

    @classmethod
    def from_metadata(cls, service: str, metadata: dict) -> CandidateImage:
        """The image a registry/image or <env>/release materialization recorded."""
        return cls(
            service=service,
            reference=str(metadata["pinned_reference"]),
            digest=str(metadata["digest"]),
            version=str(metadata["version"]),
            commit=str(metadata["commit"]),
            author_email=str(metadata["author_email"]),
            committed_at=str(metadata.get("committed_at", "")),
        )


def candidate_for(instance: DagsterInstance, config: ReleaseConfig, environment: str) -> dict[str, CandidateImage]:
    """Per service, the image `environment` would deploy now (services with nothing to deploy are absent)."""
    source = config.environment(environment).promotes_from
    candidates: dict[str, CandidateImage] = {}
    for service in config.service_names:
        if source is None:
            record = latest_materialization_metadata(instance, REGISTRY_IMAGE, service)
        else:
            record = last_healthy_release(instance, source, service)
        if record is not None:
            candidates[service] = CandidateImage.from_metadata(service, record)
    return candidates


def release_history(instance: DagsterInstance, environment: str, service: str) -> list[Recorded]:
    """The service's release records in the environment, newest first (at most RELEASE_HISTORY_SCAN)."""
    return materializations(instance, release_key(environment, service), limit=RELEASE_HISTORY_SCAN)


def last_healthy_release(instance: DagsterInstance, environment: str, service: str) -> dict | None:
    """Metadata of the newest release of `service` in `environment` that passed pod_health."""
    healthy = (r.metadata for r in release_history(instance, environment, service) if r.metadata.get("healthy"))
    return next(healthy, None)


def serving_release(instance: DagsterInstance, environment: str, service: str) -> Recorded | None:
    """The release put in place last and still serving: what the environment should run now.

    The newest record whose image is the one serving after its run (deployed, unchanged, rolled
    back, restored; healthy or not). A failed rollout or an automatic rollback left what ran
    before serving, so it is passed over, also when it had the same image and only its settings
    differed. None when nothing was released or the environment was torn down since (a teardown is
    recorded on `<env>/cluster`).
    """
    cluster = materializations(instance, cluster_key(environment), limit=1)
    torn_down = cluster[0].recorded_at if cluster and cluster[0].metadata.get("state") == TORN_DOWN else None
    for record in release_history(instance, environment, service):
        if torn_down is not None and torn_down >= record.recorded_at:
            return None
        put_in_place = record.metadata.get("status") not in NOT_IN_PLACE
        if put_in_place and record.metadata.get("serving") == record.metadata.get("pinned_reference"):
            return record
    return None


class RollbackPlan(BaseModel, frozen=True):
    """What a rollback restores: per service, the healthy release to bring back, and what is undone."""

    environment: str
    undoes: str  # in words: "deployment run 1a2b… of 2026-11-29 10:15 UTC", "everything released after …"
    undone_run: str | None  # the deployment run undone (None when restoring to a moment)
    targets: dict[str, Recorded]  # service -> the release to restore
    not_restorable: dict[str, str]  # service -> why it has nothing to go back to


def rollback_plan(
    instance: DagsterInstance,
    environment: str,
    services: list[str],
    *,
    undo_run: str | None = None,
    at: datetime | None = None,
) -> RollbackPlan:
    """What rolling `environment` back restores, from the release records alone.

    By default it undoes the last deployment that changed the environment (a release recorded as
    `deployed`): each service that run changed goes back to its newest healthy release before
    it. `undo_run` names the deployment run to undo instead; `at` (timezone-aware) brings every
    service back to its newest healthy release at or before that moment. Rollbacks and restores
    are not deployments here, so a second rollback does not flip back: it finds the services
    already restored. `DeploymentRefusedError` when `undo_run` changed nothing in the environment.
    """
    histories = {service: release_history(instance, environment, service) for service in services}
    targets: dict[str, Recorded] = {}
    missing: dict[str, str] = {}
    if at is not None:
        for service, history in histories.items():
            found = next((r for r in history if r.recorded_at <= at and r.metadata.get("healthy")), None)
            if found is None:
                missing[service] = f"nothing healthy ran in {environment} at or before {at:%Y-%m-%d %H:%M:%S} UTC"
            else:
                targets[service] = found
        return RollbackPlan(
            environment=environment, undoes=f"everything released after {at:%Y-%m-%d %H:%M:%S} UTC",
            undone_run=None, targets=targets, not_restorable=missing,
        )
    changes = [record for history in histories.values() for record in history if _changed(record)]
    if undo_run is None:
        if not changes:
            return RollbackPlan(
                environment=environment, undoes="no deployment", undone_run=None, targets={}, not_restorable={}
            )
        undo_run = max(changes, key=lambda record: record.recorded_at).run_id
    if not any(record.run_id == undo_run for record in changes):
        raise DeploymentRefusedError(
            f"{environment}: run {undo_run} changed nothing there (none of its releases is 'deployed'); "
            f"`fintech-release releases {environment}` lists what each run did"
        )
    for service, history in histories.items():
        index = next((i for i, r in enumerate(history) if r.run_id == undo_run and _changed(r)), None)
        if index is None:
            continue
        before = next((r for r in history[index + 1 :] if r.metadata.get("healthy")), None)
        if before is None:
            missing[service] = f"run {undo_run} was its first release in {environment}: nothing healthy ran before"
        else:
            targets[service] = before
    when = min(r.recorded_at for r in changes if r.run_id == undo_run)
    return RollbackPlan(
        environment=environment, undoes=f"deployment run {undo_run} of {when:%Y-%m-%d %H:%M} UTC",
        undone_run=undo_run, targets=targets, not_restorable=missing,
    )


def _changed(record: Recorded) -> bool:
    """A release that put a new image or new settings in place (a deployment, not a rollback or a restore)."""
    return record.metadata.get("status") == "deployed"
