"""Bitbucket as the source of commits and the place build results show up.

`BitbucketCloudSource` speaks the Cloud REST API 2.0 (https://developer.atlassian.com/cloud/bitbucket/rest/),
`BitbucketServerSource` the Bitbucket Server / Data Center REST API 1.0. Both:

* authenticate with a token (`Authorization: Bearer`) or, when `username` is set, with username and app
  password (HTTP basic); the secret comes from an environment variable and is never logged or put in a message,
* use one `requests` session per call with a timeout on every request and a bounded number of retries on
  429, 5xx, timeouts and refused connections (honouring `Retry-After`, capped),
* follow pagination (Cloud: `next` links; Server: `isLastPage` / `nextPageStart`),
* read every branch's head sha from the branch listing itself (Cloud `target.hash`, Server `latestCommit`),
* clone over HTTPS with git, the credentials passed as `http.<origin>.extraHeader` through GIT_CONFIG_*
  environment variables: never in the URL, the command line or the clone's configuration.

Server build statuses go to the repository-scoped resource
`/rest/api/latest/projects/{key}/repos/{slug}/commits/{sha}/builds`: the global
`/rest/build-status/1.0/commits/{sha}` is deprecated since Data Center 7.14, and it attaches a status to a sha
in every repository holding it (forks included) rather than to the repository that built it.
"""

from __future__ import annotations

import base64
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from pydantic import Field
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from fintech_release.config.models import BITBUCKET_SLUG_PATTERN
from fintech_release.env_secrets import ReadsSecrets, secret
from fintech_release.errors import ExternalSystemError, ReleaseConfigError
from fintech_release.resources.source import BuildStatus, CommitInfo, SourceControl, checkout_commit

BITBUCKET_CLOUD_API = "https://api.bitbucket.org/2.0"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 10.0
MAX_RETRY_AFTER_SECONDS = 30.0
PAGE_SIZE = 100  # the largest page both APIs document for these resources
_SLUG = re.compile(BITBUCKET_SLUG_PATTERN)

JsonObject = dict[str, Any]


class _RetryableStatus(Exception):
    """An answer (429, 5xx) that may be different when asked again."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _HeaderAuth(requests.auth.AuthBase):
    """Sets the Authorization header; as session auth it also keeps ~/.netrc from replacing it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        return request


