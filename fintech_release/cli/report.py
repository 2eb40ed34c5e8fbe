"""What a command says about the run it executed or launched: per service what changed, or why the run failed.

The reason comes first and whole (the failed check's verdict: which replica, crash-looping or
exited, restarts, its last output; else the failing step's own message), then the run id and where
to read more. Dagster's log and tracebacks are for `--verbose`. Everything here reads the run's
Dagster events, so a run executed in this process and one launched on a webserver read the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckEvaluation, DagsterEvent, DagsterEventType, ExecuteInProcessResult, JobExecutionResult

INTERRUPTED = "DagsterExecutionInterruptedError"
Events = Sequence[DagsterEvent]


def events_of(result: ExecuteInProcessResult | JobExecutionResult | Events) -> Events:
    """The Dagster events of an execution result, or the events given."""
    return result.all_events if isinstance(result, (ExecuteInProcessResult, JobExecutionResult)) else result


def release_lines(result: ExecuteInProcessResult | JobExecutionResult | Events) -> list[str]:
    """One line per release the run recorded: service, what it did, version before → after, digest, replicas."""
    lines = []
    for event in events_of(result):
        if event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
            continue
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[1:2] != ["release"]:
            continue
        values = {name: getattr(entry, "value", entry) for name, entry in materialization.metadata.items()}
        service = materialization.asset_key.path[-1]
        change = f"{values.get('previous_version', 'none')} → {values['version']}"
        if values["status"] == "unchanged":
            change = f"{values['version']} (unchanged)"
        lines.append(
            f"  {service:16} {values['status']:20} {change:28} {values['digest']}  "
            f"{values['ready_replicas']}/{values['desired_replicas']} ready"
        )
    return lines


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
    """The first step failure's message, for a one-line report (else the run's own failure message)."""
    run_failure = None
    for event in events_of(result):
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "Error occurred while executing" in error.message:
                error = error.cause
            return error.message.strip() if error else "step failed"
        if event.event_type == DagsterEventType.RUN_FAILURE and run_failure is None:
            run_failure = event.message
    return run_failure or "run failed"


def _check_evaluations(events: Events) -> list[AssetCheckEvaluation]:
    return [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and isinstance(event.event_specific_data, AssetCheckEvaluation)
    ]
