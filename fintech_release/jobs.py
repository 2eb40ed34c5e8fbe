"""Jobs people launch from the UI or the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

BUILD_AND_PUSH = "build_and_push"


def build_and_push_job() -> "UnresolvedAssetJobDefinition":
    """Commit to pushed image for one service: analysis, tests, jar, image, push (with their gates)."""
    return define_asset_job(
        BUILD_AND_PUSH,
        selection=AssetSelection.groups("build", "registry"),
        description="Take one service's commit to a pushed image. Partition = service.",
    )
