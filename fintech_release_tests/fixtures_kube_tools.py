"""Fixtures for the gke path's Helm tests: the real helm binary and a cluster address that does not answer.

* ``helm_executable`` - the real helm: on PATH, else in .tools/bin, else installed there by
  scripts/install-kube-tools.sh (the test fails, with the script's output, when that fails),
* ``unreachable_kubeconfig`` - a kubeconfig whose only context points at a 127.0.0.1 port where
  nothing listens, so helm's cluster calls fail fast and never reach a real cluster,
* ``gke_release_config`` - the repository's own release.yaml with every environment turned into a
  gke environment (the demo's services, replicas and overrides unchanged).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release_tests.components import free_port
from fintech_release_tests.release_setup import REPO_ROOT

TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-kube-tools.sh"
GKE_PROJECT = "fintech-release-test"
GKE_REGION = "europe-west1"


@pytest.fixture(scope="session")
def helm_executable() -> str:
    """Path of a real helm binary (installed into .tools/bin on first use)."""
    found = shutil.which("helm") or (str(TOOLS_BIN / "helm") if (TOOLS_BIN / "helm").is_file() else None)
    if found:
        return found
    completed = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0 or not (TOOLS_BIN / "helm").is_file():
        pytest.fail(f"helm is not installed and {INSTALL_SCRIPT} failed:\n{completed.stdout}\n{completed.stderr}")
    return str(TOOLS_BIN / "helm")


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig (context `unreachable`) for an API server address on loopback where nothing listens."""
    path = tmp_path / "kubeconfig"
    server = f"https://127.0.0.1:{free_port()}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "nowhere", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "nobody", "user": {}}],
                "contexts": [{"name": "unreachable", "context": {"cluster": "nowhere", "user": "nobody"}}],
                "current-context": "unreachable",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def gke_release_config(tmp_path_factory: pytest.TempPathFactory) -> ReleaseConfig:
    """release.yaml of this repository with each environment on the gke platform (namespace `fintech-<env>`)."""
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    for environment in document["environments"]:
        name = environment["name"]
        environment["platform"] = "gke"
        environment["gke"] = {
            "project": GKE_PROJECT,
            "region": GKE_REGION,
            "namespace": f"fintech-{name}",
            "kube_context": f"gke_{GKE_PROJECT}_{GKE_REGION}_{name}",
            "cloudsql_instance": f"{GKE_PROJECT}:{GKE_REGION}:{name}-sql",
        }
    path = tmp_path_factory.mktemp("gke-config") / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(path)
