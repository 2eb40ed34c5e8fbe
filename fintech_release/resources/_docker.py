"""One way to reach the Docker engine, with a clear error when none answers."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from fintech_release.errors import DockerEngineUnavailableError

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
