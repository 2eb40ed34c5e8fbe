"""`approve_<env>`: a person's decision on the environment's candidate, recorded on `<env>/approval`.

An op job rather than a materialization of the asset, so that its launchpad asks for the decision
and nothing else: it uses no resource, so none is bound to it. The decision is checked before it is
recorded (records/approvals.py): a named approver (an email address) and a reason, yes or no, not a
re-execution of an earlier decision, four eyes where the environment requires them, and, when the
approver says what they reviewed (`expect`), exactly that candidate.
"""

import json
from typing import Any

from dagster import (
    AssetMaterialization,
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    TableColumn,
    TableRecord,
    TableSchema,
    job,
    op,
)
from pydantic import Field

from fintech_release.config import Environment, ReleaseConfig
from fintech_release.errors import DeploymentRefusedError
from fintech_release.jobs.names import approval_op_name, approve_job_name
from fintech_release.records.approvals import (
    Decision,
    check_approver,
    check_expectation,
    four_eyes_violations,
    refuse_reexecution,
)
from fintech_release.records.keys import approval_key
from fintech_release.records.releases import CandidateImage, candidate_for


class ApprovalConfig(Config):
    """An approver's decision on the environment's current candidate."""

    decision: Any = Field(description="yes or no (any case).")
    approver: str = Field(
        description="Who decides: your email address. It is recorded as given (OSS Dagster has no login)."
    )
    reason: str = Field(description="Why: a change ticket, what you reviewed.")
    expect: str = Field(
        default="",
        description="Optional: the candidate you reviewed, as service=version pairs separated by commas (e.g. "
        "payments=1.0.0-7). The decision is refused if the candidate is something else by now.",
    )


def approve_job(release_config: ReleaseConfig, environment: Environment) -> JobDefinition:
    """The job that records a decision on `environment`'s candidate."""
    env = environment.name

    @op(name=approval_op_name(env), description=f"Record a decision on the {env} candidate.")
    def record_approval(context: OpExecutionContext, config: ApprovalConfig) -> None:
        try:
            refuse_reexecution(context.run, env)
            decision = Decision.parse(config.decision)
            approver, reason = check_approver(config.approver, config.reason)
            candidate = candidate_for(context.instance, release_config, env)
            if not candidate:
                raise DeploymentRefusedError(f"{env}: there is nothing to approve (no candidate images yet)")
            check_expectation(candidate, config.expect)
            if environment.approval.four_eyes and (own := four_eyes_violations(candidate, approver)):
                raise DeploymentRefusedError(
                    f"{env} requires four eyes: {approver} may not approve their own commits ({', '.join(own)})"
                )
        except DeploymentRefusedError as refused:
            raise Failure(str(refused)) from None
        context.log_event(
            AssetMaterialization(
                asset_key=approval_key(env),
                description=f"{decision.value} by {approver}: {reason}",
                metadata={
                    "decision": decision.value,
                    "approver": approver,
                    "reason": reason,
                    "candidate_digests": json.dumps({s: c.digest for s, c in candidate.items()}, sort_keys=True),
                    "candidate_versions": json.dumps({s: c.version for s, c in candidate.items()}, sort_keys=True),
                    "candidate": _candidate_table(candidate),
                    "four_eyes": environment.approval.four_eyes,
                },
            )
        )
        context.log.info(f"{env}: {decision.value} by {approver} for " + ", ".join(
            f"{c.service} {c.version} ({c.digest})" for c in candidate.values()
        ))

    @job(
        name=approve_job_name(env),
        description=f"Approve (or reject) the {env} candidate: decision, approver, reason.",
    )
    def approve() -> None:
        record_approval()

    return approve


def _candidate_table(candidate: dict[str, CandidateImage]) -> MetadataValue:
    """What was decided on, one row per service, as the UI shows a table."""
    columns = ["service", "version", "digest", "commit", "author"]
    rows = [
        TableRecord({"service": c.service, "version": c.version, "digest": c.digest, "commit": c.commit[:12],
                     "author": c.author_email})
        for c in candidate.values()
    ]
    return MetadataValue.table(rows, schema=TableSchema([TableColumn(name, "string") for name in columns]))
