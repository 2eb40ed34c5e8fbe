"""DORA's four keys from a known history: every figure checked, overall, per service and as recorded in the UI.

A real instance (SQLite) is fed release materializations shaped like those the release step records, each
stored at a chosen moment of a ten-day window: deployments that went well, one left unhealthy and rolled back
by hand, one rolled back automatically, one rolled back a day later, a rollout that never served and a
repair (neither is a deployment). The figures are computed by records/delivery.py, recorded on
`production/delivery`, and printed by `fintech-release metrics --json`. No Docker engine is involved.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance, MetadataValue
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry

from fintech_release.assets.delivery import record_delivery_metrics
from fintech_release.cli import main as cli_main
from fintech_release.config import ReleaseConfig
from fintech_release.records.delivery import delivery_metrics
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import delivery_key, release_key
from fintech_release_tests.release_setup import write_release_config

ENV = "production"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: days 0-6 are ISO week 45, 7-13 week 46
DAY = timedelta(days=1)


def at(day: float, hour: float = 0) -> datetime:
    return START + day * DAY + timedelta(hours=hour)


def record(instance: DagsterInstance, service: str, run_id: str, when: datetime, status: str, *, healthy: bool,
           version: str, committed: datetime | None = None, undoes: str = "") -> None:
    """Store a release of `service` as the release step records it, at `when`, in run `run_id`."""
    reference = f"registry/{service}@sha256:{version.replace('.', '').replace('-', ''):0>64}"
    serving = reference if status not in ("failed", "auto_rolled_back") else "registry/old@sha256:" + "0" * 64
    materialization = AssetMaterialization(
        release_key(ENV, service),
        metadata={
            "status": status, "healthy": healthy, "version": version, "pinned_reference": reference,
            "serving": serving, "digest": reference.rsplit("@", 1)[1], "commit": "c0ffee",
            "committed_at": committed.isoformat() if committed else "", "undoes": undoes,
            "runtime_env": MetadataValue.json({"APP_ENV": ENV}), "desired_replicas": 2,
        },
    )
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="deploy_production",
        event_specific_data=StepMaterializationData(materialization=materialization),
    )
    instance.store_event(
        EventLogEntry(error_info=None, level=logging.INFO, user_message="", run_id=run_id,
                      timestamp=when.timestamp(), dagster_event=event)
    )


@pytest.fixture
def history(tmp_path: Path, instance: DagsterInstance) -> ReleaseConfig:
    config = write_release_config(
        tmp_path, {"contact-us": tmp_path / "c.git", "payments": tmp_path / "p.git"}, registry_host="127.0.0.1:5000",
        environments=[{"name": ENV, "approval": {"required": True}}],
    )
    # r1: both services out, healthy (lead times 2 h and 12 h)
    record(instance, "contact-us", "r1", at(1, 10), "deployed", healthy=True, version="1.0.0-1", committed=at(1, 8))
    record(instance, "payments", "r1", at(1, 10), "deployed", healthy=True, version="1.0.0-1", committed=at(0, 22))
    # r2: contact-us unhealthy after the rollout; rolled back by hand 30 min later (r3)
    record(instance, "contact-us", "r2", at(3, 12), "deployed", healthy=False, version="1.0.0-2", committed=at(3, 9))
    record(instance, "contact-us", "r3", at(3, 12.5), "rolled_back", healthy=True, version="1.0.0-1",
           undoes="deployment run r2 of 2026-11-05 12:00 UTC")
    # r4: payments rolled back automatically within its own run
    record(instance, "payments", "r4", at(5, 9), "auto_rolled_back", healthy=False, version="1.0.0-2")
    # r5: contact-us out healthy (lead time 3 h), rolled back an hour later (r6)
    record(instance, "contact-us", "r5", at(7, 9), "deployed", healthy=True, version="1.0.0-3", committed=at(7, 6))
    record(instance, "contact-us", "r6", at(7, 10), "rolled_back", healthy=True, version="1.0.0-1",
           undoes="deployment run r5 of 2026-11-09 09:00 UTC")
    # neither is a deployment: a rollout that never served, and a repair
    record(instance, "payments", "r7", at(8, 9), "failed", healthy=False, version="1.0.0-3")
    record(instance, "contact-us", "r8", at(8, 10), "repaired", healthy=True, version="1.0.0-1")
    return config


def test_every_figure_of_a_known_history(history: ReleaseConfig, instance: DagsterInstance) -> None:
    metrics = delivery_metrics(instance, history, ENV, since=at(0), until=at(10))
    overall = metrics.overall
    assert [d.run_id for d in metrics.deployments] == ["r1", "r2", "r4", "r5"]
    assert (overall.deployments, overall.per_day) == (4, 0.4)
    assert overall.lead_time_hours == 3.0  # median of 2, 12 and 3 hours
    assert overall.change_failure_rate == 0.75  # r2, r4, r5
    assert overall.time_to_restore_minutes == 30.0  # median of 30, 0 and 60 minutes
    assert overall.failed_not_restored == 0
    broken = {d.run_id: d.broken for d in metrics.deployments if d.failed}
    assert broken == {
        "r2": {"contact-us": "unhealthy after the rollout"},
        "r4": {"payments": "rolled back automatically (unhealthy after the rollout)"},
        "r5": {"contact-us": "rolled back by run r6"},
    }

    contact_us, payments = metrics.per_service["contact-us"], metrics.per_service["payments"]
    assert (contact_us.deployments, contact_us.change_failure_rate, contact_us.lead_time_hours) == (3, 0.667, 2.5)
    assert contact_us.time_to_restore_minutes == 45.0
    assert (payments.deployments, payments.change_failure_rate, payments.lead_time_hours) == (2, 0.5, 12.0)
    assert payments.time_to_restore_minutes == 0.0
    assert {week: f.deployments for week, f in metrics.weekly.items()} == {"2026-W45": 3, "2026-W46": 1}


def test_a_failure_not_yet_restored_is_listed_not_counted(history: ReleaseConfig, instance: DagsterInstance) -> None:
    record(instance, "payments", "r9", at(9, 9), "deployed", healthy=False, version="1.0.0-4", committed=at(9, 8))
    overall = delivery_metrics(instance, history, ENV, since=at(0), until=at(10)).overall
    assert (overall.deployments, overall.change_failure_rate, overall.failed_not_restored) == (5, 0.8, 1)
    assert overall.time_to_restore_minutes == 30.0


def test_the_window_leaves_out_what_is_outside_it(history: ReleaseConfig, instance: DagsterInstance) -> None:
    overall = delivery_metrics(instance, history, ENV, since=at(4), until=at(10)).overall
    assert (overall.deployments, overall.change_failure_rate) == (2, 1.0)  # r4 and r5


def test_the_figures_are_recorded_on_the_environment_and_printed_by_the_cli(
    history: ReleaseConfig, instance: DagsterInstance, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("fintech_release.records.delivery.datetime", _FixedNow)
    record_delivery_metrics(instance, history, ENV)
    recorded = latest_materialization_metadata(instance, delivery_key(ENV))
    assert (recorded["deployments"], recorded["change_failure_rate"], recorded["lead_time_hours_median"]) == (
        4, 0.75, 3.0
    )
    runs = [row.data["run"] for row in recorded["recent_deployments"].records]
    assert runs[0].endswith("/runs/r5") and len(runs) == 4

    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    assert cli_main(["--config", str(history.source), "metrics", ENV, "--since", at(0).isoformat(), "--json"]) == 0
    [printed] = json.loads(capsys.readouterr().out)
    assert printed["overall"]["change_failure_rate"] == 0.75
    assert printed["per_service"]["payments"]["deployments"] == 2


class _FixedNow(datetime):
    """datetime whose now() is the end of the test's window (the default window is the last 30 days)."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's signature
        return at(10)
