"""The release graph: every asset, check, job, sensor and resource for the services and environments in release.yaml."""

import warnings
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    Definitions,
    JobDefinition,
    SensorDefinition,
    StaticPartitionsDefinition,
    map_asset_specs,
)

from fintech_release.assets.build import base_image_asset, build_assets
from fintech_release.assets.environments import environment_assets
from fintech_release.assets.registry import registry_assets
from fintech_release.assets.source import source_commit_spec
from fintech_release.config import ReleaseConfig
from fintech_release.jobs import (
    base_image_job,
    build_and_push_job,
    deploy_job_name,
    environment_jobs,
    restore_job_name,
    rollback_job_name,
    teardown_job_name,
)
from fintech_release.jobs.branch_ci import branch_ci_job
from fintech_release.notifications.deployments import deployment_report_sensors
from fintech_release.notifications.sensors import notification_sensors
from fintech_release.resources import platform_resources
from fintech_release.triggers.after_run import delivery_metrics_sensors, deploy_after_build_sensor, teardown_sensors
from fintech_release.triggers.commit_sensor import commit_sensor
from fintech_release.triggers.health_watch import health_watch_sensor

if TYPE_CHECKING:  # dagster does not export the type define_asset_job returns
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# Dagster 1.13 copies each sensor that targets a job needing the top-level resources when it binds them to the
# job, passing the sensor's `owners=[]` on, and its own beta check then warns about a parameter this project never
# sets. Filtered by that message alone, and only while the repository is built (see `resolved`).
_SENSOR_OWNERS_BETA = r"Parameter `owners` of initializer `SensorDefinition\.__init__` is currently in beta"


def build_definitions(config: ReleaseConfig) -> Definitions:
    """Every asset, check, job, sensor and resource for `config`."""
    services = StaticPartitionsDefinition(config.service_names)
    assets: list[AssetsDefinition | AssetSpec] = [
        source_commit_spec(services),
        base_image_asset(config),
        *build_assets(config, services),
        *registry_assets(config, services),
    ]
    build_and_push, branch_ci = build_and_push_job(), branch_ci_job(config)
    jobs: list[JobDefinition | UnresolvedAssetJobDefinition] = [base_image_job(), build_and_push, branch_ci]
    sensors: list[SensorDefinition] = [
        commit_sensor(config, build_and_push, branch_ci),
        *notification_sensors(config, [build_and_push, branch_ci]),
    ]
    deployments: list[JobDefinition | UnresolvedAssetJobDefinition] = []
    for environment in config.environments:
        assets += environment_assets(config, environment)
        env_jobs = environment_jobs(config, environment)
        jobs += env_jobs
        by_name = {job.name: job for job in env_jobs}
        changes = (deploy_job_name, rollback_job_name, restore_job_name)
        deployments += [by_name[name(environment.name)] for name in changes]
        deploy = by_name[deploy_job_name(environment.name)]
        if environment.deploy_after_build:
            sensors.append(deploy_after_build_sensor(environment.name, build_and_push, deploy))
        if environment.ephemeral:
            sensors += teardown_sensors(environment.name, deploy, by_name[teardown_job_name(environment.name)])
        else:
            sensors.append(health_watch_sensor(config, environment, by_name[restore_job_name(environment.name)]))
    sensors += deployment_report_sensors(config, deployments)
    sensors += delivery_metrics_sensors(config, deployments)
    owned = map_asset_specs(lambda spec: spec.replace_attributes(owners=_owners(config, spec.key)), assets)
    return resolved(Definitions(assets=owned, jobs=jobs, sensors=sensors, resources=platform_resources(config)))


def resolved(defs: Definitions) -> Definitions:
    """`defs` with its repository built now, without Dagster's BetaWarning about the sensors' `owners`.

    Dagster builds the repository once per Definitions and keeps it: the code location load, the runs, the CLI and
    the tests all use this one, so the warning never reaches a terminal, `dagster dev`'s log or pytest's summary.
    Definitions made of these sensors elsewhere (tests with resources of their own) go through here too.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SENSOR_OWNERS_BETA, category=BetaWarning)
        defs.get_repository_def()
    return defs


def _owners(config: ReleaseConfig, key: AssetKey) -> list[str]:
    """A release belongs to its service's owners; everything else (build, registry, environments) to the file's."""
    if len(key.path) == 3 and key.path[1] == "release":
        return config.owners_of(key.path[2])
    return list(config.owners)
