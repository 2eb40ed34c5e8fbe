"""`make demo`'s result, built once per session for the tests that start where a newcomer starts.

* ``demo_checkout`` - a folder shaped like the repository root after `make demo`: the repository's own
  release.yaml, pointed at the suite's registry (a namespace of its own), MariaDB and base image, an image
  namespace of its own, its own container scope and loopback addresses; `.demo/db-password` (the suite's
  MariaDB password, as `make demo` generates one), `.demo/git/<service>.git`, `.dagster_home` and `.venv` (the
  suite's own interpreter). `build_and_push_all` ran on it twice, as running `make demo` twice does: the base image and
  one build per service the first time, nothing the second time.

Everything in it is real: git, Checkstyle, Gradle, the Docker engine, the registry.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from fintech_release.cli.demo import build_and_push_all
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import RegistryServer
from fintech_release_tests.fixtures_servers import MariaDBServer
from fintech_release_tests.release_setup import (
    EXAMPLES_DIR,
    REPO_ROOT,
    TEST_BASE_IMAGE,
    TEST_IMAGE_NAMESPACE,
    quiet_instance,
    registry_namespace,
)

# A container scope of its own: other modules deploy environments named staging under the suite's scope.
DEMO_SCOPE = "fintech-release-test-demo"
# Images of its own (removed with the suite's): other modules build payments:1.0.0-1 from other commits, and a
# tag they move would make the demo's unchanged images look gone and be rebuilt.
DEMO_IMAGE_NAMESPACE = f"{TEST_IMAGE_NAMESPACE}/demo"
# Loopback addresses of the demo's environments here, apart from a real demo's (127.0.<n>.1) and other tests'.
ADDRESSES = {"ci": "127.0.61.1", "staging": "127.0.62.1", "production": "127.0.63.1"}


@dataclass(frozen=True)
class DemoCheckout:
    """The folder a newcomer stands in after `make demo`, and what `make demo` did there."""

    root: Path
    config: ReleaseConfig
    pushed: dict[str, str]  # service -> "reference  digest", as `make demo` prints it
    pushed_again: dict[str, str]
    said: list[str]  # what the demo said, both times
    runs_after_first: int
    runs_after_second: int

    @property
    def home(self) -> Path:
        return self.root / ".dagster_home"

    def instance(self) -> DagsterInstance:
        """The demo's event log (open it in a `with`)."""
        return quiet_instance(self.home)


@pytest.fixture(scope="session")
def demo_checkout(
    tmp_path_factory: pytest.TempPathFactory,
    registry: RegistryServer,
    mariadb: MariaDBServer,
    gradle_user_home: Path,
    base_image: str,
    pushed_image_cleanup: None,
) -> DemoCheckout:
    """The repository root after `make demo` (its images pushed; see the module docstring)."""
    root = tmp_path_factory.mktemp("checkout")
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    document["build"].update(base_image=TEST_BASE_IMAGE, image_namespace=DEMO_IMAGE_NAMESPACE)
    document["registry"].update(host=registry.host, namespace=registry_namespace(root))
    document["local"].update(scope=DEMO_SCOPE)
    document["local"]["database"].update(host=mariadb.host, port=mariadb.port, user=mariadb.user)
    for environment in document["environments"]:
        environment["address"] = ADDRESSES[environment["name"]]
    # The commit sensor's first tick only records the heads; with the demo's 60 s the commits a test pushes
    # (the README's CI-loop block) would start builds while it runs.
    document["source_control"] = {"poll_interval_seconds": 3600}
    (root / "release.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / ".demo").mkdir()
    (root / ".demo" / "db-password").write_text(mariadb.password + "\n")
    (root / ".venv").symlink_to(sys.prefix)
    (root / ".dagster_home").mkdir()
    config = load_release_config(root / "release.yaml")
    defs = build_definitions(config)
    said: list[str] = []
    with quiet_instance(root / ".dagster_home") as instance:
        pushed = build_and_push_all(config, defs, instance, EXAMPLES_DIR, say=said.append)
        runs_after_first = len(instance.get_runs())
        pushed_again = build_and_push_all(config, defs, instance, EXAMPLES_DIR, say=said.append)
        runs_after_second = len(instance.get_runs())
    return DemoCheckout(
        root=root, config=config, pushed=pushed, pushed_again=pushed_again, said=said,
        runs_after_first=runs_after_first, runs_after_second=runs_after_second,
    )
