"""Helpers that write a release.yaml for a test and run the build_and_push job on a real instance."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from fintech_release.assets.keys import COMMIT_TAG
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.jobs import BUILD_AND_PUSH

TEST_IMAGE_NAMESPACE = "fintech-release-test"
TEST_BASE_IMAGE = f"{TEST_IMAGE_NAMESPACE}/jre:17"


def write_release_config(
    folder: Path,
    repositories: dict[str, Path],
    *,
    registry_host: str,
    quality_gate: dict[str, int] | None = None,
) -> ReleaseConfig:
    """A release.yaml in `folder` releasing `repositories` (service name -> bare repo) to `registry_host`."""
    document = {
        "build": {
            "workspace": str(folder / "workspaces"),
            "base_image": TEST_BASE_IMAGE,
            "image_namespace": TEST_IMAGE_NAMESPACE,
        },
        "analysis": {"quality_gate": quality_gate or {"blocker": 0, "critical": 0}},
        "registry": {"host": registry_host},
        "services": [
            {"name": name, "repository": str(bare), "port": 18080 + index}
            for index, (name, bare) in enumerate(repositories.items())
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    path = folder / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(path)


def run_build_and_push(
    defs: Definitions, instance: DagsterInstance, service: str, sha: str
) -> ExecuteInProcessResult:
    """Run the main build job for one service commit, as the commit sensor would launch it."""
    return defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
        instance=instance, partition_key=service, tags={COMMIT_TAG: sha}, raise_on_error=False
    )

