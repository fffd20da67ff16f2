"""Which session folder state was handed to conversion, recorded in the Dagster instance.

When the sensor (or a backfill) hands a session over, it reports a materialization of the
external `raw_session` asset whose metadata holds the folder's signature (file count, bytes,
newest mtime). Reading those back is how the sensor knows a session is already converted, so its
cursor holds only folders still settling and does not grow with the number of sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import dagster as dg

from miniscope_core.status import Signature, signature

from .partitions import RAW_SESSION, sessions
from .resources import MiniscopeStorage

_BATCH = 500  # storage ids per query (SQLite limits the number of query parameters)


def signature_text(sig: Signature) -> str:
    return f"{sig.n_files}:{sig.n_bytes}:{sig.newest_mtime_ns}"


def raw_metadata(rel_path: PurePosixPath, folder: Path, sig: Signature) -> dict[str, str | int]:
    """Plain values (they also travel as JSON to a webserver's report endpoint)."""
    newest = datetime.fromtimestamp(sig.newest_mtime_ns / 1e9, UTC)
    return {
        "rel_path": rel_path.as_posix(),
        "folder": str(folder),
        "files": sig.n_files,
        "bytes": sig.n_bytes,
        "newest_file": newest.isoformat(timespec="seconds"),
        "signature": signature_text(sig),
    }


def raw_event(
    key: str, rel_path: PurePosixPath, folder: Path, sig: Signature, note: str
) -> dg.AssetMaterialization:
    """The report that `folder`, in the state `sig`, is handed to conversion."""
    return dg.AssetMaterialization(
        asset_key=RAW_SESSION,
        partition=key,
        description=note,
        metadata=raw_metadata(rel_path, folder, sig),
    )


def requested_signatures(instance: dg.DagsterInstance) -> dict[str, str]:
    """Partition key -> signature of the folder state last handed to conversion."""
    latest = instance.get_latest_storage_id_by_partition(
        RAW_SESSION, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    ids = list(latest.values())
    found: dict[str, str] = {}
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW_SESSION, storage_ids=batch), limit=len(batch)
        ).records
        for record in records:
            materialization = record.asset_materialization
            value = materialization.metadata.get("signature") if materialization else None
            if record.partition_key and value is not None:
                found[record.partition_key] = str(value.value)
    return found


def register(
    instance: dg.DagsterInstance, storage: MiniscopeStorage, folders: dict[str, Path], note: str
) -> None:
    """Add partitions for `folders` (key -> folder) and report their current state."""
    instance.add_dynamic_partitions(sessions.name, list(folders))
    for key, folder in folders.items():
        event = raw_event(key, storage.rel_path(folder), folder, signature(folder), note)
        instance.report_runless_asset_event(event)