class BitbucketSource(ReadsSecrets, SourceControl):
    """What Bitbucket Cloud and Server share: credentials, HTTP with retries, errors, and the HTTPS checkout."""

    base_url: str
    owner: str  # Cloud: the workspace; Server: the project key
    token: str | None = Field(default=None, repr=False)  # given directly (tests); else read from token_env
    username: str | None = None  # for app passwords (basic auth instead of Bearer); else read from username_env
    token_env: str = "FINTECH_RELEASE_BITBUCKET_TOKEN"
    username_env: str | None = None
    timeout_seconds: float = 15
    attempts: int = 4
    backoff_seconds: float = 0.5
    git_executable: str = "git"
    clone_timeout_seconds: float = 600
    flavor: ClassVar[str]  # "Bitbucket Cloud" or "Bitbucket Server", for messages

    @staticmethod
    @abstractmethod
    def parse_commit(data: JsonObject, branch: str) -> CommitInfo:
        """The flavor's commit JSON as a CommitInfo."""

    @abstractmethod
    def _repository_api(self, slug: str) -> str:
        """The REST URL of the repository `slug` in `owner`."""

    @abstractmethod
    def _commit_url(self, slug: str, sha: str) -> str:
        """The REST URL of one commit."""

    @abstractmethod
    def _build_status_url(self, slug: str, sha: str) -> str:
        """The REST URL build statuses of a commit are POSTed to."""

    def commit(self, *, repository: str, sha: str, branch: str) -> CommitInfo:
        slug = self._slug(repository)
        what = f"commit {sha} of repository {self._name(slug)}"
        with self._http() as http:
            data = self._get(http, self._commit_url(slug, quote(sha, safe="")), what=what)
        return self._parsed(data, branch, what)

    def publish_build_status(self, *, repository: str, status: BuildStatus) -> bool:
        slug = self._slug(repository)
        body = {"key": status.key, "state": status.state, "name": status.name, "url": status.url,
                "description": status.description}
        with self._http() as http:
            self._send(http, "POST", self._build_status_url(slug, status.sha), json=body,
                       what=f"build status {status.key} of commit {status.sha} in repository {self._name(slug)}")
        return True

    def checkout(self, *, repository: str, sha: str, destination: Path) -> Path:
        slug = self._slug(repository)
        with self._http() as http:
            repo = self._get(http, self._repository_api(slug), what=f"repository {self._name(slug)}")
        clone_url = self._https_clone_url(repo, slug)
        origin = urlunsplit((*urlsplit(clone_url)[:2], "/", "", ""))
        return checkout_commit(
            remote=clone_url,
            sha=sha,
            destination=destination,
            git_executable=self.git_executable,
            timeout_seconds=self.clone_timeout_seconds,
            env={
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"http.{origin}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: {self._authorization()}",
            },
        )

    def _https_clone_url(self, repo: JsonObject, slug: str) -> str:
        links = repo.get("links", {}).get("clone", [])
        for link in links if isinstance(links, list) else []:
            href = str(link.get("href", ""))
            if href.startswith(("https://", "http://")):
                scheme, netloc, path, query, fragment = urlsplit(href)
                # Cloud puts the user name into the link ("https://jdoe@bitbucket.org/..."); credentials go elsewhere.
                return urlunsplit((scheme, netloc.rpartition("@")[2], path, query, fragment))
        raise ExternalSystemError(f"{self.flavor}: repository {self._name(slug)} offers no HTTP(S) clone link")

    # --- HTTP ---------------------------------------------------------------------------------------------

    @contextmanager
    def _http(self) -> Iterator[requests.Session]:
        with requests.Session() as http:
            http.auth = _HeaderAuth(self._authorization())
            http.headers["Accept"] = "application/json"
            yield http

    def secret_variables(self) -> dict[str, str]:
        wanted = {self.token_env: self.token, **({self.username_env: self.username} if self.username_env else {})}
        return {name: f"the {self.flavor} credentials" for name, given in wanted.items() if given is None}

    def _token(self) -> str:
        return secret(self.token, self.token_env, f"the {self.flavor} token or app password") or ""

    def _authorization(self) -> str:
        user = secret(self.username, self.username_env, f"the {self.flavor} user of the app password")
        if user:
            return "Basic " + base64.b64encode(f"{user}:{self._token()}".encode()).decode("ascii")
        return f"Bearer {self._token()}"

    def _get(self, http: requests.Session, url: str, *, what: str, params: dict[str, Any] | None = None) -> JsonObject:
        response = self._send(http, "GET", url, what=what, params=params)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ExternalSystemError(f"{self.flavor} at {self.base_url} answered {what} with something not JSON")
        return body

    def _send(
        self,
        http: requests.Session,
        method: str,
        url: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        json: JsonObject | None = None,
    ) -> requests.Response:
        """One request with retries; raises `ExternalSystemError` for anything but a 2xx answer."""

        def attempt() -> requests.Response:
            response = http.request(method, url, params=params, json=json, timeout=self.timeout_seconds)
            if response.status_code in RETRY_STATUSES:
                raise _RetryableStatus(response)
            return response

        # Retrying a POST is safe here: a build status with the same key replaces the earlier one.
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _RetryableStatus)),
        )
        try:
            response = retrying(attempt)
        except RetryError as exc:
            raise ExternalSystemError(
                f"{self.flavor} at {self.base_url} did not answer {what} after {self.attempts} attempts "
                f"({self._describe_failure(exc.last_attempt.exception())}); check that it is reachable and try again"
            ) from None
        if response.status_code in (401, 403):
            raise ExternalSystemError(self._credentials_message(response.status_code, what))
        if response.status_code == 404:
            raise ExternalSystemError(f"{self.flavor} at {self.base_url}: {what} not found (HTTP 404)"
                                      f"{self._error_detail(response)}")
        if response.status_code >= 400:
            raise ExternalSystemError(f"{self.flavor} at {self.base_url} refused {what} "
                                      f"(HTTP {response.status_code}){self._error_detail(response)}")
        return response

    def _wait(self, state: RetryCallState) -> float:
        backoff = min(self.backoff_seconds * 2 ** (state.attempt_number - 1), MAX_BACKOFF_SECONDS)
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableStatus):
            retry_after = failure.response.headers.get("Retry-After", "").strip()
            if retry_after.isdigit():
                return min(max(backoff, float(retry_after)), MAX_RETRY_AFTER_SECONDS)
        return backoff

    def _describe_failure(self, failure: BaseException | None) -> str:
        if isinstance(failure, requests.Timeout):
            return f"no answer within {self.timeout_seconds:g} s"
        if isinstance(failure, requests.ConnectionError):
            return "connection failed"
        return f"last answer {failure}"

    def _credentials_message(self, status: int, what: str) -> str:
        where = f"the environment variable {self.token_env}"
        if self.username_env:
            where += f" (user name in {self.username_env})"
        if status == 401:
            return (f"{self.flavor} at {self.base_url} rejected the credentials for {what} (HTTP 401): "
                    f"put a valid token or app password in {where}")
        return (f"{self.flavor} at {self.base_url} denied {what} (HTTP 403): the credentials in {where} "
                "need repository read permission (and write, to publish build statuses)")

    def _error_detail(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):  # Cloud
            message = str(body["error"].get("message", ""))
        elif isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:  # Server
            message = str(body["errors"][0].get("message", ""))
        message = message.replace(self._token(), "***")[:300]
        return f": {message}" if message else ""

    # --- helpers ------------------------------------------------------------------------------------------

    def _slug(self, repository: str) -> str:
        if not _SLUG.match(repository):
            raise ReleaseConfigError(
                f"services[].repository: {repository!r} is not a Bitbucket repository slug; with the bitbucket "
                "source platform it names the repository inside the workspace/project, e.g. contact-us"
            )
        return repository

    def _name(self, slug: str) -> str:
        return f"{self.owner}/{slug}"

    def _heads(self, values: list[JsonObject], *, name: str, sha: Callable[[JsonObject], Any],
               what: str) -> dict[str, str]:
        """branch -> head sha from the branch listing's `values`."""
        try:
            return dict(sorted((str(value[name]), str(sha(value))) for value in values))
        except (KeyError, TypeError) as exc:
            raise ExternalSystemError(
                f"{self.flavor} at {self.base_url} answered {what} in an unexpected shape ({type(exc).__name__}: "
                f"{exc})"
            ) from None

    def _parsed(self, data: JsonObject, branch: str, what: str) -> CommitInfo:
        try:
            return self.parse_commit(data, branch)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExternalSystemError(
                f"{self.flavor} at {self.base_url} answered {what} in an unexpected shape ({type(exc).__name__}: "
                f"{exc})"
            ) from None


