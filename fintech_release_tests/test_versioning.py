"""The artifact version scheme: `<base>-<build number>`, where the build number only grows and is
derived from Dagster's event log, so it survives restarts of the instance; a later image of the same jar
gets a rebuild suffix (`.r<n>`), so a version never names two images."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetMaterialization

from fintech_release.records.keys import BUILD_JAR
from fintech_release.records.versioning import (
    artifact_version,
    image_version,
    local_image_reference,
    next_build_number,
    next_rebuild,
)
from fintech_release_tests.release_setup import quiet_instance


def test_artifact_version_is_base_dash_build_number() -> None:
    assert artifact_version("1.0.0", 7) == "1.0.0-7"
    assert local_image_reference("fintech-release", "contact-us", "1.0.0-7") == "fintech-release/contact-us:1.0.0-7"


def test_a_base_version_that_cannot_be_an_image_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="'1.0 beta-3' is not a valid image tag"):
        artifact_version("1.0 beta", 3)


def test_build_numbers_grow_per_service_and_survive_an_instance_restart(tmp_path: Path) -> None:
    with quiet_instance(tmp_path) as instance:
        assert next_build_number(instance, "payments") == 1
        for number in (1, 2):
            instance.report_runless_asset_event(
                AssetMaterialization(BUILD_JAR, partition="payments", metadata={"build_number": number})
            )
        assert next_build_number(instance, "payments") == 3
        assert next_build_number(instance, "accounts") == 1
    with quiet_instance(tmp_path) as restarted:
        assert next_build_number(restarted, "payments") == 3


def test_an_image_has_its_jars_version_then_a_rebuild_suffix_per_later_image_of_that_jar() -> None:
    assert image_version("1.0.0-7", 0) == "1.0.0-7"
    assert image_version("1.0.0-7", 2) == "1.0.0-7.r2"
    assert next_rebuild(None, "1.0.0-7") == 0
    assert next_rebuild({"version": "1.0.0-6", "jar_version": "1.0.0-6", "rebuild": 3}, "1.0.0-7") == 0
    assert next_rebuild({"version": "1.0.0-7.r1", "jar_version": "1.0.0-7", "rebuild": 1}, "1.0.0-7") == 2
    assert next_rebuild({"version": "1.0.0-7"}, "1.0.0-7") == 1  # recorded before the suffix existed
