"""The base image is an asset: a new one (here, one more Java module) makes every service image stale, and one
CLI backfill on the running instance rebuilds and pushes them all, fresh again, each under a new version (a
rebuild of the same jar: 1.0.0-1.r1), while the old tags keep naming their old digests in the real registry,
and pushing a rebuilt image under an old tag is refused. The same content is not imported again (a new image
id would give every service image a new digest); `base-image` saying `unchanged` runs in test_readme.py."""

from __future__ import annotations

import hashlib
import tarfile
import uuid
from pathlib import Path

import pytest
import requests
from dagster import AssetKey
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from fintech_release.assets.source import report_head_commits
from fintech_release.cli import launch, main as cli_main
from fintech_release.config import ReleaseConfig
from fintech_release.errors import ImageTagConflictError
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BUILD_IMAGE, REGISTRY_IMAGE
from fintech_release.release_graph import build_definitions
from fintech_release.resources.jre_base import JRE_MODULES, import_base_image, imported_base_image
from fintech_release.resources.registry_api import MANIFEST_MEDIA_TYPES
from fintech_release_tests.release_setup import (
    TEST_IMAGE_NAMESPACE,
    example_repositories,
    quiet_instance,
    write_release_config,
)

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


def test_new_base_image_makes_every_image_stale_until_one_backfill_rebuilds_them_under_new_versions(
    tmp_path: Path, registry, dagster_dev_factory  # noqa: ANN001
) -> None:
    repositories = example_repositories(tmp_path / "git", SERVICES)
    for folder in ("before", "after"):
        (tmp_path / folder).mkdir()
    config = write_release_config(tmp_path / "before", repositories, registry_host=registry.host)
    patched = write_release_config(
        tmp_path / "after", repositories, registry_host=registry.host, jre_modules=[*JRE_MODULES, "java.xml.crypto"],
        namespace_of=tmp_path / "before",
    )
    home = tmp_path / "dagster-home"
    home.mkdir()
    with quiet_instance(home) as instance:
        defs = build_definitions(config)
        assert launch.build_base_image(defs, instance).success
        for service, sha in report_head_commits(instance, config, defs.resources["source"]).items():
            assert launch.build_and_push(defs, instance, service, sha).success
        first = {service: latest_materialization_metadata(instance, REGISTRY_IMAGE, service) for service in SERVICES}
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

    with quiet_instance(home) as instance:
        rebuilt = {service: latest_materialization_metadata(instance, REGISTRY_IMAGE, service) for service in SERVICES}
        images = {service: latest_materialization_metadata(instance, BUILD_IMAGE, service) for service in SERVICES}
    for service in SERVICES:
        old, new = first[service], rebuilt[service]
        assert (old["version"], new["version"], new["jar_version"]) == ("1.0.0-1", "1.0.0-1.r1", "1.0.0-1")
        assert new["digest"] != old["digest"] and new["commit"] == old["commit"]
        repository = f"{patched.registry.path_prefix}/{service}"
        assert _served_digest(registry, repository, "1.0.0-1") == old["digest"]  # the old tag: its old image
        assert _served_digest(registry, repository, "1.0.0-1.r1") == new["digest"]

    forced = build_definitions(patched).resources["registry"]  # the rebuilt image, pushed under the old version
    with pytest.raises(ImageTagConflictError, match=f"payments:1.0.0-1 already names {first['payments']['digest']}"):
        forced.push(local_reference=images["payments"]["reference"], repository="payments", tag="1.0.0-1")
    old_tag = _served_digest(registry, f"{patched.registry.path_prefix}/payments", "1.0.0-1")
    assert old_tag == first["payments"]["digest"]


def test_the_same_content_is_not_imported_again(tmp_path: Path, docker_client) -> None:  # noqa: ANN001
    """Importing it again would give it a new image id, and every service image built on it a new digest."""
    reference, tarball = f"{TEST_IMAGE_NAMESPACE}/reimport-check:{uuid.uuid4().hex[:12]}", tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.addfile(tarfile.TarInfo("empty"))
    content = hashlib.sha256(tarball.read_bytes()).hexdigest()
    repository, _, tag = reference.partition(":")
    try:
        assert imported_base_image(docker_client, reference, content) is None
        image_id = import_base_image(docker_client, tarball, repository=repository, tag=tag, content_sha256=content)
        assert imported_base_image(docker_client, reference, content) == image_id
        assert imported_base_image(docker_client, reference, "0" * 64) is None  # other content: import it
    finally:
        docker_client.images.remove(reference, force=True)


def _served_digest(registry, repository: str, tag: str) -> str:  # noqa: ANN001
    """The digest the registry serves for repository:tag, read with its HTTP API, not the product's code."""
    response = requests.head(
        f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_MEDIA_TYPES}, timeout=10
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]
