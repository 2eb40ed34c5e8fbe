"""The base image is an asset: a new one (here, one more Java module) makes every service image
stale, and one CLI backfill on the running instance rebuilds and pushes them all, fresh again."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from fintech_release.cli import launch
from fintech_release.records.keys import BUILD_IMAGE, REGISTRY_IMAGE
from fintech_release.assets.source import report_head_commits
from fintech_release.cli import main as cli_main
from fintech_release.config import ReleaseConfig
from fintech_release.release_graph import build_definitions
from fintech_release.resources.jre_base import JRE_MODULES
from fintech_release_tests.release_setup import example_repositories, quiet_instance, write_release_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]

SERVICES = ("contact-us", "payments", "accounts")


def _statuses(config: ReleaseConfig, home: Path, key: AssetKey) -> dict[str, StaleStatus]:
    """What the UI shows as stale, computed the way Dagster computes it (its resolver is internal API)."""
    with quiet_instance(home) as instance:
        graph = build_definitions(config).resolve_asset_graph()
        view = AssetGraphView(
            temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
            instance=instance,
            asset_graph=graph,
        )
        resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
        return {service: resolver.get_status(key, service) for service in SERVICES}


def test_new_base_image_makes_every_image_stale_until_one_backfill_rebuilds_them(
    tmp_path: Path, registry, dagster_dev_factory  # noqa: ANN001
) -> None:
    repositories = example_repositories(tmp_path / "git", SERVICES)
    for folder in ("before", "after"):
        (tmp_path / folder).mkdir()
    config = write_release_config(tmp_path / "before", repositories, registry_host=registry.host)
    patched = write_release_config(
        tmp_path / "after", repositories, registry_host=registry.host, jre_modules=[*JRE_MODULES, "java.xml.crypto"]
    )
    home = tmp_path / "dagster-home"
    home.mkdir()
    with quiet_instance(home) as instance:
        defs = build_definitions(config)
        assert launch.build_base_image(defs, instance).success
        for service, sha in report_head_commits(instance, config, defs.resources["source"]).items():
            assert launch.build_and_push(defs, instance, service, sha).success
    fresh = {service: StaleStatus.FRESH for service in SERVICES}
    stale = {service: StaleStatus.STALE for service in SERVICES}
    assert _statuses(config, home, BUILD_IMAGE) == fresh

    with quiet_instance(home) as instance:  # "a JDK security update": the base image changes
        assert launch.build_base_image(build_definitions(patched), instance).success
    assert _statuses(patched, home, BUILD_IMAGE) == stale  # Dagster marks the direct dependents stale

    dev = dagster_dev_factory(patched.source, home)
    assert cli_main(["--config", str(patched.source), "rebuild-images", "--url", dev.url, "--wait"]) == 0
    assert _statuses(patched, home, BUILD_IMAGE) == fresh
    assert _statuses(patched, home, REGISTRY_IMAGE) == fresh
