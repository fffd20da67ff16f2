"""The sensor that turns finished session folders into partitions and conversion runs.

A folder is handed over once it has (1) the same signature (files, bytes, newest mtime) on two
ticks in a row, (2) no file newer than `settle_seconds`, and (3) is structurally complete per
`miniscope_core.status` - or, since a crashed recording never completes, once it has not changed
for `stale_seconds`. A session whose folder changes after conversion (a new acquisition) is
handed over again. The cursor holds only folders still settling; what was already handed over
is read back from the instance (see `registry`).
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from miniscope_core.settings_model import MiniscopeSettings
from miniscope_core.status import Signature, folder_status, signature

from .assets import CONVERSION_ASSETS
from .partitions import sessions
from .registry import raw_event, requested_signatures, signature_text
from .resources import MiniscopeStorage
from .scan import find_sessions

SENSOR_INTERVAL_SECONDS = MiniscopeSettings.load().sensor_interval_seconds

convert_session_job = dg.define_asset_job(
    "convert_session",
    selection=dg.AssetSelection.assets(*CONVERSION_ASSETS),
    description="Convert one session folder to NWB: metadata, timestamps, video chunks, NWB.",
)


@dataclass(frozen=True)
class Ready:
    """A folder to hand over in the state `signature`; `note` says why it is ready."""

    key: str
    folder: Path
    signature: Signature
    note: str


@dataclass
class Review:
    """One tick's verdict on the folders found."""

    ready: list[Ready] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)  # key -> signature text
    waiting: dict[str, str] = field(default_factory=dict)  # key -> why it is not ready


def review(
    found: dict[str, Path],
    requested: dict[str, str],
    pending: dict[str, str],
    storage: MiniscopeStorage,
    now: float,
) -> Review:
    """Sort the folders found into ready and still settling; skip those already handed over."""
    result = Review()
    for key, folder in found.items():
        sig = signature(folder)
        text = signature_text(sig)
        if requested.get(key) == text:
            continue
        quiet = now - sig.newest_mtime_ns / 1e9
        settled = pending.get(key) == text and quiet >= storage.settle_seconds
        if not settled or len(result.ready) >= storage.max_new_per_tick:
            result.pending[key] = text
            continue
        status = folder_status(folder)
        if status.complete and status.signature == sig:
            note = "complete"
        elif status.signature == sig and quiet >= storage.stale_seconds:
            note = f"incomplete but unchanged for {quiet:.0f} s: {status.reason}"
        else:
            result.pending[key] = signature_text(status.signature)
            result.waiting[key] = status.reason or "changed while being checked"
            continue
        result.ready.append(Ready(key, folder, sig, note))
    return result


def _skip_reason(n_found: int, result: Review) -> str:
    if not result.pending:
        return f"{n_found} session folders, none new or changed"
    text = f"{n_found} session folders; {len(result.pending)} new or changed, not ready yet"
    waiting = [f"{key}: {reason}" for key, reason in sorted(result.waiting.items())[:5]]
    return "; ".join([text, *waiting])


@dg.sensor(
    target=convert_session_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Converts a session folder under the raw root once it is complete and has stopped "
        "changing (or has not changed for MINISCOPE_STALE_SECONDS), and again when it changes."
    ),
)
def session_sensor(
    context: dg.SensorEvaluationContext, storage: MiniscopeStorage
) -> dg.SensorResult:
    """Register finished (or long-unchanged) session folders and request their conversion."""
    if not storage.raw_path.is_dir():
        return dg.SensorResult(skip_reason=f"the raw root {storage.raw_path} is not a folder")
    found = find_sessions(storage.raw_path)
    pending = json.loads(context.cursor)["pending"] if context.cursor else {}
    result = review(found, requested_signatures(context.instance), pending, storage, time.time())
    cursor = json.dumps({"pending": result.pending}, sort_keys=True)
    if not result.ready:
        return dg.SensorResult(skip_reason=_skip_reason(len(found), result), cursor=cursor)
    known = set(context.instance.get_dynamic_partitions(sessions.name))
    new_keys = [r.key for r in result.ready if r.key not in known]
    for ready in result.ready:
        context.log.info(f"{ready.key}: {ready.note}")
    return dg.SensorResult(
        dynamic_partitions_requests=[sessions.build_add_request(new_keys)] if new_keys else [],
        asset_events=[
            raw_event(r.key, storage.rel_path(r.folder), r.folder, r.signature, r.note)
            for r in result.ready
        ],
        run_requests=[
            dg.RunRequest(
                partition_key=r.key,
                run_key=f"{r.key}@{signature_text(r.signature)}",
                tags={"miniscope/ready": r.note[:200]},
            )
            for r in result.ready
        ],
        cursor=cursor,
    )
