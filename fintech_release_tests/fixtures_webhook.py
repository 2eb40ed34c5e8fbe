"""What the webhook tests share: release.yaml, Bitbucket's documented push bodies, deliveries, endpoints.

* ``graphql`` - a loopback stand-in of the Dagster webserver's GraphQL endpoint (not the real webserver):
  a real HTTP server that validates every operation against the installed dagster-graphql schema, keeps
  the runs launched through it and answers `runsOrError` by job name and tags as the webserver does. It
  can fail (HTTP 503), hang until released, and slow its launches; it counts launches in flight.
* ``webhook_config(flavor)`` - release.yaml with two services on Bitbucket Cloud (workspace ``acme``) or
  Server (project ``FIN``), ``feature/*`` watched, the webhook pointed at the stand-in.
* ``start_webhook(config, **options)`` - a real uvicorn endpoint on a free loopback port, stopped at the end.
"""

from __future__ import annotations

import json
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
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.records.keys import COMMIT_TAG
from fintech_release.triggers.webhook import Backoff, WebhookEndpoint
from fintech_release.triggers.webhook.events import sign
from fintech_release_tests.components import answer_json

SECRET = "webhook-secret-for-tests"
SECRET_ENV = "FINTECH_RELEASE_TEST_WEBHOOK_SECRET"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
OTHER_SHA = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens; the commit sensor's Bitbucket calls fail at once
FAST_RETRIES = Backoff(first_seconds=0.1, max_seconds=0.5)
SCHEMA = create_schema().graphql_schema


def commit(number: int) -> str:
    """A distinct 40-hex commit sha."""
    return f"{number:040x}"


@dataclass
class GraphQLStandIn:
    """What the stand-in received and holds; see the module docstring for its switches."""

    operations: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    slow_launch_seconds: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)  # cleared: every request hangs
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.released.set()

    @property
    def launches(self) -> list[dict[str, Any]]:
        return [op["variables"]["executionParams"] for op in self.operations if "launchRun" in op["query"]]

    def launched_commits(self) -> list[str]:
        return [
            next(t["value"] for t in launch["executionMetadata"]["tags"] if t["key"] == COMMIT_TAG)
            for launch in self.launches
        ]

    def add_run(self, job_name: str, tags: dict[str, str]) -> str:
        run_id = str(uuid.uuid4())
        with self.lock:
            self.runs.append({"runId": run_id, "jobName": job_name, "tags": tags, "status": "QUEUED"})
        return run_id

    def answer(self, operation: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        errors = validate(SCHEMA, parse(operation["query"]))
        if errors:
            return 400, {"errors": [{"message": error.message} for error in errors]}
        self.released.wait(60)
        with self.lock:
            self.operations.append(operation)
        if self.failing:
            return 503, {"errors": [{"message": "service unavailable"}]}
        variables = operation["variables"]
        if "runsOrError" in operation["query"]:
            wanted = variables["filter"]
            tags = {tag["key"]: tag["value"] for tag in wanted.get("tags") or []}
            with self.lock:
                matches = [
                    {"runId": run["runId"], "status": run["status"], "jobName": run["jobName"]}
                    for run in reversed(self.runs)
                    if run["jobName"] == wanted.get("pipelineName", run["jobName"])
                    and tags.items() <= run["tags"].items()
                ]
            return 200, {"data": {"runsOrError": {"__typename": "Runs", "results": matches[: variables["limit"]]}}}
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.slow_launch_seconds)
            params = variables["executionParams"]
            run_id = self.add_run(
                params["selector"]["jobName"], {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
            )
        finally:
            with self.lock:
                self.in_flight -= 1
        return 200, {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": run_id}}}}


@pytest.fixture
def graphql() -> Iterator[tuple[GraphQLStandIn, str]]:
    """The stand-in on a free loopback port: (its state, its /graphql URL)."""
    state = GraphQLStandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            operation = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, body = state.answer(operation)
            try:
                answer_json(self, status, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/graphql"
    state.released.set()
    server.shutdown()
    server.server_close()


def write_config(directory: Path, graphql_url: str, *, flavor: str = "cloud", port: int = 8089) -> ReleaseConfig:
    """release.yaml in `directory`: contact-us and payments on Bitbucket `flavor`, the webhook on `port`."""
    bitbucket: dict[str, Any] = {"flavor": flavor, "owner": "acme" if flavor == "cloud" else "FIN",
                                 "base_url": CLOSED_PORT_URL}
    document = {
        "source_control": {"platform": "bitbucket", "bitbucket": bitbucket, "branch_patterns": ["feature/*"]},
        "webhook": {"secret_env": SECRET_ENV, "dagster_graphql_url": graphql_url, "port": port,
                    "state_dir": "webhook-state"},
        "services": [
            {"name": "contact-us", "repository": "contact-us", "port": 18081},
            {"name": "payments", "repository": "payments", "port": 18082},
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "release.yaml").write_text(yaml.safe_dump(document))
    return load_release_config(directory / "release.yaml")


@pytest.fixture
def webhook_config(
    tmp_path: Path, graphql: tuple[GraphQLStandIn, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ReleaseConfig]:
    """``make(flavor="cloud")``: release.yaml for the stand-in, the secret in the environment."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return lambda flavor="cloud": write_config(tmp_path / flavor, graphql[1], flavor=flavor)


@pytest.fixture
def start_webhook() -> Iterator[Callable[..., WebhookEndpoint]]:
    """``start(config, **options)``: a serving endpoint on a free loopback port; all stopped at the end."""
    endpoints: list[WebhookEndpoint] = []

    def start(config: ReleaseConfig, **options: Any) -> WebhookEndpoint:
        options.setdefault("backoff", FAST_RETRIES)
        endpoint = WebhookEndpoint(config, port=0, **options)
        endpoints.append(endpoint)
        endpoint.start()
        return endpoint

    yield start
    for endpoint in endpoints:
        endpoint.stop()


def cloud_push(full_name: str, branch: str, sha: str = SHA, *, old: str = OTHER_SHA) -> dict[str, Any]:
    """A Bitbucket Cloud repo:push body with the documented fields (trimmed)."""
    return {
        "actor": {"display_name": "Ada Lovelace", "type": "user"},
        "repository": {"type": "repository", "full_name": full_name, "name": full_name.split("/")[-1]},
        "push": {
            "changes": [
                {
                    "new": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": sha}},
                    "old": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": old}},
                    "created": False,
                    "closed": False,
                }
            ]
        },
    }


def server_push(slug: str, branch: str, sha: str = SHA, change_type: str = "UPDATE", *,
                project: str = "FIN") -> dict[str, Any]:
    """A Bitbucket Server repo:refs_changed body with the documented fields (trimmed)."""
    return {
        "eventKey": "repo:refs_changed",
        "repository": {"slug": slug, "name": slug, "project": {"key": project}},
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
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "repo:push",
    delivery: str | None = None,
    signature: str | None = "valid",
    timeout: float = 30,
) -> requests.Response:
    """POST a delivery as Bitbucket does; `signature="valid"` signs the body with the test secret."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Event-Key": event}
    headers["X-Request-UUID" if event == "repo:push" else "X-Request-Id"] = delivery or str(uuid.uuid4())
    if signature == "valid":
        headers["X-Hub-Signature"] = sign(SECRET.encode(), body)
    elif signature is not None:
        headers["X-Hub-Signature"] = signature
    with requests.Session() as http:
        http.trust_env = False
        return http.post(url, data=body, headers=headers, timeout=timeout)


def wait_for(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "the condition") -> Any:
    """Poll `condition` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:g} s")
