"""Deployment reports: every deploy_*, rollback_* and restore_* run that ends tells the release group and Bitbucket.

The original pipeline's last CD stage emailed the result of every staging and production deployment and
rollback. Here the `report_deployment_<status>` run-status sensors do it for runs that end in SUCCESS,
FAILURE or CANCELED, from what the run recorded: its `<env>/release/<service>` materializations (status,
version, previous_version, digest, previous image, approved_by, problems) and, when it failed, the step
that failed and its reason (e.g. `staging: no one approved contact-us 1.0.0-3 …`).

- an email to `notifications.email.master_recipients` (with `notifications.email`);
- per released service, a Bitbucket build status on the commit the environment now runs (with
  `notifications.bitbucket_build_status`): key `fintech-release-deploy-<env>` (`fr-deploy-<env>` where that
  is longer than Bitbucket's 40 characters), SUCCESSFUL when the release is in place and healthy,
  FAILED otherwise, linked to the run.

As for CI reports (sensors.py), nothing here fails the sensor and one report's calls share a time
budget (notifications/reporting.py).
"""

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunStatusSensorContext,
    SensorDefinition,
    run_status_sensor,
)

from fintech_release.config import ReleaseConfig
from fintech_release.notifications import sensors as ci_reports
from fintech_release.notifications.messages import DeploymentResult, ReleaseChange, compose_deployment_email
from fintech_release.notifications.reporting import REPORT_BUDGET_SECONDS, ReportBudget, with_notifier
from fintech_release.records.event_log import metadata_values
from fintech_release.records.keys import DEPLOYMENT_TAG
from fintech_release.records.releases import NOT_IN_PLACE
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.source import BuildStatus, SourceControl

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
BUILD_STATUS_KEY_MAX = 40  # Bitbucket Cloud refuses longer keys


def deployment_report_sensor_name(status: DagsterRunStatus) -> str:
    """`report_deployment_<status>`, e.g. report_deployment_failure."""
    return f"report_deployment_{status.value.lower()}"


def deployment_status_key(environment: str) -> str:
    """The Bitbucket build status key of deployments to `environment` (at most 40 characters)."""
    key = f"fintech-release-deploy-{environment}"
    return key if len(key) <= BUILD_STATUS_KEY_MAX else f"fr-deploy-{environment}"


def deployment_report_sensors(
    config: ReleaseConfig, monitored_jobs: list["JobDefinition | UnresolvedAssetJobDefinition"]
) -> list[SensorDefinition]:
    """One run-status sensor per way a deployment, rollback or restore run can end."""
    sends_email = config.notifications.email is not None
    sensors: list[SensorDefinition] = []
    for status in ENDED:
        sensors.append(
            run_status_sensor(
                name=deployment_report_sensor_name(status),
                run_status=status,
                monitored_jobs=monitored_jobs,
                default_status=DefaultSensorStatus.RUNNING,
                description=f"Report deploy/rollback/restore runs that end in {status.value}: "
                + ("email to the release group and " if sends_email else "")
                + "a build status on each deployed commit.",
            )(with_notifier(partial(report_deployment, config, status), sends_email))
        )
    return sensors


def report_deployment(
    config: ReleaseConfig,
    status: DagsterRunStatus,
    context: RunStatusSensorContext,
    source: SourceControl,
    notifier: EmailNotifier | None,
) -> None:
    """Email the run's result and publish a build status per released commit (never raises)."""
    budget = ReportBudget(REPORT_BUDGET_SECONDS)
    run = context.dagster_run
    environment = run.tags.get(DEPLOYMENT_TAG)
    if environment not in {env.name for env in config.environments}:
        context.log.info(f"run {run.run_id} of {run.job_name} names no environment of release.yaml: not reported")
        return
    url = f"{config.notifications.dagster_url.rstrip('/')}/runs/{run.run_id}"
    releases = released_in_run(context.instance, run.run_id)
    ended_well = status == DagsterRunStatus.SUCCESS
    failing_step = None if ended_well else ci_reports.failing_step_of(context.instance, run.run_id)
    result = DeploymentResult(
        environment=environment,
        job_name=run.job_name,
        result=ci_reports.OUTCOME[status],
        changes=tuple(change for change, _ in releases),
        failing_step=failing_step,
        failure=failure_reason(context.instance, run.run_id) if failing_step else None,
        run_url=url,
    )

    def publish(change: ReleaseChange, commit: str) -> Callable[[], tuple[str, str]]:
        def call() -> tuple[str, str]:
            build_status = BuildStatus(
                sha=commit,
                state="SUCCESSFUL" if in_place(change) else "FAILED",
                key=deployment_status_key(environment),
                name=f"{environment} {change.service}",
                url=url,
                description=f"{change.status} {change.version} in {environment}"[:255],
            )
            repository = config.repository_ref(config.service(change.service))
            shown = f"{build_status.state} ({environment}) for {commit[:12]} in {repository}"
            if source.publish_build_status(repository=repository, status=build_status):
                return "info", f"build status {shown} published"
            return "info", f"build status {shown} not published: the source shows none"

        return call

    def send() -> tuple[str, str]:
        assert notifier is not None and config.notifications.email is not None
        report = notifier.send(compose_deployment_email(result, config.notifications.email))
        if report.delivered:
            return "info", f"emailed the result of run {run.run_id} to {', '.join(report.recipients)}"
        return "warning", f"the result of run {run.run_id} was not emailed: {report.reason}"

    if notifier is not None:
        budget.run(context, f"email of run {run.run_id}", send)
    if config.notifications.bitbucket_build_status:
        for change, commit in releases:
            if commit and change.service in config.service_names:
                budget.run(context, f"build status of {change.service} in {environment}", publish(change, commit))


def in_place(change: ReleaseChange) -> bool:
    """Whether the release the change names is what runs now, healthy."""
    return change.healthy and change.status not in NOT_IN_PLACE


def released_in_run(instance: DagsterInstance, run_id: str) -> list[tuple[ReleaseChange, str | None]]:
    """Each `<env>/release/<service>` the run recorded, as a change, with the commit it runs."""
    found = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        event = record.dagster_event
        key = event.asset_key if event else None
        if event is None or key is None or len(key.path) != 3 or key.path[1] != "release":
            continue
        metadata = metadata_values(event.step_materialization_data.materialization.metadata)
        previous = str(metadata.get("previous", "nothing"))
        found.append((
            ReleaseChange(
                service=key.path[2],
                status=str(metadata.get("status", "unknown")),
                version=str(metadata.get("version", "?")),
                digest=str(metadata.get("digest", "?")),
                previous_version=str(metadata.get("previous_version", "none")),
                previous_digest=previous.rsplit("@", 1)[-1] if "@" in previous else "none",
                approved_by=str(metadata["approved_by"]) if metadata.get("approved_by") else None,
                healthy=bool(metadata.get("healthy")),
                problems=tuple(str(problem) for problem in metadata.get("problems") or ()),
            ),
            str(metadata["commit"]) if metadata.get("commit") else None,
        ))
    return found


def failure_reason(instance: DagsterInstance, run_id: str) -> str | None:
    """The first failed step's own reason: a `Failure`'s description, else the error's first line."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data if record.dagster_event else None
        if data is None:
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error is not None:  # "package.ErrorClass: what went wrong", in the error's first line
            return data.error.message.strip().splitlines()[0].split(": ", 1)[-1]
    return None
