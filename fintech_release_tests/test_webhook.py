"""The Bitbucket webhook: signed push events answered at once, recorded durably, one Dagster run per commit.

The endpoint is the real one (uvicorn + Starlette on loopback, the SQLite record in a temporary state
directory); the Dagster GraphQL endpoint is the loopback **stand-in** of fixtures_webhook.py (a contract
test: every operation validated against the installed dagster-graphql schema), which can fail, hang and
be slow. Requests are real HTTP over real sockets, down to malformed and deliberately slow ones. The
launches on a real `dagster dev`, and the command stopped by SIGTERM, are in test_webhook_dagster.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from fintech_release.config import ReleaseConfig
from fintech_release.errors import ExternalSystemError, MissingEnvironmentVariableError, ReleaseConfigError
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SERVICE_TAG
from fintech_release.triggers.webhook import Launcher, Limits, WebhookEndpoint
from fintech_release.triggers.webhook.events import sign
from fintech_release_tests.fixtures_webhook import (  # noqa: F401 - fixtures
    SECRET,
    SECRET_ENV,
    SHA,
    GraphQLStandIn,
    cloud_push,
    commit,
    deliver,
    graphql,
    server_push,
    start_webhook,
    wait_for,
    webhook_config,
    write_config,
)

Start = Callable[..., WebhookEndpoint]
Graphql = tuple[GraphQLStandIn, str]
ANSWER_WITHIN = 2.0  # seconds: the bound for every answer (Bitbucket itself gives up after 10 s)


def answers(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The delivery lines the endpoint logged."""
    return [r.getMessage() for r in caplog.records if r.name == "fintech_release.webhook" and
            r.getMessage().startswith("answer ")]


def raw_exchange(endpoint: WebhookEndpoint, data: bytes, timeout: float = 10) -> bytes:
    """Send `data` as it is and return everything the endpoint answers until it closes the connection."""
    host, port = endpoint.socket.getsockname()[:2]
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(data)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_master_push_is_answered_before_its_launch_which_follows(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, _ = graphql
    state.released.clear()  # the webserver hangs: nothing it does may hold the answer up
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.INFO)

    started = time.monotonic()
    response = deliver(webhook.url, cloud_push("acme/contact-us", "master"))
    answered_in = time.monotonic() - started

    assert response.status_code == 202, response.text
    assert response.json()["result"] == "accepted" and answered_in < ANSWER_WITHIN
    assert response.json()["runs"] == [f"build_and_push:contact-us:{SHA}"]
    assert state.launches == []
    state.released.set()
    [params] = wait_for(lambda: state.launches, what="the launch")
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
    check = next(op for op in state.operations if "runsOrError" in op["query"])
    assert check["variables"]["filter"] == {
        "pipelineName": "build_and_push",
        "tags": [{"key": COMMIT_TAG, "value": SHA}, {"key": "dagster/partition", "value": "contact-us"}],
    }
    [line] = answers(caplog)
    assert line.startswith("answer 202 accepted delivery=") and f"record={response.json()['delivery']}" in line
    assert "repository=acme/contact-us branch=master" in line and f"commit={SHA}" in line


def test_server_push_on_a_feature_branch_launches_branch_ci(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    webhook = start_webhook(webhook_config("server"))

    response = deliver(webhook.url, server_push("payments", "feature/login"), event="repo:refs_changed")

    assert response.status_code == 202, response.text
    [launch] = wait_for(lambda: graphql[0].launches, what="the launch")
    assert launch["selector"]["jobName"] == "branch_ci"
    tags = {t["key"]: t["value"] for t in launch["executionMetadata"]["tags"]}
    assert tags[BRANCH_TAG] == "feature/login" and tags[SERVICE_TAG] == "payments" and tags[COMMIT_TAG] == SHA
    assert "dagster/partition" not in tags


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=" + "0" * 40, sign(b"another-secret", b"{}"), ""],
    ids=["missing", "wrong-digest", "wrong-algorithm", "other-secret", "empty"],
)
def test_bad_or_missing_signature_is_401_logged_without_secrets(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture, signature: str | None,
) -> None:
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.DEBUG)

    response = deliver(webhook.url, cloud_push("acme/contact-us", "master"), signature=signature)

    assert response.status_code == 401
    assert graphql[0].operations == [] and webhook.store.launches() == []
    [line] = answers(caplog)
    assert line.startswith("answer 401 unauthorized")
    body = json.dumps(cloud_push("acme/contact-us", "master")).encode()
    assert SECRET not in caplog.text and sign(SECRET.encode(), body) not in caplog.text
    assert not signature or signature not in caplog.text


