"""Approvals, in one place: the typed record of a decision, its audit trail, and whether a deployment may go.

An **approval** is a typed record (environment, the candidate's versions and digests, decision,
approver, reason, time), kept as a materialization of `<env>/approval`, so its history is the audit
trail. The rules a deployment to an environment with `approval.required` follows, per service it
would change:

- only the environment's **newest** decision counts: an older "yes" never covers a candidate
  someone looked at again;
- it must be a "yes" for exactly the digest being deployed: when the candidate changed after the
  decision (a new push, a different promotion), the approver must decide again;
- it is used **once**: after a deployment put that digest in place under it, deploying it again
  (e.g. after a rollback) needs a new decision;
- a service that already runs its candidate needs no approval (nothing changes for it), so
  repairing one service never needs another's;
- with four eyes, the approver may not be an author of any commit in the candidate.

A decision is recorded once: re-executing an approval run is refused (`refuse_reexecution`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from dagster import DagsterInstance, DagsterRun
from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError
from fintech_release.records.event_log import materializations
from fintech_release.records.keys import approval_key, dagster_name
from fintech_release.records.releases import CandidateImage, candidate_for, release_history, serving_release

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
YES_WORDS, NO_WORDS = frozenset({"yes", "y", "true"}), frozenset({"no", "n", "false"})


class Decision(StrEnum):
    """An approver's answer."""

    YES = "yes"
    NO = "no"

    @classmethod
    def parse(cls, value: Any) -> Decision:
        """yes/no in any case (also y/n, true/false, and the booleans a YAML 1.1 reader makes of YES and NO)."""
        if isinstance(value, bool):
            return cls.YES if value else cls.NO
        word = str(value).strip().lower()
        if word in YES_WORDS:
            return cls.YES
        if word in NO_WORDS:
            return cls.NO
        raise DeploymentRefusedError(f"decision: {str(value)[:50]!r} is neither yes nor no")


class ApprovalRecord(BaseModel, frozen=True):
    """One approval decision, as recorded on `<env>/approval`."""

    environment: str
    candidate: dict[str, str]  # service -> digest
    versions: dict[str, str]  # service -> artifact version (empty for records older than this field)
    decision: Decision
    approver: str
    reason: str
    decided_at: datetime
    run_id: str

    def describe(self, service: str) -> str:
        """'1.0.0-3 (sha256:…)': what this decision was about for `service`."""
        digest = self.candidate.get(service, "nothing")
        return f"{self.versions[service]} ({digest})" if service in self.versions else digest


def check_approver(approver: str, reason: str) -> tuple[str, str]:
    """The approver's email address and the reason, stripped; `DeploymentRefusedError` naming what is wrong."""
    who, why = approver.strip(), reason.strip()
    if not EMAIL.match(who):
        raise DeploymentRefusedError(f"approver: {approver[:100]!r} is not an email address (e.g. alice@bank.example)")
    if not why:
        raise DeploymentRefusedError("reason: empty; say why (a change ticket, what was reviewed)")
    return who, why


def refuse_reexecution(run: DagsterRun, environment: str) -> None:
    """`DeploymentRefusedError` for a re-executed approval run: a decision is recorded once, under a name."""
    if run.parent_run_id or run.root_run_id:
        raise DeploymentRefusedError(
            f"{environment}: run {run.run_id} re-executes approval run {run.parent_run_id or run.root_run_id}; a "
            f"decision is recorded once, by the person who makes it. Launch approve_{dagster_name(environment)} anew "
            f"(or `fintech-release approve {environment} …`) to decide again."
        )


def check_expectation(candidate: dict[str, CandidateImage], expect: str) -> None:
    """`DeploymentRefusedError` when the candidate is not what the approver reviewed.

    `expect` lists `service=version` (or `service=sha256:…`) pairs, comma-separated; empty: nothing to compare.
    """
    for pair in filter(None, (part.strip() for part in expect.split(","))):
        service, _, seen = (part.strip() for part in pair.partition("="))
        if not seen:
            raise DeploymentRefusedError(f"expect: {pair[:100]!r} is not service=version")
        image = candidate.get(service)
        if image is None:
            raise DeploymentRefusedError(f"expect: {service!r} has no candidate (candidates: {', '.join(candidate)})")
        if seen not in (image.version, image.digest):
            raise DeploymentRefusedError(
                f"the candidate changed since it was reviewed: {service} is now {image.version} ({image.digest}), "
                f"the decision was about {seen}; look again and decide on what is there now"
            )


