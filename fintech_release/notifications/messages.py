"""The emails fintech-release sends: who hears, and what the message says.

- A CI result on the service's release branch (master) goes to `notifications.email.master_recipients`;
  a result on any other branch goes to the commit's author. Subject and body carry the service, branch,
  commit, result, failing step, test summary and a link to the run in the Dagster UI.
- A deployment, rollback or restore of an environment goes to `master_recipients` (the release group, as the
  original pipeline's last CD stage did), naming per service what changed (old → new version and digest, the
  approver, health problems) and, when it failed, the step and its reason.
- A health change (a released service turned bad, or recovered) goes to the environment's `notify`
  addresses, else to `master_recipients`, naming each service, its version, the problems and what
  the watch did about it.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum

from pydantic import BaseModel

from fintech_release.config.models import EmailSettings


class Outcome(StrEnum):
    """How a CI run ended."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELED = "CANCELED"


class CiResult(BaseModel, frozen=True):
    """What one CI run of one commit produced, as far as people need to hear about it."""

    service: str
    branch: str
    commit_sha: str
    author_email: str | None
    result: Outcome
    failing_step: str | None = None
    test_summary: str | None = None  # e.g. "42 passed, 1 failed"
    run_url: str
    job_name: str


def recipients_for(result: CiResult, settings: EmailSettings, release_branch: str) -> tuple[str, ...]:
    """The group for the release branch, the commit author for any other branch (empty when unknown)."""
    if result.branch == release_branch:
        return settings.master_recipients
    return (result.author_email,) if result.author_email else ()


def compose_email(result: CiResult, settings: EmailSettings, release_branch: str) -> EmailMessage:
    """The message for `result`; it has no To header when there is no one to send it to."""
    short_sha = result.commit_sha[:12]
    subject = f"[fintech-release] {result.result.value}: {result.service} {result.branch} @ {short_sha}"
    if result.failing_step:
        subject += f" (failed at {result.failing_step})"
    lines = [
        f"{result.job_name} for {result.service} ended: {result.result.value}",
        "",
        f"Service:      {result.service}",
        f"Branch:       {result.branch}",
        f"Commit:       {result.commit_sha}",
        f"Result:       {result.result.value}",
        f"Failing step: {result.failing_step or '-'}",
        f"Tests:        {result.test_summary or 'not run'}",
        f"Run:          {result.run_url}",
    ]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    recipients = recipients_for(result, settings, release_branch)
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="fintech-release")
    message.set_content("\n".join(lines) + "\n")
    return message


class HealthChange(BaseModel, frozen=True):
    """One released service whose health verdict changed since the watch last looked."""

    service: str
    version: str
    digest: str
    healthy: bool
    problems: tuple[str, ...]
    action: str | None = None  # e.g. "restore requested (self_heal)"


def compose_health_email(
    environment: str, changes: list[HealthChange], settings: EmailSettings, recipients: tuple[str, ...], url: str
) -> EmailMessage:
    """The message about `changes` in `environment`; it has no To header when there is no one to send it to."""
    bad = [change for change in changes if not change.healthy]
    state = "UNHEALTHY" if bad else "RECOVERED"
    names = ", ".join(change.service for change in (bad or changes))
    lines = [f"The health watch saw {environment} change:", ""]
    for change in changes:
        verdict = "unhealthy" if not change.healthy else "healthy again"
        lines.append(f"{change.service} {change.version} ({change.digest}): {verdict}")
        lines += [f"  - {problem}" for problem in change.problems]
        if change.action:
            lines.append(f"  action: {change.action}")
    lines += ["", f"Releases: {url}"]
    message = EmailMessage()
    message["Subject"] = f"[fintech-release] {environment} {state}: {names}"
    message["From"] = settings.sender
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="fintech-release")
    message.set_content("\n".join(lines) + "\n")
    return message


class ReleaseChange(BaseModel, frozen=True):
    """What one run did to one service in an environment, from its release materialization."""

    service: str
    status: str  # deployed, unchanged, repaired, rolled_back, restored, auto_rolled_back, failed, …
    version: str
    digest: str
    previous_version: str
    previous_digest: str
    approved_by: str | None
    healthy: bool
    problems: tuple[str, ...]


class DeploymentResult(BaseModel, frozen=True):
    """One deploy_*, rollback_* or restore_* run as the release group hears of it."""

    environment: str
    job_name: str
    result: Outcome
    changes: tuple[ReleaseChange, ...]
    failing_step: str | None = None
    failure: str | None = None  # the failing step's own one-line reason
    run_url: str


def compose_deployment_email(result: DeploymentResult, settings: EmailSettings) -> EmailMessage:
    """The message about `result` to the release group (`master_recipients`); no To header when there is none."""
    action = result.job_name.split("_", 1)[0]  # deploy, rollback, restore
    changed = [c for c in result.changes if c.status != "unchanged"]
    summary = ", ".join(f"{c.service} {c.version}" for c in (changed or result.changes)) or "no service"
    lines = [f"{result.job_name} ended: {result.result.value}", "", f"Environment: {result.environment}"]
    for change in result.changes:
        line = (
            f"{change.service}: {change.status} {change.previous_version} → {change.version} "
            f"({change.previous_digest} → {change.digest})"
        )
        if change.approved_by:
            line += f", approved by {change.approved_by}"
        lines.append(line + ("" if change.healthy else ", NOT healthy"))
        lines += [f"  - {problem}" for problem in change.problems]
    if not result.changes:
        lines.append("No service was changed.")
    if result.failing_step:
        lines.append(f"Failed at {result.failing_step}: {result.failure or 'see the run'}")
    lines += ["", f"Run: {result.run_url}"]
    message = EmailMessage()
    message["Subject"] = f"[fintech-release] {result.environment} {action} {result.result.value}: {summary}"
    message["From"] = settings.sender
    if settings.master_recipients:
        message["To"] = ", ".join(settings.master_recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="fintech-release")
    message.set_content("\n".join(lines) + "\n")
    return message
