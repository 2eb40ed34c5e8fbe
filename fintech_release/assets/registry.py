"""registry/image: the service image pushed to the registry; its registry digest is what gets deployed."""


from dagster import AssetExecutionContext, AssetsDefinition, DataVersion, MaterializeResult, PartitionsDefinition, asset

from fintech_release.config import ReleaseConfig
from fintech_release.records.event_log import require_latest_materialization
from fintech_release.records.keys import BUILD_IMAGE, REGISTRY_IMAGE
from fintech_release.resources.registry import ImageRegistry


def registry_assets(config: ReleaseConfig, services: PartitionsDefinition) -> list[AssetsDefinition]:
    """The push stage for every service."""

    @asset(
        key=REGISTRY_IMAGE,
        deps=[BUILD_IMAGE],
        partitions_def=services,
        group_name="registry",
        kinds={"docker"},
        description="The image in the registry, tagged with the artifact version; data version = digest.",
    )
    def pushed_image(context: AssetExecutionContext, registry: ImageRegistry) -> MaterializeResult:
        built = require_latest_materialization(context, BUILD_IMAGE)
        service, version = context.partition_key, str(built["version"])
        if "registry_digest" in built:  # a remote builder left it in the registry's build namespace
            pushed = registry.copy_image(
                source_repository=f"{config.build.image_namespace}/{service}", digest=str(built["registry_digest"]),
                repository=service, tag=version,
            )
        else:
            pushed = registry.push(local_reference=str(built["reference"]), repository=service, tag=version)
        context.log.info(f"pushed {pushed.reference} as {pushed.digest}")
        return MaterializeResult(
            metadata={
                "commit": built["commit"],
                "author_email": built["author_email"],
                "committed_at": str(built.get("committed_at", "")),
                "version": built["version"],
                "jar_version": built.get("jar_version", built["version"]),
                "reference": pushed.reference,
                "digest": pushed.digest,
                "pinned_reference": pushed.pinned_reference,
                "image_id": built["image_id"],
            },
            data_version=DataVersion(pushed.digest),
        )

    return [pushed_image]