def _subject(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def _cloud_commit(data: JsonObject, branch: str) -> CommitInfo:
    author = data.get("author") or {}
    name, email = parseaddr(str(author.get("raw", "")))
    return CommitInfo(
        sha=data["hash"],
        branch=branch,
        author_name=name or str((author.get("user") or {}).get("display_name", "")),
        author_email=email,
        committed_at=datetime.fromisoformat(data["date"]),
        message=_subject(str(data.get("message", ""))),
    )


def _server_commit(data: JsonObject, branch: str) -> CommitInfo:
    author = data.get("author") or {}
    milliseconds = data.get("committerTimestamp") or data["authorTimestamp"]
    return CommitInfo(
        sha=data["id"],
        branch=branch,
        author_name=str(author.get("displayName") or author.get("name", "")),
        author_email=str(author.get("emailAddress", "")),
        committed_at=datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC),
        message=_subject(str(data.get("message", ""))),
    )


class BitbucketCloudSource(BitbucketSource):
    """Bitbucket Cloud (REST 2.0): `owner` is the workspace, `repository` the repository slug."""

    base_url: str = BITBUCKET_CLOUD_API

    flavor: ClassVar[str] = "Bitbucket Cloud"

    @staticmethod
    def parse_commit(data: JsonObject, branch: str) -> CommitInfo:
        return _cloud_commit(data, branch)

    def _repository_api(self, slug: str) -> str:
        return f"{self.base_url.rstrip('/')}/repositories/{quote(self.owner, safe='')}/{quote(slug, safe='')}"

    def _commit_url(self, slug: str, sha: str) -> str:
        return f"{self._repository_api(slug)}/commit/{sha}"

    def _build_status_url(self, slug: str, sha: str) -> str:
        return f"{self._commit_url(slug, sha)}/statuses/build"

    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        slug = self._slug(repository)
        with self._http() as http:
            return self._branch_head(http, slug, branch)

    def recent_commits(self, *, repository: str, branch: str, limit: int = 20) -> list[CommitInfo]:
        slug = self._slug(repository)
        what = f"commits of branch {branch!r} of repository {self._name(slug)}"
        with self._http() as http:
            # commits/{revision} does not accept branch names with a slash: list from the head's sha instead.
            head = self._branch_head(http, slug, branch)
            url = f"{self._repository_api(slug)}/commits/{head.sha}"
            values = self._pages(http, url, {"pagelen": min(limit, PAGE_SIZE)}, what=what, limit=limit)
            return [self._parsed(value, branch, what) for value in values]

    def branch_heads(self, *, repository: str) -> dict[str, str]:
        slug = self._slug(repository)
        what = f"branches of repository {self._name(slug)}"
        with self._http() as http:
            values = self._pages(http, f"{self._repository_api(slug)}/refs/branches", {"pagelen": PAGE_SIZE},
                                 what=what, limit=None)
        return self._heads(values, name="name", sha=lambda value: value["target"]["hash"], what=what)

    def _branch_head(self, http: requests.Session, slug: str, branch: str) -> CommitInfo:
        what = f"branch {branch!r} of repository {self._name(slug)}"
        data = self._get(http, f"{self._repository_api(slug)}/refs/branches/{quote(branch, safe='/')}", what=what)
        return self._parsed(data.get("target") or {}, branch, what)

    def _pages(
        self, http: requests.Session, url: str, params: dict[str, Any], *, what: str, limit: int | None
    ) -> list[JsonObject]:
        """The `values` of every page from `url` on, following `next` links, until `limit` are collected."""
        origin = urlsplit(self.base_url)[:2]
        values: list[JsonObject] = []
        next_url: str | None = url
        while next_url and (limit is None or len(values) < limit):
            if urlsplit(next_url)[:2] != origin:  # the credentials go only where base_url points
                raise ExternalSystemError(f"{self.flavor}: the next page of {what} points elsewhere: {next_url}")
            page = self._get(http, next_url, what=what, params=params if next_url == url else None)
            values.extend(page.get("values", []))
            next_url = page.get("next")
        return values if limit is None else values[:limit]


