"""Contract-test fixtures: an HTTP server on 127.0.0.1 that answers like Bitbucket (not the real Bitbucket).

``bitbucket_factory(flavor, token=..., username=...)`` starts a ``FakeBitbucket`` for ``"cloud"`` (REST 2.0
under ``/2.0``) or ``"server"`` (REST 1.0 under the context path ``/bitbucket``) and stops it at the end of
the test. Its answers follow the documented response shapes: Cloud commits, ``refs/branches``, ``commit/{sha}``
and ``commit/{sha}/statuses/build``, paged with ``pagelen`` / ``page`` / ``next``; Server ``commits?until=``,
``commits/{id}``, ``branches`` and the repository-scoped ``builds`` resource, paged with ``start`` / ``limit`` /
``isLastPage`` / ``nextPageStart``; errors as ``{"type": "error", "error": {...}}`` (Cloud) or
``{"errors": [...]}`` (Server).

The data comes from real bare git repositories (``add_repository(slug, bare_path)``), so shas, authors and
dates are real, and the clone links point at ``git http-backend`` served by the same server: a checkout
really fetches over HTTP with the Authorization header the client sends. Every request is recorded
(``.requests``); ``fail_next`` answers the next requests with an error status, ``delay_seconds`` holds
answers back (timeouts), ``max_page_size`` caps page sizes so listings span several pages.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from fintech_release_tests.components import LOCALHOST

Flavor = Literal["cloud", "server"]
_FIELD = "\x1f"
_LOG_FORMAT = _FIELD.join(["%H", "%an", "%ae", "%cn", "%ce", "%cI", "%at", "%ct", "%P", "%B"])


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it."""

    method: str
    path: str  # decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeBitbucket:
    """A Bitbucket Cloud or Server look-alike on loopback, serving real bare repositories."""

    flavor: Flavor
    owner: str
    token: str
    username: str | None = None
    max_page_size: int = 2
    delay_seconds: float = 0
    repositories: dict[str, Path] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[_Reply] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _closing: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle and test controls ------------------------------------------------------------------

    def start(self) -> FakeBitbucket:
        """Listen on a free 127.0.0.1 port and serve in a background thread."""
        self._server = ThreadingHTTPServer((LOCALHOST, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-bitbucket-{self.flavor}",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; held-back answers are released."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:<port>"""
        assert self._server is not None, "start() the fake first"
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What the client's `base_url` is set to: the API root (Cloud) or the server with its context path."""
        return f"{self.origin}/2.0" if self.flavor == "cloud" else f"{self.origin}/bitbucket"

    def add_repository(self, slug: str, bare_path: Path) -> None:
        """Serve the bare repository at `bare_path` as `owner/slug`."""
        self.repositories[slug] = bare_path

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (before authentication and routing)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = _error_body(self.flavor, f"simulated HTTP {status}")
        self._failures.extend(_Reply(status, body, headers) for _ in range(times))

    def api_requests(self) -> list[RecordedRequest]:
        """The recorded REST requests (git's own fetches left out)."""
        return [r for r in self.requests if "/rest/" in r.path or r.path.startswith("/2.0/")]

    def git_requests(self) -> list[RecordedRequest]:
        """The recorded requests of git (smart HTTP)."""
        return [r for r in self.requests if r not in self.api_requests()]

    # --- request handling -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=handler.command,
            path=unquote(split.path),
            query=parse_qs(split.query),
            headers={key.lower(): value for key, value in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
        if self.delay_seconds and self._closing.wait(self.delay_seconds):
            return
        if failure is not None:
            _send(handler, failure)
            return
        if request.headers.get("authorization") != self._expected_authorization():
            _send(handler, self._unauthorized())
            return
        git = self._git_route(request.path)
        if git is not None:
            _serve_git(handler, request, *git, query=split.query)
            return
        try:
            _send(handler, self._route(request))
        except _NotFound as missing:
            _send(handler, _Reply(404, _error_body(self.flavor, str(missing))))

    def _expected_authorization(self) -> str:
        if self.username:
            return "Basic " + base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
        return f"Bearer {self.token}"

    def _unauthorized(self) -> _Reply:
        message = ("Authentication failed. Please check your credentials and try again."
                   if self.flavor == "server" else "Access denied. You must have write or admin access.")
        return _Reply(401, _error_body(self.flavor, message), {"WWW-Authenticate": 'Basic realm="Bitbucket"'})

    def _git_route(self, path: str) -> tuple[Path, str] | None:
        prefix = f"/bitbucket/scm/{self.owner.lower()}/" if self.flavor == "server" else f"/{self.owner}/"
        match = re.fullmatch(re.escape(prefix) + r"([^/]+)\.git(/.*)", path)
        if match is None:
            return None
        return self._repository(match.group(1)), match.group(2)

    def _repository(self, slug: str) -> Path:
        if slug not in self.repositories:
            raise _NotFound(f"Repository {self.owner}/{slug} does not exist.")
        return self.repositories[slug]

    def _route(self, request: RecordedRequest) -> _Reply:
        routes = self._cloud_routes() if self.flavor == "cloud" else self._server_routes()
        for method, pattern, answer in routes:
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                return answer(request, **match.groupdict())
        raise _NotFound(f"No route for {request.method} {request.path}")

    # --- Bitbucket Cloud, REST 2.0 --------------------------------------------------------------------

    def _cloud_routes(self) -> list[tuple[str, str, Callable[..., _Reply]]]:
        repo = rf"/2\.0/repositories/{re.escape(self.owner)}/(?P<slug>[^/]+)"
        return [
            ("GET", repo, self._cloud_repository),
            ("GET", repo + r"/refs/branches", self._cloud_branches),
            ("GET", repo + r"/refs/branches/(?P<name>.+)", self._cloud_branch),
            ("GET", repo + r"/commits/(?P<revision>[^/]+)", self._cloud_commits),
            ("GET", repo + r"/commit/(?P<sha>[0-9a-f]+)", self._cloud_commit),
            ("POST", repo + r"/commit/(?P<sha>[0-9a-f]+)/statuses/build/?", self._cloud_build_status),
        ]

    def _cloud_repository(self, request: RecordedRequest, slug: str) -> _Reply:
        self._repository(slug)
        user = self.username or "x-token-auth"
        host = urlsplit(self.origin).netloc
        return _Reply(200, {
            "type": "repository",
            "full_name": f"{self.owner}/{slug}",
            "name": slug,
            "slug": slug,
            "scm": "git",
            "is_private": True,
            "mainbranch": {"type": "branch", "name": "master"},
            "links": {
                "self": {"href": f"{self.base_url}/repositories/{self.owner}/{slug}"},
                "clone": [
                    {"name": "https", "href": f"http://{user}@{host}/{self.owner}/{slug}.git"},
                    {"name": "ssh", "href": f"git@{LOCALHOST}:{self.owner}/{slug}.git"},
                ],
            },
        })

    def _cloud_branches(self, request: RecordedRequest, slug: str) -> _Reply:
        branches = [self._cloud_branch_json(slug, name, sha) for name, sha in _branches(self._repository(slug))]
        return _Reply(200, self._cloud_page(request, branches))

    def _cloud_branch(self, request: RecordedRequest, slug: str, name: str) -> _Reply:
        heads = dict(_branches(self._repository(slug)))
        if name not in heads:
            raise _NotFound(f"Branch \"{name}\" does not exist in {self.owner}/{slug}.")
        return _Reply(200, self._cloud_branch_json(slug, name, heads[name]))

    def _cloud_branch_json(self, slug: str, name: str, sha: str) -> dict[str, Any]:
        return {
            "type": "branch",
            "name": name,
            "target": self._cloud_commit_json(slug, _one(self._repository(slug), sha)),
            "merge_strategies": ["merge_commit", "squash", "fast_forward"],
            "default_merge_strategy": "merge_commit",
            "links": {"self": {"href": f"{self.base_url}/repositories/{self.owner}/{slug}/refs/branches/{name}"}},
        }

    def _cloud_commits(self, request: RecordedRequest, slug: str, revision: str) -> _Reply:
        commits = _log(self._repository(slug), revision, None)
        if commits is None:
            raise _NotFound(f"Commit not found: {revision}")
        return _Reply(200, self._cloud_page(request, [self._cloud_commit_json(slug, c) for c in commits]))

    def _cloud_commit(self, request: RecordedRequest, slug: str, sha: str) -> _Reply:
        return _Reply(200, self._cloud_commit_json(slug, _one(self._repository(slug), sha)))

    def _cloud_build_status(self, request: RecordedRequest, slug: str, sha: str) -> _Reply:
        _one(self._repository(slug), sha)
        sent = request.json()
        return _Reply(201, {
            "type": "build",
            "key": sent["key"],
            "state": sent["state"],
            "name": sent.get("name", ""),
            "url": sent["url"],
            "description": sent.get("description", ""),
            "refname": None,
            "created_on": "2024-05-01T12:00:00.000000+00:00",
            "updated_on": "2024-05-01T12:00:00.000000+00:00",
            "links": {"commit": {"href": f"{self.base_url}/repositories/{self.owner}/{slug}/commit/{sha}"}},
        })

    def _cloud_commit_json(self, slug: str, commit: dict[str, Any]) -> dict[str, Any]:
        repo_url = f"{self.base_url}/repositories/{self.owner}/{slug}"
        return {
            "type": "commit",
            "hash": commit["sha"],
            "date": commit["committed_iso"],
            "author": {
                "type": "author",
                "raw": f"{commit['author_name']} <{commit['author_email']}>",
                "user": {"type": "user", "display_name": commit["author_name"], "nickname": "dev"},
            },
            "message": commit["message"],
            "summary": {"type": "rendered", "raw": commit["message"], "markup": "markdown", "html": ""},
            "parents": [{"type": "commit", "hash": p, "links": {"self": {"href": f"{repo_url}/commit/{p}"}}}
                        for p in commit["parents"]],
            "repository": {"type": "repository", "full_name": f"{self.owner}/{slug}", "name": slug},
            "links": {
                "self": {"href": f"{repo_url}/commit/{commit['sha']}"},
                "statuses": {"href": f"{repo_url}/commit/{commit['sha']}/statuses"},
            },
        }

    def _cloud_page(self, request: RecordedRequest, values: list[dict[str, Any]]) -> dict[str, Any]:
        pagelen = min(int(request.query.get("pagelen", ["10"])[0]), self.max_page_size)
        page = int(request.query.get("page", ["1"])[0])
        chunk = values[(page - 1) * pagelen: page * pagelen]
        body: dict[str, Any] = {"pagelen": pagelen, "page": page, "size": len(values), "values": chunk}
        if page * pagelen < len(values):
            body["next"] = f"{self.origin}{request.path}?pagelen={pagelen}&page={page + 1}"
        return body

    # --- Bitbucket Server / Data Center, REST 1.0 -----------------------------------------------------

    def _server_routes(self) -> list[tuple[str, str, Callable[..., _Reply]]]:
        project = rf"/bitbucket/rest/api/(?:1\.0|latest)/projects/{re.escape(self.owner)}"
        repo = project + r"/repos/(?P<slug>[^/]+)"
        return [
            ("GET", repo, self._server_repository),
            ("GET", repo + r"/branches", self._server_branches),
            ("GET", repo + r"/commits", self._server_commits),
            ("GET", repo + r"/commits/(?P<commit_id>[^/]+)", self._server_commit),
            ("POST", repo + r"/commits/(?P<sha>[0-9a-f]+)/builds", self._server_build_status),
        ]

    def _server_repository(self, request: RecordedRequest, slug: str) -> _Reply:
        self._repository(slug)
        return _Reply(200, {
            "slug": slug,
            "id": 1,
            "name": slug,
            "scmId": "git",
            "state": "AVAILABLE",
            "forkable": True,
            "project": {"key": self.owner, "id": 1, "name": self.owner, "type": "NORMAL"},
            "public": False,
            "links": {
                "clone": [
                    {"href": f"{self.base_url}/scm/{self.owner.lower()}/{slug}.git", "name": "http"},
                    {"href": f"ssh://git@{LOCALHOST}:7999/{self.owner.lower()}/{slug}.git", "name": "ssh"},
                ],
                "self": [{"href": f"{self.base_url}/projects/{self.owner}/repos/{slug}/browse"}],
            },
        })

    def _server_branches(self, request: RecordedRequest, slug: str) -> _Reply:
        values = [
            {"id": f"refs/heads/{name}", "displayId": name, "type": "BRANCH", "latestCommit": sha,
             "latestChangeset": sha, "isDefault": name == "master"}
            for name, sha in _branches(self._repository(slug))
        ]
        return _Reply(200, self._server_page(request, values))

    def _server_commits(self, request: RecordedRequest, slug: str) -> _Reply:
        until = request.query.get("until", ["HEAD"])[0]
        commits = _log(self._repository(slug), until, None)
        if commits is None:
            raise _NotFound(f"Commit '{until}' does not exist in repository '{slug}'.")
        return _Reply(200, self._server_page(request, [_server_commit_json(c) for c in commits]))

    def _server_commit(self, request: RecordedRequest, slug: str, commit_id: str) -> _Reply:
        return _Reply(200, _server_commit_json(_one(self._repository(slug), commit_id, repository=slug)))

    def _server_build_status(self, request: RecordedRequest, slug: str, sha: str) -> _Reply:
        _one(self._repository(slug), sha, repository=slug)
        return _Reply(204)

    def _server_page(self, request: RecordedRequest, values: list[dict[str, Any]]) -> dict[str, Any]:
        start = int(request.query.get("start", ["0"])[0])
        limit = min(int(request.query.get("limit", ["25"])[0]), self.max_page_size)
        chunk = values[start: start + limit]
        last = start + limit >= len(values)
        body: dict[str, Any] = {"size": len(chunk), "limit": limit, "isLastPage": last, "start": start,
                                "values": chunk}
        if not last:
            body["nextPageStart"] = start + len(chunk)
        return body


class _NotFound(Exception):
    """The fake's 404."""


def _error_body(flavor: Flavor, message: str) -> dict[str, Any]:
    if flavor == "cloud":
        return {"type": "error", "error": {"message": message}}
    return {"errors": [{"context": None, "message": message, "exceptionName": None}]}


def _server_commit_json(commit: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": commit["sha"],
        "displayId": commit["sha"][:11],
        # A commit by a known user carries the Bitbucket user: `name` is the login, `displayName` the person.
        "author": {"name": commit["author_email"].split("@")[0], "emailAddress": commit["author_email"],
                   "displayName": commit["author_name"], "active": True, "type": "NORMAL"},
        "authorTimestamp": commit["authored_epoch"] * 1000,
        "committer": {"name": commit["committer_name"], "emailAddress": commit["committer_email"]},
        "committerTimestamp": commit["committed_epoch"] * 1000,
        "message": commit["message"],
        "parents": [{"id": p, "displayId": p[:11]} for p in commit["parents"]],
    }


def _git(bare: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "--git-dir", str(bare), *args], capture_output=True, text=True, timeout=30,
                          check=False)


def _branches(bare: Path) -> list[tuple[str, str]]:
    completed = _git(bare, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    return [tuple(line.split(" ", 1)) for line in completed.stdout.splitlines()]  # type: ignore[misc]


def _log(bare: Path, revision: str, limit: int | None) -> list[dict[str, Any]] | None:
    """The commits reachable from `revision`, newest first; None when git does not know `revision`."""
    count = [f"--max-count={limit}"] if limit else []
    completed = _git(bare, "log", "-z", *count, f"--format={_LOG_FORMAT}", revision, "--")
    if completed.returncode != 0:
        return None
    commits = []
    for entry in filter(None, completed.stdout.split("\0")):
        sha, an, ae, cn, ce, ci, at, ct, parents, message = entry.split(_FIELD, 9)
        commits.append({
            "sha": sha, "author_name": an, "author_email": ae, "committer_name": cn, "committer_email": ce,
            "committed_iso": ci, "authored_epoch": int(at), "committed_epoch": int(ct),
            "parents": parents.split(), "message": message,
        })
    return commits


def _one(bare: Path, revision: str, *, repository: str | None = None) -> dict[str, Any]:
    """The commit `revision`; a 404 (in the Server wording when `repository` is given) when there is none."""
    commits = _log(bare, revision, 1)
    if not commits:
        raise _NotFound(f"Commit '{revision}' does not exist in repository '{repository}'." if repository
                        else f"Commit not found: {revision}")
    return commits[0]


def _send(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
    payload = b"" if reply.body is None else json.dumps(reply.body).encode()
    try:
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if payload:
            handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a timeout test)


def _serve_git(handler: BaseHTTPRequestHandler, request: RecordedRequest, bare: Path, rest: str, *,
               query: str) -> None:
    """Answer one smart-HTTP request with `git http-backend` (CGI), as Bitbucket's git endpoint would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_TRANSLATED": f"{bare}{rest}",
        "PATH_INFO": rest,
        "QUERY_STRING": query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(request.body)),
        "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
        "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
        "REMOTE_USER": "fake-bitbucket",
        "REMOTE_ADDR": LOCALHOST,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    completed = subprocess.run(["git", "http-backend"], input=request.body, env=env, capture_output=True,
                               timeout=60, check=False)
    head, _, payload = completed.stdout.partition(b"\r\n\r\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name] = value.strip()
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _handler_for(fake: FakeBitbucket) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            fake._handle(self)

        def do_POST(self) -> None:  # noqa: N802
            fake._handle(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
            pass

    return Handler


BitbucketFactory = Callable[..., FakeBitbucket]


@pytest.fixture
def bitbucket_factory() -> Iterator[BitbucketFactory]:
    """Start fake Bitbucket servers: ``factory("cloud" | "server", owner=..., token=..., username=None)``."""
    started: list[FakeBitbucket] = []

    def make(flavor: Flavor, *, owner: str = "acme", token: str = "s3cr3t-t0ken", username: str | None = None,
             max_page_size: int = 2) -> FakeBitbucket:
        fake = FakeBitbucket(flavor=flavor, owner=owner, token=token, username=username,
                             max_page_size=max_page_size).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()
