"""`fintech-release webhook`: the endpoint Bitbucket push events arrive at, launching one CI run per new commit.

Run it next to `dagster dev`: a push to a service's release branch launches `build_and_push` for that
service's partition, a push to a branch matching `source_control.branch_patterns` launches `branch_ci`
(which run, and its tags, come from `ci_runs.ci_run_for`, as for the commit sensor). Runs are launched
on the Dagster webserver through GraphQL (`webhook.dagster_graphql_url`).

Answers, so Bitbucket's delivery log says what happened:

| status | when |
| --- | --- |
| 401 | `X-Hub-Signature` missing or not the HMAC-SHA256 of the body under the secret (`webhook.secret_env`) |
| 400 | body not JSON, or a field of the documented payload missing |
| 411 / 413 | no Content-Length / a body over the size limit |
| 202 | ignored: not a push, unknown repository, unwatched branch, deleted branch |
| 200 | every commit has its run: launched now, or launched before (a run with its tags exists: a replay) |
| 502 | the webserver failed (look-ups after bounded retries, a launch at once); Bitbucket delivers again later |

"A commit starts one run" holds because every launch first asks the webserver for a run of the same
job with the commit's and service's tags, in this process under one lock. That check is also what
makes a replayed delivery launch nothing new, after a restart too, so delivery ids are not remembered.
A launchRun is sent once (again only when it never reached the server): one whose answer timed out
may still be creating the run, so it is answered 502 and Bitbucket's redelivery finds the run if it exists.
Against the commit sensor, a launched run carries the tags the sensor daemon's own run-key check looks
for (`dagster/run_key` and `dagster/sensor_name: commit_sensor`), so a sensor request for the same commit
launched moments later is skipped by the daemon; `fintech-release/launched-by: webhook` says who launched it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fintech_release.triggers.ci_runs import PARTITION_TAG, CiRun, ci_run_for, service_for_repository
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release.config import ReleaseConfig
from fintech_release.dagster_graphql import REQUEST_TIMEOUT, DagsterGraphQLError, find_runs, launch_run, session
from fintech_release.env_secrets import env_secret
from fintech_release.errors import ExternalSystemError
from fintech_release.triggers.webhook_events import (
    PUSH_EVENTS,
    SERVER_PING,
    MalformedEventError,
    PushEvent,
    parse_push,
    signature_is_valid,
)

log = logging.getLogger(__name__)

# The code location and repository of workspace.yaml (`Definitions` are served as "__repository__").
DEFAULT_LOCATION = "fintech_release"
DEFAULT_REPOSITORY = "__repository__"
MAX_BODY_BYTES = 1024 * 1024
# The tags the sensor daemon gives a sensor's runs; its run-key check (dagster/_daemon/sensor.py,
# fetch_existing_runs) counts a run only when both are set and the run's code location is the sensor's.
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
LAUNCHED_BY_TAG = "fintech-release/launched-by"


class Answer(BaseModel, frozen=True):
    """The webhook's answer to one delivery: an HTTP status and a short JSON body."""

    status: int
    result: str
    detail: str
    runs: tuple[str, ...] = ()

    def body(self) -> bytes:
        return json.dumps({"result": self.result, "detail": self.detail, "runs": list(self.runs)}).encode()


class Launcher:
    """Launches a `CiRun` on the Dagster webserver unless a run for its job, service and commit exists.

    The look-up is retried `attempts` times on transient failures; the launch is not (see the module docstring).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        location_name: str = DEFAULT_LOCATION,
        repository_name: str = DEFAULT_REPOSITORY,
        attempts: int = 3,
        timeout: tuple[float, float] = (3.05, 5.0),
        launch_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        retry_wait_seconds: float = 0.5,
    ) -> None:
        self.endpoint = endpoint
        self.location_name = location_name
        self.repository_name = repository_name
        self.attempts = attempts
        self.timeout = timeout
        self.launch_timeout = launch_timeout
        self.retry_wait_seconds = retry_wait_seconds

    def ensure_run(self, run: CiRun) -> tuple[str, bool]:
        """The id of the commit's run and whether it was launched now; DagsterGraphQLError when either failed."""
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, DagsterGraphQLError) and error.transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=4),
            before_sleep=lambda state: log.warning(
                "attempt %d to look up the run of %s failed: %s",
                state.attempt_number, run.run_key, state.outcome.exception(),
            ),
            reraise=True,
        )
        with session() as http:
            existing = retrying(
                find_runs,
                http,
                self.endpoint,
                job_name=run.job_name,
                tags=run.identity_tags,
                limit=1,
                timeout=self.timeout,
            )
            if existing:
                return existing[0], False
            run_id = launch_run(
                http,
                self.endpoint,
                location_name=self.location_name,
                repository_name=self.repository_name,
                job_name=run.job_name,
                tags=launch_tags(run),
                timeout=self.launch_timeout,
            )
            return run_id, True


def launch_tags(run: CiRun) -> dict[str, str]:
    """The tags a webhook-launched run carries: the CiRun's, its partition, and the commit sensor's run key."""
    tags = dict(run.tags)
    if run.partition_key is not None:
        tags[PARTITION_TAG] = run.partition_key
    tags[RUN_KEY_TAG] = run.run_key
    tags[SENSOR_NAME_TAG] = COMMIT_SENSOR
    tags[LAUNCHED_BY_TAG] = "webhook"
    return tags


