"""Notification sensors: every CI run of a commit reports back where people look.

For `build_and_push` and `branch_ci` runs that name a commit (the fintech-release/commit tag: set
by the commit sensor, the webhook, the CLI and the demo):

* STARTED -> build status INPROGRESS next to the commit (`SourceControl.publish_build_status`),
  unless the run has already ended: the sensors tick independently, and a run that started and
  ended between two ticks has its SUCCESSFUL/FAILED published already (same key), which a late
  INPROGRESS would overwrite;
* SUCCESS / FAILURE / CANCELED -> build status SUCCESSFUL / FAILED, and an email through the
  `notifier` resource (EmailNotifier): the release branch to `notifications.email.master_recipients`,
  any other branch to the commit's author (looked up only then). It names the failing step, the test
  summary (from the build/tests materialization, or the branch_ci `tests` step) and links
  `<dagster_url>/runs/<run id>`.

Runs without a commit tag (materializations from the UI, backfills) are not a commit's CI result
and are not reported. Build statuses are published only with `notifications.bitbucket_build_status`
(LocalGitSource has nowhere to show one: logged). Without `notifications.email` the sensors ask
for no `notifier` and send no email. Nothing here fails the sensor: a status or an email that cannot
be delivered (the notifier retries a bounded number of times) is logged, and the run's own result
stands. A failing run-status sensor would not move past the run, and would hold every later report.
For the same reason one report's calls (build status, author, email, each with its own timeouts and
retries) share a budget of REPORT_BUDGET_SECONDS, below Dagster's 60 s default sensor evaluation
timeout (notifications/reporting.py).
"""

from functools import partial
from typing import TYPE_CHECKING, Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunStatusSensorContext,
    SensorDefinition,
    run_status_sensor,
)
from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.config.models import EmailSettings
from fintech_release.jobs.branch_ci import TESTS_OP
from fintech_release.notifications.messages import CiResult, Outcome, compose_email
from fintech_release.notifications.reporting import REPORT_BUDGET_SECONDS, ReportBudget, with_notifier
from fintech_release.records.event_log import metadata_values
from fintech_release.records.keys import BRANCH_TAG, BUILD_TESTS, COMMIT_TAG, SERVICE_TAG
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.source import BuildState, BuildStatus, SourceControl
from fintech_release.triggers.ci_runs import PARTITION_TAG

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