def test_signature_over_a_changed_body_is_401(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    webhook = start_webhook(webhook_config())
    body = json.dumps(cloud_push("acme/contact-us", "master")).encode()

    response = deliver(webhook.url, body.replace(b"master", b"mister"), signature=sign(SECRET.encode(), body))

    assert response.status_code == 401
    assert graphql[0].operations == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "body is not a JSON object"),
        (json.dumps({"repository": {"full_name": "acme/contact-us"}}).encode(), "push is missing"),
        (json.dumps(cloud_push("acme/contact-us", "master", sha="not-a-sha")).encode(), "is not a commit hash"),
        (json.dumps({**cloud_push("acme/contact-us", "master"), "x": json.loads("[" * 40 + "]" * 40)}).encode(),
         "nests deeper than 32 levels"),
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper than 32 levels"),
    ],
    ids=["not-json", "not-an-object", "no-push", "bad-hash", "deep", "deeper-than-python-parses"],
)
def test_malformed_body_is_400_with_a_reason(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture, body: bytes, reason: str,
) -> None:
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.INFO)

    response = deliver(webhook.url, body)

    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert graphql[0].operations == []
    [line] = answers(caplog)
    assert line.startswith("answer 400 malformed") and reason in line
    assert "Traceback" not in caplog.text


def test_server_push_without_a_project_is_400(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start
) -> None:
    webhook = start_webhook(webhook_config("server"))
    payload = server_push("payments", "master")
    del payload["repository"]["project"]

    response = deliver(webhook.url, payload, event="repo:refs_changed")

    assert response.status_code == 400 and "repository.project is missing" in response.json()["detail"]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"Content-Length: abc\r\n", b"400"),
        (b"Content-Length: -1\r\n", b"400"),
        (b"Content-Length: +2\r\n", b"400"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", b"400"),
        (b"Content-Length: 99999999999999999999999999\r\n", b"400"),  # h11 takes at most 20 digits
        (b"Transfer-Encoding: chunked\r\n", b"411"),
        (b"X-Padding: " + b"a" * 20_000 + b"\r\nContent-Length: 2\r\n", b"431"),
    ],
    ids=["not-a-number", "negative", "signed", "two-values", "huge", "chunked", "headers-too-large"],
)
def test_odd_requests_are_refused_with_one_line_each(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture, head: bytes, status: bytes,
) -> None:
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.INFO)
    request = b"POST / HTTP/1.1\r\nHost: x\r\nX-Event-Key: repo:push\r\nX-Request-UUID: bad\x1b[31m\r\n"
    request += head + b"\r\n"

    answer = raw_exchange(webhook, request + b"{}")

    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    [line] = answers(caplog)
    assert line.startswith(f"answer {status.decode()} ")
    assert "\x1b" not in caplog.text  # the delivery id's control characters never reach the log
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    assert deliver(webhook.url, b"{}", event="diagnostics:ping").status_code == 200  # still serving
    assert graphql[0].operations == []


def test_headers_growing_past_the_limit_are_refused_while_they_arrive(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start
) -> None:
    webhook = start_webhook(webhook_config())
    host, port = webhook.socket.getsockname()[:2]
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):  # 40 KiB of headers that never end, 1 KiB at a time
                connection.sendall(b"X-Padding: " + b"a" * 1010 + b"\r\n")
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed once it was refused
        assert connection.recv(65536).startswith(b"HTTP/1.1 400")


