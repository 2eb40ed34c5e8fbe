"""Fixtures for the local runtime tests: real service images to deploy, and environments to deploy them in.

* ``contact_us_images`` - two builds of ``examples/contact-us`` (v1, v2), made by the product's own
  Gradle, image builder and registry resources and pushed to the suite's registry; the engine's
  copies are removed again, so the runtime pulls them by digest as a fresh host would,
* ``local_runtime`` - a ``LocalDockerRuntime`` on the suite's engine,
* ``make_environment`` - unique environment names; everything deployed in them is torn down at the end.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from fintech_release.resources.build_tool import GradleBuildTool
from fintech_release.resources.images import DockerImageBuilder
from fintech_release.resources.local_runtime import LocalDockerRuntime
from fintech_release.resources.registry import LocalRegistry
from fintech_release_tests.components import RegistryServer
from fintech_release_tests.conftest import DOCKER_HOST, EXAMPLES_DIR
from fintech_release_tests.release_setup import TEST_IMAGE_NAMESPACE

SERVICE = "contact-us"
# Versions of their own, so these tags never overwrite what other tests push to the same registry.
V1, V2 = "1.0.0-runtime1", "1.0.0-runtime2"


@dataclass(frozen=True)
class ServiceImages:
    """Pinned references (``host/contact-us@sha256:…``) of two builds that differ only in version."""

    v1: str
    v2: str


@pytest.fixture(scope="session")
def contact_us_images(
    tmp_path_factory: pytest.TempPathFactory,
    gradle_user_home: Path,
    base_image: str,
    registry: RegistryServer,
    docker_client: docker.DockerClient,
    pushed_image_cleanup: None,
) -> ServiceImages:
    """Build, push and pin contact-us twice; the local images are removed so deployments pull them."""
    checkout = tmp_path_factory.mktemp("runtime-checkout") / SERVICE
    shutil.copytree(EXAMPLES_DIR / SERVICE, checkout)
    gradle = GradleBuildTool(gradle_user_home=str(gradle_user_home))
    builder = DockerImageBuilder(docker_host=DOCKER_HOST)
    pusher = LocalRegistry(host=registry.host, docker_host=DOCKER_HOST)
    pinned = []
    for version in (V1, V2):
        jar = gradle.build_jar(project_dir=checkout, version=version)
        built = builder.build(
            context_dir=checkout,
            dockerfile="Dockerfile",
            reference=f"{TEST_IMAGE_NAMESPACE}/{SERVICE}:{version}",
            base_image=base_image,
            build_args={"JAR_FILE": str(Path(jar.path).relative_to(checkout))},
            labels={"org.opencontainers.image.version": version},
        )
        pushed = pusher.push(local_reference=built.reference, repository=SERVICE, tag=version)
        docker_client.images.remove(built.image_id, force=True)
        pinned.append(pushed.pinned_reference)
    return ServiceImages(v1=pinned[0], v2=pinned[1])


@pytest.fixture
def local_runtime(docker_client: docker.DockerClient) -> LocalDockerRuntime:
    """The runtime under test, on the suite's engine, with its default timeouts."""
    return LocalDockerRuntime(docker_host=DOCKER_HOST)


@pytest.fixture
def make_environment(local_runtime: LocalDockerRuntime) -> Iterator[Callable[[], str]]:
    """Hand out environment names unique to the test; each is torn down when the test ends."""
    names: list[str] = []

    def make() -> str:
        names.append(f"rt{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make
    for name in names:
        local_runtime.teardown(environment=name)
