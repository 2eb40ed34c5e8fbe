"""What one delivery means, decided and recorded before it is answered; independent of HTTP.

Signature, event, payload, the workspace or project it comes from, the runs it owes, and the durable
record: all of it without asking Dagster, so the answer never waits for the webserver.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Mapping

from pydantic import BaseModel

from fintech_release.config import ReleaseConfig
from fintech_release.config.models import BitbucketSettings
from fintech_release.triggers.ci_runs import ci_run_for, service_for_repository
from fintech_release.triggers.webhook.events import (
    PUSH_EVENTS,
    SERVER_PING,
    BranchHead,
    MalformedEventError,
    PushEvent,
    parse_push,
    signature_is_valid,
)
from fintech_release.triggers.webhook.store import DeliveryStore


class Answer(BaseModel, frozen=True):
    """The webhook's answer to one delivery: an HTTP status and a short JSON body."""

    status: int
    result: str
    detail: str
    delivery: str | None = None  # our record's id, for accepted and duplicate deliveries
    runs: tuple[str, ...] = ()  # run keys the delivery owes

    def body(self) -> bytes:
        fields = {"result": self.result, "detail": self.detail, "delivery": self.delivery, "runs": list(self.runs)}
        return json.dumps(fields).encode()


class Verdict(BaseModel, frozen=True):
    """An answer and what the delivery's log line names."""

    answer: Answer
    repository: str = "-"
    heads: tuple[BranchHead, ...] = ()


class Intake:
    """Judges and records deliveries for `config`; `on_recorded` is called after a delivery owing runs is stored."""

    def __init__(
        self,
        config: ReleaseConfig,
        bitbucket: BitbucketSettings,
        secret: bytes,
        store: DeliveryStore,
        on_recorded: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.bitbucket = bitbucket
        self._secret = secret
        self.store = store
        self.on_recorded = on_recorded
        self._clock = clock

    def judge(self, headers: Mapping[str, str], body: bytes, request_id: str) -> Verdict:
        """Check, parse and record one delivery (`headers` keys lower-case); the answer says what happened."""
        if not signature_is_valid(self._secret, body, headers.get("x-hub-signature")):
            return Verdict(answer=Answer(status=401, result="unauthorized", detail="missing or wrong X-Hub-Signature"))
        event_key = headers.get("x-event-key", "")
        if event_key == SERVER_PING:
            return Verdict(answer=Answer(status=200, result="pong", detail="signature verified"))
        if event_key not in PUSH_EVENTS:
            return Verdict(answer=Answer(status=202, result="ignored", detail=f"event {event_key[:60]!r}: not a push"))
        try:
            event = parse_push(event_key, body)
        except MalformedEventError as error:
            return Verdict(answer=Answer(status=400, result="malformed", detail=str(error)))
        refusal = self._refusal(event)
        if refusal is not None:
            return Verdict(answer=refusal, repository=event.repository, heads=event.heads)
        return Verdict(answer=self._record(event, event_key, body, request_id), repository=event.repository,
                       heads=event.heads)

    def _refusal(self, event: PushEvent) -> Answer | None:
        """403 for a push from another Bitbucket (flavor) or another workspace/project than release.yaml's."""
        kind = "workspace" if self.bitbucket.flavor == "cloud" else "project"
        if event.flavor != self.bitbucket.flavor:
            detail = (f"a Bitbucket {event.flavor.capitalize()} push; release.yaml's source is Bitbucket "
                      f"{self.bitbucket.flavor.capitalize()} ({kind} {self.bitbucket.owner})")
            return Answer(status=403, result="refused", detail=detail)
        if event.owner.casefold() != self.bitbucket.owner.casefold():
            detail = (f"repository {event.repository} is not in {kind} {self.bitbucket.owner} "
                      "(source_control.bitbucket.owner)")
            return Answer(status=403, result="refused", detail=detail)
        return None

    def _record(self, event: PushEvent, event_key: str, body: bytes, request_id: str) -> Answer:
        service = service_for_repository(self.config, event.slug)
        runs = [] if service is None else [
            run for head in event.heads if (run := ci_run_for(self.config, service, head.branch, head.sha))
        ]
        try:
            recorded = self.store.record(
                body_sha256=hashlib.sha256(body).hexdigest(), event=event_key, request_id=request_id,
                repository=event.repository, runs=runs, now=self._clock(),
            )
        except sqlite3.Error as error:
            return Answer(status=503, result="unavailable",
                          detail=f"cannot record the delivery ({error}); Bitbucket delivers it again")
        if recorded.duplicate:
            states = ", ".join(recorded.states) or "nothing to launch"
            detail = f"this body was received before as delivery {recorded.delivery} ({states}); nothing is launched"
            return Answer(status=200, result="duplicate", detail=detail, delivery=recorded.delivery)
        if service is None:
            return Answer(status=202, result="ignored", detail=f"unknown repository {event.repository}",
                          delivery=recorded.delivery)
        if not runs:
            branches = ", ".join(head.branch for head in event.heads) or "no branch heads"
            return Answer(status=202, result="ignored", detail=f"{service}: not a watched branch ({branches})",
                          delivery=recorded.delivery)
        self.on_recorded()
        detail = f"{len(runs)} run(s) to launch"
        if recorded.superseded:
            detail += f"; superseded the pending {', '.join(recorded.superseded)}"
        return Answer(status=202, result="accepted", detail=detail, delivery=recorded.delivery,
                      runs=tuple(run.run_key for run in runs))
