"""Which session folder state was handed to conversion, recorded in the Dagster instance.

When the sensor (or a backfill) hands a session over, it reports a materialization of the
external `raw_session` asset whose data version (the `dagster/data_version` tag, which Dagster
indexes) is the folder's state: its file signature (count, bytes, newest mtime) and its folders
signature (`miniscope_core.status`). The latest data version of every partition is one indexed
query - 0.05 s for 10,000 partitions, where fetching and decoding their records took 3.3 s - so
the sensor knows every session handed over while its cursor holds only folders still settling.

Observations of `raw_session` record what the sensor saw later without handing anything over,
so that it is not seen again on every tick: a folder touched with the same files in it (its new
folders signature), a folder that is gone (data version `deleted ...`) and one that came back.
A gone folder's partition is kept, never deleted: its history and outputs stay in the UI (outputs
are never deleted either), and Dagster's partition status cache is unreliable when a key is
deleted and added again. Dagster compares `raw_session`'s data version with the one each
conversion asset was built from, so after such an observation the UI shows that partition's
outputs as unsynced until it is converted again; nothing acts on that.

A partition's last conversion failed when its NWB asset's latest planned materialization belongs
to a failed run: Dagster 1.13 records no failure event per asset, a failed step only leaves its
planned materialization without the materialization.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TypeVar

import dagster as dg

from miniscope_core import Signature, signature

from .assets import nwb_file
from .partitions import RAW_SESSION, sessions
from .resources import MiniscopeStorage

DATA_VERSION = "dagster/data_version"
DELETED = "deleted"
_BATCH = 500  # storage or run ids per query (SQLite limits the number of query parameters)
# Records written before data versions were used are decoded one by one: at most this many per
# tick, so that an instance with many of them costs a few ticks once, not every tick a lot.
LEGACY_PER_TICK = 500

_MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
_OBSERVATION = dg.DagsterEventType.ASSET_OBSERVATION
T = TypeVar("T")


@dataclass(frozen=True)
class Handover:
    """What the instance says of one partition's folder."""

    signature: str  # the files' signature when it was last handed over
    folders: str = ""  # its folders signature then or as observed since ("" if unknown)
    deleted: bool = False  # observed gone since
    failed_run: str = ""  # the id of its last conversion run, if that run failed


@dataclass
class Handovers:
    """Every partition handed over, and those whose old-style records are left for a later tick."""

    handed: dict[str, Handover] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)


def signature_text(sig: Signature) -> str:
    return f"{sig.n_files}:{sig.n_bytes}:{sig.newest_mtime_ns}:{sig.files}"


def same_files(text: str, sig: Signature) -> bool:
    """Whether `text` is the signature text of `sig`'s files; a text recorded before file names
    were in it (count, bytes and newest mtime only) is compared on those."""
    current = signature_text(sig)
    return text == current or (text.count(":") == 2 and current.startswith(f"{text}:"))


def state_text(sig: Signature) -> str:
    """The data version of a folder state: files signature, then folders signature."""
    return f"{signature_text(sig)} {sig.folders}"


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
        "folders": sig.folders,
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
        tags={DATA_VERSION: state_text(sig)},
    )


def seen_event(
    key: str, rel_path: PurePosixPath, folder: Path, sig: Signature, note: str
) -> dg.AssetObservation:
    """The report that `folder` holds the files it was handed over with, in folders now `sig`'s."""
    return dg.AssetObservation(
        asset_key=RAW_SESSION,
        partition=key,
        description=note,
        metadata={**raw_metadata(rel_path, folder, sig), "deleted": False},
        tags={DATA_VERSION: state_text(sig)},
    )


def gone_event(key: str, rel_path: str, handover: Handover) -> dg.AssetObservation:
    """The report that the folder of `key` is gone; its last known state stays in the version."""
    return dg.AssetObservation(
        asset_key=RAW_SESSION,
        partition=key,
        description=f"folder {rel_path} is gone; outputs kept",
        metadata={"rel_path": rel_path, "deleted": True},
        tags={DATA_VERSION: f"{DELETED} {handover.signature} {handover.folders}".strip()},
    )


