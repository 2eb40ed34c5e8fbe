"""The release graph: every asset, check, job and resource for the services and environments in release.yaml."""

from __future__ import annotations

from dagster import Definitions, StaticPartitionsDefinition

from fintech_release.assets.build import build_assets
from fintech_release.assets.registry import registry_assets
from fintech_release.assets.source import source_commit_spec
from fintech_release.config import ReleaseConfig
from fintech_release.jobs import build_and_push_job
from fintech_release.resources import platform_resources


def build_definitions(config: ReleaseConfig) -> Definitions:
    """Every asset, check, job and resource for `config`."""
    services = StaticPartitionsDefinition(config.service_names)
    return Definitions(
        assets=[source_commit_spec(services), *build_assets(config, services), *registry_assets(services)],
        jobs=[build_and_push_job()],
        resources=platform_resources(config),
    )

