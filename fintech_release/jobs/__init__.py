"""The jobs people launch from the UI or the CLI, and the sensors request: their names (`names`), the build
jobs (`build`), each environment's jobs (`environment`, `approval`, `teardown`) and `branch_ci`."""

from fintech_release.jobs.build import base_image_job, build_and_push_job
from fintech_release.jobs.environment import environment_jobs
from fintech_release.jobs.names import (
    BASE_IMAGE,
    BRANCH_CI,
    BUILD_AND_PUSH,
    approval_op_name,
    approve_job_name,
    deploy_job_name,
    restore_job_name,
    rollback_job_name,
    rotate_job_name,
    teardown_job_name,
)
from fintech_release.jobs.teardown import teardown_job

__all__ = [
    "BASE_IMAGE",
    "BRANCH_CI",
    "BUILD_AND_PUSH",
    "approval_op_name",
    "approve_job_name",
    "base_image_job",
    "build_and_push_job",
    "deploy_job_name",
    "environment_jobs",
    "restore_job_name",
    "rollback_job_name",
    "rotate_job_name",
    "teardown_job",
    "teardown_job_name",
]
