"""Talking to a running Dagster webserver over its GraphQL API: one place for the transport and its errors.

`post_graphql` sends one operation and returns its `data`, raising `DagsterGraphQLError` for every
failure (no server, timeout, HTTP error, GraphQL `errors`). Only a request that never reached the
server is sent again here: a mutation that timed out may have run, so its caller decides what to do.
`answer_lost` tells such a mutation apart. `find_runs` and `launch_run` are the operations the webhook needs
(runs by tags, launch a job); the CLI
also follows a run it launched (`run_status`), stops it (`terminate_run`) and checks that the webserver
serves its own instance (`instance_info`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests
import urllib3
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fintech_release.errors import ExternalSystemError

# (connect, read) seconds for every request to the webserver.
REQUEST_TIMEOUT = (3.05, 30.0)
CONNECT_ATTEMPTS = 4

FIND_RUNS = """
query FindRuns($filter: RunsFilter!, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { runId status jobName } }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

TERMINATE_RUN = """
mutation TerminateRun($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on Error { message }
  }
}
"""

INSTANCE_INFO = "query InstanceInfo { instance { info } }"


class DagsterGraphQLError(ExternalSystemError):
    """The webserver could not be reached or refused an operation; `transient` says whether trying later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def session() -> requests.Session:
    """A session that ignores proxy settings: the webserver is a local service."""
    http = requests.Session()
    http.trust_env = False
    return http


def not_connected(error: BaseException) -> bool:
    """True when a request never reached the server (refused or connect timeout), so sending it again is safe."""
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    # urllib3's NewConnectionError (refused) is a ConnectTimeoutError too.
    return isinstance(getattr(error.args[0], "reason", None), urllib3.exceptions.ConnectTimeoutError)


def answer_lost(error: DagsterGraphQLError) -> bool:
    """True when the request may have reached the server but its answer never came back (a read timeout, a
    connection dropped mid-way): a mutation may then have happened, and may still be happening."""
    cause = error.__cause__
    return isinstance(cause, (requests.Timeout, requests.ConnectionError)) and not not_connected(cause)


def post_graphql(
    http: requests.Session,
    endpoint: str,
    query: str,
    variables: dict[str, Any],
    *,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
    connect_attempts: int = CONNECT_ATTEMPTS,
) -> dict[str, Any]:
    """POST one GraphQL operation to `endpoint` (…/graphql) and return its `data`."""
    retrying = Retrying(
        retry=retry_if_exception(not_connected),
        stop=stop_after_attempt(connect_attempts),
        wait=wait_exponential(multiplier=0.25, max=2),
        reraise=True,
    )
    try:
        response = retrying(http.post, endpoint, json={"query": query, "variables": variables}, timeout=timeout)
    except requests.ConnectionError as error:
        if not_connected(error):
            raise DagsterGraphQLError(
                f"no Dagster webserver answers at {endpoint} (start it with `make ui` or `dagster dev`)",
                transient=True,
            ) from error
        raise DagsterGraphQLError(
            f"the connection to the Dagster webserver at {endpoint} failed: {error}", transient=True
        ) from error
    except requests.Timeout as error:
        raise DagsterGraphQLError(
            f"the Dagster webserver at {endpoint} did not answer within {timeout[1]:.0f}s", transient=True
        ) from error
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("errors"):
        messages = "; ".join(str(item.get("message", item)) for item in body["errors"])
        raise DagsterGraphQLError(
            f"the Dagster webserver at {endpoint} rejected the request (HTTP {response.status_code}): {messages}",
            transient=response.status_code >= 500,
        )
    # The webserver answers HTTP 500 with a `data` result when a resolver raised (a PythonError).
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise DagsterGraphQLError(
            f"{endpoint} answered HTTP {response.status_code} without a GraphQL result: {response.text[:300]!r}",
            transient=response.status_code >= 500,
        )
    return body["data"]


def find_runs(
    http: requests.Session,
    endpoint: str,
    *,
    job_name: str,
    tags: dict[str, str],
    limit: int = 5,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> list[str]:
    """Ids of runs of `job_name` carrying all of `tags` (newest first, at most `limit`)."""
    run_filter = {"pipelineName": job_name, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
    variables = {"filter": run_filter, "limit": limit}
    result = post_graphql(http, endpoint, FIND_RUNS, variables, timeout=timeout)["runsOrError"]
    if result["__typename"] != "Runs":
        raise DagsterGraphQLError(
            f"the Dagster webserver at {endpoint} could not list runs ({result['__typename']}): {describe(result)}",
            transient=result["__typename"] == "PythonError",
        )
    return [str(run["runId"]) for run in result["results"]]


def launch_run(
    http: requests.Session,
    endpoint: str,
    *,
    location_name: str,
    repository_name: str,
    job_name: str,
    tags: dict[str, str],
    run_config: dict[str, Any] | None = None,
    asset_selection: Sequence[Sequence[str]] | None = None,
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> str:
    """Launch `job_name` with `tags`, `run_config` and (optionally) a subset of its assets; return the run's id."""
    selector: dict[str, Any] = {
        "repositoryLocationName": location_name,
        "repositoryName": repository_name,
        "jobName": job_name,
    }
    if asset_selection is not None:
        selector["assetSelection"] = [{"path": list(path)} for path in asset_selection]
    params = {
        "selector": selector,
        "runConfigData": run_config or {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    result = post_graphql(http, endpoint, LAUNCH_RUN, {"executionParams": params}, timeout=timeout)["launchRun"]
    if result["__typename"] == "LaunchRunSuccess":
        return str(result["run"]["runId"])
    raise DagsterGraphQLError(
        f"the Dagster webserver at {endpoint} refused to launch {job_name} in {location_name}/{repository_name} "
        f"({result['__typename']}): {describe(result)}",
        transient=result["__typename"] == "PythonError",
    )


def run_status(http: requests.Session, endpoint: str, run_id: str) -> str:
    """The run's status as the webserver reports it, e.g. QUEUED, STARTED, SUCCESS."""
    result = post_graphql(http, endpoint, RUN_STATUS, {"runId": run_id})["runOrError"]
    if result["__typename"] != "Run":
        raise DagsterGraphQLError(
            f"the Dagster webserver at {endpoint} has no run {run_id}: {describe(result)}", transient=False
        )
    return str(result["status"])


def terminate_run(http: requests.Session, endpoint: str, run_id: str) -> None:
    """Ask the webserver to stop the run (its workers are interrupted and clean up); raises if it refuses."""
    result = post_graphql(http, endpoint, TERMINATE_RUN, {"runId": run_id})["terminateRun"]
    if result["__typename"] != "TerminateRunSuccess":
        raise DagsterGraphQLError(
            f"the Dagster webserver at {endpoint} did not stop run {run_id}: {describe(result)}", transient=False
        )


def instance_info(http: requests.Session, endpoint: str, *, timeout: tuple[float, float]) -> str | None:
    """The webserver's instance configuration as `DagsterInstance.info_str()` prints it (None if it hides it)."""
    info = post_graphql(http, endpoint, INSTANCE_INFO, {}, timeout=timeout, connect_attempts=1)["instance"]["info"]
    return None if info is None else str(info)


def describe(result: dict[str, Any]) -> str:
    """The message of a GraphQL error result, whatever its type."""
    if result.get("message"):
        return str(result["message"]).strip()
    if result.get("errors"):
        return "; ".join(str(item["message"]) for item in result["errors"])
    if result.get("invalidStepKey"):
        return f"invalid step {result['invalidStepKey']}"
    if result.get("stepKey"):
        return f"invalid output {result['invalidOutputName']} of step {result['stepKey']}"
    return "no message"
