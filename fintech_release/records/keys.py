"""Asset keys of the release graph and the Dagster names derived from an environment's name, named once."""

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

# Run tags that pin a run to one commit (set by sensors and the demo; the UI falls back to the last recorded head).
COMMIT_TAG = "fintech-release/commit"
BRANCH_TAG = "fintech-release/branch"
SERVICE_TAG = "fintech-release/service"
# Deployment runs carry their environment, so a run queue can admit one deployment per environment at a time.
DEPLOYMENT_TAG = "fintech-release/deployment"
# Runs executed in a fintech-release process name it, so a run whose process died can be told apart (records/runs.py).
PROCESS_TAG = "fintech-release/process"


def dagster_name(environment: str) -> str:
    """`environment` where Dagster wants a name (job, op, group, sensor, resource key): '-' becomes '_'.

    Dagster names must match ^[A-Za-z0-9_]+$; environment names may hold '-' (pre-prod, qa-eu) but never '_', so
    no two environments get the same name. Asset keys keep the environment as written (pre-prod/release/payments).
    """
    return environment.replace("-", "_")


def environment_group(environment: str) -> str:
    """`env_<env>`: the asset group of an environment's cluster, database, ingress, approval and releases."""
    return f"env_{dagster_name(environment)}"


def releases_op_name(environment: str) -> str:
    """`<env>_releases`: the op behind `<env>/release/*`, addressed by run config."""
    return f"{dagster_name(environment)}_releases"


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


def delivery_key(environment: str) -> AssetKey:
    """<env>/delivery: DORA's four keys for the environment, recorded after each deployment."""
    return AssetKey([environment, "delivery"])


def release_key(environment: str, service: str) -> AssetKey:
    """<env>/release/<service>: what the service runs in the environment."""
    return AssetKey([environment, "release", service])


def deployment_pool(environment: str) -> str:
    """The concurrency pool every step that changes `environment` holds (limit 1: one at a time)."""
    return f"deploy-{environment}"
