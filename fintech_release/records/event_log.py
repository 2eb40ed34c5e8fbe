"""Read what earlier runs recorded: Dagster's event log is the only store of release state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, DagsterInstance, Failure
from pydantic import BaseModel


class Recorded(BaseModel, frozen=True):
    """One materialization as the event log holds it."""

    metadata: dict[str, Any]
    run_id: str
    recorded_at: datetime


def materializations(
    instance: DagsterInstance, key: AssetKey, *, partition: str | None = None, limit: int = 1
) -> list[Recorded]:
    """The newest `limit` materializations of `key` (of `partition`, when given), newest first."""
    records = instance.fetch_materializations(_filter(key, partition), limit=limit).records
    return [_recorded(record, record.asset_materialization) for record in records]


def materializations_since(
    instance: DagsterInstance, key: AssetKey, since: datetime, *, page: int = 1000
) -> list[Recorded]:
    """Every materialization of `key` recorded after `since`, oldest first (read in pages)."""
    found: list[Recorded] = []
    cursor = None
    while True:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_timestamp=since.timestamp()), limit=page, cursor=cursor,
            ascending=True,
        )
        found += [_recorded(record, record.asset_materialization) for record in result.records]
        if not result.has_more:
            return found
        cursor = result.cursor


def latest_materialization_metadata(
    instance: DagsterInstance, key: AssetKey, partition: str | None = None
) -> dict[str, Any] | None:
    """Metadata values of the newest materialization of `key` (`[partition]`), or None if there is none."""
    newest = materializations(instance, key, partition=partition, limit=1)
    return newest[0].metadata if newest else None


def require_latest_materialization(context: AssetExecutionContext, key: AssetKey) -> dict[str, Any]:
    """Metadata of the newest `key` materialization for the run's partition; a clear Failure if none exists."""
    metadata = latest_materialization_metadata(context.instance, key, context.partition_key)
    if metadata is None:
        raise Failure(f"{key.to_user_string()}[{context.partition_key}] has never been materialized: build it first")
    return metadata


def _filter(key: AssetKey, partition: str | None) -> AssetRecordsFilter:
    return AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition is not None else None)


def metadata_values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The plain values of recorded metadata (what the MetadataValue wrappers hold)."""
    return {name: getattr(entry, "value", entry) for name, entry in metadata.items()}


def _recorded(record: Any, event: Any) -> Recorded:
    return Recorded(
        metadata=metadata_values(event.metadata),
        run_id=record.run_id,
        recorded_at=datetime.fromtimestamp(record.timestamp, tz=UTC),
    )
