"""Contract stand-ins for Google's token endpoints on loopback (not the real services).

Both answer in the documented shapes, so the real google-auth library talks to them unchanged:

* the OAuth 2.0 token endpoint for service accounts
  (https://developers.google.com/identity/protocols/oauth2/service-account#httprest): ``POST /token`` with
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256-signed ``assertion`` (iss, scope, aud,
  iat, exp) answers ``{"access_token", "expires_in", "token_type": "Bearer"}``; a signature that does not verify
  with the account's key, or an account it does not know, gets 400 ``{"error": "invalid_grant", ...}``.
  An Application Default Credentials file of type ``service_account`` made here, with a key made here, points
  google-auth at it (``token_uri``; google-auth 2.63 sends ``authorized_user`` files to Google's own endpoint
  whatever they say, so that type cannot be pointed at loopback). No key file exists in the repository.
* the metadata server (https://cloud.google.com/compute/docs/metadata/querying-metadata), what GKE Workload
  Identity serves a pod: every request must carry ``Metadata-Flavor: Google`` (else 403) and every answer
  carries it back; ``/`` (the ping), ``/computeMetadata/v1/project/project-id``,
  ``…/instance/service-accounts/default/?recursive=true`` and ``…/instance/service-accounts/<account>/token``.
  google-auth finds it through GCE_METADATA_HOST / GCE_METADATA_IP.

``google_oauth`` and ``metadata_server`` start one for a test; ``.requests`` lists (method, path, form or query).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fintech_release_tests.components import LOCALHOST

ACCESS_TOKEN = "ya29.a0-stand-in-access-token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SERVICE_ACCOUNT = "fintech-release@acme-prod.iam.gserviceaccount.com"
PROJECT = "acme-prod"


class GoogleStandIn(ThreadingHTTPServer):
    """An HTTP server on loopback answering like Google's OAuth token endpoint or metadata server."""

    daemon_threads = True

    def __init__(self, kind: str) -> None:
        super().__init__((LOCALHOST, 0), _Handler)
        self.kind = kind
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims: list[dict[str, Any]] = []

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.server_address[1]}"

    def adc_file(self, folder: Path, client_email: str = SERVICE_ACCOUNT) -> str:
        """A `service_account` Application Default Credentials file (key made here) whose token_uri is this server."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path = folder / "application_default_credentials.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "stand-in", "private_key": pem,
            "client_email": client_email, "client_id": "1", "token_uri": f"http://{self.address}/token",
        }))
        return str(path)

    def verified_claims(self, assertion: str) -> dict[str, Any] | None:
        """The JWT's claims when its RS256 signature verifies with the account's key, else None."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return None
        header, payload, signature = parts
        try:
            self.key.public_key().verify(
                _unb64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return None
        return json.loads(_unb64(payload))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Handler(BaseHTTPRequestHandler):
    server: GoogleStandIn

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer({})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self._answer(parse_qs(body))

    def _answer(self, form: dict[str, list[str]]) -> None:
        split = urlsplit(self.path)
        self.server.requests.append((self.command, split.path, form or parse_qs(split.query)))
        if self.server.kind == "oauth":
            self._oauth(split.path, form)
        else:
            self._metadata(split.path)

    def _oauth(self, path: str, form: dict[str, list[str]]) -> None:
        if path != "/token" or form.get("grant_type") != [JWT_BEARER]:
            self._send(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
            return
        claims = self.server.verified_claims(form.get("assertion", [""])[0])
        if claims is None or claims.get("iss") != SERVICE_ACCOUNT:
            self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            return
        self.server.claims.append(claims)
        self._send(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})

    def _metadata(self, path: str) -> None:
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, "Missing required header: Metadata-Flavor", text=True)
            return
        root = "/computeMetadata/v1/"
        accounts = f"{root}instance/service-accounts/"
        if path == "/":
            self._send(200, "computeMetadata/", text=True)
        elif path == f"{root}project/project-id":
            self._send(200, PROJECT, text=True)
        elif path == f"{accounts}default/":
            self._send(200, {"aliases": ["default"], "email": SERVICE_ACCOUNT,
                             "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
        elif path in (f"{accounts}default/token", f"{accounts}{SERVICE_ACCOUNT}/token"):
            self._send(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})
        else:
            self._send(404, "Not Found", text=True)

    def _send(self, status: int, body: Any, *, text: bool = False) -> None:
        payload = (body if text else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/text" if text else "application/json")
        if self.server.kind == "metadata":
            self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the tests read `requests` instead."""


def _serve(kind: str) -> Iterator[GoogleStandIn]:
    server = GoogleStandIn(kind)
    thread = threading.Thread(target=server.serve_forever, name=f"google-{kind}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def google_oauth() -> Iterator[GoogleStandIn]:
    """The OAuth 2.0 token endpoint stand-in on a free 127.0.0.1 port."""
    yield from _serve("oauth")


@pytest.fixture
def metadata_server() -> Iterator[GoogleStandIn]:
    """The metadata server stand-in on a free 127.0.0.1 port."""
    yield from _serve("metadata")
