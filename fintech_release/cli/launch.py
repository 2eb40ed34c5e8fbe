"""The runs a command asks for (`RunPlan`), checked before anything runs, and their execution in this process.

Each `*_run` function checks its selection (environment, services, approvals, what a rollback would
change) against release.yaml and the event log and returns a plan, or raises a clear one-line error
and launches nothing. A plan runs on a Dagster webserver that serves the same instance (cli/remote.py:
the UI sees it, queues it per environment and can re-execute it), or here with `execute`: a run that
changes an environment holds it for the whole run (`deployment_lock.exclusive_deployment`), is
checked again once it holds it, and names its process (`fintech-release/process`), so a run whose
process was killed never holds an environment. `deploy`, `rollback`, … are plan + `execute`, for the
demo and the tests.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, JobDefinition

from fintech_release.assets.delivery import record_delivery_metrics
from fintech_release.assets.releases import ReleaseMode, nothing_to_roll_back
from fintech_release.cli.deployment_lock import exclusive_deployment
from fintech_release.config import ReleaseConfig
from fintech_release.env_secrets import require_secrets
from fintech_release.errors import DeploymentRefusedError, FintechReleaseError
from fintech_release.jobs import (
    BASE_IMAGE,
    BUILD_AND_PUSH,
    approval_op_name,
    approve_job_name,
    deploy_job_name,
    rollback_job_name,
    rotate_job_name,
    teardown_job,
    teardown_job_name,
)
from fintech_release.records.approvals import Decision, approved_candidate
from fintech_release.records.event_log import Recorded
from fintech_release.records.keys import (
    COMMIT_TAG,
    PROCESS_TAG,
    cluster_key,
    database_key,
    ingress_key,
    release_key,
    releases_op_name,
)
from fintech_release.records.releases import rollback_plan, serving_release
from fintech_release.records.runs import ProcessIdentity

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunPlan:
    """One run a command asks for: the job, its config and selection, and the environment it changes."""

    job_name: str
    what: str  # said when the run starts, e.g. "staging: deploying contact-us, payments"
    run_config: Mapping[str, Any] = field(default_factory=dict)
    asset_selection: tuple[AssetKey, ...] | None = None
    partition_key: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    environment: str | None = None  # held for the whole run; None: the run changes no environment
    recheck: Callable[[DagsterInstance], str] | None = None  # once held: refuse again, or return a fresher `what`
    job: JobDefinition | None = None  # a job not in the code location (teardown of a permanent environment)


def quiet(verbose: bool = False) -> dict[str, Any]:
    """Run config for the console logger: Dagster's own log lines only with --verbose (the CLI reports itself)."""
    return {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}


class SelectionError(FintechReleaseError):
    """A command named an environment or service release.yaml does not declare."""


def check_environment(config: ReleaseConfig, environment: str) -> None:
    """`SelectionError` naming the declared environments when `environment` is not one of them."""
    try:
        config.environment(environment)
    except KeyError as unknown:
        raise SelectionError(unknown.args[0]) from None


def check_services(config: ReleaseConfig, services: list[str]) -> None:
    """`SelectionError` naming the declared services when one of `services` is not declared."""
    for service in services:
        try:
            config.service(service)
        except KeyError as unknown:
            raise SelectionError(unknown.args[0]) from None


def check_approved(config: ReleaseConfig, instance: DagsterInstance, environment: str, services: list[str]) -> None:
    """`DeploymentRefusedError` before any run when one of `services` has nothing to deploy or no approval."""
    candidate, _ = approved_candidate(instance, config, environment, services)
    for service in services:
        if service not in candidate:
            raise DeploymentRefusedError(f"{environment}: nothing to deploy for {service} yet")


def partitioned_asset_keys(config: ReleaseConfig, keys: list[str]) -> list[list[str]]:
    """`keys` ("build/image") as key paths; `SelectionError` unless each is a per-service asset of the graph."""
    from fintech_release.release_graph import build_definitions

    graph = build_definitions(config).resolve_asset_graph()
    per_service = sorted(
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is not None and graph.get(key).is_materializable
    )
    if not keys:
        raise SelectionError(f"select at least one asset (per-service assets: {', '.join(per_service)})")
    for key in keys:
        if key not in per_service:
            raise SelectionError(f"{key!r} is not a per-service asset (choose from: {', '.join(per_service)})")
    return [key.split("/") for key in keys]


# --- plans --------------------------------------------------------------------------------------------------------


