"""Asset keys of the release graph, named once."""

from dagster import AssetKey

SOURCE_COMMIT = AssetKey(["source", "commit"])
BUILD_BASE_IMAGE = AssetKey(["build", "base_image"])
BUILD_ANALYSIS = AssetKey(["build", "analysis"])
BUILD_TESTS = AssetKey(["build", "tests"])
BUILD_JAR = AssetKey(["build", "jar"])
BUILD_IMAGE = AssetKey(["build", "image"])
REGISTRY_IMAGE = AssetKey(["registry", "image"])

# The state a teardown records on `<env>/cluster`: nothing of the environment runs after it.
TORN_DOWN = "torn down"

# Run tags that pin a run to one commit (set by sensors and the demo; the UI falls back to the last observation).
COMMIT_TAG = "fintech-release/commit"
BRANCH_TAG = "fintech-release/branch"
SERVICE_TAG = "fintech-release/service"
# Deployment runs carry their environment, so a run queue can admit one deployment per environment at a time.
DEPLOYMENT_TAG = "fintech-release/deployment"
# Runs executed in a fintech-release process name it, so a run whose process died can be told apart (records/runs.py).
PROCESS_TAG = "fintech-release/process"


def cluster_key(environment: str) -> AssetKey:
    """<env>/cluster: the environment's runtime."""
    return AssetKey([environment, "cluster"])


def database_key(environment: str) -> AssetKey:
    """<env>/database: the environment's databases and applied migrations."""
    return AssetKey([environment, "database"])


def ingress_key(environment: str) -> AssetKey:
    """<env>/ingress: the environment's entry point."""
    return AssetKey([environment, "ingress"])


def approval_key(environment: str) -> AssetKey:
    """<env>/approval: each materialization is one approval decision (the audit trail)."""
    return AssetKey([environment, "approval"])


def release_key(environment: str, service: str) -> AssetKey:
    """<env>/release/<service>: what the service runs in the environment."""
    return AssetKey([environment, "release", service])


def deployment_pool(environment: str) -> str:
    """The concurrency pool every step that changes `environment` holds (limit 1: one at a time)."""
    return f"deploy-{environment}"
