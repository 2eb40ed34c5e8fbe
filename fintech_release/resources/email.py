"""SMTP delivery of notifications. A failed delivery is reported, never raised: it must not fail or hide a release.

`EmailNotifier.send` connects with a timeout (plain, STARTTLS or implicit TLS), logs in when a username
is set, and tries again with backoff on transient failures (connection refused or dropped, timeouts,
4xx replies such as 451 greylisting). Permanent failures (5xx, bad credentials, TLS errors) end at once.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Literal

from dagster import ConfigurableResource, get_dagster_logger
from pydantic import BaseModel, Field
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fintech_release.env_secrets import secret


class DeliveryReport(BaseModel, frozen=True):
    """What happened to one message: delivered or not, after how many attempts, and why not."""

    delivered: bool
    attempts: int
    recipients: tuple[str, ...]
    refused: tuple[str, ...] = ()  # recipients the server refused while accepting the others
    reason: str | None = None


class EmailNotifier(ConfigurableResource):
    """An SMTP server that CI results are sent through."""

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    # Given directly (tests), else read from the variables when sending: an unset one makes the message
    # undelivered (the reason names it), never a failed sensor.
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    username_env: str | None = None
    password_env: str | None = None
    sender: str = "fintech-release@localhost"
    attempts: int = Field(default=3, ge=1, le=10)
    timeout_seconds: float = Field(default=10, gt=0)
    retry_wait_seconds: float = Field(default=1.0, ge=0)  # first backoff; doubles per attempt, at most 30s
    ca_file: str | None = None  # extra CA bundle for a server with a private certificate (starttls/tls)

    def send(self, message: EmailMessage) -> DeliveryReport:
        """Send `message` to its To/Cc/Bcc recipients; never raises for a delivery failure."""
        fields = [value for header in ("To", "Cc", "Bcc") for value in message.get_all(header, [])]
        recipients = tuple(address for _, address in getaddresses(fields) if address)
        if not recipients:
            return DeliveryReport(delivered=False, attempts=0, recipients=(), reason="the message has no recipients")
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=30),
            before_sleep=self._log_failed_attempt,
            reraise=True,
        )
        try:
            refused = retrying(self._send_once, message, recipients)
        # Whatever went wrong, a notification reports it and lets the release result stand.
        except Exception as error:  # noqa: BLE001
            attempt = retrying.statistics.get("attempt_number", 1)
            reason = describe_failure(error)
            get_dagster_logger().warning(
                "email %r to %d recipient(s) via %s:%d not delivered after %d attempt(s): %s",
                message["Subject"], len(recipients), self.host, self.port, attempt, reason,
            )
            return DeliveryReport(delivered=False, attempts=attempt, recipients=recipients, reason=reason)
        return DeliveryReport(
            delivered=True,
            attempts=retrying.statistics.get("attempt_number", 1),
            recipients=recipients,
            refused=tuple(sorted(refused)),
        )

    def _send_once(self, message: EmailMessage, recipients: tuple[str, ...]) -> dict[str, tuple[int, bytes]]:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            user = secret(self.username, self.username_env, f"the user of SMTP {self.host}")
            if user:
                client.login(user, secret(self.password, self.password_env, f"the password of SMTP {self.host}") or "")
            return client.send_message(message, from_addr=self.sender, to_addrs=list(recipients))

    def _log_failed_attempt(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        get_dagster_logger().warning(
            "email via %s:%d: attempt %d of %d failed (%s); trying again",
            self.host, self.port, state.attempt_number, self.attempts, describe_failure(error),
        )


def is_transient(error: BaseException) -> bool:
    """True for failures that trying again later may fix: no connection, a dropped one, a 4xx reply."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError))


def describe_failure(error: BaseException | None) -> str:
    """A short reason for a failed attempt, from the server's reply or the socket error (never credentials)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{rcpt}: {code} {text.decode(errors='replace')}" for rcpt, (code, text) in error.recipients.items()
        )
        return f"every recipient was refused ({refused})"
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f"server replied {error.smtp_code} {text}"
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return f"{type(error).__name__}: {error}"
