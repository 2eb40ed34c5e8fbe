"""The registry HTTP API V2 (the distribution spec), as far as pushing, reading back and copying images needs it.

Authentication follows the registry's own challenge: a `401` with `WWW-Authenticate: Basic …` (htpasswd, as
Debian's docker-registry does) is answered with the credentials; `Bearer realm=…,service=…` (Artifact Registry,
Container Registry, a token server) is answered by fetching a token for the repository scope from the realm with
the same credentials. The credentials never appear in an error or a log line.
"""

from __future__ import annotations

import hashlib
import re

import requests
from pydantic import BaseModel

from fintech_release.errors import ExternalSystemError

MANIFEST_MEDIA_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


class Manifest(BaseModel, frozen=True):
    """A manifest as the registry serves it: its digest, the image (config) digest and the blobs it names."""

    digest: str
    media_type: str
    body: bytes
    config_digest: str | None  # None for an index (several platforms)
    blobs: tuple[str, ...]


class RegistryCredentialsError(ExternalSystemError):
    """The registry refused the credentials (or got none)."""


class RegistryApi:
    """One registry's V2 API over one HTTP session; tokens are fetched per repository scope and reused."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: tuple[str, str] | None,
        credentials_hint: str,
        verify: str | bool,
        timeout_seconds: float,
        trust_env: bool,
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.credentials_hint = credentials_hint
        self.timeout_seconds = timeout_seconds
        self.http = requests.Session()
        self.http.trust_env = trust_env
        self.http.verify = verify
        self._authorization: dict[str, str] = {}  # scope -> Authorization header

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()

    def ping(self) -> None:
        """`GET /v2/`: 200, or 401 asking for credentials, means the registry answers."""
        response = self.http.get(f"{self.base_url}/v2/", timeout=self.timeout_seconds)
        if response.status_code != 401:
            response.raise_for_status()

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest `repository:reference` (a tag or a digest), or None when the registry has none."""
        response = self._request(
            "GET", repository, f"manifests/{reference}", actions="pull", headers={"Accept": MANIFEST_MEDIA_TYPES}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        computed = "sha256:" + hashlib.sha256(response.content).hexdigest()
        digest = response.headers.get("Docker-Content-Digest") or computed
        document = response.json()
        config = (document.get("config") or {}).get("digest")
        layers = tuple(layer["digest"] for layer in document.get("layers", []))
        media_type = document.get("mediaType") or response.headers.get("Content-Type", "")
        return Manifest(
            digest=digest, media_type=media_type, body=response.content, config_digest=config,
            blobs=((config,) if config else ()) + layers,
        )

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> None:
        """Make blob `digest` of `source_repository` part of `repository` (a cross-repository mount, else a copy)."""
        response = self._request(
            "POST", repository, "blobs/uploads/", actions="pull,push",
            params={"mount": digest, "from": source_repository}, extra_scope=f"repository:{source_repository}:pull",
        )
        if response.status_code == 201:
            return
        response.raise_for_status()  # 202: the registry did not mount; it opened an upload to put the blob into
        blob = self._request("GET", source_repository, f"blobs/{digest}", actions="pull")
        blob.raise_for_status()
        location = response.headers["Location"]
        upload_url = location if location.startswith("http") else f"{self.base_url}{location}"
        put = self._request("PUT", repository, "", actions="pull,push", url=upload_url,
                            params={"digest": digest}, data=blob.content,
                            headers={"Content-Type": "application/octet-stream"})
        put.raise_for_status()

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> None:
        """Store `manifest` under `repository:tag`."""
        response = self._request(
            "PUT", repository, f"manifests/{tag}", actions="pull,push", data=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )
        response.raise_for_status()

    def _request(
        self, method: str, repository: str, path: str, *, actions: str, url: str | None = None,
        extra_scope: str | None = None, params: dict[str, str] | None = None, data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        scope = f"repository:{repository}:{actions}" + (f" {extra_scope}" if extra_scope else "")
        url = url or f"{self.base_url}/v2/{repository}/{path}"
        headers = dict(headers or {})
        for attempt in range(2):
            if scope in self._authorization:
                headers["Authorization"] = self._authorization[scope]
            response = self.http.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout_seconds,
                allow_redirects=True,
            )
            if response.status_code not in (401, 403):
                return response
            if attempt == 0 and response.status_code == 401 and scope not in self._authorization:
                self._authorization[scope] = self._answer(response.headers.get("WWW-Authenticate", ""), scope)
                continue
            raise self._refused(response.status_code, f"{method} /v2/{repository}/{path}")
        raise AssertionError("unreachable")

    def _answer(self, challenge: str, scope: str) -> str:
        """The Authorization header answering the registry's challenge."""
        if self.credentials is None:
            raise self._refused(401, "its API")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            return _basic(self.credentials)
        if scheme != "bearer":
            raise ExternalSystemError(
                f"registry {self.base_url} asks for {scheme or 'no'} authentication, which is not supported"
            )
        parameters = dict(_CHALLENGE_PARAMETER.findall(challenge))
        realm = parameters.get("realm")
        if not realm:
            raise ExternalSystemError(
                f"registry {self.base_url} asks for a Bearer token but names no realm to get it from"
            )
        query: dict[str, str | list[str]] = {"scope": scope.split(" ")}
        if "service" in parameters:
            query["service"] = parameters["service"]
        response = self.http.get(realm, params=query, auth=self.credentials, timeout=self.timeout_seconds)
        if response.status_code in (401, 403):
            raise self._refused(response.status_code, f"the token service {realm}")
        response.raise_for_status()
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ExternalSystemError(f"the token service {realm} of registry {self.base_url} returned no token")
        return f"Bearer {token}"

    def _refused(self, status: int, what: str) -> RegistryCredentialsError:
        got = "sent no credentials" if self.credentials is None else f"credentials of user {self.credentials[0]!r}"
        return RegistryCredentialsError(
            f"registry {self.base_url} refused {what} (HTTP {status}; {got}): {self.credentials_hint}"
        )


def _basic(credentials: tuple[str, str]) -> str:
    request = requests.Request("GET", "http://unused", auth=credentials).prepare()
    return str(request.headers["Authorization"])