def handovers(instance: dg.DagsterInstance) -> Handovers:
    """Partition key -> the folder state last handed to conversion or observed since."""
    events = instance.event_log_storage
    versions = {
        kind: events.get_latest_tags_by_partition(RAW_SESSION, kind, [DATA_VERSION])
        for kind in (_MATERIALIZATION, _OBSERVATION)
    }
    materialized = instance.get_latest_storage_id_by_partition(RAW_SESSION, _MATERIALIZATION)
    observed = instance.get_latest_storage_id_by_partition(RAW_SESSION, _OBSERVATION)
    result, legacy = Handovers(), []
    for key in materialized.keys() | observed.keys():
        kind = (
            _OBSERVATION if observed.get(key, -1) > materialized.get(key, -1) else _MATERIALIZATION
        )
        version = versions[kind].get(key, {}).get(DATA_VERSION)
        if version is not None:
            result.handed[key] = parsed_version(version)
        elif kind is _MATERIALIZATION:
            legacy.append(key)
    legacy.sort()
    result.handed.update(_legacy(instance, {k: materialized[k] for k in legacy[:LEGACY_PER_TICK]}))
    result.unread = set(legacy[LEGACY_PER_TICK:])
    for key, run_id in failed_runs(instance).items():
        if key in result.handed:
            result.handed[key] = replace(result.handed[key], failed_run=run_id)
    return result


def parsed_version(version: str) -> Handover:
    """A data version written by `state_text` or `gone_event`."""
    parts = version.split(" ")
    deleted = parts[0] == DELETED
    files, folders, *_ = (parts[1:] if deleted else parts) + ["", ""]
    return Handover(signature=files, folders=folders, deleted=deleted)


def _legacy(instance: dg.DagsterInstance, storage_ids: dict[str, int]) -> dict[str, Handover]:
    """Handovers recorded without a data version (by an older sensor, or through the webserver's
    report endpoint), read from their metadata. Their folders signature is left unknown even if
    recorded, so that the sensor reads such a folder once and observes it with a data version:
    from then on it is read back with the others, in the one indexed query."""
    found = {}
    for record in _records(instance, list(storage_ids.values())):
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        if record.partition_key and "signature" in metadata:
            found[record.partition_key] = Handover(signature=str(metadata["signature"].value))
    return found


def _records(
    instance: dg.DagsterInstance, storage_ids: Sequence[int], asset_key: dg.AssetKey = RAW_SESSION
) -> Iterator[dg.EventLogRecord]:
    for batch in _batches(storage_ids):
        records_filter = dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=batch)
        yield from instance.fetch_materializations(records_filter, limit=len(batch)).records


def latest_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: Iterable[str]
) -> dict[str, Mapping[str, dg.MetadataValue]]:
    """Partition key -> the metadata of its latest materialization of `asset_key`."""
    wanted = set(keys)
    if not wanted:
        return {}
    latest = instance.get_latest_storage_id_by_partition(
        asset_key, _MATERIALIZATION, partitions=wanted
    )
    found = {}
    for record in _records(instance, list(latest.values()), asset_key):
        if record.partition_key and record.asset_materialization:
            found[record.partition_key] = record.asset_materialization.metadata
    return found


def failure_lines(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> dict[str, str]:
    """Run id -> the first failed step's one line: a `dg.Failure`'s description (the library's
    message), else the error's last line."""
    lines = {}
    for run_id in set(run_ids):
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            failure = entry.dagster_event.step_failure_data if entry.dagster_event else None
            if failure is None:
                continue
            given = failure.user_failure_data.description if failure.user_failure_data else None
            error = failure.error.message.strip() if failure.error else "failed"
            lines[run_id] = f"{entry.step_key}: {given or error}"
            break
    return lines


def failed_runs(instance: dg.DagsterInstance) -> dict[str, str]:
    """Partition key -> id of its last conversion run, for the partitions where that run failed."""
    events = instance.event_log_storage
    attempts = events.get_latest_asset_partition_materialization_attempts_without_materializations(
        nwb_file.key
    )
    run_ids = sorted({run_id for run_id, _ in attempts.values()})
    failed: set[str] = set()
    for batch in _batches(run_ids):
        runs_filter = dg.RunsFilter(run_ids=batch, statuses=[dg.DagsterRunStatus.FAILURE])
        failed.update(run.run_id for run in instance.get_runs(runs_filter))
    return {key: run_id for key, (run_id, _) in attempts.items() if run_id in failed}


def rel_paths(instance: dg.DagsterInstance, keys: Iterable[str]) -> dict[str, str]:
    """The folder (relative to the raw root) each of `keys` was last handed over from."""
    shown = latest_metadata(instance, RAW_SESSION, keys)
    return {key: str(meta["rel_path"].value) for key, meta in shown.items() if "rel_path" in meta}


def _batches(values: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), _BATCH):
        yield list(values[start : start + _BATCH])


def register(
    instance: dg.DagsterInstance, storage: MiniscopeStorage, folders: dict[str, Path], note: str
) -> None:
    """Add partitions for `folders` (key -> folder) and report their current state."""
    request = sessions.build_add_request(list(folders))
    instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    for key, folder in folders.items():
        event = raw_event(key, storage.rel_path(folder), folder, signature(folder), note)
        instance.report_runless_asset_event(event)
