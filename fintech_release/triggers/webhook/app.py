"""The webhook's ASGI application (Starlette): read a delivery within its limits, judge it, answer, log one line.

The body is read only when Content-Length is given and within `max_body_bytes`, and only until the
request's deadline (set by the connection, see server.py); judging runs in a bounded pool of threads
(HMAC, JSON and the fsync of the record). Every answer closes the connection: Bitbucket opens one per
delivery, and a connection that cannot be reused cannot be held open either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from fintech_release.triggers.webhook.events import BranchHead
from fintech_release.triggers.webhook.intake import Answer, Intake
from fintech_release.triggers.webhook.launcher import LaunchWorkers

log = logging.getLogger("fintech_release.webhook")

# An ASGI extension (a dict, as the spec has every extension): {"at": loop time by which the whole request is read}.
DEADLINE_EXTENSION = "fintech_release.request_deadline"
REQUEST_ID_HEADERS = ("x-request-uuid", "x-request-id")  # Bitbucket Cloud, Server: unsigned, for logs only


def sanitised(value: str, limit: int = 100) -> str:
    """`value` fit for one log line: no control characters or whitespace, at most `limit` characters."""
    cleaned = "".join(c if c.isprintable() and not c.isspace() else "?" for c in value[:limit])
    return cleaned or "-"


def log_delivery(
    status: int | None,
    result: str,
    reason: str,
    *,
    client: Any = None,
    request_id: str = "-",
    delivery: str | None = None,
    repository: str = "-",
    heads: tuple[BranchHead, ...] = (),
) -> None:
    """The one line every delivery gets, accepted or not; never a header but the request id, never the body."""
    level = logging.INFO if status is not None and status < 400 else logging.WARNING
    log.log(
        level,
        "answer %s %s delivery=%s record=%s client=%s repository=%s branch=%s commit=%s reason=%s",
        status if status is not None else "-",
        result,
        sanitised(request_id),
        delivery or "-",
        sanitised(client[0]) if client else "-",
        sanitised(repository),
        sanitised(",".join(head.branch for head in heads)),
        ",".join(head.sha for head in heads) or "-",
        json.dumps(reason[:300]),  # quoted, control characters escaped
    )


def create_app(intake: Intake, workers: LaunchWorkers, *, max_body_bytes: int, max_header_bytes: int,
               intake_threads: int, shutdown_seconds: float) -> Starlette:
    """The application: POST deliveries to any path; GET answers that the endpoint is up."""
    limiter = anyio.CapacityLimiter(intake_threads)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        workers.start()
        try:
            yield
        finally:
            stopped = await anyio.to_thread.run_sync(workers.stop, shutdown_seconds)
            pending = workers.store.pending()
            log.info("launches stopped%s; %d pending, launched at the next start",
                     "" if stopped else " (one still in flight)", pending)

    async def deliveries(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return _respond(Answer(status=200, result="ok", detail="POST Bitbucket push events here"))
        request_id = next((request.headers[name] for name in REQUEST_ID_HEADERS if name in request.headers), "-")

        def rejected(status: int, result: str, detail: str) -> Response:
            log_delivery(status, result, detail, client=request.client, request_id=request_id)
            return _respond(Answer(status=status, result=result, detail=detail))

        # h11 bounds headers still arriving; a block that arrived whole is measured here.
        header_bytes = sum(len(name) + len(value) + 4 for name, value in request.scope["headers"])
        if header_bytes > max_header_bytes:
            return rejected(431, "too large", f"headers of {header_bytes} bytes, over the limit of {max_header_bytes}")
        length = request.headers.get("content-length")  # h11 refused the request if it was not a number
        if length is None:
            return rejected(411, "malformed", "Content-Length required")
        if int(length) > max_body_bytes:
            return rejected(413, "too large", f"body of {length} bytes is over the limit of {max_body_bytes}")
        deadline = request.scope.get("extensions", {}).get(DEADLINE_EXTENSION, {}).get("at")
        try:
            async with asyncio.timeout_at(deadline):
                body = await request.body()
        except TimeoutError:
            return rejected(408, "too slow", f"body not received before the request's deadline ({length} bytes due)")
        except ClientDisconnect:
            log_delivery(None, "disconnected", "the client closed the connection before sending the whole body",
                         client=request.client, request_id=request_id)
            return Response(status_code=400)  # nobody is there to read it
        headers = {key.lower(): value for key, value in request.headers.items()}
        verdict = await anyio.to_thread.run_sync(intake.judge, headers, body, request_id, limiter=limiter)
        answer = verdict.answer
        log_delivery(answer.status, answer.result, answer.detail, client=request.client, request_id=request_id,
                     delivery=answer.delivery, repository=verdict.repository, heads=verdict.heads)
        return _respond(answer)

    routes = [Route("/{path:path}", deliveries, methods=["GET", "HEAD", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def _respond(answer: Answer) -> Response:
    return Response(answer.body(), status_code=answer.status, media_type="application/json",
                    headers={"Connection": "close"})
