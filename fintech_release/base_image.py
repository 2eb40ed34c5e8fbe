"""The JRE base image every service image starts from, built locally because nothing can be pulled here."""

from __future__ import annotations

import tempfile
from pathlib import Path

from docker.errors import ImageNotFound

from fintech_release.resources._docker import connect_docker
from fintech_release.resources.jre_base import build_jre_rootfs, import_base_image

# Debian's JDK 17, whatever the machine's architecture: jlink builds the base image from it.
DEFAULT_JAVA_HOME = next(
    iter(sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))), Path("/usr/lib/jvm/java-17-openjdk")
)


def build_base_image(reference: str, *, java_home: Path, docker_host: str) -> tuple[str, str]:
    """jlink a JRE from `java_home` and import it as `reference`; return (image id, rootfs sha256)."""
    repository, _, tag = reference.rpartition(":")
    client = connect_docker(docker_host)
    with tempfile.TemporaryDirectory(prefix="fintech-release-jre-") as scratch:
        tarball = Path(scratch) / "jre-rootfs.tar"
        rootfs_sha = build_jre_rootfs(tarball, java_home=java_home)
        image_id = import_base_image(client, tarball, repository=repository, tag=tag)
    return image_id, rootfs_sha


def ensure_base_image(reference: str, *, java_home: Path, docker_host: str) -> str | None:
    """Build the base image unless the engine has it; return the new image id, or None if it was there."""
    try:
        connect_docker(docker_host).images.get(reference)
        return None
    except ImageNotFound:
        return build_base_image(reference, java_home=java_home, docker_host=docker_host)[0]
