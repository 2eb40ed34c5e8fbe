"""Image building: turn a service folder and its jar into a Docker image with the `docker` SDK (the default;
`cloud_build.py` builds where no Docker engine is)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path

from dagster import ConfigurableResource
from docker.errors import APIError, BuildError, ImageNotFound
from pydantic import BaseModel

from fintech_release.errors import ToolFailedError
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST, connect_docker, id_of

BUILD_LOG_TAIL_LINES = 30


class BuiltImage(BaseModel, frozen=True):
    """An image in the local engine, or in the registry when a remote builder (Cloud Build) pushed it there."""

    image_id: str
    reference: str
    size_bytes: int
    labels: dict[str, str]
    registry_digest: str | None = None  # set when the image is in the registry (reference names it there)


class ImageBuilder(ConfigurableResource):
    """Builds service images."""

    @abstractmethod
    def build(
        self,
        *,
        context_dir: Path,
        dockerfile: str,
        reference: str,
        base_image: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
    ) -> BuiltImage:
        """Build `dockerfile` in `context_dir` on `base_image` and tag the result `reference`."""

    @abstractmethod
    def holds(self, *, reference: str, image_id: str) -> bool:
        """Whether `reference` still names the image `image_id` built earlier (False when it cannot tell)."""


class DockerImageBuilder(ImageBuilder):
    """The Docker engine at `docker_host`; builds use host networking (no bridge exists here)."""

    docker_host: str = DEFAULT_DOCKER_HOST
    timeout_seconds: int = 600

    def build(
        self,
        *,
        context_dir: Path,
        dockerfile: str,
        reference: str,
        base_image: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
    ) -> BuiltImage:
        client = connect_docker(self.docker_host, timeout_seconds=self.timeout_seconds)
        try:
            client.images.get(base_image)
        except ImageNotFound:
            raise ToolFailedError(
                f"base image {base_image} is not in the Docker engine at {self.docker_host}: "
                "build it with `fintech-release base-image` (no registry can be pulled from here)"
            ) from None
        if not (context_dir / dockerfile).is_file():
            raise ToolFailedError(f"{context_dir / dockerfile} does not exist (service Dockerfile)")
        try:
            image, _log = client.images.build(
                path=str(context_dir),
                dockerfile=dockerfile,
                tag=reference,
                buildargs={"BASE_IMAGE": base_image, **build_args},
                labels=dict(labels),
                network_mode="host",
                rm=True,
                forcerm=True,
                pull=False,
            )
        except BuildError as exc:
            log = "".join(str(entry.get("stream", entry.get("error", ""))) for entry in exc.build_log)
            tail = "\n".join(log.strip().splitlines()[-BUILD_LOG_TAIL_LINES:])
            raise ToolFailedError(f"docker build of {reference} failed: {exc.msg}\n{tail}") from None
        except APIError as exc:
            raise ToolFailedError(f"docker build of {reference} failed: {exc.explanation}") from None
        return BuiltImage(
            image_id=id_of(image),
            reference=reference,
            size_bytes=int(image.attrs.get("Size", 0)),
            labels=dict(image.labels),
        )

    def holds(self, *, reference: str, image_id: str) -> bool:
        client = connect_docker(self.docker_host, timeout_seconds=self.timeout_seconds)
        try:
            return client.images.get(reference).id == image_id
        except ImageNotFound:
            return False
