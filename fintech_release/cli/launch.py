"""Run the release's jobs in-process on an instance: what the CLI and `make demo` do instead of the UI.

Each function checks its selection (environment, services) against release.yaml before anything
runs, so a typo fails with a clear message and launches nothing.
"""

from __future__ import annotations

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from fintech_release.assets.environments import ReleaseMode
from fintech_release.records.keys import (
    COMMIT_TAG,
    approval_key,
    cluster_key,
    database_key,
    ingress_key,
    release_key,
    releases_op_name,
)
from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError, FintechReleaseError
from fintech_release.jobs import (
    BASE_IMAGE,
    BUILD_AND_PUSH,
    approve_job_name,
    deploy_job_name,
    rollback_job_name,
    teardown_job,
)
from fintech_release.records.promotion import Decision, candidate_for, require_approval

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


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


def build_base_image(defs: Definitions, instance: DagsterInstance) -> ExecuteInProcessResult:
    """Rebuild the JRE base image, recorded as build/base_image."""
    return defs.resolve_job_def(BASE_IMAGE).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )


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
    """`DeploymentRefusedError` before any run when a service has nothing to deploy or no approval."""
    candidate = candidate_for(instance, config, environment)
    for service in services:
        if service not in candidate:
            raise DeploymentRefusedError(f"{environment}: nothing to deploy for {service} yet")
        if config.environment(environment).approval.required:
            require_approval(instance, environment, candidate[service])


def build_and_push(defs: Definitions, instance: DagsterInstance, service: str, sha: str) -> ExecuteInProcessResult:
    """Take one service commit to the registry."""
    return defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
        instance=instance, partition_key=service, tags={COMMIT_TAG: sha}, run_config=QUIET, raise_on_error=False
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
) -> ExecuteInProcessResult:
    """Record a decision on the environment's current candidate."""
    check_environment(config, environment)
    if not config.environment(environment).approval.required:
        raise SelectionError(f"{environment} needs no approval (release.yaml: approval.required is false)")
    op_name = "__".join(approval_key(environment).path)
    run_config = {
        **QUIET,
        "ops": {op_name: {"config": {"decision": decision.name, "approver": approver, "reason": reason}}},
    }
    return defs.resolve_job_def(approve_job_name(environment)).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )


def deploy(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    environment: str,
    services: list[str] | None = None,
) -> ExecuteInProcessResult:
    """Prepare the environment and deploy its candidate (all services, or those named)."""
    check_environment(config, environment)
    check_services(config, services or [])
    chosen = services or config.service_names
    check_approved(config, instance, environment, chosen)
    selection = [cluster_key(environment), database_key(environment), ingress_key(environment)]
    selection += [release_key(environment, service) for service in chosen]
    return defs.resolve_job_def(deploy_job_name(environment)).execute_in_process(
        instance=instance, asset_selection=selection, run_config=QUIET, raise_on_error=False
    )


def rollback(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str
) -> ExecuteInProcessResult:
    """Restore the last healthy release of every service the environment's last deployment changed."""
    check_environment(config, environment)
    run_config = {**QUIET, "ops": {releases_op_name(environment): {"config": {"mode": ReleaseMode.ROLLBACK.name}}}}
    return defs.resolve_job_def(rollback_job_name(environment)).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )


def teardown(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, environment: str
) -> ExecuteInProcessResult:
    """Remove everything the environment holds (the CLI may do this to any environment, on purpose)."""
    check_environment(config, environment)
    return teardown_job(config, environment).execute_in_process(
        instance=instance, resources=defs.resources, run_config=QUIET, raise_on_error=False
    )


def failure_message(result: ExecuteInProcessResult) -> str:
    """The first step failure's message, for a one-line report."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "Error occurred while executing" in error.message:
                error = error.cause
            return error.message.strip() if error else "step failed"
    return "run failed"