def base_image_run(config: ReleaseConfig) -> RunPlan:
    """Rebuild the JRE base image, recorded as build/base_image."""
    return RunPlan(BASE_IMAGE, f"{config.build.base_image}: building")


def build_and_push_run(service: str, sha: str) -> RunPlan:
    """Take one service commit to the registry."""
    return RunPlan(BUILD_AND_PUSH, f"{service}: building {sha[:12]}", partition_key=service, tags={COMMIT_TAG: sha})


def approve_run(
    config: ReleaseConfig, environment: str, *, decision: Decision, approver: str, reason: str, expect: str = ""
) -> RunPlan:
    """Record a decision on the environment's current candidate (refused if it is not what `expect` names)."""
    check_environment(config, environment)
    if not config.environment(environment).approval.required:
        raise SelectionError(f"{environment} needs no approval (release.yaml: approval.required is false)")
    decided = {"decision": decision.value, "approver": approver, "reason": reason, "expect": expect}
    return RunPlan(
        approve_job_name(environment), f"{environment}: recording {decision.value} by {approver}",
        run_config={"ops": {approval_op_name(environment): {"config": decided}}},
    )


def deploy_run(
    config: ReleaseConfig, instance: DagsterInstance, environment: str, services: list[str] | None = None
) -> RunPlan:
    """Prepare the environment and deploy its candidate (all services, or those named)."""
    check_environment(config, environment)
    check_services(config, services or [])
    chosen = services or config.service_names
    check_approved(config, instance, environment, chosen)
    selection = [cluster_key(environment), database_key(environment), ingress_key(environment)]
    selection += [release_key(environment, service) for service in chosen]
    what = f"{environment}: deploying {', '.join(chosen)}"

    def recheck(held: DagsterInstance) -> str:  # an approval may have changed while the command waited
        check_approved(config, held, environment, chosen)
        return what

    return RunPlan(
        deploy_job_name(environment), what, asset_selection=tuple(selection), environment=environment, recheck=recheck
    )


def rollback_run(
    config: ReleaseConfig, instance: DagsterInstance, environment: str, *,
    undo_run: str | None = None, at: datetime | None = None,
) -> RunPlan:
    """Undo the last deployment that changed the environment (or `undo_run`, or everything after `at`).

    `DeploymentRefusedError` before any run when, by the records, the rollback would change nothing.
    """
    check_environment(config, environment)
    undoes = _refuse_empty_rollback(config, instance, environment, undo_run=undo_run, at=at)
    mode = {"mode": ReleaseMode.ROLLBACK.name, "undo_run": undo_run, "restore_to": at.isoformat() if at else None}
    return RunPlan(
        rollback_job_name(environment), f"{environment}: rolling back {undoes}",
        run_config={"ops": {releases_op_name(environment): {"config": mode}}}, environment=environment,
        recheck=lambda held: f"{environment}: rolling back "
        + _refuse_empty_rollback(config, held, environment, undo_run=undo_run, at=at),
    )


def rotate_db_passwords_run(config: ReleaseConfig, environment: str) -> RunPlan:
    """New application database passwords for `environment`, replicas replaced by a rolling restart (one run)."""
    check_environment(config, environment)
    return RunPlan(
        rotate_job_name(environment), f"{environment}: rotating the application database passwords",
        environment=environment,
    )


def teardown_run(config: ReleaseConfig, environment: str) -> RunPlan:
    """Remove everything the environment holds (the CLI may do this to any environment, on purpose)."""
    check_environment(config, environment)
    ephemeral = config.environment(environment).ephemeral
    return RunPlan(
        teardown_job_name(environment), f"{environment}: tearing down", environment=environment,
        job=None if ephemeral else teardown_job(config, environment),
    )


# --- execution in this process ------------------------------------------------------------------------------------