class BitbucketServerSource(BitbucketSource):
    """Bitbucket Server / Data Center (REST 1.0): `owner` is the project key, `repository` the repository slug.

    `base_url` is the server's address including any context path, e.g. https://bitbucket.example.com.
    """

    flavor: ClassVar[str] = "Bitbucket Server"

    @staticmethod
    def parse_commit(data: JsonObject, branch: str) -> CommitInfo:
        return _server_commit(data, branch)

    def _repository_api(self, slug: str) -> str:
        return self._project_api("1.0", slug)

    def _commit_url(self, slug: str, sha: str) -> str:
        return f"{self._repository_api(slug)}/commits/{sha}"

    def _build_status_url(self, slug: str, sha: str) -> str:
        return f"{self._project_api('latest', slug)}/commits/{sha}/builds"

    def _project_api(self, version: str, slug: str) -> str:
        return (f"{self.base_url.rstrip('/')}/rest/api/{version}/projects/{quote(self.owner, safe='')}"
                f"/repos/{quote(slug, safe='')}")

    def latest_commit(self, *, repository: str, branch: str) -> CommitInfo:
        commits = self.recent_commits(repository=repository, branch=branch, limit=1)
        if not commits:
            raise ExternalSystemError(f"{self.flavor}: branch {branch!r} of repository "
                                      f"{self._name(repository)} has no commits")
        return commits[0]

    def recent_commits(self, *, repository: str, branch: str, limit: int = 20) -> list[CommitInfo]:
        slug = self._slug(repository)
        what = f"commits of branch {branch!r} of repository {self._name(slug)}"
        with self._http() as http:
            values = self._pages(http, f"{self._repository_api(slug)}/commits", {"until": f"refs/heads/{branch}"},
                                 what=what, limit=limit)
        return [self._parsed(value, branch, what) for value in values]

    def branch_heads(self, *, repository: str) -> dict[str, str]:
        slug = self._slug(repository)
        what = f"branches of repository {self._name(slug)}"
        with self._http() as http:
            values = self._pages(http, f"{self._repository_api(slug)}/branches", {}, what=what, limit=None)
        return self._heads(values, name="displayId", sha=lambda value: value["latestCommit"], what=what)

    def _pages(
        self, http: requests.Session, url: str, params: dict[str, Any], *, what: str, limit: int | None
    ) -> list[JsonObject]:
        """The `values` of every page (`start`/`limit`, until `isLastPage`), until `limit` are collected."""
        values: list[JsonObject] = []
        start = 0
        while limit is None or len(values) < limit:
            page_size = PAGE_SIZE if limit is None else min(limit - len(values), PAGE_SIZE)
            page = self._get(http, url, what=what, params={**params, "start": start, "limit": page_size})
            values.extend(page.get("values", []))
            if page.get("isLastPage", True) or page.get("nextPageStart") is None:
                break
            start = int(page["nextPageStart"])
        return values if limit is None else values[:limit]
