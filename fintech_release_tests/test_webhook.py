"""The Bitbucket webhook: signed push events in, one Dagster run per new commit out.

The Dagster GraphQL endpoint is a loopback stand-in (contract test against the documented response
shapes, not the real webserver): a real HTTP server that validates every operation it receives
against the installed dagster-graphql schema, keeps the runs launched through it and answers
`runsOrError` by job name and tags as the webserver does. The webhook's HTTP handling, signature
checks, payload parsing and retries are real, over real sockets on loopback. One integration test
(marker `integration`) launches on a real `dagster dev` it starts, and asks the installed sensor
daemon's run-key check about the run.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunRequest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.sensor import fetch_existing_runs
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SERVICE_TAG
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.config.loader import CONFIG_ENV_VAR
from fintech_release.dagster_graphql import REQUEST_TIMEOUT
from fintech_release.errors import ExternalSystemError, MissingEnvironmentVariableError
from fintech_release.triggers.webhook import Launcher, WebhookServer, make_server
from fintech_release.triggers.webhook_events import sign
from fintech_release_tests.fixtures_dagster import (  # noqa: F401
    REPO_ROOT,
    TELEMETRY_OFF,
    DagsterDev,
    dagster_dev_factory,
)

SECRET = "webhook-secret-for-tests"
SECRET_ENV = "FINTECH_RELEASE_TEST_WEBHOOK_SECRET"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
OTHER_SHA = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e"
SCHEMA = create_schema().graphql_schema


@dataclass
class GraphQLStandIn:
    """What the stand-in received and holds; `failing` answers HTTP 503, `slow_launch` delays launchRun replies."""

    operations: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    slow_launch_seconds: float = 0.0

    @property
    def launches(self) -> list[dict[str, Any]]:
        return [op["variables"]["executionParams"] for op in self.operations if "launchRun" in op["query"]]

    def add_run(self, job_name: str, tags: dict[str, str]) -> str:
        run_id = str(uuid.uuid4())
        self.runs.append({"runId": run_id, "jobName": job_name, "tags": tags, "status": "QUEUED"})
        return run_id

    def answer(self, operation: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        errors = validate(SCHEMA, parse(operation["query"]))
        if errors:
            return 400, {"errors": [{"message": error.message} for error in errors]}
        self.operations.append(operation)
        if self.failing:
            return 503, {"errors": [{"message": "service unavailable"}]}
        variables = operation["variables"]
        if "runsOrError" in operation["query"]:
            wanted = variables["filter"]
            tags = {tag["key"]: tag["value"] for tag in wanted.get("tags") or []}
            matches = [
                {"runId": run["runId"], "status": run["status"], "jobName": run["jobName"]}
                for run in reversed(self.runs)
                if run["jobName"] == wanted.get("pipelineName", run["jobName"])
                and tags.items() <= run["tags"].items()
            ]
            return 200, {"data": {"runsOrError": {"__typename": "Runs", "results": matches[: variables["limit"]]}}}
        params = variables["executionParams"]
        run_id = self.add_run(
            params["selector"]["jobName"], {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
        )
        time.sleep(self.slow_launch_seconds)
        return 200, {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": run_id}}}}


@pytest.fixture
def graphql() -> Iterator[tuple[GraphQLStandIn, str]]:
    """The stand-in on a free loopback port: (its state, its /graphql URL)."""
    state = GraphQLStandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            operation = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, body = state.answer(operation)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the slow-launch case)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/graphql"
    server.shutdown()
    server.server_close()


@pytest.fixture
def config(tmp_path: Path, graphql: tuple[GraphQLStandIn, str], monkeypatch: pytest.MonkeyPatch) -> ReleaseConfig:
    """Two services, feature/* branches watched, the webhook pointed at the stand-in."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    document = {
        "source_control": {"branch_patterns": ["feature/*"]},
        "webhook": {"secret_env": SECRET_ENV, "dagster_graphql_url": graphql[1]},
        "services": [
            {"name": "contact-us", "repository": "acme/contact-us", "port": 18081},
            {"name": "payments", "repository": "payments", "port": 18082},
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    (tmp_path / "release.yaml").write_text(yaml.safe_dump(document))
    return load_release_config(tmp_path / "release.yaml")


@pytest.fixture
def start_webhook(config: ReleaseConfig) -> Iterator[Callable[..., WebhookServer]]:
    """Start webhook servers on free loopback ports (options go to make_server); all stopped at the end."""
    servers: list[WebhookServer] = []

    def start(**options: Any) -> WebhookServer:
        server = make_server(config, port=0, **options)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook(start_webhook: Callable[..., WebhookServer]) -> WebhookServer:
    return start_webhook()


def cloud_push(full_name: str, branch: str, sha: str = SHA) -> dict[str, Any]:
    """A Bitbucket Cloud repo:push body with the documented fields (trimmed)."""
    return {
        "actor": {"display_name": "Ada Lovelace", "type": "user"},
        "repository": {"type": "repository", "full_name": full_name, "name": full_name.split("/")[-1]},
        "push": {
            "changes": [
                {
                    "new": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": sha}},
                    "old": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": OTHER_SHA}},
                    "created": False,
                    "closed": False,
                }
            ]
        },
    }


def server_push(slug: str, branch: str, sha: str = SHA, change_type: str = "UPDATE") -> dict[str, Any]:
    """A Bitbucket Server repo:refs_changed body with the documented fields (trimmed)."""
    return {
        "eventKey": "repo:refs_changed",
        "repository": {"slug": slug, "name": slug, "project": {"key": "FIN"}},
        "changes": [
            {
                "ref": {"id": f"refs/heads/{branch}", "displayId": branch, "type": "BRANCH"},
                "refId": f"refs/heads/{branch}",
                "fromHash": OTHER_SHA,
                "toHash": sha,
                "type": change_type,
            }
        ],
    }


def deliver(
    server: WebhookServer,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "repo:push",
    delivery: str | None = None,
    signature: str | None = "valid",
) -> requests.Response:
    """POST a delivery as Bitbucket does; `signature="valid"` signs the body with the test secret."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Event-Key": event}
    id_header = "X-Request-UUID" if event == "repo:push" else "X-Request-Id"
    headers[id_header] = delivery or str(uuid.uuid4())
    if signature == "valid":
        headers["X-Hub-Signature"] = sign(SECRET.encode(), body)
    elif signature is not None:
        headers["X-Hub-Signature"] = signature
    with requests.Session() as http:
        http.trust_env = False
        return http.post(server.url, data=body, headers=headers, timeout=30)


def test_signed_master_push_launches_build_and_push_for_the_partition(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, _ = graphql
    with caplog.at_level(logging.DEBUG):
        response = deliver(webhook, cloud_push("acme/contact-us", "master"))

    assert response.status_code == 200, response.text
    assert response.json()["result"] == "launched"
    [check, launch] = state.operations
    assert "runsOrError" in check["query"]
    assert check["variables"]["filter"] == {
        "pipelineName": "build_and_push",
        "tags": [{"key": COMMIT_TAG, "value": SHA}, {"key": "dagster/partition", "value": "contact-us"}],
    }
    params = launch["variables"]["executionParams"]
    assert params["selector"] == {
        "repositoryLocationName": "fintech_release", "repositoryName": "__repository__", "jobName": "build_and_push"
    }
    assert {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]} == {
        COMMIT_TAG: SHA,
        BRANCH_TAG: "master",
        SERVICE_TAG: "contact-us",
        "dagster/partition": "contact-us",
        "dagster/run_key": f"build_and_push:contact-us:{SHA}",
        "dagster/sensor_name": "commit_sensor",  # so the sensor daemon's run-key check finds this run
        "fintech-release/launched-by": "webhook",
    }
    assert response.json()["runs"] == [state.runs[0]["runId"]]
    assert SECRET not in caplog.text and sign(SECRET.encode(), b"") not in caplog.text


def test_server_push_on_a_feature_branch_launches_branch_ci(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]
) -> None:
    state, _ = graphql
    response = deliver(webhook, server_push("payments", "feature/login"), event="repo:refs_changed")

    assert response.status_code == 200, response.text
    [launch] = state.launches
    assert launch["selector"]["jobName"] == "branch_ci"
    tags = {t["key"]: t["value"] for t in launch["executionMetadata"]["tags"]}
    assert tags[BRANCH_TAG] == "feature/login" and tags[SERVICE_TAG] == "payments" and tags[COMMIT_TAG] == SHA
    assert "dagster/partition" not in tags


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=" + "0" * 40, sign(b"another-secret", b"{}"), ""],
    ids=["missing", "wrong-digest", "wrong-algorithm", "other-secret", "empty"],
)
def test_bad_or_missing_signature_is_401_and_launches_nothing(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str], signature: str | None
) -> None:
    response = deliver(webhook, cloud_push("acme/contact-us", "master"), signature=signature)

    assert response.status_code == 401
    assert graphql[0].operations == []


def test_signature_over_a_changed_body_is_401(webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]) -> None:
    body = json.dumps(cloud_push("acme/contact-us", "master")).encode()
    response = deliver(webhook, body.replace(b"master", b"mister"), signature=sign(SECRET.encode(), body))

    assert response.status_code == 401
    assert graphql[0].operations == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (json.dumps({"repository": {"full_name": "acme/contact-us"}}).encode(), "push is missing"),
        (json.dumps(cloud_push("acme/contact-us", "master", sha="not-a-sha")).encode(), "is not a commit hash"),
    ],
    ids=["not-json", "no-push", "bad-hash"],
)
def test_malformed_body_is_400_with_a_reason(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str], body: bytes, reason: str
) -> None:
    response = deliver(webhook, body)

    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert graphql[0].operations == []


def test_replayed_delivery_launches_nothing_new(
    start_webhook: Callable[..., WebhookServer], graphql: tuple[GraphQLStandIn, str]
) -> None:
    delivery = str(uuid.uuid4())
    first = deliver(start_webhook(), cloud_push("acme/contact-us", "master"), delivery=delivery)
    # Replayed to a restarted webhook (a new server): the run's tags, not a memory of deliveries, stop it.
    replay = deliver(start_webhook(), cloud_push("acme/contact-us", "master"), delivery=delivery)

    assert first.status_code == 200 and first.json()["result"] == "launched"
    assert replay.status_code == 200 and replay.json()["result"] == "exists"
    assert replay.json()["runs"] == first.json()["runs"]
    assert len(graphql[0].launches) == 1


def test_commit_that_already_has_a_run_launches_nothing_new(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]
) -> None:
    state, _ = graphql
    cli_run = state.add_run(  # as the CLI or the demo launch it: commit and partition, no service tag
        "build_and_push", {COMMIT_TAG: SHA, "dagster/partition": "contact-us"}
    )

    response = deliver(webhook, cloud_push("acme/contact-us", "master"))

    assert response.status_code == 200 and response.json() == {
        "result": "exists", "detail": "every commit already has a run", "runs": [cli_run]
    }
    assert state.launches == []


def test_branch_commit_with_a_sensor_run_launches_nothing_new(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]
) -> None:
    state, _ = graphql
    state.add_run("branch_ci", {COMMIT_TAG: SHA, SERVICE_TAG: "payments", BRANCH_TAG: "feature/login"})

    response = deliver(webhook, server_push("payments", "feature/login"), event="repo:refs_changed")

    assert response.status_code == 200 and response.json()["result"] == "exists"
    assert state.launches == []


def test_same_commit_in_two_deliveries_starts_one_run(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]
) -> None:
    deliveries = [cloud_push("acme/contact-us", "master") for _ in range(4)]
    threads = [threading.Thread(target=deliver, args=(webhook, payload)) for payload in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(graphql[0].launches) == 1


@pytest.mark.parametrize(
    ("payload", "event", "detail"),
    [
        (cloud_push("acme/unknown-service", "master"), "repo:push", "unknown repository acme/unknown-service"),
        (cloud_push("acme/contact-us", "hotfix/x"), "repo:push", "not a watched branch (hotfix/x)"),
        (server_push("payments", "master", change_type="DELETE"), "repo:refs_changed", "not a watched branch"),
        ({"pullrequest": {}}, "pullrequest:created", "is not a push"),
    ],
    ids=["unknown-repository", "unwatched-branch", "deleted-branch", "not-a-push"],
)
def test_events_that_start_nothing_are_ignored_with_202(
    webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str], payload: dict, event: str, detail: str
) -> None:
    response = deliver(webhook, payload, event=event)

    assert response.status_code == 202
    assert response.json()["result"] == "ignored" and detail in response.json()["detail"]
    assert graphql[0].launches == []


def test_webserver_failure_is_502_and_a_redelivery_launches_once(
    start_webhook: Callable[..., WebhookServer], graphql: tuple[GraphQLStandIn, str]
) -> None:
    state, url = graphql
    webhook = start_webhook(launcher=Launcher(url, attempts=3, retry_wait_seconds=0.05))
    state.failing = True
    delivery = str(uuid.uuid4())

    failed = deliver(webhook, cloud_push("acme/contact-us", "master"), delivery=delivery)

    assert failed.status_code == 502 and "HTTP 503" in failed.json()["detail"]
    assert len(state.operations) == 3 and state.launches == []  # three runsOrError attempts, no launch

    state.failing = False
    redelivered = deliver(webhook, cloud_push("acme/contact-us", "master"), delivery=delivery)

    assert redelivered.status_code == 200 and redelivered.json()["result"] == "launched"
    assert len(state.launches) == 1


def test_launch_that_times_out_is_not_sent_again_and_the_redelivery_finds_its_run(
    start_webhook: Callable[..., WebhookServer], graphql: tuple[GraphQLStandIn, str]
) -> None:
    state, url = graphql
    state.slow_launch_seconds = 1.5  # the webserver creates the run, then answers too late
    launcher = Launcher(url, attempts=3, launch_timeout=(3.05, 0.5), retry_wait_seconds=0.05)
    webhook = start_webhook(launcher=launcher)
    delivery = str(uuid.uuid4())

    timed_out = deliver(webhook, cloud_push("acme/contact-us", "master"), delivery=delivery)

    assert timed_out.status_code == 502 and "did not answer" in timed_out.json()["detail"]
    assert len(state.launches) == 1  # not sent a second time after the read timeout

    redelivered = deliver(webhook, cloud_push("acme/contact-us", "master"), delivery=delivery)

    assert redelivered.status_code == 200 and redelivered.json()["result"] == "exists"
    assert len(state.launches) == 1 and redelivered.json()["runs"] == [state.runs[0]["runId"]]


def test_launch_waits_for_the_webserver_as_long_as_any_graphql_request() -> None:
    assert Launcher("http://127.0.0.1:3000/graphql").launch_timeout == REQUEST_TIMEOUT == (3.05, 30.0)


def test_oversized_body_is_refused_before_reading(start_webhook: Callable[..., WebhookServer]) -> None:
    webhook = start_webhook(max_body_bytes=1024)
    host, port = webhook.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(10 * 1024 * 1024))
    connection.putheader("X-Event-Key", "repo:push")
    connection.endheaders()

    response = connection.getresponse()

    assert response.status == 413
    connection.close()


def test_server_ping_is_answered(webhook: WebhookServer, graphql: tuple[GraphQLStandIn, str]) -> None:
    response = deliver(webhook, b"{}", event="diagnostics:ping")

    assert response.status_code == 200 and response.json()["result"] == "pong"
    assert graphql[0].operations == []


def test_port_in_use_is_a_clear_error(webhook: WebhookServer, config: ReleaseConfig) -> None:
    with pytest.raises(ExternalSystemError, match=f"cannot listen on 127.0.0.1:{webhook.server_address[1]}"):
        make_server(config, port=webhook.server_address[1])


def test_missing_secret_stops_the_server_from_starting(
    config: ReleaseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)

    with pytest.raises(MissingEnvironmentVariableError, match=f"{SECRET_ENV} is not set .*export {SECRET_ENV}="):
        make_server(config, port=0)


@pytest.mark.integration
def test_real_dagster_webserver_gets_one_queued_run_per_commit(
    tmp_path: Path,
    config: ReleaseConfig,
    dagster_dev_factory: Callable[[Path, Path], DagsterDev],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Integration: a real `dagster dev` (run queue paused, so the run stays QUEUED and builds nothing).

    The installed sensor daemon's own run-key check (`fetch_existing_runs`, what it asks before it launches
    a sensor's request) is then asked about the commit sensor's request for the same commit: it must find
    the webhook's run, so the daemon would skip the request instead of launching a second run.
    """
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TELEMETRY_OFF + "concurrency:\n  runs:\n    max_concurrent_runs: 0\n")
    dev = dagster_dev_factory(config.source, home)
    webhook = make_server(config, port=0, launcher=Launcher(f"{dev.url}/graphql"))
    threading.Thread(target=webhook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        first = deliver(webhook, cloud_push("acme/contact-us", "master"))
        second = deliver(webhook, cloud_push("acme/contact-us", "master"))
    finally:
        webhook.shutdown()
        webhook.server_close()

    assert first.status_code == 200 and first.json()["result"] == "launched", first.text
    assert second.status_code == 200 and second.json()["result"] == "exists"
    [run_id] = first.json()["runs"]
    assert second.json()["runs"] == [run_id]
    with DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == "build_and_push" and run.status == DagsterRunStatus.QUEUED
    assert run.tags[COMMIT_TAG] == SHA and run.tags["dagster/partition"] == "contact-us"
    assert run.tags["dagster/run_key"] == f"build_and_push:contact-us:{SHA}"

    monkeypatch.setenv(CONFIG_ENV_VAR, str(config.source))
    request = RunRequest(run_key=f"build_and_push:contact-us:{SHA}", job_name="build_and_push",
                         partition_key="contact-us")
    with (
        DagsterInstance.from_config(str(home)) as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget([str(REPO_ROOT / "workspace.yaml")])) as workspace,
    ):
        location = workspace.create_request_context().get_code_location("fintech_release")
        remote_sensor = location.get_repository("__repository__").get_sensor(COMMIT_SENSOR)
        existing = fetch_existing_runs(instance, remote_sensor, [request])
    assert existing[request.run_key].run_id == run_id
