"""Shared pytest fixtures: real external components started by the suite.

* ``docker_client`` - a Docker engine (reused if running, else started and stopped again),
* ``registry`` - a real docker-registry on a free 127.0.0.1 port with temporary storage,
* ``unreachable_registry`` - a 127.0.0.1 address where nothing listens,
* ``git_bare_repo_factory`` - throw-away git repositories with a bare "remote",
* ``gradle_user_home`` - a Gradle home of the suite's own, its daemon stopped at the end,
* ``base_image`` - the JRE base image built by the product's own code, removed at the end,
* ``pushed_image_cleanup`` - removes the engine's tags of images pushed to the suite's registry,
* ``demo_checkout`` (fixtures_demo.py) - the repository root as `make demo` leaves it.

Process management lives in ``components.py``; this module only wires it to pytest.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from dagster import DagsterInstance

from fintech_release.resources._docker import DEFAULT_DOCKER_HOST
from fintech_release.resources.base_image import JlinkBaseImageBuilder
from fintech_release_tests.components import (
    DockerEngine,
    GitBareRepo,
    RegistryServer,
    free_port,
    remove_images,
)
from fintech_release_tests.release_setup import (
    EXAMPLES_DIR,
    REPO_ROOT,
    TEST_BASE_IMAGE,
    TEST_IMAGE_NAMESPACE,
    quiet_instance,
)

pytest_plugins = [
    "fintech_release_tests.fixtures_servers",
    "fintech_release_tests.fixtures_runtime",
    "fintech_release_tests.fixtures_dagster",
    "fintech_release_tests.fixtures_demo",
]

DOCKER_HOST = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: uses real external components started by the suite")


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A running Docker engine; stopped at the end only if this fixture started it."""
    engine = DockerEngine.ensure_running(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: DockerEngine) -> Iterator[docker.DockerClient]:
    """A ``docker.DockerClient`` connected to a running engine."""
    client = docker.DockerClient(base_url=docker_engine.base_url, timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A real registry on 127.0.0.1 (``.host`` is ``127.0.0.1:PORT``, ``.url`` its http URL)."""
    server = RegistryServer.start(tmp_path_factory.mktemp("registry"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def unreachable_registry() -> str:
    """``127.0.0.1:PORT`` where nothing listens (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


GitRepoFactory = Callable[..., GitBareRepo]


@pytest.fixture
def git_bare_repo_factory(tmp_path: Path) -> GitRepoFactory:
    """Build bare git repositories from a folder, e.g. ``examples/contact-us``.

    Call it as ``factory(source, author_name=..., author_email=..., message=...)``;
    ``source`` may be a path, a folder name under ``examples/`` or ``None`` (empty
    repository). It returns a :class:`GitBareRepo` with ``.bare_path`` and
    ``.commit(files, message, author_email) -> sha`` to add commits later.
    """
    counter = 0

    def make(
        source: str | Path | None = None,
        *,
        author_name: str = "Dev Eloper",
        author_email: str = "dev@example.com",
        message: str = "Initial commit",
    ) -> GitBareRepo:
        nonlocal counter
        counter += 1
        if isinstance(source, str) and not Path(source).is_absolute():
            source = EXAMPLES_DIR / source if (EXAMPLES_DIR / source).is_dir() else REPO_ROOT / source
        if source is not None and not Path(source).is_dir():
            raise FileNotFoundError(f"git_bare_repo_factory: no such folder {source}")
        name = Path(source).name if source is not None else "repo"
        return GitBareRepo.create(
            tmp_path / f"git-{counter}",
            Path(source) if source is not None else None,
            author_name=author_name,
            author_email=author_email,
            message=message,
            name=name,
        )

    return make


@pytest.fixture(scope="session")
def gradle_user_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Gradle home of the suite's own; its daemon is stopped at the end so no JVM outlives the tests."""
    home = tmp_path_factory.mktemp("gradle-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADLE_USER_HOME", str(home))
        try:
            yield home
        finally:
            subprocess.run(["gradle", "--stop"], env={**os.environ}, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """The JRE base image under the suite's own name, built with the product's own command; removed at the end."""
    JlinkBaseImageBuilder(docker_host=DOCKER_HOST).build(reference=TEST_BASE_IMAGE)
    try:
        yield TEST_BASE_IMAGE
    finally:
        remove_images(docker_client, lambda tag: tag.startswith(f"{TEST_IMAGE_NAMESPACE}/"))


@pytest.fixture(scope="session")
def pushed_image_cleanup(docker_client: docker.DockerClient, registry: RegistryServer) -> Iterator[None]:
    """Remove the engine's tags for images the suite pushed to its registry."""
    yield
    remove_images(docker_client, lambda tag: tag.startswith(f"{registry.host}/"))


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A fresh, quiet Dagster instance of the test's own (see release_setup.quiet_instance)."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    with quiet_instance(home) as instance:
        yield instance
