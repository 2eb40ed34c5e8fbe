"""Job and op names, in one place: what the UI lists, the CLI launches and sensors request.

An environment's name becomes a Dagster name with `dagster_name` (pre-prod → deploy_pre_prod).
"""

from fintech_release.records.keys import dagster_name

BUILD_AND_PUSH = "build_and_push"
BRANCH_CI = "branch_ci"
BASE_IMAGE = "base_image"


def deploy_job_name(environment: str) -> str:
    """`deploy_<env>`: prepare the environment and roll the candidate out (one run, one deployment)."""
    return f"deploy_{dagster_name(environment)}"


def approve_job_name(environment: str) -> str:
    """`approve_<env>`: record a yes/no decision on the environment's candidate (config in the launchpad)."""
    return f"approve_{dagster_name(environment)}"


def rollback_job_name(environment: str) -> str:
    """`rollback_<env>`: restore the last healthy release of every service the last deployment changed."""
    return f"rollback_{dagster_name(environment)}"


def restore_job_name(environment: str) -> str:
    """`restore_<env>`: bring back the recorded release of the selected services (the health watch's self-heal)."""
    return f"restore_{dagster_name(environment)}"


def rotate_job_name(environment: str) -> str:
    """`rotate_db_passwords_<env>`: new application database passwords, replicas replaced one rollout each."""
    return f"rotate_db_passwords_{dagster_name(environment)}"


def teardown_job_name(environment: str) -> str:
    """`teardown_<env>`: remove an ephemeral environment."""
    return f"teardown_{dagster_name(environment)}"


def approval_op_name(environment: str) -> str:
    """The op of `approve_<env>` that records the decision, addressed by run config."""
    return f"record_{dagster_name(environment)}_approval"
