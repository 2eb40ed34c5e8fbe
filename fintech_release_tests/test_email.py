"""The CI result email, composed and sent through a real SMTP server (aiosmtpd on loopback).

Real components: `EmailNotifier` speaks SMTP (and STARTTLS with a login, against a self-signed
certificate made in the test) to an aiosmtpd server the test starts; retries meet a server that is
not listening yet or answers 451. One test builds the notifier from a release.yaml the way the
definitions do (`platform_resources`, secrets from environment variables). Nothing here reaches a
real mail relay.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from dagster import build_resources

from fintech_release.config import load_release_config
from fintech_release.config.models import EmailSettings
from fintech_release.notifications.messages import CiResult, Outcome, compose_email
from fintech_release.resources import platform_resources
from fintech_release.resources.email import EmailNotifier
from fintech_release_tests.fixtures_smtp import (  # noqa: F401 (fixtures)
    Credentials,
    SmtpServer,
    free_port,
    smtp_server,
    start_smtp,
)

SETTINGS = EmailSettings(sender="ci@bank.example", master_recipients=("release-team@bank.example", "ops@bank.example"))
SHA = "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f901"
SECRET_PASSWORD = "s3cret-smtp-password"


def result(**changes) -> CiResult:
    values = dict(
        service="contact-us",
        branch="master",
        commit_sha=SHA,
        author_email="Ada Lovelace <ada@bank.example>",
        result=Outcome.SUCCESS,
        test_summary="42 passed",
        run_url="http://127.0.0.1:3000/runs/0a1b2c3d",
        job_name="build_and_push",
    )
    return CiResult(**{**values, **changes})


def notifier(server_port: int, **fields) -> EmailNotifier:
    return EmailNotifier(
        **{"host": "127.0.0.1", "port": server_port, "sender": SETTINGS.sender, "attempts": 3,
           "timeout_seconds": 5, "retry_wait_seconds": 0.05, **fields}
    )


def test_master_result_goes_to_the_group(smtp_server: SmtpServer) -> None:
    message = compose_email(result(), SETTINGS, release_branch="master")

    report = notifier(smtp_server.port).send(message)

    assert report.delivered and report.attempts == 1
    [received] = smtp_server.received
    assert sorted(received.rcpt_tos) == ["ops@bank.example", "release-team@bank.example"]
    assert received.mail_from == "ci@bank.example"
    assert received.message["Subject"] == f"[fintech-release] SUCCESS: contact-us master @ {SHA[:12]}"
    body = received.message.get_content()
    assert "Result:       SUCCESS" in body and SHA in body and "42 passed" in body
    assert "http://127.0.0.1:3000/runs/0a1b2c3d" in body


def test_branch_result_goes_to_the_author_only(smtp_server: SmtpServer) -> None:
    message = compose_email(result(branch="feature/login"), SETTINGS, release_branch="master")

    report = notifier(smtp_server.port).send(message)

    assert report.delivered and report.recipients == ("ada@bank.example",)
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ada@bank.example"]
    assert received.message["To"] == "Ada Lovelace <ada@bank.example>"
    assert "feature/login" in received.message["Subject"]


def test_release_branch_is_the_services_not_always_master(smtp_server: SmtpServer) -> None:
    message = compose_email(result(branch="main"), SETTINGS, release_branch="main")

    notifier(smtp_server.port).send(message)

    assert sorted(smtp_server.received[0].rcpt_tos) == ["ops@bank.example", "release-team@bank.example"]


def test_failure_names_the_failing_step_tests_and_run(smtp_server: SmtpServer) -> None:
    failed = result(
        branch="feature/x", result=Outcome.FAILURE, failing_step="build/tests", test_summary="41 passed, 1 failed"
    )

    notifier(smtp_server.port).send(compose_email(failed, SETTINGS, release_branch="master"))

    received = smtp_server.received[0].message
    assert received["Subject"] == (
        f"[fintech-release] FAILURE: contact-us feature/x @ {SHA[:12]} (failed at build/tests)"
    )
    body = received.get_content()
    for expected in ("Failing step: build/tests", "Tests:        41 passed, 1 failed", "build_and_push", SHA,
                     "Run:          http://127.0.0.1:3000/runs/0a1b2c3d"):
        assert expected in body


def test_451_then_accepted_is_delivered_on_the_second_attempt(
    start_smtp: Callable[..., SmtpServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_smtp(transient_failures=1)

    with caplog.at_level(logging.WARNING):
        report = notifier(server.port).send(compose_email(result(), SETTINGS, release_branch="master"))

    assert report.delivered and report.attempts == 2
    assert len(server.received) == 1 and server.handler.refused_data == 1
    assert "attempt 1 of 3 failed (server replied 451" in caplog.text


def test_server_that_starts_late_gets_the_message(start_smtp: Callable[..., SmtpServer]) -> None:
    port = free_port()
    started: list[SmtpServer] = []

    class StartServerOnFirstFailure(logging.Handler):
        """Starts the server when the notifier logs its first failed attempt: the first try is always refused."""

        def emit(self, record: logging.LogRecord) -> None:
            if not started and "attempt 1 of" in record.getMessage():
                started.append(start_smtp(port=port))

    hook = StartServerOnFirstFailure()
    logging.getLogger("dagster").addHandler(hook)
    try:
        report = notifier(port).send(compose_email(result(), SETTINGS, release_branch="master"))
    finally:
        logging.getLogger("dagster").removeHandler(hook)

    assert report.delivered and report.attempts == 2
    assert len(started[0].received) == 1


def test_unreachable_server_reports_not_delivered_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()

    with caplog.at_level(logging.WARNING):
        report = notifier(port, username="ci", password=SECRET_PASSWORD).send(
            compose_email(result(), SETTINGS, release_branch="master")
        )

    assert not report.delivered and report.attempts == 3
    assert "ConnectionRefusedError" in (report.reason or "")
    assert caplog.text.count("trying again") == 2 and "not delivered after 3 attempt(s)" in caplog.text
    assert SECRET_PASSWORD not in caplog.text


def test_message_without_recipients_is_not_sent(smtp_server: SmtpServer) -> None:
    message = compose_email(result(branch="feature/x", author_email=None), SETTINGS, release_branch="master")

    report = notifier(smtp_server.port).send(message)

    assert not report.delivered and report.attempts == 0 and report.reason == "the message has no recipients"
    assert smtp_server.received == []


def test_starttls_with_login(start_smtp: Callable[..., SmtpServer], caplog: pytest.LogCaptureFixture) -> None:
    server = start_smtp(starttls_login=Credentials("ci", SECRET_PASSWORD))
    tls = {"security": "starttls", "username": "ci", "ca_file": str(server.ca_file)}
    message = compose_email(result(), SETTINGS, release_branch="master")

    with caplog.at_level(logging.WARNING):
        delivered = notifier(server.port, password=SECRET_PASSWORD, **tls).send(message)
        refused = notifier(server.port, password="wrong-password", **tls).send(message)

    assert delivered.delivered and len(server.received) == 1
    assert not refused.delivered and refused.attempts == 1  # bad credentials are permanent: no retry
    assert (refused.reason or "").startswith("server replied 535")
    assert SECRET_PASSWORD not in caplog.text and "wrong-password" not in caplog.text
    assert SECRET_PASSWORD not in repr(notifier(server.port, password=SECRET_PASSWORD, **tls))


def test_release_yaml_email_settings_with_a_private_ca_reach_the_notifier(
    start_smtp: Callable[..., SmtpServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_smtp(starttls_login=Credentials("ci", SECRET_PASSWORD))
    shutil.copy(server.ca_file, tmp_path / "smtp-ca.pem")
    monkeypatch.setenv("TEST_SMTP_USER", "ci")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SECRET_PASSWORD)
    document = {
        "notifications": {"email": {
            "host": "127.0.0.1", "port": server.port, "security": "starttls", "username_env": "TEST_SMTP_USER",
            "password_env": "TEST_SMTP_PASSWORD", "ca_file": "smtp-ca.pem", "sender": SETTINGS.sender,
            "master_recipients": ["release-team@bank.example"],
        }},
        "services": [{"name": "contact-us", "repository": "git/contact-us.git", "port": 18081}],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    (tmp_path / "release.yaml").write_text(yaml.safe_dump(document))
    config = load_release_config(tmp_path / "release.yaml")
    configured = platform_resources(config)["notifier"]
    assert configured.ca_file == str(tmp_path / "smtp-ca.pem")  # relative to release.yaml

    with build_resources({"notifier": configured}) as built:
        report = built.notifier.send(compose_email(result(), config.notifications.email, release_branch="master"))
        assert SECRET_PASSWORD not in repr(built.notifier)

    assert report.delivered and [r.rcpt_tos for r in server.received] == [["release-team@bank.example"]]


def test_unverifiable_certificate_is_not_delivered(start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp(starttls_login=Credentials("ci", SECRET_PASSWORD))

    report = notifier(server.port, security="starttls", username="ci", password=SECRET_PASSWORD).send(
        compose_email(result(), SETTINGS, release_branch="master")
    )

    assert not report.delivered and report.attempts == 1 and "SSLCertVerificationError" in (report.reason or "")
    assert server.received == []
