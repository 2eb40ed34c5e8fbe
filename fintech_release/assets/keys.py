"""Asset keys of the release graph, named once."""

from dagster import AssetKey

SOURCE_COMMIT = AssetKey(["source", "commit"])
BUILD_ANALYSIS = AssetKey(["build", "analysis"])
BUILD_TESTS = AssetKey(["build", "tests"])
BUILD_JAR = AssetKey(["build", "jar"])
BUILD_IMAGE = AssetKey(["build", "image"])
REGISTRY_IMAGE = AssetKey(["registry", "image"])

# Run tags that pin a run to one commit (set by sensors and the demo; the UI falls back to the last observation).
COMMIT_TAG = "fintech-release/commit"
BRANCH_TAG = "fintech-release/branch"
