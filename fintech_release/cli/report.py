"""What a command says about the run it executed: per service what changed, or why the run failed, in a line or two.

The reason comes first and whole (the failed check's verdict: which replica, crash-looping or
exited, restarts, its last output; else the failing step's own message), then the run id and where
to read more. Dagster's log and tracebacks are for `--verbose`.
"""

from __future__ import annotations

from dagster import DagsterEventType, ExecuteInProcessResult

INTERRUPTED = "DagsterExecutionInterruptedError"


def release_lines(result: ExecuteInProcessResult) -> list[str]:
    """One line per release the run recorded: service, what it did, version before → after, digest, replicas."""
    lines = []
    for event in result.get_asset_materialization_events():
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


def failure_lines(result: ExecuteInProcessResult) -> list[str]:
    """Why the run failed: each failed blocking check with its verdict, else the failing step's message."""
    checks = [
        f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name} failed: {evaluation.description}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    return checks or [failure_message(result)]


def was_interrupted(result: ExecuteInProcessResult) -> bool:
    """Whether the run ended because the command was interrupted (Ctrl-C, SIGTERM)."""
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data is not None:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == INTERRUPTED:
                return True
    return False


def failure_message(result: ExecuteInProcessResult) -> str:
    """The first step failure's message, for a one-line report."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "Error occurred while executing" in error.message:
                error = error.cause
            return error.message.strip() if error else "step failed"
    return "run failed"