REPORTED = (DagsterRunStatus.STARTED, DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
BUILD_STATE: dict[DagsterRunStatus, BuildState] = {
    DagsterRunStatus.STARTED: "INPROGRESS",
    DagsterRunStatus.SUCCESS: "SUCCESSFUL",
    DagsterRunStatus.FAILURE: "FAILED",
    DagsterRunStatus.CANCELED: "FAILED",
}
OUTCOME = {
    DagsterRunStatus.SUCCESS: Outcome.SUCCESS,
    DagsterRunStatus.FAILURE: Outcome.FAILURE,
    DagsterRunStatus.CANCELED: Outcome.CANCELED,
}


class RunCommit(BaseModel, frozen=True):
    """The commit a CI run builds, read from its tags."""

    service: str
    branch: str
    sha: str


def notification_sensor_name(status: DagsterRunStatus) -> str:
    """`report_ci_<status>`, e.g. report_ci_failure."""
    return f"report_ci_{status.value.lower()}"


def notification_sensors(
    config: ReleaseConfig, monitored_jobs: list["JobDefinition | UnresolvedAssetJobDefinition"]
) -> list[SensorDefinition]:
    """One run-status sensor per reported status of the CI jobs."""
    sensors: list[SensorDefinition] = []
    for status in REPORTED:
        sends_email = status != DagsterRunStatus.STARTED and config.notifications.email is not None
        sensors.append(
            run_status_sensor(
                name=notification_sensor_name(status),
                run_status=status,
                monitored_jobs=monitored_jobs,
                default_status=DefaultSensorStatus.RUNNING,
                description=f"Report CI runs that end in {status.value}: build status"
                + (" and email." if sends_email else "."),
            )(with_notifier(partial(report_run, config, status), sends_email))
        )
    return sensors


def report_run(
    config: ReleaseConfig,
    status: DagsterRunStatus,
    context: RunStatusSensorContext,
    source: SourceControl,
    notifier: EmailNotifier | None,
) -> None:
    """Publish the build status of the run's commit and, once it ended, email its result (never raises)."""
    budget = ReportBudget(REPORT_BUDGET_SECONDS)
    run = context.dagster_run
    commit = run_commit(config, run)
    if commit is None:
        context.log.info(f"run {run.run_id} of {run.job_name} names no commit of a known service: not reported")
        return
    if status == DagsterRunStatus.STARTED:
        current = context.instance.get_run_by_id(run.run_id)
        if current is not None and current.is_finished:
            context.log.info(
                f"run {run.run_id} already ended ({current.status.value}): its start is not reported, "
                "so the end's build status stands"
            )
            return
    url = f"{config.notifications.dagster_url.rstrip('/')}/runs/{run.run_id}"
    failing_step = None if status == DagsterRunStatus.STARTED else failing_step_of(context.instance, run.run_id)
    repository = config.repository_ref(config.service(commit.service))

    def publish() -> tuple[str, str]:
        build_status = BuildStatus(
            sha=commit.sha,
            state=BUILD_STATE[status],
            key=f"fintech-release-{run.job_name}",
            name=f"{run.job_name} {commit.service}",
            url=url,
            description=_status_description(status, failing_step),
        )
        if source.publish_build_status(repository=repository, status=build_status):
            return "info", f"build status {build_status.state} published for {commit.sha[:12]} in {repository}"
        return "info", f"build status {build_status.state} of {commit.sha[:12]} not published: {repository} shows none"

    release_branch = config.service(commit.service).branch
    settings = config.notifications.email
    mailer = notifier if status != DagsterRunStatus.STARTED else None
    test_summary = summarize_tests(context.instance, run.run_id) if mailer is not None else None

    def send(mailer: EmailNotifier, settings: EmailSettings) -> tuple[str, str]:
        author_email = None
        if commit.branch != release_branch:  # the release branch's result goes to the group, not the author
            author_email = source.commit(repository=repository, sha=commit.sha, branch=commit.branch).author_email
        result = CiResult(
            service=commit.service,
            branch=commit.branch,
            commit_sha=commit.sha,
            author_email=author_email,
            result=OUTCOME[status],
            failing_step=failing_step,
            test_summary=test_summary,
            run_url=url,
            job_name=run.job_name,
        )
        message = compose_email(result, settings, release_branch)
        report = mailer.send(message)
        if report.delivered:
            return "info", f"emailed the result of run {run.run_id} to {', '.join(report.recipients)}"
        return "warning", f"the result of run {run.run_id} was not emailed: {report.reason}"

    if config.notifications.bitbucket_build_status:
        budget.run(context, f"build status of {commit.service} {commit.sha[:12]}", publish)
    if mailer is not None and settings is not None:
        budget.run(context, f"email of run {run.run_id}", partial(send, mailer, settings))


def run_commit(config: ReleaseConfig, run: DagsterRun) -> RunCommit | None:
    """Service, branch and sha of a CI run; None when it names no commit of a service in `config`.

    Runs the CLI and the demo launch carry only the commit tag and their partition (the service);
    their branch is the service's release branch.
    """
    tags = run.tags
    service = tags.get(SERVICE_TAG) or tags.get(PARTITION_TAG)
    if COMMIT_TAG not in tags or service not in config.service_names:
        return None
    return RunCommit(service=service, branch=tags.get(BRANCH_TAG, config.service(service).branch), sha=tags[COMMIT_TAG])


def failing_step_of(instance: DagsterInstance, run_id: str) -> str | None:
    """The first step that failed in the run, as the UI names it (`build/tests`, or the op name)."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        step_key = record.dagster_event.step_key if record.dagster_event else None
        if step_key:
            return step_key.replace("__", "/")
    return None


def summarize_tests(instance: DagsterInstance, run_id: str) -> str | None:
    """E.g. '41 passed, 1 failed, 0 errors, 0 skipped: LedgerTest.totals' from the run's test results."""
    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.STEP_OUTPUT, DagsterEventType.STEP_FAILURE}
    metadata: dict[str, Any] | None = None
    for record in instance.all_logs(run_id, of_type=kinds):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == BUILD_TESTS:
            metadata = metadata_values(event.step_materialization_data.materialization.metadata)
        elif event.event_type == DagsterEventType.STEP_OUTPUT and event.step_key == TESTS_OP:
            metadata = metadata_values(event.step_output_data.metadata)
        elif event.event_type == DagsterEventType.STEP_FAILURE and event.step_key == TESTS_OP:
            failure = event.step_failure_data.user_failure_data
            metadata = metadata_values(failure.metadata) if failure is not None else None
    if not metadata or "tests" not in metadata:
        return None
    counts = {name: int(metadata[name]) for name in ("tests", "failures", "errors", "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    summary = f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped"
    failed = list(metadata["failed_tests"]) if "failed_tests" in metadata else []
    return f"{summary}: {', '.join(failed)}" if failed else summary


def _status_description(status: DagsterRunStatus, failing_step: str | None) -> str:
    if status == DagsterRunStatus.FAILURE and failing_step:
        return f"failed at {failing_step}"
    return {DagsterRunStatus.STARTED: "running", DagsterRunStatus.SUCCESS: "passed"}.get(status, status.value.lower())
