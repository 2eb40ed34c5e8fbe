"""The artifact version scheme, in one place.

A service declares its base version (`version=1.0.0` in gradle.properties). Every build of it gets the
next build number, which only grows and is derived from the event log (the last `build/jar`
materialization of that service). The jar's version is `<base>-<build number>`, e.g. `1.0.0-7`.

An image is named by its own version, so a version names exactly one image: the first image of a jar
has the jar's version; every later image of the same jar (a rebuild on a new base image) gets the next
**rebuild suffix**, `1.0.0-7.r1`, `1.0.0-7.r2`, … (semver orders them after 1.0.0-7 and before 1.0.0-8).
The jar inside stays 1.0.0-7: the same bytes, tested once, traceable to one build. An image whose jar and
base image content are those of the service's newest image is not built again: it keeps that version.
The image version names the local image `<image namespace>/<service>:<version>` (namespace
`fintech-release` unless release.yaml's build.image_namespace says otherwise) and tags the pushed image
`<registry>/<service>:<version>`, whose digest is what deployments use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dagster import DagsterInstance

from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BUILD_JAR

_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REBUILD_MARK = ".r"


def next_build_number(instance: DagsterInstance, service: str) -> int:
    """One more than the build number of `service`'s newest build/jar (1 for a service never built)."""
    previous = latest_materialization_metadata(instance, BUILD_JAR, service)
    return 1 if previous is None else int(previous["build_number"]) + 1


def artifact_version(base_version: str, build_number: int) -> str:
    """`<base>-<build>`; ValueError when the result is not a valid image tag."""
    return _valid_tag(f"{base_version}-{build_number}", f"base version {base_version!r}")


def image_version(jar_version: str, rebuild: int) -> str:
    """The jar's version for its first image (rebuild 0), `<jar version>.r<rebuild>` for each later one."""
    version = jar_version if rebuild == 0 else f"{jar_version}{REBUILD_MARK}{rebuild}"
    return _valid_tag(version, f"jar version {jar_version!r}")


def next_rebuild(previous_image: Mapping[str, Any] | None, jar_version: str) -> int:
    """The rebuild number of a new image of `jar_version`, given the service's newest build/image record.

    0 when that record is of another jar (or there is none); else one more than its rebuild. Records
    older than the rebuild suffix carry neither `jar_version` nor `rebuild`: their version was the jar's.
    """
    if previous_image is None:
        return 0
    if str(previous_image.get("jar_version", previous_image.get("version"))) != jar_version:
        return 0
    return int(previous_image.get("rebuild", 0)) + 1


def local_image_reference(namespace: str, service: str, version: str) -> str:
    """The name a service image has in the local engine before it is pushed."""
    return f"{namespace}/{service}:{version}"


def _valid_tag(version: str, source: str) -> str:
    if not _DOCKER_TAG.match(version):
        raise ValueError(f"artifact version {version!r} is not a valid image tag ({source})")
    return version
