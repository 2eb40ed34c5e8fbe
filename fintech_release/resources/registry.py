"""Image registries: push an image and read its digest back. `LocalRegistry` is a registry on loopback."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TypeVar

import docker
import requests
from dagster import ConfigurableResource
from docker.errors import APIError, ImageNotFound
from pydantic import BaseModel
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from fintech_release.errors import RegistryUnavailableError, ToolFailedError
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST, connect_docker

T = TypeVar("T")

MANIFEST_MEDIA_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class PushedImage(BaseModel, frozen=True):
    """An image as the registry holds it."""

    reference: str
    digest: str

    @property
    def pinned_reference(self) -> str:
        """`host/repository@sha256:…`: the immutable name deployments use."""
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


class ImageRegistry(ConfigurableResource):
    """Holds pushed service images."""

    @abstractmethod
    def push(self, *, local_reference: str, repository: str, tag: str) -> PushedImage:
        """Push the engine's `local_reference` as `repository:tag`; return it with the registry's digest."""


class _PushFailed(Exception):
    """A push that may succeed when tried again."""


class LocalRegistry(ImageRegistry):
    """A Docker registry (v2 API over plain HTTP) on loopback, e.g. Debian's docker-registry."""

    host: str = "127.0.0.1:5000"
    docker_host: str = DEFAULT_DOCKER_HOST
    retry_seconds: float = 60  # each stage (answer, accept the push, serve the digest) keeps trying this long
    request_timeout_seconds: float = 10

    def push(self, *, local_reference: str, repository: str, tag: str) -> PushedImage:
        with requests.Session() as http:
            http.trust_env = False  # a loopback registry: never through a proxy from the environment
            self._with_retries("answer on /v2/", lambda: self._ping(http))
            client = connect_docker(self.docker_host)
            target = f"{self.host}/{repository}"
            try:
                client.images.get(local_reference).tag(target, tag=tag)
            except ImageNotFound:
                raise ToolFailedError(f"image {local_reference} is not in the Docker engine; build it first") from None
            self._with_retries(f"accept {target}:{tag}", lambda: self._push_once(client, target, tag))
            digest = self._with_retries(f"serve {target}:{tag}", lambda: self._manifest_digest(http, repository, tag))
        return PushedImage(reference=f"{target}:{tag}", digest=digest)

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_delay(self.retry_seconds),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type((requests.RequestException, _PushFailed)),
        )
        try:
            return retrying(action)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise RegistryUnavailableError(
                f"registry {self.host} did not {what} within {self.retry_seconds:g} s "
                f"({exc.last_attempt.attempt_number} attempts; registry.retry_seconds in release.yaml): {last}"
            ) from None

    def _ping(self, http: requests.Session) -> None:
        response = http.get(f"http://{self.host}/v2/", timeout=self.request_timeout_seconds)
        response.raise_for_status()

    @staticmethod
    def _push_once(client: docker.DockerClient, target: str, tag: str) -> None:
        try:
            for event in client.images.push(target, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise _PushFailed(event["error"])
        except APIError as exc:
            raise _PushFailed(exc.explanation) from None

    def _manifest_digest(self, http: requests.Session, repository: str, tag: str) -> str:
        response = http.head(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            headers={"Accept": MANIFEST_MEDIA_TYPES},
            timeout=self.request_timeout_seconds,
        )
        response.raise_for_status()
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest.startswith("sha256:"):
            raise requests.RequestException(f"no Docker-Content-Digest header for {repository}:{tag}")
        return digest
