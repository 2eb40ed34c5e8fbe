"""The build jobs: one service's commit to a pushed image, and the JRE base image."""

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job

from fintech_release.jobs.names import BASE_IMAGE, BUILD_AND_PUSH
from fintech_release.records.keys import BUILD_BASE_IMAGE

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_and_push_job() -> "UnresolvedAssetJobDefinition":
    """Commit to pushed image for one service: analysis, tests, jar, image, push (with their gates)."""
    return define_asset_job(
        BUILD_AND_PUSH,
        selection=AssetSelection.groups("build", "registry"),
        description="Take one service's commit to a pushed image. Partition = service.",
    )


def base_image_job() -> "UnresolvedAssetJobDefinition":
    """Rebuild the JRE base image; every service image then shows as stale until it is rebuilt."""
    return define_asset_job(
        BASE_IMAGE,
        selection=AssetSelection.assets(BUILD_BASE_IMAGE),
        description="Rebuild the JRE base image (after a JDK update or a change of build.jre_modules).",
    )
