"""The webhook on uvicorn: limits, one deadline per request, graceful shutdown; `fintech-release webhook`.

uvicorn (h11) parses HTTP; what it does not bound is added here:

- a deadline for the whole request (`Limits.request_seconds` from the moment the connection opens): the
  headers by the connection (`_DeadlineProtocol`, closed when they are late), the body by the application
  (408). A slow client holds a socket, never a thread, and not for long (slowloris).
- headers at most `max_header_bytes` (400 from h11 while they arrive, 431 once whole), bodies at most
  `max_body_bytes` (413 before reading), at most `max_connections` open connections (503 beyond, so
  Bitbucket delivers again), a listen backlog of `backlog`, `intake_threads` judging at once.
- SIGTERM or Ctrl-C: stop accepting, finish the requests in progress (their deliveries are recorded before
  they are answered) for up to `shutdown_seconds`, stop the launch workers; what is still pending is
  launched at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from typing import Any

import uvicorn
from pydantic import BaseModel, Field
from uvicorn.protocols.http.h11_impl import H11Protocol

from fintech_release.config import ReleaseConfig
from fintech_release.config.models import BitbucketSettings
from fintech_release.env_secrets import env_secret
from fintech_release.errors import ExternalSystemError, ReleaseConfigError
from fintech_release.triggers.webhook.app import DEADLINE_EXTENSION, create_app, log_delivery
from fintech_release.triggers.webhook.intake import Intake
from fintech_release.triggers.webhook.launcher import DEFAULT_LOCATION, Backoff, Launcher, LaunchWorkers
from fintech_release.triggers.webhook.store import DeliveryStore

log = logging.getLogger("fintech_release.webhook")


class Limits(BaseModel, frozen=True):
    """What one endpoint takes at most; the defaults suit Bitbucket (payloads up to 256 KB, answers within 10 s)."""

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_header_bytes: int = Field(default=16 * 1024, gt=0)
    request_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=1000, gt=0)
    backlog: int = Field(default=1024, gt=0)  # the kernel caps it at net.core.somaxconn
    intake_threads: int = Field(default=8, gt=0)
    launch_workers: int = Field(default=4, gt=0)
    shutdown_seconds: float = Field(default=10.0, gt=0)


class _DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with one deadline for reading a whole request, counted from the connection."""

    request_seconds = Limits().request_seconds
    max_header_bytes = Limits().max_header_bytes

    # The same narrowing as uvicorn's own H11Protocol.connection_made: a stream protocol is given a Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.request_seconds
        self.received = 0
        self.rejected = False
        self.header_timer: asyncio.TimerHandle | None = self.loop.call_at(self.deadline, self._headers_late)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.header_timer is not None:  # the headers are in: the app reads the body
            self.header_timer.cancel()
            self.header_timer = None
            self.scope.setdefault("extensions", {})[DEADLINE_EXTENSION] = {"at": self.deadline}

    def send_400_response(self, msg: str) -> None:
        self.rejected = True
        log_delivery(400, "malformed", "invalid HTTP request: request line, headers (at most "
                     f"{self.max_header_bytes} bytes) or Content-Length", client=self.client)
        super().send_400_response(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
            if self.received and not self.rejected:
                log_delivery(None, "disconnected", "the connection closed before the request headers were complete",
                             client=self.client)
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.cycle is None and not self.transport.is_closing():
            log_delivery(408, "too slow", f"request headers not received within {self.request_seconds:g} s",
                         client=self.client)
            self.transport.close()


class _QuietInvalidRequest(logging.Filter):
    """uvicorn's own warning for a bad request; `_DeadlineProtocol` logs the delivery line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


_QUIET = _QuietInvalidRequest()


class WebhookEndpoint:
    """A bound endpoint with its open record: `serve()` for the command, `start()`/`stop()` in a thread."""

    def __init__(
        self,
        config: ReleaseConfig,
        *,
        port: int | None = None,
        limits: Limits = Limits(),
        backoff: Backoff = Backoff(),
        launcher: Launcher | None = None,
        location_name: str = DEFAULT_LOCATION,
    ) -> None:
        settings = config.webhook
        bitbucket = _bitbucket(config)
        secret = env_secret(
            settings.secret_env,
            f"the secret configured on the Bitbucket webhook, webhook.secret_env in {config.source}",
        )
        self.store = DeliveryStore(config.resolve_path(settings.state_dir))
        try:
            self.socket = _listen(settings.host, settings.port if port is None else port, limits.backlog,
                                  config.source)
        except ExternalSystemError:
            self.store.close()
            raise
        launcher = launcher or Launcher(settings.dagster_graphql_url, location_name=location_name)
        self.workers = LaunchWorkers(self.store, launcher, workers=limits.launch_workers, backoff=backoff)
        intake = Intake(config, bitbucket, secret.encode(), self.store, on_recorded=self.workers.wake)
        app = create_app(intake, self.workers, max_body_bytes=limits.max_body_bytes,
                         max_header_bytes=limits.max_header_bytes, intake_threads=limits.intake_threads,
                         shutdown_seconds=limits.shutdown_seconds)
        protocol = type(
            "DeadlineProtocol", (_DeadlineProtocol,),
            {"request_seconds": limits.request_seconds, "max_header_bytes": limits.max_header_bytes},
        )
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                http=protocol,
                ws="none",
                lifespan="on",
                log_config=None,
                access_log=False,  # every delivery gets its own line
                server_header=False,
                proxy_headers=False,
                limit_concurrency=limits.max_connections,
                backlog=limits.backlog,
                h11_max_incomplete_event_size=limits.max_header_bytes,
                timeout_keep_alive=1,
                timeout_graceful_shutdown=int(limits.shutdown_seconds) or 1,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def serve(self) -> None:
        """Serve until SIGTERM or Ctrl-C (or `stop()`), then shut down gracefully and close the record."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            if self.workers.stopped:  # else a launch in flight still writes its outcome; the process end closes it
                self.store.close()

    def start(self, timeout: float = 30.0) -> None:
        """Serve in a thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self.serve, name="webhook-server", daemon=True)
        self._thread.start()
        pause = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self.server.started or not self._thread.is_alive():
                break
            pause.wait(0.02)
        if not self.server.started:
            raise ExternalSystemError(f"webhook: did not start serving {self.url} within {timeout:g} s")

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as SIGTERM does, and wait for it."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)


def _bitbucket(config: ReleaseConfig) -> BitbucketSettings:
    """release.yaml's Bitbucket: the webhook takes pushes from its workspace (Cloud) or project (Server) only."""
    bitbucket = config.source_control.bitbucket
    if config.source_control.platform != "bitbucket" or bitbucket is None:
        raise ReleaseConfigError(
            f"webhook: source_control.platform in {config.source} is {config.source_control.platform}; the webhook "
            "takes Bitbucket pushes, so it needs source_control.platform: bitbucket with bitbucket.flavor and "
            "bitbucket.owner (the workspace or project whose pushes it accepts)"
        )
    return bitbucket


def _listen(host: str, port: int, backlog: int, source: Any) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as error:
        raise ExternalSystemError(
            f"webhook: cannot listen on {host}:{port} ({error.strerror}); free the port or change "
            f"webhook.host/webhook.port in {source}"
        ) from None


def serve(config: ReleaseConfig, *, on_ready: Any = print, **options: Any) -> None:
    """`fintech-release webhook`: serve until SIGTERM or Ctrl-C; `options` go to `WebhookEndpoint`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint = WebhookEndpoint(config, **options)
    on_ready(
        f"fintech-release webhook listening on {endpoint.url}, recording deliveries in {endpoint.store.directory}, "
        f"launching runs on {config.webhook.dagster_graphql_url}"
    )
    # uvicorn shuts down gracefully on these signals, then raises them again for the handlers it found: let
    # those ask for the same shutdown (also before uvicorn listens), so the command ends normally.
    def shut_down(*_: object) -> None:
        endpoint.server.should_exit = True

    previous = {sig: signal.signal(sig, shut_down) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        endpoint.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    on_ready("fintech-release webhook stopped")
