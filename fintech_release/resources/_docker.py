"""One way to reach the Docker engine, with a clear error when none answers."""

from __future__ import annotations

import docker
from docker.errors import DockerException
from docker.models.images import Image

from fintech_release.errors import DockerEngineUnavailableError, ExternalSystemError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
START_HINT = (
    "Start one with `sudo dockerd --iptables=false --bridge=none &` (`make demo` and `make test` do it), "
    "or point docker_host at a running engine."
)


def connect_docker(docker_host: str, *, timeout_seconds: int = 120) -> docker.DockerClient:
    """A client for the engine at `docker_host`, checked with a ping."""
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout_seconds)
        client.ping()
    except DockerException as exc:
        raise DockerEngineUnavailableError(
            f"no Docker engine answers at {docker_host} ({type(exc).__name__}). {START_HINT}"
        ) from None
    return client


def id_of(image: Image) -> str:
    """The id of an image the engine holds (the SDK types it as optional; the engine always sends one)."""
    if not image.id:
        raise ExternalSystemError(f"the Docker engine reported image {', '.join(image.tags) or '?'} without an id")
    return image.id
