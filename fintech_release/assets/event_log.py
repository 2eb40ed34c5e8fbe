"""Read what earlier runs recorded: Dagster's event log is the only store of build state."""

from __future__ import annotations

from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, DagsterInstance, Failure


def latest_materialization_metadata(
    instance: DagsterInstance, key: AssetKey, partition: str
) -> dict[str, Any] | None:
    """Metadata values of the newest materialization of `key[partition]`, or None if there is none."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return _values(records[0].asset_materialization.metadata) if records else None


def require_latest_materialization(context: AssetExecutionContext, key: AssetKey) -> dict[str, Any]:
    """Metadata of the newest `key` materialization for the run's partition; a clear Failure if none exists."""
    metadata = latest_materialization_metadata(context.instance, key, context.partition_key)
    if metadata is None:
        raise Failure(f"{key.to_user_string()}[{context.partition_key}] has never been materialized: build it first")
    return metadata


def latest_observation_metadata(instance: DagsterInstance, key: AssetKey, partition: str) -> dict[str, Any] | None:
    """Metadata values of the newest observation of `key[partition]`, or None if there is none."""
    records = instance.fetch_observations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return _values(records[0].asset_observation.metadata) if records else None


def _values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(entry, "value", entry) for name, entry in metadata.items()}