def approval_history(instance: DagsterInstance, environment: str, limit: int = 50) -> list[ApprovalRecord]:
    """The environment's approval decisions, newest first: the audit trail."""
    return [
        ApprovalRecord(
            environment=environment,
            candidate=json.loads(record.metadata["candidate_digests"]),
            versions=json.loads(record.metadata.get("candidate_versions", "{}")),
            decision=Decision(record.metadata["decision"]),
            approver=str(record.metadata["approver"]),
            reason=str(record.metadata["reason"]),
            decided_at=record.recorded_at,
            run_id=record.run_id,
        )
        for record in materializations(instance, approval_key(environment), limit=limit)
    ]


def require_approval(instance: DagsterInstance, environment: str, candidate: CandidateImage) -> ApprovalRecord:
    """The decision that lets `candidate` go to `environment`; `DeploymentRefusedError` saying why not otherwise."""
    what = f"{candidate.service} {candidate.version} ({candidate.digest})"
    how = (
        f"decide with `fintech-release approve {environment} --decision yes --approver … --reason …` "
        f"or launch approve_{dagster_name(environment)} in the UI"
    )
    newest = next(iter(approval_history(instance, environment, limit=1)), None)
    if newest is None:
        raise DeploymentRefusedError(f"{environment}: no one approved {what}; {how}")
    by = f"{newest.approver} at {newest.decided_at:%Y-%m-%d %H:%M} UTC"
    approved = newest.candidate.get(candidate.service)
    if approved is None:
        raise DeploymentRefusedError(
            f"{environment}: no one approved {what}; the last decision ({newest.decision.value} by {by}) did not "
            f"include {candidate.service}; {how}"
        )
    if approved != candidate.digest:
        raise DeploymentRefusedError(
            f"{environment}: the candidate changed after the last decision: {newest.decision.value} by {by} was for "
            f"{candidate.service} {newest.describe(candidate.service)}, the candidate is now {what}; {how}"
        )
    if newest.decision is Decision.NO:
        raise DeploymentRefusedError(f"{environment}: {what} was rejected by {by}: {newest.reason}")
    used_by = _deployed_under(instance, environment, candidate.service, newest.run_id)
    if used_by is not None:
        raise DeploymentRefusedError(
            f"{environment}: the approval of {what} by {by} was used by deployment run {used_by}; an approval "
            f"applies once, so deploying it again needs a new decision; {how}"
        )
    return newest


def four_eyes_violations(candidate: dict[str, CandidateImage], approver: str) -> list[str]:
    """The candidate commits the approver wrote (four-eyes forbids approving them)."""
    who = approver.strip().lower()
    return [
        f"{image.service} commit {image.commit[:12]}"
        for image in candidate.values()
        if image.author_email.strip().lower() == who
    ]


def approved_candidate(
    instance: DagsterInstance, config: ReleaseConfig, environment: str, services: list[str]
) -> tuple[dict[str, CandidateImage], dict[str, ApprovalRecord]]:
    """The environment's candidate and, where it requires one, the decision letting each of `services` go.

    `DeploymentRefusedError` when one of `services` may not go: raised before anything is touched,
    so no database is migrated and no replica changes for a candidate no one said yes to. A
    service that already runs its candidate needs no decision and has none in the result. Services
    with nothing to deploy are absent from the candidate; the caller decides what that means.
    """
    candidate = candidate_for(instance, config, environment)
    if not config.environment(environment).approval.required:
        return candidate, {}
    approvals = {}
    for name in services:
        if name not in candidate:
            continue
        serving = serving_release(instance, environment, name)
        if serving is not None and serving.metadata.get("pinned_reference") == candidate[name].reference:
            continue
        approvals[name] = require_approval(instance, environment, candidate[name])
    return candidate, approvals


def _deployed_under(instance: DagsterInstance, environment: str, service: str, approval_run: str) -> str | None:
    """The deployment run that put `service` in place under the approval recorded by `approval_run`, if any."""
    for record in release_history(instance, environment, service):
        if record.metadata.get("status") == "deployed" and record.metadata.get("approval_run") == approval_run:
            return record.run_id
    return None