def test_oversized_body_is_refused_before_it_is_read(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = start_webhook(webhook_config(), limits=Limits(max_body_bytes=1024))
    caplog.set_level(logging.INFO)
    request = b"POST / HTTP/1.1\r\nHost: x\r\nX-Event-Key: repo:push\r\nContent-Length: 10485760\r\n\r\n"

    assert raw_exchange(webhook, request).startswith(b"HTTP/1.1 413")
    [line] = answers(caplog)
    assert line.startswith("answer 413 too large") and "over the limit of 1024" in line


@pytest.mark.parametrize(
    ("flavor", "payload", "event", "detail"),
    [
        ("cloud", cloud_push("evil/contact-us", "master"), "repo:push",
         "repository evil/contact-us is not in workspace acme"),
        ("server", server_push("payments", "master", project="EVIL"), "repo:refs_changed",
         "repository EVIL/payments is not in project FIN"),
        ("server", cloud_push("FIN/payments", "master"), "repo:push", "a Bitbucket Cloud push"),
    ],
    ids=["cloud-workspace", "server-project", "other-flavor"],
)
def test_push_from_another_workspace_is_refused_and_logged(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture, flavor: str, payload: dict, event: str, detail: str,
) -> None:
    webhook = start_webhook(webhook_config(flavor))
    caplog.set_level(logging.INFO)

    response = deliver(webhook.url, payload, event=event)

    assert response.status_code == 403 and detail in response.json()["detail"]
    assert graphql[0].operations == [] and webhook.store.launches() == []
    [line] = answers(caplog)
    assert line.startswith("answer 403 refused") and detail in line


def test_replayed_body_never_launches_again_even_after_its_run_was_deleted(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    config = webhook_config()
    webhook = start_webhook(config)
    body = json.dumps(cloud_push("acme/contact-us", "master")).encode()
    first = deliver(webhook.url, body)
    wait_for(lambda: state.runs, what="the launch")
    state.runs.clear()  # the run was deleted in Dagster

    replay = deliver(webhook.url, body, delivery=str(uuid.uuid4()))  # delivery id and event key are not signed
    webhook.stop()
    after_restart = deliver(start_webhook(config).url, body, delivery=str(uuid.uuid4()))

    for answer in (replay, after_restart):
        assert answer.status_code == 200 and answer.json()["result"] == "duplicate"
        assert answer.json()["delivery"] == first.json()["delivery"]
    assert len(state.launches) == 1


def test_commit_that_already_has_a_run_launches_nothing_new(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    cli_run = state.add_run(  # as the CLI or the demo launch it: commit and partition, no service tag
        "build_and_push", {COMMIT_TAG: SHA, "dagster/partition": "contact-us"}
    )
    webhook = start_webhook(webhook_config())

    response = deliver(webhook.url, cloud_push("acme/contact-us", "master"))

    assert response.status_code == 202
    [launch] = wait_for(lambda: [x for x in webhook.store.launches() if x.state != "pending"], what="the look-up")
    assert launch.state == "exists" and launch.run_id == cli_run
    assert state.launches == []


def test_launch_that_timed_out_is_found_by_the_next_attempt_not_sent_again(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, url = graphql
    state.slow_launch_seconds = 1.5  # the webserver creates the run after our read timeout, then answers
    launcher = Launcher(url, launch_timeout=(3.05, 0.3), settle_seconds=3)
    webhook = start_webhook(webhook_config(), launcher=launcher)

    deliver(webhook.url, cloud_push("acme/contact-us", "master"))

    [launch] = wait_for(lambda: [x for x in webhook.store.launches() if x.state != "pending"], what="the look-up")
    assert launch.state == "exists" and launch.attempts > 2  # looked up, not launched, until the run appeared
    assert launch.run_id == state.runs[0]["runId"] and len(state.launches) == 1


def test_deliveries_of_one_commit_launch_one_run(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    state.slow_launch_seconds = 0.3
    webhook = start_webhook(webhook_config())
    bodies = [cloud_push("acme/contact-us", "master", old=commit(n)) for n in range(4)]  # four bodies, one commit
    threads = [threading.Thread(target=deliver, args=(webhook.url, body)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = wait_for(lambda: len([x for x in webhook.store.launches() if x.state != "pending"]) == 4 and
                    webhook.store.launches(), what="four launches decided")

    assert len(state.launches) == 1
    assert sorted(x.state for x in done) == ["exists", "exists", "exists", "launched"]


def test_different_commits_launch_side_by_side(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    state.slow_launch_seconds = 0.5
    webhook = start_webhook(webhook_config())

    for number in range(4):
        deliver(webhook.url, cloud_push("acme/contact-us", f"feature/f{number}", sha=commit(number)))

    wait_for(lambda: len(state.runs) == 4, what="four launches")
    assert state.most_in_flight > 1  # one lock per commit, not one for the process


@pytest.mark.parametrize(
    ("payload", "event", "detail"),
    [
        (cloud_push("acme/unknown-service", "master"), "repo:push", "unknown repository acme/unknown-service"),
        (cloud_push("acme/contact-us", "hotfix/x"), "repo:push", "not a watched branch (hotfix/x)"),
        ({"pullrequest": {}}, "pullrequest:created", ": not a push"),
    ],
    ids=["unknown-repository", "unwatched-branch", "not-a-push"],
)
def test_events_that_start_nothing_are_ignored_with_202(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    payload: dict, event: str, detail: str,
) -> None:
    webhook = start_webhook(webhook_config())

    response = deliver(webhook.url, payload, event=event)

    assert response.status_code == 202
    assert response.json()["result"] == "ignored" and detail in response.json()["detail"]
    assert graphql[0].launches == [] and webhook.store.launches() == []


def test_deleted_branch_is_ignored(webhook_config: Callable[..., ReleaseConfig], start_webhook: Start) -> None:
    webhook = start_webhook(webhook_config("server"))

    response = deliver(webhook.url, server_push("payments", "master", change_type="DELETE"), event="repo:refs_changed")

    assert response.status_code == 202 and "not a watched branch (no branch heads)" in response.json()["detail"]


def test_dagster_down_every_answer_is_prompt_and_each_delivery_launches_once_it_is_back(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, _ = graphql
    state.failing = True
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.INFO)

    times = []
    for number in range(5):
        started = time.monotonic()
        response = deliver(webhook.url, cloud_push("acme/contact-us", f"feature/f{number}", sha=commit(number)))
        times.append(time.monotonic() - started)
        assert response.status_code == 202, response.text
    wait_for(lambda: all(x.attempts >= 2 for x in webhook.store.launches()), what="retries")
    state.failing = False

    wait_for(lambda: all(x.state == "launched" for x in webhook.store.launches()), what="every launch")
    assert max(times) < ANSWER_WITHIN, times
    assert sorted(state.launched_commits()) == [commit(n) for n in range(5)]
    assert any("attempt 2 failed, next in" in message for message in caplog.messages)


def test_newer_head_of_a_branch_supersedes_a_pending_launch(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    state.failing = True
    webhook = start_webhook(webhook_config())
    deliver(webhook.url, cloud_push("acme/contact-us", "master", sha=commit(1)))
    wait_for(lambda: webhook.store.launches()[0].attempts >= 1, what="a failed attempt")

    newer = deliver(webhook.url, cloud_push("acme/contact-us", "master", sha=commit(2), old=commit(1)))
    state.failing = False

    assert "superseded the pending build_and_push:contact-us:" in newer.json()["detail"]
    wait_for(lambda: webhook.store.launches()[1].state == "launched", what="the newer head's launch")
    assert webhook.store.launches()[0].state == "superseded"
    assert state.launched_commits() == [commit(2)]


def test_restarted_endpoint_launches_what_was_pending(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    state, _ = graphql
    state.failing = True
    config = webhook_config()
    webhook = start_webhook(config)
    for number in range(3):
        deliver(webhook.url, cloud_push("acme/payments", f"feature/f{number}", sha=commit(number)))
    webhook.stop()
    state.failing = False

    restarted = start_webhook(config)

    wait_for(lambda: len(state.runs) == 3, what="the pending launches")
    assert sorted(state.launched_commits()) == [commit(n) for n in range(3)]
    assert {x.state for x in restarted.store.launches()} == {"launched"}


def test_slow_clients_do_not_delay_a_valid_delivery_and_are_cut_at_the_deadline(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql,
    caplog: pytest.LogCaptureFixture,
) -> None:
    webhook = start_webhook(webhook_config(), limits=Limits(request_seconds=3))
    caplog.set_level(logging.INFO)
    host, port = webhook.socket.getsockname()[:2]
    slow_headers = [socket.create_connection((host, port)) for _ in range(250)]
    slow_bodies = [socket.create_connection((host, port)) for _ in range(50)]
    for connection in slow_headers:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Event-Key: re")
    for connection in slow_bodies:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a")
    try:
        started = time.monotonic()
        response = deliver(webhook.url, cloud_push("acme/contact-us", "master"))
        answered_in = time.monotonic() - started

        assert response.status_code == 202 and answered_in < ANSWER_WITHIN, answered_in
        for connection in slow_headers + slow_bodies:
            connection.settimeout(10)
            assert not connection.recv(65536).startswith(b"HTTP/1.1 2")  # closed (headers) or 408 (body)
    finally:
        for connection in slow_headers + slow_bodies:
            connection.close()
    lines = answers(caplog)
    assert sum("408 too slow" in line and "headers not received" in line for line in lines) == 250
    assert sum("408 too slow" in line and "body not received" in line for line in lines) == 50


def test_connections_beyond_the_limit_are_answered_503(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start
) -> None:
    webhook = start_webhook(webhook_config(), limits=Limits(max_connections=5))
    host, port = webhook.socket.getsockname()[:2]
    idle = [socket.create_connection((host, port)) for _ in range(5)]
    try:
        time.sleep(0.2)
        response = deliver(webhook.url, cloud_push("acme/contact-us", "master"))
    finally:
        for connection in idle:
            connection.close()

    assert response.status_code == 503  # Bitbucket delivers a 5xx again


def test_client_that_disconnects_early_is_one_log_line(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = start_webhook(webhook_config())
    caplog.set_level(logging.DEBUG)
    host, port = webhook.socket.getsockname()[:2]
    with socket.create_connection((host, port)) as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Request-UUID: early\r\nContent-Length: 500\r\n\r\n{\"a")
        time.sleep(0.2)

    [line] = wait_for(lambda: answers(caplog), what="the log line")
    assert line.startswith("answer - disconnected delivery=early")
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    assert deliver(webhook.url, b"{}", event="diagnostics:ping").status_code == 200


def test_server_ping_is_answered(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start, graphql: Graphql
) -> None:
    response = deliver(start_webhook(webhook_config()).url, b"{}", event="diagnostics:ping")

    assert response.status_code == 200 and response.json()["result"] == "pong"
    assert graphql[0].operations == []


def test_port_in_use_is_a_clear_error(webhook_config: Callable[..., ReleaseConfig], start_webhook: Start,
                                      tmp_path_factory: pytest.TempPathFactory, graphql: Graphql) -> None:
    webhook = start_webhook(webhook_config())
    port = webhook.socket.getsockname()[1]
    other = write_config(tmp_path_factory.mktemp("other"), graphql[1])  # its own state directory

    with pytest.raises(ExternalSystemError, match=f"cannot listen on 127.0.0.1:{port}"):
        WebhookEndpoint(other, port=port)


def test_second_endpoint_on_the_same_state_directory_is_refused(
    webhook_config: Callable[..., ReleaseConfig], start_webhook: Start
) -> None:
    config = webhook_config()
    start_webhook(config)

    with pytest.raises(ExternalSystemError, match="another webhook process uses .*webhook-state"):
        WebhookEndpoint(config, port=0)


def test_missing_secret_stops_the_endpoint_from_starting(
    webhook_config: Callable[..., ReleaseConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = webhook_config()
    monkeypatch.delenv(SECRET_ENV)

    with pytest.raises(MissingEnvironmentVariableError, match=f"{SECRET_ENV} is not set .*export {SECRET_ENV}="):
        WebhookEndpoint(config, port=0)


def test_local_source_stops_the_endpoint_from_starting(
    webhook_config: Callable[..., ReleaseConfig]
) -> None:
    config = webhook_config()
    local = config.model_copy(update={"source_control": config.source_control.model_copy(update={"platform": "local"})})

    with pytest.raises(ReleaseConfigError, match="needs source_control.platform: bitbucket"):
        WebhookEndpoint(local, port=0)
