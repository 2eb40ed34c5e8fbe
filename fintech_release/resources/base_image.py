"""The JRE base image service images start from, built locally because nothing can be pulled here."""

from __future__ import annotations

import tempfile
from abc import abstractmethod
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import BaseModel

from fintech_release.resources._docker import DEFAULT_DOCKER_HOST, connect_docker
from fintech_release.resources.jre_base import JRE_MODULES, build_jre_rootfs, import_base_image, imported_base_image

# Debian's JDK 17, whatever the machine's architecture: jlink builds the base image from it.
DEFAULT_JAVA_HOME = next(
    iter(sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))), Path("/usr/lib/jvm/java-17-openjdk")
)


class BuiltBaseImage(BaseModel, frozen=True):
    """A base image in the engine; `content_digest` names its contents (the image id changes per import)."""

    reference: str
    image_id: str
    content_digest: str
    modules: tuple[str, ...]
    imported: bool = True  # False: the engine already held this content under `reference`, kept as it was


class BaseImageBuilder(ConfigurableResource):
    """Builds the runtime base image."""

    @abstractmethod
    def build(self, *, reference: str, modules: tuple[str, ...] | None = None) -> BuiltBaseImage:
        """Build the base image (with these Java modules, or the default set) and tag it `reference`."""


class JlinkBaseImageBuilder(BaseImageBuilder):
    """jlink a JRE from the local JDK, add the glibc files it loads, import it into the Docker engine (unless the
    engine already holds that content under the reference)."""

    java_home: str = str(DEFAULT_JAVA_HOME)
    docker_host: str = DEFAULT_DOCKER_HOST

    def build(self, *, reference: str, modules: tuple[str, ...] | None = None) -> BuiltBaseImage:
        repository, _, tag = reference.rpartition(":")
        chosen = tuple(modules or JRE_MODULES)
        client = connect_docker(self.docker_host)
        with tempfile.TemporaryDirectory(prefix="fintech-release-jre-") as scratch:
            tarball = Path(scratch) / "jre-rootfs.tar"
            content = build_jre_rootfs(tarball, java_home=Path(self.java_home), modules=chosen)
            # Importing the same content again would make a new image id, and every service image built on it new.
            kept = imported_base_image(client, reference, content)
            image_id = kept or import_base_image(
                client, tarball, repository=repository, tag=tag, content_sha256=content
            )
        return BuiltBaseImage(
            reference=reference, image_id=image_id, content_digest=f"sha256:{content}", modules=chosen,
            imported=kept is None,
        )
