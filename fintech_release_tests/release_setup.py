"""Write a release.yaml for a test: its own workspace, base image, image namespace and registry."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import yaml
from dagster import DagsterInstance

from fintech_release.cli.instance import INSTANCE_SETTINGS
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release_tests.components import GitBareRepo

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"

# One namespace per test session, inherited by its subprocesses: sessions share the Docker engine, and the
# images one removes at its end (by tag) must not be the base image another is still building on.
TEST_IMAGE_NAMESPACE = os.environ.setdefault(
    "FINTECH_RELEASE_TEST_IMAGE_NAMESPACE", f"fintech-release-test-{secrets.token_hex(3)}"
)
TEST_BASE_IMAGE = f"{TEST_IMAGE_NAMESPACE}/jre:17"


def write_release_config(
    folder: Path,
    repositories: dict[str, Path],
    *,
    registry_host: str,
    quality_gate: dict[str, int] | None = None,
    environments: list[dict] | None = None,
    local: dict | None = None,
    service_env: dict[str, str] | None = None,
    jre_modules: list[str] | None = None,
    registry_retry_seconds: float | None = None,
    namespace_of: Path | None = None,
) -> ReleaseConfig:
    """A release.yaml in `folder` releasing `repositories` (service name -> bare repo) to `registry_host`, under the
    registry namespace of `folder` (or of `namespace_of`, to push where another test folder's release.yaml does)."""
    document = {
        "build": {
            "workspace": str(folder / "workspaces"),
            "base_image": TEST_BASE_IMAGE,
            "image_namespace": TEST_IMAGE_NAMESPACE,
            "jre_modules": jre_modules,
        },
        "analysis": {"quality_gate": quality_gate or {"blocker": 0, "critical": 0}},
        "registry": _registry(namespace_of or folder, registry_host, registry_retry_seconds),
        "services": [
            {
                "name": name,
                "repository": str(bare),
                "port": 18080 + index,
                "database": name.replace("-", "_"),
                "deployment": {"env": service_env or {}},
            }
            for index, (name, bare) in enumerate(repositories.items())
        ],
        "environments": environments or [{"name": "ci", "ephemeral": True}],
    }
    if local is not None:
        document["local"] = local
    path = folder / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(path)



def _registry(folder: Path, host: str, retry_seconds: float | None) -> dict:
    return {
        "host": host,
        "namespace": registry_namespace(folder),
        **({"retry_seconds": retry_seconds} if retry_seconds else {}),
    }


def registry_namespace(folder: Path) -> str:
    """The registry path a test's release.yaml pushes under: tests share one registry, and every fresh event log
    numbers its builds from 1 again, so without it two tests would push one tag with two images (refused)."""
    return "t" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]


def quiet_instance(home: Path) -> DagsterInstance:
    """A persistent instance in `home` (an empty folder) as a test's event log.

    Its dagster.yaml is the one the CLI writes for a new home (no telemetry, pools one step wide, one
    deployment per environment in the run queue, run monitoring); other processes (the CLI) open the
    same instance through DAGSTER_HOME.
    """
    (home / "dagster.yaml").write_text(INSTANCE_SETTINGS)
    return DagsterInstance.local_temp(str(home))


def example_repositories(root: Path, services: tuple[str, ...]) -> dict[str, Path]:
    """A bare repository under `root` for each example service, one commit each: service -> bare path."""
    return {
        name: GitBareRepo.create(
            root, EXAMPLES_DIR / name, author_name="Dev Eloper", author_email="dev@bank.example",
            message=f"Import {name}", name=name,
        ).bare_path
        for name in services
    }
