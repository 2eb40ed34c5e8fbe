"""The serving release read from release records alone (records/releases.py), on a real instance's event log."""

from __future__ import annotations

import pytest
from dagster import AssetMaterialization, DagsterInstance

from fintech_release.records.keys import release_key
from fintech_release.records.releases import NOT_IN_PLACE, serving_release

ENV, SERVICE = "staging", "payments"
IMAGE = f"127.0.0.1:5000/{SERVICE}@sha256:" + "a" * 64


def record(instance: DagsterInstance, status: str, crash_on_start: str) -> None:
    """A release record as the release step writes it: the image asked for, what serves after the run, settings."""
    instance.report_runless_asset_event(
        AssetMaterialization(
            release_key(ENV, SERVICE),
            metadata={
                "status": status, "healthy": status == "deployed", "pinned_reference": IMAGE, "serving": IMAGE,
                "runtime_env": {"APP_ENV": ENV, "CRASH_ON_START": crash_on_start}, "desired_replicas": 2,
            },
        )
    )


@pytest.mark.parametrize("status", NOT_IN_PLACE)
def test_a_rollout_that_changed_only_settings_and_failed_is_not_what_serves(
    instance: DagsterInstance, status: str
) -> None:
    """Same image, new settings, rollout failed and the old settings came back: the health watch and a restore must
    judge and bring back the release before it, never the failing settings."""
    record(instance, "deployed", crash_on_start="false")
    record(instance, status, crash_on_start="true")
    serving = serving_release(instance, ENV, SERVICE)
    assert serving is not None
    assert serving.metadata["status"] == "deployed"
    assert serving.metadata["runtime_env"]["CRASH_ON_START"] == "false"


def test_a_release_put_in_place_after_a_failed_one_serves(instance: DagsterInstance) -> None:
    record(instance, "auto_rolled_back", crash_on_start="true")
    record(instance, "restored", crash_on_start="false")
    serving = serving_release(instance, ENV, SERVICE)
    assert serving is not None and serving.metadata["status"] == "restored"
