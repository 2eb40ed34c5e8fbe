"""The artifact version scheme, in one place.

A service declares its base version (`version=1.0.0` in gradle.properties). Every build of it gets the
next build number, which only grows and is derived from the event log (the last `build/jar`
materialization of that service). The artifact version is `<base>-<build number>`, e.g. `1.0.0-7`:
it stamps the jar, names the local image `<image namespace>/<service>:<version>` (namespace
`fintech-release` unless release.yaml's build.image_namespace says otherwise) and tags the pushed
image `<registry>/<service>:<version>`, whose digest is what deployments use.
"""

from __future__ import annotations

import re

from dagster import DagsterInstance

from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BUILD_JAR

_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def next_build_number(instance: DagsterInstance, service: str) -> int:
    """One more than the build number of `service`'s newest build/jar (1 for a service never built)."""
    previous = latest_materialization_metadata(instance, BUILD_JAR, service)
    return 1 if previous is None else int(previous["build_number"]) + 1


def artifact_version(base_version: str, build_number: int) -> str:
    """`<base>-<build>`; ValueError when the result is not a valid image tag."""
    version = f"{base_version}-{build_number}"
    if not _DOCKER_TAG.match(version):
        raise ValueError(f"artifact version {version!r} is not a valid image tag (base version {base_version!r})")
    return version


def local_image_reference(namespace: str, service: str, version: str) -> str:
    """The name a service image has in the local engine before it is pushed."""
    return f"{namespace}/{service}:{version}"
