"""What a command says about the run it executed or launched: per service what changed, or why the run failed.

The reason comes first and whole (the failed check's verdict: which replica, crash-looping or
exited, restarts, its last output; else the failing step's own message), then the run id and where
to read more. Dagster's log and tracebacks are for `--verbose`. Everything here reads the run's
Dagster events, so a run executed in this process and one launched on a webserver read the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    ExecuteInProcessResult,
    JobExecutionResult,
)

from fintech_release.records.keys import BUILD_BASE_IMAGE

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

INTERRUPTED = "DagsterExecutionInterruptedError"
# What Dagster wraps a step's or a resource's own error in.
DAGSTER_WRAPPERS = frozenset({
    "DagsterExecutionStepExecutionError", "DagsterResourceFunctionError", "DagsterUserCodeExecutionError",
})
Events = Sequence[DagsterEvent]


def events_of(result: ExecuteInProcessResult | JobExecutionResult | Events) -> Events:
    """The Dagster events of an execution result, or the events given."""
    return result.all_events if isinstance(result, (ExecuteInProcessResult, JobExecutionResult)) else result


def recorded(result: ExecuteInProcessResult | JobExecutionResult | Events) -> list[tuple[AssetKey, dict[str, Any]]]:
    """The asset key and metadata values of every materialization the run recorded, in order."""
    found = []
    for event in events_of(result):
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            values = {name: getattr(entry, "value", entry) for name, entry in materialization.metadata.items()}
            found.append((materialization.asset_key, values))
    return found


def release_lines(result: ExecuteInProcessResult | JobExecutionResult | Events) -> list[str]:
    """Per release the run recorded: service, what it did, version before → after, digest, replicas; and, when the
    image changed, the version and digest it replaced."""
    lines = []
    for key, values in recorded(result):
        if key.path[1:2] != ["release"]:
            continue
        service = key.path[-1]
        change = f"{values.get('previous_version', 'none')} → {values['version']}"
        if values["status"] == "unchanged":
            change = f"{values['version']} (unchanged)"
        lines.append(
            f"  {service:16} {values['status']:20} {change:28} {values['digest']}  "
            f"{values['ready_replicas']}/{values['desired_replicas']} ready"
        )
        before = str(values.get("previous", "nothing")).rpartition("@")[2]
        if before.startswith("sha256:") and before != values["digest"]:
            lines.append(f"  {'':16} {'replaced':20} {values.get('previous_version', '?'):28} {before}")
    return lines


def approval_lines(result: ExecuteInProcessResult | JobExecutionResult | Events) -> list[str]:
    """Per decision the run recorded: each service's version and digest, exactly what was decided on."""
    lines = []
    for key, values in recorded(result):
        if key.path[1:] == ["approval"]:
            lines += candidate_lines(json.loads(values["candidate_versions"]), json.loads(values["candidate_digests"]))
    return lines


def candidate_lines(versions: dict[str, str], digests: dict[str, str]) -> list[str]:
    """One line per service of a decision: service, version, digest."""
    return [f"  {service:16} {versions.get(service, '?'):20} {digest}" for service, digest in sorted(digests.items())]


def base_image_status(result: ExecuteInProcessResult | JobExecutionResult | Events) -> str:
    """What a base image run did, e.g. 'unchanged (content sha256:…)' or 'rebuilt (content sha256:… → sha256:…)'."""
    for key, values in recorded(result):
        if key == BUILD_BASE_IMAGE:
            content, before = values["content_digest"], values.get("previous_content_digest", "none")
            if values.get("status") == "unchanged":
                return f"unchanged (content {content}): no service image turns stale"
            if values.get("status") == "rebuilt":
                return f"rebuilt (content {before} → {content}): every service image is stale (rebuild-images)"
            return f"built (content {content})"
    return "built"


def failure_lines(result: ExecuteInProcessResult | JobExecutionResult | Events) -> list[str]:
    """Why the run failed: each failed blocking check with its verdict, else the failing step's message."""
    checks = [
        f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name} failed: {evaluation.description}"
        for evaluation in _check_evaluations(events_of(result))
        if not evaluation.passed
    ]
    return checks or [failure_message(result)]


def was_interrupted(result: ExecuteInProcessResult | JobExecutionResult | Events) -> bool:
    """Whether the run ended because the command was interrupted (Ctrl-C, SIGTERM)."""
    for event in events_of(result):
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data is not None:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == INTERRUPTED:
                return True
    return False


def failure_message(result: ExecuteInProcessResult | JobExecutionResult | Events) -> str:
    """The first step failure's message, for a one-line report (else the reason the run failed before any step, e.g.
    a resource that could not be set up, else the run's own failure message)."""
    run_failure = None
    for event in events_of(result):
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            return _reason(error) if error else "step failed"
        if event.event_type == DagsterEventType.RUN_FAILURE and run_failure is None:
            error = getattr(event.event_specific_data, "error", None)
            run_failure = _reason(error) if error is not None else event.message
    return run_failure or "run failed"


def _reason(error: SerializableErrorInfo) -> str:
    """The error a user can act on: below Dagster's wrappers, without the class name when it is ours or a Failure."""
    while error.cause is not None and error.cls_name in DAGSTER_WRAPPERS:
        error = error.cause
    message = error.message.strip()
    for prefix in (f"fintech_release.errors.{error.cls_name}: ", "dagster._core.definitions.events.Failure: "):
        message = message.removeprefix(prefix)
    return message


def _check_evaluations(events: Events) -> list[AssetCheckEvaluation]:
    return [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and isinstance(event.event_specific_data, AssetCheckEvaluation)
    ]
