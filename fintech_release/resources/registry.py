"""Image registries: push an image, read its digest back, and never let one tag name two images.

Every platform is a registry speaking the HTTP API V2 (registry_api.py); they differ in where it is and
whose credentials open it:

- `LocalRegistry`: a registry you run (Debian's docker-registry on loopback in the demo), plain HTTP or TLS
  with a private CA, anonymous or with htpasswd credentials from the environment;
- `GoogleRegistry`: Artifact Registry (`LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/<service>`) or Container
  Registry (`gcr.io/PROJECT/<service>`), opened with an access token from Application Default Credentials
  (user `oauth2accesstoken`), never a key file.

A version names exactly one image. Before a push the tag is read: when it already names another image the
push is refused (`ImageTagConflictError` naming the tag, both digests and what to do); when it names this
image nothing is pushed again. After the push the tag is read back, and a tag that then names another image
(a push of the same tag that raced this one) is the same error. Images built in the Docker engine are pushed
through it; images a remote builder left in the registry (Cloud Build) are copied there by digest.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from ipaddress import ip_address
from typing import TypeVar

import docker
import requests
from dagster import ConfigurableResource
from docker.errors import APIError, ImageNotFound
from docker.models.images import Image
from pydantic import BaseModel, Field
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from fintech_release.env_secrets import ReadsSecrets, secret
from fintech_release.errors import ImageTagConflictError, RegistryUnavailableError, ToolFailedError
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST, connect_docker
from fintech_release.resources.google_auth import ADC_HINT, google_access_token
from fintech_release.resources.registry_api import Manifest, RegistryApi, RegistryCredentialsError

T = TypeVar("T")
GOOGLE_TOKEN_USER = "oauth2accesstoken"
# Words of a push error that no retry changes.
REFUSALS = ("unauthorized", "authentication required", "denied", "forbidden")


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

    @abstractmethod
    def copy_image(self, *, source_repository: str, digest: str, repository: str, tag: str) -> PushedImage:
        """Tag the image `source_repository@digest`, already in this registry, as `repository:tag`."""

    @abstractmethod
    def image_name(self, repository: str) -> str:
        """`host/path/repository`: where `repository` lives in this registry."""


class _PushFailed(Exception):
    """A push that may succeed when tried again."""


class V2Registry(ImageRegistry):
    """A registry speaking the HTTP API V2; subclasses say where it is and which credentials open it."""

    docker_host: str = DEFAULT_DOCKER_HOST
    retry_seconds: float = 60  # each stage (answer, accept the push, serve the digest) keeps trying this long
    request_timeout_seconds: float = 10

    @property
    @abstractmethod
    def registry_host(self) -> str:
        """host[:port] of the registry."""

    @property
    @abstractmethod
    def path_prefix(self) -> str:
        """The path below the host every repository lives under ('' for none), e.g. PROJECT/REPOSITORY."""

    @abstractmethod
    def _credentials(self) -> tuple[str, str] | None:
        """(user, password) for the registry, or None to go anonymously."""

    @abstractmethod
    def _credentials_hint(self) -> str:
        """Where the credentials come from, said when the registry refuses them."""

    def _base_url(self) -> str:
        return f"https://{self.registry_host}"

    def _verify(self) -> str | bool:
        return True

    def image_name(self, repository: str) -> str:
        return f"{self.registry_host}/{self._path(repository)}"

    def push(self, *, local_reference: str, repository: str, tag: str) -> PushedImage:
        path, target = self._path(repository), self.image_name(repository)
        with self._api() as api:
            client = connect_docker(self.docker_host)
            try:
                image = client.images.get(local_reference)
            except ImageNotFound:
                raise ToolFailedError(f"image {local_reference} is not in the Docker engine; build it first") from None
            existing = self._with_retries(f"serve {target}:{tag}", lambda: api.manifest(path, tag))
            if existing is not None:
                if _is_image(existing, image, target):
                    return PushedImage(reference=f"{target}:{tag}", digest=existing.digest)
                raise self._conflict(target, tag, existing, f"image {image.id}", pushed=False)
            image.tag(target, tag=tag)
            credentials = api.credentials
            auth = {"username": credentials[0], "password": credentials[1]} if credentials else None
            self._with_retries(
                f"accept {target}:{tag}", lambda: _push_once(client, target, tag, auth, self._credentials_hint())
            )
            pushed = self._with_retries(f"serve {target}:{tag}", lambda: _require(api.manifest(path, tag), target, tag))
            image.reload()  # its repository digests now name the push
            if not _is_image(pushed, image, target):
                raise self._conflict(target, tag, pushed, f"image {image.id}", pushed=True)
        return PushedImage(reference=f"{target}:{tag}", digest=pushed.digest)

    def copy_image(self, *, source_repository: str, digest: str, repository: str, tag: str) -> PushedImage:
        path, source_path, target = self._path(repository), self._path(source_repository), self.image_name(repository)
        with self._api() as api:
            existing = self._with_retries(f"serve {target}:{tag}", lambda: api.manifest(path, tag))
            if existing is not None:
                if existing.digest == digest:
                    return PushedImage(reference=f"{target}:{tag}", digest=digest)
                raise self._conflict(target, tag, existing, digest, pushed=False)
            source = self.image_name(source_repository)
            manifest = self._with_retries(
                f"serve {source}@{digest}", lambda: _require(api.manifest(source_path, digest), source, digest)
            )
            if manifest.config_digest is None:
                raise ToolFailedError(f"{source}@{digest} is an index of several platforms; only one image is copied")
            for blob in manifest.blobs:
                mount = partial(api.mount_blob, path, blob, source_path)
                self._with_retries(f"accept {target} blob {blob[:19]}", mount)
            self._with_retries(f"accept {target}:{tag}", lambda: api.put_manifest(path, tag, manifest))
            pushed = self._with_retries(f"serve {target}:{tag}", lambda: _require(api.manifest(path, tag), target, tag))
            if pushed.digest != digest:
                raise self._conflict(target, tag, pushed, digest, pushed=True)
        return PushedImage(reference=f"{target}:{tag}", digest=digest)

    def _path(self, repository: str) -> str:
        return f"{self.path_prefix}/{repository}" if self.path_prefix else repository

    @contextmanager
    def _api(self) -> Iterator[RegistryApi]:
        api = RegistryApi(
            base_url=self._base_url(),
            credentials=self._credentials(),
            credentials_hint=self._credentials_hint(),
            verify=self._verify(),
            timeout_seconds=self.request_timeout_seconds,
            trust_env=not _is_loopback(self.registry_host),  # a loopback registry: never through a proxy
        )
        try:
            self._with_retries("answer on /v2/", api.ping)
            yield api
        finally:
            api.close()

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_delay(self.retry_seconds),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _PushFailed, _ServerError)),
        )
        try:
            return retrying(lambda: _server_errors_retried(action))
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise RegistryUnavailableError(
                f"registry {self.registry_host} did not {what} within {self.retry_seconds:g} s "
                f"({exc.last_attempt.attempt_number} attempts; registry.retry_seconds in release.yaml): {last}"
            ) from None
        except requests.HTTPError as exc:
            raise RegistryUnavailableError(f"registry {self.registry_host} did not {what}: {exc}") from None

    def _conflict(self, target: str, tag: str, found: Manifest, ours: str, *, pushed: bool) -> ImageTagConflictError:
        image = f" (image {found.config_digest})" if found.config_digest else ""
        when = "after this push names" if pushed else "already names"
        race = "another push of the same tag raced this one; " if pushed else "nothing was pushed; "
        return ImageTagConflictError(
            f"{target}:{tag} {when} {found.digest}{image}, not this build's {ours}: a version names exactly one "
            f"image, so the tag is never overwritten. {race}build again to get a new version (the next build "
            f"number), or, if {found.digest} was pushed by mistake, delete tag {tag} in the registry first"
        )


class LocalRegistry(ReadsSecrets, V2Registry):
    """A registry you run: Debian's docker-registry on loopback in the demo, plain HTTP or TLS, htpasswd or none."""

    host: str = "127.0.0.1:5000"
    namespace: str = ""  # a path below the host, e.g. team/releases
    tls: bool = False
    ca_file: str | None = None  # the CA that signed the registry's certificate (PEM); None: the system's
    username: str | None = None  # given directly (tests); else read from username_env
    password: str | None = Field(default=None, repr=False)  # given directly (tests); else read from password_env
    username_env: str | None = None
    password_env: str | None = None

    @property
    def registry_host(self) -> str:
        return self.host

    @property
    def path_prefix(self) -> str:
        return self.namespace

    def _base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def _verify(self) -> str | bool:
        return self.ca_file or True

    def secret_variables(self) -> dict[str, str]:
        wanted = {self.username_env: self.username, self.password_env: self.password}
        return {name: f"the login to registry {self.host}" for name, given in wanted.items() if name and given is None}

    def _credentials(self) -> tuple[str, str] | None:
        user = secret(self.username, self.username_env, f"the user of registry {self.host}")
        if user is None:
            return None
        return user, secret(self.password, self.password_env, f"the password of registry {self.host}") or ""

    def _credentials_hint(self) -> str:
        if self.username_env:
            return f"put the registry user in {self.username_env} and its password in {self.password_env}"
        return "set registry.username_env and registry.password_env in release.yaml to the variables holding them"


