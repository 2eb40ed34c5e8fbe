"""Backfills from the CLI: `fintech_release.cli.backfill` launches a real Dagster asset backfill through the
webserver's GraphQL API (`launchPartitionBackfill`) on a real `dagster dev` (webserver + daemon), follows
it to its terminal status, and materializes exactly the selected partitions; for a backfill that fails, the
command says why each of its failed runs failed. An unknown asset key and a URL where no webserver answers
are clear `BackfillError`s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from fintech_release.assets.source import report_head_commits
from fintech_release.cli import main as cli_main
from fintech_release.cli.backfill import BackfillError, backfill_status, failed_runs, launch_backfill
from fintech_release.jobs import BUILD_AND_PUSH
from fintech_release.records.keys import BUILD_ANALYSIS, BUILD_IMAGE
from fintech_release.release_graph import build_definitions
from fintech_release.resources.source import LocalGitSource
from fintech_release_tests.components import free_port
from fintech_release_tests.release_setup import example_repositories, quiet_instance, write_release_config

pytestmark = pytest.mark.integration

SERVICES = ("contact-us", "payments", "accounts")
SELECTED = ["contact-us", "accounts"]
ANALYSIS = ["build", "analysis"]


def _materialized_partitions(instance: DagsterInstance, asset_key: AssetKey) -> list[str]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(SERVICES)), limit=10
    ).records
    return sorted(record.partition_key for record in records)


def test_cli_backfill_materializes_exactly_the_selected_services(
    tmp_path: Path, registry, dagster_dev_factory, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    repositories = example_repositories(tmp_path / "git", SERVICES)
    config = write_release_config(tmp_path, repositories, registry_host=registry.host)
    home = tmp_path / "dagster-home"
    home.mkdir()
    with quiet_instance(home) as instance:
        report_head_commits(instance, config, LocalGitSource())
    dev = dagster_dev_factory(tmp_path / "release.yaml", home)

    unknown = r"refused the backfill \(PythonError\): KeyError: AssetKey\(\['no_such', 'asset'\]\)"
    with pytest.raises(BackfillError, match=unknown):
        launch_backfill(dev.url, asset_keys=[["no_such", "asset"]], partitions=SELECTED)

    command = ["--config", str(config.source), "--url", dev.url, "backfill", "--select", "build/analysis", *SELECTED]
    assert cli_main([*command, "--wait"]) == 0
    printed = capsys.readouterr().out
    backfill_id = printed.split()[1].rstrip(":")
    assert "COMPLETED_SUCCESS" in printed.splitlines()[-1]
    with quiet_instance(home) as instance:
        assert _materialized_partitions(instance, AssetKey(ANALYSIS)) == sorted(SELECTED)
        backfill = next(b for b in instance.get_backfills() if b.backfill_id == backfill_id)
    assert backfill.title == "backfill: build/analysis"
    assert backfill.asset_selection == [BUILD_ANALYSIS]
    final = backfill_status(dev.url, backfill_id)
    assert final.succeeded and (final.targeted, final.materialized, final.failed) == (2, 2, 0)


def test_a_failed_backfill_says_why_each_of_its_failed_runs_failed(tmp_path: Path) -> None:
    """A run of the backfill (tagged as Dagster tags them), executed here: no webserver needed to read it."""
    config = write_release_config(tmp_path, {"payments": tmp_path / "payments.git"}, registry_host="127.0.0.1:5000")
    (tmp_path / "home").mkdir()
    with quiet_instance(tmp_path / "home") as instance:
        run = build_definitions(config).resolve_job_def(BUILD_AND_PUSH).execute_in_process(
            instance=instance, partition_key="payments", asset_selection=[BUILD_IMAGE],
            tags={"dagster/backfill": "abcdefgh"}, raise_on_error=False,
        )
        assert failed_runs(instance, "abcdefgh") == [
            f"run {run.run_id} (payments): build/jar[payments] has never been materialized: build it first"
        ]
        assert failed_runs(instance, "another") == []


def test_unreachable_webserver_is_named_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    refused = rf"no Dagster webserver answers at {url}/graphql \(start it with `make ui`"
    with pytest.raises(BackfillError, match=refused):
        launch_backfill(url, asset_keys=[ANALYSIS], partitions=SELECTED)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["rebuild-images", "paymnts"], "unknown service 'paymnts' (known: contact-us, payments, accounts)"),
        (
            ["backfill", "--select", "build/imag"],
            "'build/imag' is not a per-service asset (choose from: build/analysis",
        ),
        (["backfill", "--select", "source/commit"], "'source/commit' is not a per-service asset"),
        (["deploy", "qa"], "unknown environment 'qa' (known: ci, staging, production)"),
        (["deploy", "staging", "ledger"], "unknown service 'ledger'"),
    ],
)
def test_bad_selection_fails_before_anything_is_launched(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The webserver URL points nowhere: a selection error (not a connection error) proves nothing was sent."""
    demo_config = Path(__file__).resolve().parent.parent / "release.yaml"
    url = f"http://127.0.0.1:{free_port()}"
    assert cli_main(["--config", str(demo_config), "--url", url, *arguments]) == 2
    assert message in capsys.readouterr().err
