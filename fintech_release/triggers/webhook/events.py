"""Bitbucket push events: checking their signature and reading the pushed branch heads out of them.

Two payloads say "a branch moved" (Atlassian's documented event payloads):

- Bitbucket Cloud, `X-Event-Key: repo:push`: `repository.full_name` ("workspace/slug") and
  `push.changes[].new` = `{type: "branch", name, target: {hash}}` (`new` is null when a branch was deleted).
- Bitbucket Server / Data Center, `X-Event-Key: repo:refs_changed`: `repository.slug`, `repository.project.key`
  and `changes[]` = `{ref: {displayId, type: "BRANCH"}, toHash, type: ADD|UPDATE|DELETE}`.

Both sign the raw body with HMAC-SHA256 of the webhook's secret: `X-Hub-Signature: sha256=<hex>`. The event
key and the delivery id are headers outside the signature: they choose how a body is read, never whether it
is trusted. A body is refused when it nests deeper than `MAX_DEPTH` (real pushes nest about 8 levels).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Literal

from pydantic import BaseModel

from fintech_release.errors import FintechReleaseError

CLOUD_PUSH = "repo:push"
SERVER_PUSH = "repo:refs_changed"
SERVER_PING = "diagnostics:ping"
PUSH_EVENTS = frozenset({CLOUD_PUSH, SERVER_PUSH})
SIGNATURE_PREFIX = "sha256="
COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 object names
MAX_DEPTH = 32


class MalformedEventError(FintechReleaseError):
    """A push event's body is not JSON or lacks a field the documented payload has; the message names it."""


class BranchHead(BaseModel, frozen=True):
    """A branch that now points at `sha`."""

    branch: str
    sha: str


class PushEvent(BaseModel, frozen=True):
    """What one push delivery says: where the repository lives and the branches that moved."""

    flavor: Literal["cloud", "server"]
    owner: str  # the Cloud workspace or the Server project key
    slug: str
    heads: tuple[BranchHead, ...]  # deleted branches and tags are left out: they start no run

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.slug}"


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature` value Bitbucket sends for `body`."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is the HMAC-SHA256 of `body` under `secret` (constant-time comparison)."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def parse_push(event_key: str, body: bytes) -> PushEvent:
    """Read a `repo:push` (Cloud) or `repo:refs_changed` (Server) body; MalformedEventError says what is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEventError(f"body is not JSON: {error}") from None
    except RecursionError:
        raise MalformedEventError(f"body nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(payload, dict):
        raise MalformedEventError("body is not a JSON object")
    if _depth(payload) > MAX_DEPTH:
        raise MalformedEventError(f"body nests deeper than {MAX_DEPTH} levels")
    if event_key == CLOUD_PUSH:
        return _cloud_push(payload)
    if event_key == SERVER_PUSH:
        return _server_push(payload)
    raise MalformedEventError(f"not a push event: {event_key!r}")


def _depth(payload: Any) -> int:
    """How deeply `payload` nests objects and arrays, counted without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _cloud_push(payload: dict[str, Any]) -> PushEvent:
    repository = _field(payload, "repository", dict)
    full_name = _field(repository, "full_name", str, "repository.")
    workspace, _, slug = full_name.rpartition("/")
    if not workspace or not slug:
        raise MalformedEventError("repository.full_name is not workspace/slug")
    changes = _field(_field(payload, "push", dict), "changes", list, "push.")
    heads: list[BranchHead] = []
    for index, change in enumerate(changes):
        where = f"push.changes[{index}]."
        _require_object(change, where)
        new = _field(change, "new", (dict, type(None)), where)
        if new is None or new.get("type") != "branch":
            continue
        target = _field(new, "target", dict, f"{where}new.")
        branch = _field(new, "name", str, f"{where}new.")
        heads.append(BranchHead(branch=branch, sha=_sha(target, "hash", f"{where}new.target.")))
    return PushEvent(flavor="cloud", owner=workspace, slug=slug, heads=tuple(heads))


def _server_push(payload: dict[str, Any]) -> PushEvent:
    repository = _field(payload, "repository", dict)
    slug = _field(repository, "slug", str, "repository.")
    project = _field(_field(repository, "project", dict, "repository."), "key", str, "repository.project.")
    heads: list[BranchHead] = []
    for index, change in enumerate(_field(payload, "changes", list)):
        where = f"changes[{index}]."
        _require_object(change, where)
        ref = _field(change, "ref", dict, where)
        if change.get("type") == "DELETE" or ref.get("type", "BRANCH") != "BRANCH":
            continue
        branch = _field(ref, "displayId", str, f"{where}ref.")
        heads.append(BranchHead(branch=branch, sha=_sha(change, "toHash", where)))
    return PushEvent(flavor="server", owner=project, slug=slug, heads=tuple(heads))


def _field(container: dict[str, Any], name: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
    if name not in container:
        raise MalformedEventError(f"{prefix}{name} is missing")
    value = container[name]
    if not isinstance(value, kind) or value == "":
        raise MalformedEventError(f"{prefix}{name} has the wrong type or is empty")
    return value


def _sha(container: dict[str, Any], name: str, prefix: str) -> str:
    value = _field(container, name, str, prefix)
    if not COMMIT_SHA.fullmatch(value):
        raise MalformedEventError(f"{prefix}{name} is not a commit hash")
    return value


def _require_object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise MalformedEventError(f"{where.rstrip('.')} is not an object")