class GoogleRegistry(V2Registry):
    """Artifact Registry or Container Registry, opened with an access token from Application Default Credentials."""

    host: str  # LOCATION-docker.pkg.dev, or gcr.io / eu.gcr.io / us.gcr.io / asia.gcr.io
    path: str  # PROJECT/REPOSITORY (Artifact Registry) or PROJECT (Container Registry)
    ca_file: str | None = None  # for a registry with a private certificate (tests); None: the system's CAs

    @property
    def registry_host(self) -> str:
        return self.host

    @property
    def path_prefix(self) -> str:
        return self.path

    def _verify(self) -> str | bool:
        return self.ca_file or True

    def _credentials(self) -> tuple[str, str] | None:
        return GOOGLE_TOKEN_USER, google_access_token(f"pushing to {self.host}/{self.path}")

    def _credentials_hint(self) -> str:
        return (
            f"the Google account behind Application Default Credentials needs roles/artifactregistry.writer on "
            f"{self.path} (or Storage write for Container Registry); {ADC_HINT}"
        )


class _ServerError(Exception):
    """A 5xx or 429 answer: the registry may answer properly when asked again."""


def _server_errors_retried(action: Callable[[], T]) -> T:
    try:
        return action()
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status == 429:
            raise _ServerError(str(exc)) from None
        raise


def _require(manifest: Manifest | None, name: str, reference: str) -> Manifest:
    if manifest is None:
        raise _PushFailed(f"{name}:{reference} is not served yet")
    return manifest


def _is_image(manifest: Manifest, image: Image, target: str) -> bool:
    """Whether `manifest` is the engine's `image`: its config is the image, or the engine pushed it there."""
    repo_digests = image.attrs.get("RepoDigests") or []
    return image.id in (manifest.config_digest, manifest.digest) or f"{target}@{manifest.digest}" in repo_digests


def _push_once(
    client: docker.DockerClient, target: str, tag: str, auth: dict[str, str] | None, credentials_hint: str
) -> None:
    try:
        for event in client.images.push(target, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise _PushFailed(event["error"])
    except APIError as exc:
        raise _PushFailed(exc.explanation) from None
    except _PushFailed as failed:
        if any(word in str(failed).lower() for word in REFUSALS):  # the registry's answer is final: no retries
            raise RegistryCredentialsError(f"{target}:{tag} was not pushed: {failed}; {credentials_hint}") from None
        raise


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False
