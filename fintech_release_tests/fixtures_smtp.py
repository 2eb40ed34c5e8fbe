"""A real SMTP server (aiosmtpd) on loopback for the email tests: it records what it accepts.

`smtp_server` starts one on a free port that accepts everything; `start_smtp` starts more with
options: answer 451 to the first N messages, require STARTTLS and a login (with a self-signed
certificate made here), or listen on a given port. Every server started is stopped at the end.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass
class Received:
    """One accepted message: envelope sender, envelope recipients and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class RecordingHandler:
    """aiosmtpd handler that answers 451 to the first `transient_failures` messages, then accepts and records."""

    transient_failures: int = 0
    received: list[Received] = field(default_factory=list)
    refused_data: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        if self.refused_data < self.transient_failures:
            self.refused_data += 1
            return "451 4.3.0 Temporary failure, try again later"
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 OK"


@dataclass
class SmtpServer:
    """A running server: where it listens and what it received."""

    host: str
    port: int
    handler: RecordingHandler
    ca_file: Path | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fintech-release test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _authenticator(expected: Credentials):
    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()
        ) == (expected.username, expected.password)
        return AuthResult(success=ok, handled=False)

    return authenticate


@pytest.fixture
def start_smtp(tmp_path: Path) -> Iterator[Callable[..., SmtpServer]]:
    """Start SMTP servers: `start_smtp(transient_failures=0, port=None, starttls_login=None)`."""
    controllers: list[Controller] = []

    def start(
        *, transient_failures: int = 0, port: int | None = None, starttls_login: Credentials | None = None
    ) -> SmtpServer:
        handler = RecordingHandler(transient_failures=transient_failures)
        port = port or free_port()
        options: dict = {}
        ca_file = None
        if starttls_login is not None:
            ca_file, key_file = self_signed_certificate(tmp_path)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(ca_file, key_file)
            options = {
                "tls_context": context,
                "require_starttls": True,
                "auth_require_tls": True,
                "authenticator": _authenticator(starttls_login),
            }
        controller = Controller(handler, hostname=LOOPBACK, port=port, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(LOOPBACK, port, handler, ca_file)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """A server on a free loopback port that accepts every message."""
    return start_smtp()
