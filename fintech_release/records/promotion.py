"""What may be deployed where, in one place: candidates, approvals and rollback targets.

- The **candidate** of an environment is, per service, the image it would deploy: the newest pushed
  image for an environment that promotes from the registry (ci, staging); for an environment that
  promotes from another (production ← staging), the newest image that passed that environment's
  `pod_health` — exactly those digests, nothing else.
- An **approval** is a typed record (environment, candidate digests, decision, approver, reason,
  time) kept as a materialization of `<env>/approval`, so its history is the audit trail.
- A deployment to an environment that requires approval refuses any digest that no one approved;
  a "no" for that digest refuses it too.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum

from dagster import DagsterInstance
from pydantic import BaseModel

from fintech_release.records.event_log import latest_materialization_metadata, materializations
from fintech_release.records.keys import REGISTRY_IMAGE, approval_key, release_key
from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError

RELEASE_HISTORY_SCAN = 100


class Decision(str, Enum):
    """An approver's answer."""

    YES = "yes"
    NO = "no"


class CandidateImage(BaseModel, frozen=True):
    """One service's image as a candidate for an environment."""

    service: str
    reference: str  # pinned: registry/repository@sha256:…
    digest: str
    version: str
    commit: str
    author_email: str

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
        )


class ApprovalRecord(BaseModel, frozen=True):
    """One approval decision, as recorded on `<env>/approval`."""

    environment: str
    candidate: dict[str, str]  # service -> digest
    decision: Decision
    approver: str
    reason: str
    decided_at: datetime
    run_id: str


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


def last_healthy_release(instance: DagsterInstance, environment: str, service: str) -> dict | None:
    """Metadata of the newest release of `service` in `environment` that passed pod_health."""
    for record in materializations(instance, release_key(environment, service), limit=RELEASE_HISTORY_SCAN):
        if record.metadata.get("healthy"):
            return record.metadata
    return None


def approval_history(instance: DagsterInstance, environment: str, limit: int = 50) -> list[ApprovalRecord]:
    """The environment's approval decisions, newest first: the audit trail."""
    return [
        ApprovalRecord(
            environment=environment,
            candidate=json.loads(record.metadata["candidate_digests"]),
            decision=Decision(record.metadata["decision"]),
            approver=str(record.metadata["approver"]),
            reason=str(record.metadata["reason"]),
            decided_at=record.recorded_at,
            run_id=record.run_id,
        )
        for record in materializations(instance, approval_key(environment), limit=limit)
    ]


def require_approval(instance: DagsterInstance, environment: str, candidate: CandidateImage) -> ApprovalRecord:
    """The approval that covers `candidate` in `environment`; `DeploymentRefusedError` if none says yes."""
    for record in approval_history(instance, environment, limit=RELEASE_HISTORY_SCAN):
        if record.candidate.get(candidate.service) != candidate.digest:
            continue
        if record.decision is Decision.NO:
            raise DeploymentRefusedError(
                f"{environment}: {candidate.service} {candidate.version} ({candidate.digest[:19]}…) was rejected "
                f"by {record.approver} at {record.decided_at:%Y-%m-%d %H:%M} UTC: {record.reason}"
            )
        return record
    raise DeploymentRefusedError(
        f"{environment}: no one approved {candidate.service} {candidate.version} ({candidate.digest[:19]}…); "
        f"approve it first (`fintech-release approve {environment} --decision yes --approver … --reason …` "
        f"or materialize {approval_key(environment).to_user_string()} in the UI)"
    )


def four_eyes_violations(candidate: dict[str, CandidateImage], approver: str) -> list[str]:
    """The candidate commits the approver wrote (four-eyes forbids approving them)."""
    who = approver.strip().lower()
    return [
        f"{image.service} commit {image.commit[:12]}"
        for image in candidate.values()
        if image.author_email.strip().lower() == who
    ]


def rollback_target(instance: DagsterInstance, environment: str, service: str) -> dict | None:
    """Metadata of the healthy release to restore when the newest one changed (or tried to) the service.

    None when the newest release changed nothing (unchanged, or already a rollback) or when no
    healthy release precedes it.
    """
    history = materializations(instance, release_key(environment, service), limit=RELEASE_HISTORY_SCAN)
    if not history or history[0].metadata.get("status") not in ("deployed", "failed", "auto_rolled_back"):
        return None
    return next((record.metadata for record in history[1:] if record.metadata.get("healthy")), None)