class PushHandler:
    """Decides what one delivery means and launches its runs; independent of the HTTP server."""

    def __init__(self, config: ReleaseConfig, secret: bytes, launcher: Launcher) -> None:
        self.config = config
        self._secret = secret
        self.launcher = launcher
        self._lock = threading.Lock()

    def handle(self, headers: dict[str, str], body: bytes) -> Answer:
        """Check, parse and act on one delivery (`headers` keys lower-case)."""
        if not signature_is_valid(self._secret, body, headers.get("x-hub-signature")):
            return Answer(status=401, result="unauthorized", detail="missing or invalid X-Hub-Signature")
        event_key = headers.get("x-event-key", "")
        if event_key == SERVER_PING:
            return Answer(status=200, result="pong", detail="signature verified")
        if event_key not in PUSH_EVENTS:
            return Answer(status=202, result="ignored", detail=f"event {event_key!r} is not a push")
        try:
            event = parse_push(event_key, body)
        except MalformedEventError as error:
            return Answer(status=400, result="malformed", detail=str(error))
        delivery = headers.get("x-request-uuid") or headers.get("x-request-id")
        with self._lock:
            answer = self._launch(event)
        log.info("delivery %s (%s): %s %s", delivery, event_key, answer.result, answer.detail)
        return answer

    def _launch(self, event: PushEvent) -> Answer:
        service = next(filter(None, (service_for_repository(self.config, n) for n in event.repository_names)), None)
        if service is None:
            return Answer(status=202, result="ignored", detail=f"unknown repository {event.repository_names[0]}")
        runs = [run for head in event.heads if (run := ci_run_for(self.config, service, head.branch, head.sha))]
        if not runs:
            branches = ", ".join(head.branch for head in event.heads) or "no branch heads"
            return Answer(status=202, result="ignored", detail=f"{service}: not a watched branch ({branches})")
        launched: list[str] = []
        existing: list[str] = []
        for run in runs:
            try:
                run_id, new = self.launcher.ensure_run(run)
            except DagsterGraphQLError as error:
                return Answer(status=502, result="error", detail=f"{run.run_key}: {error}", runs=tuple(launched))
            (launched if new else existing).append(run_id)
            log.info("%s %s: run %s", "launched" if new else "already has", run.run_key, run_id)
        if launched:
            detail = f"launched {len(launched)} run(s)" + (f", {len(existing)} existed" if existing else "")
            return Answer(status=200, result="launched", detail=detail, runs=tuple(launched + existing))
        return Answer(status=200, result="exists", detail="every commit already has a run", runs=tuple(existing))


class _RequestHandler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stall mid-request before its thread gives up

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # an unread body would be taken for the next request
            self._answer(Answer(status=411, result="malformed", detail="Content-Length required"))
            return
        if int(length) > self.server.max_body_bytes:
            self.close_connection = True
            self._answer(
                Answer(status=413, result="too large", detail=f"body over {self.server.max_body_bytes} bytes")
            )
            return
        body = self.rfile.read(int(length))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self._answer(self.server.push_handler.handle(headers, body))

    def do_GET(self) -> None:  # noqa: N802
        self._answer(Answer(status=200, result="ok", detail="POST Bitbucket push events here"))

    def _answer(self, answer: Answer) -> None:
        payload = answer.body()
        self.send_response(answer.status, HTTPStatus(answer.status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's signature)
        log.debug("%s " + format, self.address_string(), *args)


class WebhookServer(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` in a thread for tests, `serve()` for the command."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], push_handler: PushHandler, max_body_bytes: int) -> None:
        super().__init__(address, _RequestHandler)
        self.push_handler = push_handler
        self.max_body_bytes = max_body_bytes

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def make_server(
    config: ReleaseConfig,
    *,
    port: int | None = None,
    location_name: str = DEFAULT_LOCATION,
    repository_name: str = DEFAULT_REPOSITORY,
    max_body_bytes: int = MAX_BODY_BYTES,
    launcher: Launcher | None = None,
) -> WebhookServer:
    """A bound, not yet serving webhook server for `config` (port None: `webhook.port`; 0: any free port)."""
    settings = config.webhook
    secret = env_secret(
        settings.secret_env, f"the secret configured on the Bitbucket webhook, webhook.secret_env in {config.source}"
    )
    launcher = launcher or Launcher(
        settings.dagster_graphql_url, location_name=location_name, repository_name=repository_name
    )
    handler = PushHandler(config, secret.encode(), launcher)
    address = (settings.host, settings.port if port is None else port)
    try:
        return WebhookServer(address, handler, max_body_bytes)
    except OSError as error:
        raise ExternalSystemError(
            f"webhook: cannot listen on {address[0]}:{address[1]} ({error.strerror}); free the port or change "
            f"webhook.host/webhook.port in {config.source}"
        ) from None


def serve(config: ReleaseConfig, *, on_ready: Callable[[str], None] = print, **options: Any) -> None:
    """Serve until interrupted (`fintech-release webhook`); `options` go to `make_server`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(config, **options)
    on_ready(
        f"fintech-release webhook listening on {server.url}, launching runs on {config.webhook.dagster_graphql_url}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
