"""Asset backfills on a running Dagster instance, launched through the webserver's GraphQL API.

`dagster asset materialize` runs in-process and rejects partition ranges, and `dagster job backfill`
works on jobs. `launch_backfill` asks the webserver (`make ui`) for a real asset backfill with the
GraphQL mutation `launchPartitionBackfill`: the daemon runs it and the UI's Backfills page shows it.
`wait_for_backfill` polls `partitionBackfillOrError` until the backfill reaches a terminal status;
`failed_runs` says why each of its failed runs failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from fintech_release.cli.report import failure_lines
from fintech_release.dagster_graphql import DagsterGraphQLError, describe, post_graphql, session
from fintech_release.errors import FintechReleaseError

# BulkActionStatus values (dagster_graphql schema) after which a backfill no longer changes.
TERMINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
SUCCESS_STATUSES = frozenset({"COMPLETED", "COMPLETED_SUCCESS"})
BACKFILL_TAG, PARTITION_TAG = "dagster/backfill", "dagster/partition"  # tags Dagster gives a backfill's runs

LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      numPartitions
      error { message }
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""


class BackfillError(FintechReleaseError):
    """A backfill could not be launched or followed; the message says what the webserver answered."""


@dataclass(frozen=True)
class BackfillProgress:
    """Where a backfill stands; the counts are asset partitions (one asset of one service each)."""

    backfill_id: str
    status: str
    partitions: int
    targeted: int
    materialized: int
    in_progress: int
    failed: int
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    def summary(self) -> str:
        """One line for a terminal, e.g. `backfill abc: REQUESTED, 1/2 materialized, 1 in progress, 0 failed`."""
        line = (
            f"backfill {self.backfill_id}: {self.status}, {self.materialized}/{self.targeted} materialized, "
            f"{self.in_progress} in progress, {self.failed} failed"
        )
        return f"{line} ({self.error})" if self.error else line


def launch_backfill(
    url: str, *, asset_keys: list[list[str]], partitions: list[str], title: str | None = None
) -> str:
    """Launch an asset backfill of `asset_keys` × `partitions` on the webserver at `url`; return its id."""
    params: dict[str, Any] = {
        "partitionNames": partitions,
        "assetSelection": [{"path": key} for key in asset_keys],
        "fromFailure": False,
    }
    if title is not None:
        params["title"] = title
    with session() as http:
        result = _graphql(http, url, LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    if result["__typename"] == "LaunchBackfillSuccess":
        return str(result["backfillId"])
    raise BackfillError(
        f"the Dagster webserver at {url} refused the backfill ({result['__typename']}): {describe(result)}"
    )


def backfill_status(url: str, backfill_id: str) -> BackfillProgress:
    """The current status and partition counts of backfill `backfill_id`."""
    with session() as http:
        return _status(http, url, backfill_id)


def wait_for_backfill(
    url: str,
    backfill_id: str,
    *,
    poll_seconds: float = 2.0,
    timeout_seconds: float = 1800,
    on_progress: Callable[[BackfillProgress], None],
) -> BackfillProgress:
    """Poll until the backfill reaches a terminal status and return it; `on_progress` sees every change."""
    deadline = time.monotonic() + timeout_seconds
    last: BackfillProgress | None = None
    with session() as http:
        while True:
            progress = _status(http, url, backfill_id)
            if progress != last:
                on_progress(progress)
                last = progress
            if progress.finished:
                return progress
            if time.monotonic() >= deadline:
                raise BackfillError(
                    f"backfill {backfill_id} did not finish within {timeout_seconds:.0f}s; last seen: "
                    f"{progress.summary()}"
                )
            time.sleep(poll_seconds)


def failed_runs(instance: DagsterInstance, backfill_id: str) -> list[str]:
    """Why each failed run of backfill `backfill_id` failed, one line per run: `run … (<partition>): <reason>`."""
    runs = instance.get_runs(RunsFilter(tags={BACKFILL_TAG: backfill_id}, statuses=[DagsterRunStatus.FAILURE]))
    return [
        f"run {run.run_id} ({run.tags.get(PARTITION_TAG, 'no partition')}): "
        + failure_lines([entry.dagster_event for entry in instance.all_logs(run.run_id) if entry.dagster_event])[0]
        for run in runs
    ]


def _status(http: requests.Session, url: str, backfill_id: str) -> BackfillProgress:
    result = _graphql(http, url, BACKFILL_STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise BackfillError(f"backfill {backfill_id} ({result['__typename']}): {describe(result)}")
    counts = [status for status in (result["assetBackfillData"] or {}).get("assetBackfillStatuses", []) if status]
    return BackfillProgress(
        backfill_id=backfill_id,
        status=result["status"],
        partitions=result["numPartitions"] or 0,
        targeted=sum(c.get("numPartitionsTargeted", 0) for c in counts),
        materialized=sum(c.get("numPartitionsMaterialized", 0) for c in counts),
        in_progress=sum(c.get("numPartitionsInProgress", 0) for c in counts),
        failed=sum(c.get("numPartitionsFailed", 0) for c in counts),
        error=(result["error"] or {}).get("message"),
    )


def _graphql(http: requests.Session, url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST one GraphQL operation to `url`/graphql and return its `data`; every failure is a BackfillError."""
    try:
        return post_graphql(http, f"{url.rstrip('/')}/graphql", query, variables)
    except DagsterGraphQLError as error:
        raise BackfillError(str(error)) from error
