"""A `make demo` checkout of the benchmarks' own, on real components, removed again however the benchmark ends.

    with local_release("noop") as release:   # registry, MariaDB, base image, seeded repositories, DAGSTER_HOME
        release.build_and_push_all()
        release.cli("deploy", "staging")

What `make demo` sets up, started by the test suite's helpers (fintech_release_tests/components.py,
fixtures_servers.py) rather than scripts/start-*.sh, so nothing here touches a running demo or another
session: a docker-registry on a free loopback port, a private MariaDB on a free port, a Gradle home of its own
(its daemon stopped at the end), the JRE base image built by the product's own code under the image namespace
`fintech-release-bench-orch`, the container scope `fintech-release-bench-orch` and the loopback addresses
127.0.81.x. The repository's release.yaml is used as it is, with only those places changed. At the end every
environment is torn down (containers, nginx, databases), the images tagged under the namespace and the
registry are removed, the servers stopped and the folder deleted, also when the benchmark failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks.harness import environment

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"
SCOPE = "fintech-release-bench-orch"
IMAGE_NAMESPACE = SCOPE
BASE_IMAGE = f"{IMAGE_NAMESPACE}/jre:17"
ADDRESSES = {"ci": "127.0.81.1", "staging": "127.0.81.2", "production": "127.0.81.3"}
# Nothing listens here: the CLI finds no webserver and runs in its own process, as a user's does without make ui.
NO_WEBSERVER = "http://127.0.81.250:3000"
DB_PASSWORD_ENV = "FINTECH_RELEASE_DB_PASSWORD"


@dataclass
class LocalRelease:
    """The checkout, its release.yaml and the environment a CLI process needs to use it."""

    root: Path
    env: dict[str, str]
    registry_host: str
    gradle_user_home: Path
    said: list[str] = field(default_factory=list)

    @property
    def release_yaml(self) -> Path:
        return self.root / "release.yaml"

    @property
    def home(self) -> Path:
        return self.root / ".dagster_home"

    def config(self):  # noqa: ANN201 - ReleaseConfig, imported late (importing the product is measured elsewhere)
        from fintech_release.config import load_release_config

        return load_release_config(self.release_yaml)

    @contextmanager
    def environ(self) -> Iterator[None]:
        """This process's environment set as a CLI process of the checkout gets it (restored afterwards)."""
        with environment(**self.env):
            yield

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`fintech-release ARGS` in a fresh process at the checkout's root, as a user runs it (no webserver)."""
        completed = subprocess.run(
            [sys.executable, "-m", "fintech_release.cli", *args],
            cwd=self.root, env=self.process_env(), capture_output=True, text=True, timeout=900, check=False,
        )
        if check and completed.returncode != 0:
            raise RuntimeError(
                f"fintech-release {' '.join(args)} exited {completed.returncode}:\n"
                f"{completed.stdout}\n{completed.stderr}"
            )
        return completed

    def process_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """os.environ plus the checkout's variables, with this worktree's code first on PYTHONPATH."""
        return {**os.environ, **self.env, "PYTHONPATH": str(REPO_ROOT), **(extra or {})}

    def build_and_push_all(self) -> dict[str, str]:
        """What `make demo` does first: seed the repositories, observe their heads, build and push each service."""
        from fintech_release.cli.demo import build_and_push_all
        from fintech_release.cli.instance import open_instance
        from fintech_release.release_graph import build_definitions

        config = self.config()
        with self.environ(), open_instance() as instance:
            return build_and_push_all(config, build_definitions(config), instance, EXAMPLES_DIR, say=self.said.append)

    def teardown_all(self) -> None:
        """Every environment of release.yaml torn down by the product's own teardown (containers, nginx, databases)."""
        self.cli("teardown", "--all", "--in-process")


def _release_yaml(root: Path, registry_host: str, mariadb_host: str, mariadb_port: int, mariadb_user: str) -> None:
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    document["build"].update(base_image=BASE_IMAGE, image_namespace=IMAGE_NAMESPACE)
    document["registry"].update(host=registry_host, namespace="bench-orch")
    document["local"].update(scope=SCOPE)
    document["local"]["database"].update(host=mariadb_host, port=mariadb_port, user=mariadb_user)
    for env in document["environments"]:
        env["address"] = ADDRESSES[env["name"]]
    document["source_control"] = {"poll_interval_seconds": 3600}
    (root / "release.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def _remove_images(registry_host: str) -> None:
    """The engine's tags under the benchmarks' namespace and the benchmarks' registry (by tag, nobody else's)."""
    import docker

    from fintech_release_tests.components import remove_images

    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", timeout=120)
    try:
        remove_images(client, lambda tag: tag.startswith((f"{IMAGE_NAMESPACE}/", f"{registry_host}/")))
    finally:
        client.close()


@contextmanager
def local_release(name: str) -> Iterator[LocalRelease]:
    """A fresh `make demo` checkout on real components (see the module docstring); everything removed at the end."""
    from fintech_release.cli.instance import INSTANCE_SETTINGS
    from fintech_release.resources.base_image import JlinkBaseImageBuilder
    from fintech_release_tests.components import RegistryServer
    from fintech_release_tests.fixtures_servers import MariaDBServer

    # Short: MariaDB's unix socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix=f"fr-bench-{name}-", dir="/tmp"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        registry = RegistryServer.start(root / "registry")
        cleanup.callback(registry.stop)
        mariadb = MariaDBServer.start(root / "mariadb")
        cleanup.callback(mariadb.stop)
        gradle_home = root / "gradle-home"
        gradle_home.mkdir()
        env = {
            "DAGSTER_HOME": str(root / ".dagster_home"),
            "FINTECH_RELEASE_CONFIG": str(root / "release.yaml"),
            DB_PASSWORD_ENV: mariadb.password,
            "FINTECH_RELEASE_DAGSTER_URL": NO_WEBSERVER,
            "GRADLE_USER_HOME": str(gradle_home),
        }
        cleanup.callback(
            subprocess.run, ["gradle", "--stop"], env={**os.environ, "GRADLE_USER_HOME": str(gradle_home)},
            capture_output=True, timeout=120, check=False,
        )
        cleanup.callback(_remove_images, registry.host)
        JlinkBaseImageBuilder(docker_host=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").build(
            reference=BASE_IMAGE
        )
        _release_yaml(root, registry.host, mariadb.host, mariadb.port, mariadb.user)
        (root / ".dagster_home").mkdir()
        (root / ".dagster_home" / "dagster.yaml").write_text(INSTANCE_SETTINGS)
        (root / ".demo").mkdir()
        (root / ".demo" / "db-password").write_text(mariadb.password + "\n")
        release = LocalRelease(root=root, env=env, registry_host=registry.host, gradle_user_home=gradle_home)
        cleanup.callback(release.teardown_all)
        yield release
