"""<env>/delivery: how well the team delivers to an environment, DORA's four keys, as an asset people look at.

Dagster does not compute it in a run: it is recorded (a runless materialization) after each run
that changes the environment ends — by a sensor when the instance runs a daemon, by the CLI after
the runs it executes — from the release records alone (records/delivery.py). The materialization
carries the four figures for the last 30 days, a weekly trend and the deployments behind them, with
links to their runs.
"""

from dagster import (
    AssetMaterialization,
    AssetSpec,
    DagsterInstance,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from fintech_release.config import Environment, ReleaseConfig
from fintech_release.records.delivery import DeliveryMetrics, Figures, default_window, delivery_metrics
from fintech_release.records.keys import delivery_key, environment_group, release_key

SHOWN_DEPLOYMENTS = 25


def delivery_spec(config: ReleaseConfig, environment: Environment) -> AssetSpec:
    """The metrics asset of `environment`, downstream of its releases."""
    env = environment.name
    return AssetSpec(
        delivery_key(env),
        deps=[release_key(env, name) for name in config.service_names],
        group_name=environment_group(env),
        kinds={"dora"},
        description=f"DORA's four keys for {env} over the last 30 days (deployment frequency, lead time for changes, "
        "change failure rate, time to restore), recorded after each deployment.",
    )


def record_delivery_metrics(instance: DagsterInstance, config: ReleaseConfig, environment: str) -> DeliveryMetrics:
    """Compute the environment's four keys and record them on `<env>/delivery`; return them."""
    since, until = default_window()
    metrics = delivery_metrics(instance, config, environment, since=since, until=until)
    instance.report_runless_asset_event(delivery_materialization(metrics, config.notifications.dagster_url))
    return metrics


def delivery_materialization(metrics: DeliveryMetrics, dagster_url: str) -> AssetMaterialization:
    """The materialization of `<env>/delivery` for `metrics`."""
    overall = metrics.overall
    return AssetMaterialization(
        asset_key=delivery_key(metrics.environment),
        description=summary(overall),
        metadata={
            "deployments": overall.deployments,
            "deployments_per_day": overall.per_day,
            "lead_time_hours_median": _number(overall.lead_time_hours),
            "change_failure_rate": _number(overall.change_failure_rate),
            "time_to_restore_minutes_median": _number(overall.time_to_restore_minutes),
            "failed_not_restored": overall.failed_not_restored,
            "window": f"{metrics.since:%Y-%m-%d %H:%M} → {metrics.until:%Y-%m-%d %H:%M} UTC",
            "per_service": _figures_table({name: figures for name, figures in metrics.per_service.items()}, "service"),
            "weekly_trend": _figures_table(metrics.weekly, "week"),
            "recent_deployments": _deployments_table(metrics, dagster_url),
        },
    )


def summary(figures: Figures) -> str:
    """The four keys in one line."""
    rate = "n/a" if figures.change_failure_rate is None else f"{figures.change_failure_rate:.0%}"
    lead = "n/a" if figures.lead_time_hours is None else f"{figures.lead_time_hours:.1f} h"
    restore = "n/a" if figures.time_to_restore_minutes is None else f"{figures.time_to_restore_minutes:.1f} min"
    return (
        f"{figures.deployments} deployments ({figures.per_day:g}/day), lead time {lead}, "
        f"change failure rate {rate}, time to restore {restore}"
    )


def _number(value: float | None) -> float | MetadataValue:
    return MetadataValue.text("n/a") if value is None else value


def _figures_table(rows: dict[str, Figures], key: str) -> MetadataValue:
    columns = [
        TableColumn(key, "string"), TableColumn("deployments", "int"), TableColumn("per_day", "float"),
        TableColumn("lead_time_hours", "float"), TableColumn("change_failure_rate", "float"),
        TableColumn("time_to_restore_minutes", "float"),
    ]
    records = [
        TableRecord({
            key: name, "deployments": f.deployments, "per_day": f.per_day,
            "lead_time_hours": f.lead_time_hours, "change_failure_rate": f.change_failure_rate,
            "time_to_restore_minutes": f.time_to_restore_minutes,
        })
        for name, f in rows.items()
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


def _deployments_table(metrics: DeliveryMetrics, dagster_url: str) -> MetadataValue:
    columns = [
        TableColumn("started", "string"), TableColumn("run", "path"), TableColumn("changed", "string"),
        TableColumn("failed", "bool"), TableColumn("why", "string"), TableColumn("restored_after_minutes", "float"),
    ]
    records = [
        TableRecord({
            "started": f"{d.started_at:%Y-%m-%d %H:%M} UTC",
            "run": f"{dagster_url}/runs/{d.run_id}",
            "changed": ", ".join(f"{service} {version}" for service, version in d.versions.items()),
            "failed": d.failed,
            "why": "; ".join(f"{service}: {why}" for service, why in d.broken.items()),
            "restored_after_minutes": d.restored_after_minutes,
        })
        for d in reversed(metrics.deployments[-SHOWN_DEPLOYMENTS:])
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))
