"""Run the release's jobs in-process on an instance: what the CLI and `make demo` do instead of the UI.

Each function checks its selection (environment, services, approvals, what a rollback would
change) against release.yaml and the event log before anything runs, so a typo or a refusal fails
with a clear message and launches nothing. Runs that change an environment hold it for the whole
run (`deployment_lock.exclusive_deployment`), and every run executed here names its process
(`fintech-release/process`), so a run whose process was killed never holds an environment.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, JobDefinition

from fintech_release.assets.releases import ReleaseMode, nothing_to_roll_back
from fintech_release.cli.deployment_lock import exclusive_deployment
from fintech_release.config import ReleaseConfig
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


def new_run_id() -> str:
    """A run id chosen before the run starts, so a command can name its run while it runs."""
    return str(uuid.uuid4())


def build_base_image(defs: Definitions, instance: DagsterInstance, *, verbose: bool = False) -> ExecuteInProcessResult:
    """Rebuild the JRE base image, recorded as build/base_image."""
    return _execute(defs.resolve_job_def(BASE_IMAGE), instance, run_config=quiet(verbose))


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


def check_approved(config: ReleaseConfig, instance: DagsterInstance, environment: str, services: list[str]) -> None:
    """`DeploymentRefusedError` before any run when one of `services` has nothing to deploy or no approval."""
    candidate, _ = approved_candidate(instance, config, environment, services)
    for service in services:
        if service not in candidate:
            raise DeploymentRefusedError(f"{environment}: nothing to deploy for {service} yet")


def build_and_push(
    defs: Definitions, instance: DagsterInstance, service: str, sha: str, *, verbose: bool = False
) -> ExecuteInProcessResult:
    """Take one service commit to the registry."""
    return _execute(
        defs.resolve_job_def(BUILD_AND_PUSH), instance, partition_key=service, tags={COMMIT_TAG: sha},
        run_config=quiet(verbose),
    )


def approve(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    *,
    decision: Decision,
    approver: str,
    reason: str,
    expect: str = "",
    verbose: bool = False,
) -> ExecuteInProcessResult:
    """Record a decision on the environment's current candidate (refused if it is not what `expect` names)."""
    check_environment(config, environment)
    if not config.environment(environment).approval.required:
        raise SelectionError(f"{environment} needs no approval (release.yaml: approval.required is false)")
    op_name = approval_op_name(environment)
    run_config = {
        **quiet(verbose),
        "ops": {
            op_name: {"config": {"decision": decision.value, "approver": approver, "reason": reason, "expect": expect}}
        },
    }
    return _execute(defs.resolve_job_def(approve_job_name(environment)), instance, run_config=run_config)


def deploy(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    services: list[str] | None = None,
    *,
    verbose: bool = False,
    run_id: str | None = None,
    say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Prepare the environment and deploy its candidate (all services, or those named), holding the environment."""
    check_environment(config, environment)
    check_services(config, services or [])
    chosen = services or config.service_names
    check_approved(config, instance, environment, chosen)
    selection = [cluster_key(environment), database_key(environment), ingress_key(environment)]
    selection += [release_key(environment, service) for service in chosen]
    with exclusive_deployment(instance, environment, command=f"deploy {environment}", say=say):
        check_approved(config, instance, environment, chosen)  # again: an approval may have changed while waiting
        run_id = _announce(say, f"{environment}: deploying {', '.join(chosen)}", run_id)
        return _execute(
            defs.resolve_job_def(deploy_job_name(environment)), instance, asset_selection=selection,
            run_config=quiet(verbose), run_id=run_id,
        )


def rollback(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    *,
    undo_run: str | None = None,
    at: datetime | None = None,
    verbose: bool = False,
    run_id: str | None = None,
    say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Undo the last deployment that changed the environment (or `undo_run`, or everything after `at`).

    `DeploymentRefusedError` before any run when, by the records, the rollback would change nothing.
    """
    check_environment(config, environment)
    mode = {"mode": ReleaseMode.ROLLBACK.name, "undo_run": undo_run, "restore_to": at.isoformat() if at else None}
    run_config = {**quiet(verbose), "ops": {releases_op_name(environment): {"config": mode}}}
    with exclusive_deployment(instance, environment, command=f"rollback {environment}", say=say):
        undoes = _refuse_empty_rollback(config, instance, environment, undo_run=undo_run, at=at)
        run_id = _announce(say, f"{environment}: rolling back {undoes}", run_id)
        return _execute(
            defs.resolve_job_def(rollback_job_name(environment)), instance, run_config=run_config, run_id=run_id
        )


def rotate_db_passwords(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    *,
    verbose: bool = False,
    run_id: str | None = None,
    say: Say = _stderr,
) -> ExecuteInProcessResult:
    """New application database passwords for `environment`, replicas replaced by a rolling restart (one run)."""
    check_environment(config, environment)
    with exclusive_deployment(instance, environment, command=f"rotate-db-passwords {environment}", say=say):
        run_id = _announce(say, f"{environment}: rotating the application database passwords", run_id)
        return _execute(
            defs.resolve_job_def(rotate_job_name(environment)), instance, run_config=quiet(verbose), run_id=run_id
        )


def teardown(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    *,
    verbose: bool = False,
    say: Say = _stderr,
) -> ExecuteInProcessResult:
    """Remove everything the environment holds (the CLI may do this to any environment, on purpose)."""
    check_environment(config, environment)
    with exclusive_deployment(instance, environment, command=f"teardown {environment}", say=say):
        return _execute(
            teardown_job(config, environment), instance, resources=defs.resources, run_config=quiet(verbose)
        )


def _announce(say: Say, what: str, run_id: str | None) -> str:
    """Say that a run starts now, under which id; return the id."""
    run_id = run_id or new_run_id()
    say(f"{what} in run {run_id} (Ctrl-C stops it cleanly) …")
    return run_id


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
    job: JobDefinition, instance: DagsterInstance, *, run_id: str | None = None, tags: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> ExecuteInProcessResult:
    """Execute `job` in this process, tagged with this process's identity; failures are returned, not raised."""
    return job.execute_in_process(
        instance=instance, run_id=run_id or new_run_id(), raise_on_error=False,
        tags={**(tags or {}), PROCESS_TAG: ProcessIdentity.current().tag()}, **kwargs,
    )