def execute(
    plan: RunPlan,
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    *,
    verbose: bool = False,
    run_id: str | None = None,
    say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Run `plan` here; a plan that changes an environment holds it for the whole run. Failures are returned."""
    job = plan.job or defs.resolve_job_def(plan.job_name)
    if plan.environment is None:
        return _execute(job, defs, instance, plan, verbose=verbose, run_id=run_id)
    with exclusive_deployment(instance, plan.environment, command=plan.what, say=say):
        what = plan.recheck(instance) if plan.recheck else plan.what
        run_id = run_id or new_run_id()
        say(f"{what} in run {run_id} (Ctrl-C stops it cleanly) …")
        result = _execute(job, defs, instance, plan, verbose=verbose, run_id=run_id)
    if not config.environment(plan.environment).ephemeral:
        record_delivery_metrics(instance, config, plan.environment)  # a daemon's sensor does it for launched runs
    return result


def require_environment(plan: RunPlan, defs: Definitions) -> None:
    """`MissingEnvironmentVariableError` before the run starts when a secret one of its resources reads is not set."""
    job = plan.job or defs.resolve_job_def(plan.job_name)
    resources = defs.resources or {}
    require_secrets(resources[key] for key in sorted(job.required_resource_keys) if key in resources)


def new_run_id() -> str:
    """A run id chosen before the run starts, so a command can name its run while it runs."""
    return str(uuid.uuid4())


def build_base_image(defs: Definitions, instance: DagsterInstance, *, verbose: bool = False) -> ExecuteInProcessResult:
    """Rebuild the JRE base image here."""
    return _execute(defs.resolve_job_def(BASE_IMAGE), defs, instance, RunPlan(BASE_IMAGE, "base image"),
                    verbose=verbose)


def build_and_push(
    defs: Definitions, instance: DagsterInstance, service: str, sha: str, *, verbose: bool = False
) -> ExecuteInProcessResult:
    """Take one service commit to the registry, here."""
    plan = build_and_push_run(service, sha)
    return _execute(defs.resolve_job_def(plan.job_name), defs, instance, plan, verbose=verbose)


def approve(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str, *,
    decision: Decision, approver: str, reason: str, expect: str = "", verbose: bool = False,
) -> ExecuteInProcessResult:
    """Record a decision here."""
    plan = approve_run(config, environment, decision=decision, approver=approver, reason=reason, expect=expect)
    return execute(plan, config, defs, instance, verbose=verbose)


def deploy(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str,
    services: list[str] | None = None, *, verbose: bool = False, say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Deploy here, holding the environment."""
    plan = deploy_run(config, instance, environment, services)
    return execute(plan, config, defs, instance, verbose=verbose, say=say)


def rollback(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str, *,
    undo_run: str | None = None, at: datetime | None = None, verbose: bool = False, say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Roll back here, holding the environment."""
    plan = rollback_run(config, instance, environment, undo_run=undo_run, at=at)
    return execute(plan, config, defs, instance, verbose=verbose, say=say)


def teardown(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str, *,
    verbose: bool = False, say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Tear down here, holding the environment."""
    return execute(teardown_run(config, environment), config, defs, instance, verbose=verbose, say=say)


def rotate_db_passwords(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str, *,
    verbose: bool = False, say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Rotate here, holding the environment."""
    return execute(rotate_db_passwords_run(config, environment), config, defs, instance, verbose=verbose, say=say)


def _refuse_empty_rollback(
    config: ReleaseConfig, instance: DagsterInstance, environment: str, *, undo_run: str | None, at: datetime | None
) -> str:
    """What the rollback undoes, in words; `DeploymentRefusedError` when, by the records, it would change nothing."""
    plan = rollback_plan(instance, environment, config.service_names, undo_run=undo_run, at=at)
    already = {
        service: f"{target.metadata['version']} ({target.metadata['digest']})"
        for service, target in plan.targets.items()
        if _same_release(serving_release(instance, environment, service), target)
    }
    if len(already) == len(plan.targets):
        raise DeploymentRefusedError(nothing_to_roll_back(plan, already))
    return plan.undoes


def _same_release(serving: Recorded | None, target: Recorded) -> bool:
    fields = ("pinned_reference", "desired_replicas", "runtime_env")
    return serving is not None and all(serving.metadata.get(f) == target.metadata.get(f) for f in fields)


def _execute(
    job: JobDefinition, defs: Definitions, instance: DagsterInstance, plan: RunPlan, *, verbose: bool,
    run_id: str | None = None,
) -> ExecuteInProcessResult:
    """Execute `job` in this process, tagged with this process's identity; failures are returned, not raised."""
    return job.execute_in_process(
        run_config={**plan.run_config, **quiet(verbose)},
        instance=instance,
        partition_key=plan.partition_key,
        asset_selection=list(plan.asset_selection) if plan.asset_selection else None,
        run_id=run_id or new_run_id(),
        tags={**plan.tags, PROCESS_TAG: ProcessIdentity.current().tag()},
        resources=defs.resources if plan.job is not None else None,
        raise_on_error=False,
    )
