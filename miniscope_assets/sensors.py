"""The sensor that turns finished session folders into partitions and conversion runs.

A folder is handed over once it has (1) the same file signature (count, bytes, newest mtime, and
each file's name, size and mtime) on two ticks in a row, (2) no file newer than `settle_seconds`,
and (3) is structurally complete per `miniscope_core.status` - or, since a crashed recording
never completes, once it has not changed for `stale_seconds`. A session whose folder changes
after conversion (a new acquisition) is handed over again.

A tick costs one listing of the raw root (each acquisition's metaData.json read once), one
`folders_signature` per session already handed over - a stat per session, acquisition and device
folder, no file looked at - and the file signature of a bounded number of folders:

- Until a folder is handed over, the DAQ may still be writing in it: videos grow in place, then
  the next `N.avi` appears, and timeStamps.csv is appended to. Growth in place changes no folder
  mtime, so such a folder is read file by file on every tick (it is in the cursor, "pending").
- Once handed over (complete and settled) the DAQ no longer writes in it; what happens next is a
  new acquisition, a video or a file added, removed or renamed - all of which change the mtime of
  the folder holding them. So its folders signature, kept in the instance with the handover, is
  compared, and only a folder whose signature changed is read file by file (a folder touched with
  the same files, e.g. a temporary file come and gone, is observed once with its new signature).
- What changes no folder mtime (a file rewritten in place, such as an edited metaData.json) is
  found by an audit: a pass through the handed-over folders, AUDITED_PER_TICK of them read file
  by file per tick, starting once a day; and a pass through those whose last conversion failed
  every ten minutes, since those are the ones a lab fixes. The cursor keeps each pass's place.
- At most EXAMINED_PER_TICK folders are read file by file per tick (pending ones always; of the
  rest of the budget at least half goes to changed and audited folders and half to new ones, the
  newest first, if there are that many), so that a first tick over years of history stays within
  Dagster's sensor timeout; the others wait for later ticks.

A session whose last conversion run failed is requested again once its folder changes (the run
is tagged with the failed run's id and the tick logs it); unchanged, it is left alone. A session
folder that is gone (the folder no longer holds a session; one whose metaData.json cannot be read
for the moment is not gone) is observed once as deleted, its partition and outputs kept, and
observed once more if it comes back; a listing that finds nothing at all marks nothing, since
an unmounted share looks like an empty raw root. The tick's state (`Cursor`: folders still
settling and why each waits, the audit passes' places) is kept in a file in the output root, and
Dagster's cursor is a one-line summary for the sensor page; what was handed over is read back
from the instance (`registry`). The folders waiting, held back or refused are reported on
`raw_root` when they change, so the UI shows them within a tick.
"""

import bisect
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from miniscope_core import (
    ListedSession,
    Signature,
    folder_status,
    folders_signature,
    signature,
    write_bytes,
)

from .assets import CONVERSION_ASSETS
from .partitions import RAW_ROOT, sessions
from .registry import (
    DATA_VERSION,
    Handover,
    gone_event,
    handovers,
    raw_event,
    rel_paths,
    same_files,
    seen_event,
    signature_text,
)
from .resources import SENSOR_STATE_FILE, MiniscopeStorage
from .scan import is_gone, list_sessions
from .settings import MiniscopeSettings
from .ui import table

SENSOR_INTERVAL_SECONDS = MiniscopeSettings.load().sensor_interval_seconds
# To move into the settings model: folders read file by file in one tick (0.1-1 ms each for a
# session of tens of files); handed-over folders audited per tick, and how often an audit pass
# through them starts (seconds), for those whose conversion failed and for the others.
EXAMINED_PER_TICK = 500
AUDITED_PER_TICK = 50
FAILED, HANDED = "failed", "handed"
WAITING, HELD_BACK, REFUSED = "waiting", "held back", "refused"  # not handed over (yet)
WAITING_STATES = (WAITING, HELD_BACK, REFUSED)
AUDIT_PERIOD_SECONDS = {FAILED: 600.0, HANDED: 86400.0}

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
    failed_run: str = ""  # the failed conversion run this one follows, if any


@dataclass(frozen=True)
class Seen:
    """A handed-over folder whose files are as handed over, but whose folders changed or that
    came back after being gone: observed once, so that it is not read in full again."""

    key: str
    folder: Path
    signature: Signature
    note: str


@dataclass(frozen=True)
class Pass:
    """Where an audit pass is: the last key it read (None before the first), when it started."""

    after: str | None
    since: float


@dataclass(frozen=True)
class Waiting:
    """Why a folder is not handed over yet: `state` is WAITING (still being copied, settling) or
    HELD_BACK (settled but incomplete); `why` is one line."""

    state: str
    why: str


@dataclass
class Cursor:
    """What a tick passes to the next: folders still settling (and why they wait), and the
    audit passes' places. Kept in a file in the output root (`STATE_FILE`), not in Dagster's
    cursor, which the sensor page shows raw: that holds `summary` instead."""

    pending: dict[str, str] = field(default_factory=dict)  # key -> file signature text
    audit: dict[str, Pass] = field(default_factory=dict)  # FAILED or HANDED -> its pass
    waiting: dict[str, Waiting] = field(default_factory=dict)  # pending key -> why

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        state = json.loads(text) if text else {}
        audit = {name: Pass(**place) for name, place in state.get("audit", {}).items()}
        waiting = {key: Waiting(*value) for key, value in state.get("waiting", {}).items()}
        return cls(state.get("pending", {}), audit, waiting)

    def text(self) -> str:
        audit = {name: vars(place) for name, place in self.audit.items()}
        waiting = {key: [w.state, w.why] for key, w in self.waiting.items()}
        state = {"pending": self.pending, "audit": audit, "waiting": waiting}
        return json.dumps(state, sort_keys=True)

    @classmethod
    def load(cls, storage: MiniscopeStorage, dagster_cursor: str | None) -> "Cursor":
        """The state the last tick saved; a JSON cursor of an older sensor is taken over once."""
        try:
            return cls.parse(storage.sensor_state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            legacy = dagster_cursor is not None and dagster_cursor.startswith("{")
            return cls.parse(dagster_cursor if legacy else None)
        except (OSError, ValueError, TypeError):  # damaged: the folders are simply seen anew
            return cls()

    def save(self, storage: MiniscopeStorage) -> None:
        write_bytes(storage.sensor_state_path, self.text().encode())

    def summary(self, n_found: int) -> str:
        """The short text Dagster keeps as the sensor's cursor, for people (its tick list cuts
        the middle of a long one); the state is in the output root's SENSOR_STATE_FILE."""
        held = sum(w.state == HELD_BACK for w in self.waiting.values())
        return f"{n_found} folders: {held} held back, {len(self.pending) - held} settling"


@dataclass
class Review:
    """One tick's verdict on the folders found."""

    cursor: Cursor
    ready: list[Ready] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # key -> why it is not ready
    vanished: list[str] = field(default_factory=list)  # handed over, no longer found
    examined: int = 0  # folders read file by file
    deferred: int = 0  # new or changed folders left for a later tick


def review(
    found: dict[str, ListedSession],
    handed: dict[str, Handover],
    cursor: Cursor,
    storage: MiniscopeStorage,
    now: float,
) -> Review:
    """Sort the folders found into ready, still settling and unchanged, reading as few files as
    the module docstring says; report handed-over folders no longer found."""
    result = Review(Cursor())
    settling = _newest_first((key for key in cursor.pending if key in found), found)
    changed, new = _changes(found, handed, cursor.pending)
    audits = _audit_windows(found, handed, {*changed, *cursor.pending}, cursor, now)
    room = max(EXAMINED_PER_TICK - len(settling), 0)
    known = [*changed, *audits[FAILED].keys, *audits[HANDED].keys]
    # neither a burst of changes nor years of new history may starve the other of the budget
    chosen = known[: max(room // 2, room - len(new))]
    if len(chosen) < room:
        chosen += _newest_first(new, found)[: room - len(chosen)]
    for key in [*settling, *chosen]:
        _examine(key, found[key], handed.get(key), cursor.pending.get(key), storage, now, result)
    result.cursor.audit = {name: window.after(set(chosen)) for name, window in audits.items()}
    result.examined = len(settling) + len(chosen)
    result.deferred = len(changed) + len(new) - len({*chosen} & {*changed, *new})
    if found:  # an empty listing is more likely an unmounted share than every folder gone
        gone = (key for key, record in handed.items() if not record.deleted and key not in found)
        result.vanished = sorted(gone)[:EXAMINED_PER_TICK]
    return result


def _changes(
    found: dict[str, ListedSession], handed: dict[str, Handover], pending: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Handed-over folders whose folders signature changed (or that came back), and new ones."""
    changed, new = [], []
    for key, listed in found.items():
        if key in pending:
            continue
        record = handed.get(key)
        if record is None:
            new.append(key)
        elif record.deleted or record.folders != folders_signature(
            listed.folder, listed.acquisitions
        ):
            changed.append(key)
    return changed, new


@dataclass(frozen=True)
class _Window:
    """The keys one audit pass reads this tick."""

    keys: list[str]
    place: Pass  # where the pass was
    since: float  # when the pass these keys belong to started

    def after(self, examined: set[str]) -> Pass:
        """The pass's place once `examined` were read (the tick's budget may cut the window)."""
        done = [key for key in self.keys if key in examined]
        return Pass(done[-1], self.since) if done else self.place


def _audit_windows(
    found: dict[str, ListedSession],
    handed: dict[str, Handover],
    skip: set[str],
    cursor: Cursor,
    now: float,
) -> dict[str, _Window]:
    """This tick's window of each audit pass over the handed-over folders found (sorted), those
    whose last conversion failed apart; `skip` are read anyway."""
    keys: dict[str, list[str]] = {FAILED: [], HANDED: []}
    for key in sorted(found.keys() & handed.keys() - skip):
        keys[FAILED if handed[key].failed_run else HANDED].append(key)
    windows = {}
    for name, period in AUDIT_PERIOD_SECONDS.items():
        place = cursor.audit.get(name, Pass(None, now))  # the first pass one period from now
        windows[name] = _window(keys[name], place, now, period)
    return windows


def _window(keys: list[str], place: Pass, now: float, period: float) -> _Window:
    """A pass reads the sorted `keys` AUDITED_PER_TICK at a time; the next pass starts `period`
    seconds after the last one did."""
    if place.after is not None:
        start = bisect.bisect_right(keys, place.after)
        if start < len(keys):
            return _Window(keys[start : start + AUDITED_PER_TICK], place, place.since)
    if now - place.since < period:
        return _Window([], place, place.since)
    return _Window(keys[:AUDITED_PER_TICK], place, now)


def _newest_first(keys: Iterable[str], found: dict[str, ListedSession]) -> list[str]:
    """A recording just finished goes before years of history waiting to be converted."""
    mtimes = {key: _mtime(found[key].folder) for key in keys}
    return sorted(mtimes, key=lambda key: (-mtimes[key], key))


def _mtime(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0


def _examine(
    key: str,
    listed: ListedSession,
    record: Handover | None,
    pending: str | None,
    storage: MiniscopeStorage,
    now: float,
    result: Review,
) -> None:
    """Read one folder file by file and file it as unchanged, seen, settling, waiting or ready."""
    sig = signature(listed.folder, listed.acquisitions)
    text = signature_text(sig)
    if record is not None and same_files(record.signature, sig):
        if record.deleted or record.folders != sig.folders:
            note = "folder back, files unchanged" if record.deleted else "files unchanged"
            result.seen.append(Seen(key, listed.folder, sig, note))
        return
    quiet = now - sig.newest_mtime_ns / 1e9
    if pending != text or quiet < storage.settle_seconds:
        why = "files changed since the last look (being copied?)"
        if pending == text:
            at = _clock(sig.newest_mtime_ns / 1e9 + storage.settle_seconds)
            why = f"settling: handed over after {at} if nothing changes"
        _wait(result.cursor, key, text, Waiting(WAITING, why))
        return
    if len(result.ready) >= storage.max_new_per_tick:
        why = f"ready; more than MINISCOPE_MAX_NEW_PER_TICK={storage.max_new_per_tick} this tick"
        _wait(result.cursor, key, text, Waiting(WAITING, why))
        return
    status = folder_status(listed.folder)
    if status.complete and status.signature == sig:
        note = "complete"
    elif status.signature == sig and quiet >= storage.stale_seconds:
        note = f"incomplete but unchanged for {quiet:.0f} s: {status.reason}"
    else:
        reason = below(storage, status.reason) or "changed while being checked"
        if status.signature == sig:
            at = _clock(sig.newest_mtime_ns / 1e9 + storage.stale_seconds)
            reason += f"; converted as it is at {at} if nothing changes (MINISCOPE_STALE_SECONDS)"
        _wait(result.cursor, key, signature_text(status.signature), Waiting(HELD_BACK, reason))
        result.waiting[key] = reason
        return
    failed_run = record.failed_run if record else ""
    if failed_run:
        note += f"; changed since conversion run {failed_run} failed"
    result.ready.append(Ready(key, listed.folder, sig, note, failed_run))


def _wait(cursor: Cursor, key: str, text: str, waiting: Waiting) -> None:
    cursor.pending[key] = text
    cursor.waiting[key] = waiting


def _clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _skip_reason(n_found: int, result: Review) -> str:
    later = f"; {result.deferred} more new or changed for later ticks" if result.deferred else ""
    if not result.cursor.pending:
        return f"{n_found} session folders, none new or changed{later}"
    n_pending = len(result.cursor.pending)
    text = f"{n_found} session folders; {n_pending} new or changed, not ready yet{later}"
    waiting = [f"{key}: {reason}" for key, reason in sorted(result.waiting.items())[:5]]
    return "; ".join([text, *waiting])


def _gone(
    instance: dg.DagsterInstance, storage: MiniscopeStorage, keys: list[str]
) -> dict[str, str]:
    """Key -> relative folder of the vanished `keys` whose folder is really gone."""
    return {
        key: rel_path
        for key, rel_path in rel_paths(instance, keys).items()
        if is_gone(storage.raw_path, rel_path)
    }


def _run_request(ready: Ready) -> dg.RunRequest:
    tags = {"miniscope/ready": ready.note[:200]}
    if ready.failed_run:
        tags["miniscope/after_failed_run"] = ready.failed_run
    return dg.RunRequest(
        partition_key=ready.key,
        run_key=f"{ready.key}@{signature_text(ready.signature)}",
        tags=tags,
    )


@dg.sensor(
    target=convert_session_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Converts a session folder under the raw root once it is complete and has stopped "
        "changing (or has not changed for MINISCOPE_STALE_SECONDS), and again when it changes "
        "(also after a failed conversion); marks sessions whose folder is gone. The folders "
        "waiting and why are on raw_root; its state is in <output root>/"
        f"{SENSOR_STATE_FILE} (the cursor is only a summary: editing it changes nothing)."
    ),
)
def session_sensor(
    context: dg.SensorEvaluationContext, storage: MiniscopeStorage
) -> dg.SensorResult:
    """Register finished (or long-unchanged) session folders and request their conversion."""
    if not storage.raw_path.is_dir():
        return dg.SensorResult(skip_reason=f"the raw root {storage.raw_path} is not a folder")
    everything = list_sessions(storage.raw_path, with_unreadable=True)
    listed = {key: found for key, found in everything.items() if not refused(found)}
    known = handovers(context.instance)
    found = {key: session for key, session in listed.items() if key not in known.unread}
    state = Cursor.load(storage, context.cursor)
    result = review(found, known.handed, state, storage, time.time())
    result.cursor.save(storage)
    events = _events(context, storage, known.handed, result)
    waiting = waiting_event(context.instance, storage, everything, result.cursor)
    events += [waiting] if waiting else []
    cursor = result.cursor.summary(len(listed))
    if not result.ready:
        reason = _skip_reason(len(listed), result)
        return dg.SensorResult(skip_reason=reason, asset_events=events, cursor=cursor)
    partitions = set(sessions.get_partition_keys(dynamic_partitions_store=context.instance))
    new_keys = [r.key for r in result.ready if r.key not in partitions]
    return dg.SensorResult(
        dynamic_partitions_requests=[sessions.build_add_request(new_keys)] if new_keys else [],
        asset_events=events,
        run_requests=[_run_request(ready) for ready in result.ready],
        cursor=cursor,
    )


def below(storage: MiniscopeStorage, text: str) -> str:
    """`text` with the raw root's paths relative to it: a reason shown beside its folder."""
    return text.replace(f"{storage.raw_path.resolve()}{os.sep}", "")


def refused(listed: ListedSession) -> bool:
    """A folder whose every acquisition's metaData.json does not parse: never a partition."""
    return bool(listed.unreadable) and not listed.acquisitions


def waiting_rows(
    storage: MiniscopeStorage, listed: dict[str, ListedSession], cursor: Cursor
) -> list[dict[str, str]]:
    """The folders not handed over, refused or waiting, with why: what `raw_root` shows."""
    rows = [
        {"folder": storage.rel_path(found.folder).as_posix(), "state": REFUSED,
         "why": below(storage, found.refusal())}
        for found in listed.values()
        if refused(found)
    ]  # fmt: skip
    for key, waiting in sorted(cursor.waiting.items()):
        if key in listed:
            folder = storage.rel_path(listed[key].folder).as_posix()
            rows.append({"folder": folder, "state": waiting.state, "why": waiting.why})
    return sorted(rows, key=lambda row: row["folder"])


def waiting_event(
    instance: dg.DagsterInstance,
    storage: MiniscopeStorage,
    listed: dict[str, ListedSession],
    cursor: Cursor,
) -> dg.AssetMaterialization | None:
    """`raw_root` reported when the folders waiting or refused (or why) changed, so that a
    folder copied in or held back shows in the UI within a tick, and the overview follows."""
    rows = waiting_rows(storage, listed, cursor)
    version = hashlib.blake2b(json.dumps(rows).encode(), digest_size=8).hexdigest()
    latest = instance.get_latest_materialization_event(RAW_ROOT)
    materialization = latest.asset_materialization if latest else None
    if materialization is not None and (materialization.tags or {}).get(DATA_VERSION) == version:
        return None
    counts = {state: sum(row["state"] == state for row in rows) for state in WAITING_STATES}
    return dg.AssetMaterialization(
        asset_key=RAW_ROOT,
        description=", ".join(f"{n} {state}" for state, n in counts.items()),
        metadata={
            "raw_root": dg.MetadataValue.path(str(storage.raw_path)),
            **counts,
            "folders": table(rows) if rows else "none: every folder is handed over",
            "next_look": f"every {SENSOR_INTERVAL_SECONDS} s (the sensor's tick)",
        },
        tags={DATA_VERSION: version},
    )


def _events(
    context: dg.SensorEvaluationContext,
    storage: MiniscopeStorage,
    handed: dict[str, Handover],
    result: Review,
) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    """The tick's reports on `raw_session`, each logged: folders gone, seen again, handed over."""
    events: list[dg.AssetMaterialization | dg.AssetObservation] = []
    for key, gone in _gone(context.instance, storage, result.vanished).items():
        context.log.warning(f"{key}: its folder {gone} is gone; partition and outputs kept")
        events.append(gone_event(key, gone, handed[key]))
    for seen in result.seen:
        rel_path = storage.rel_path(seen.folder)
        events.append(seen_event(seen.key, rel_path, seen.folder, seen.signature, seen.note))
    for ready in result.ready:
        context.log.info(f"{ready.key}: {ready.note}")
        rel_path = storage.rel_path(ready.folder)
        events.append(raw_event(ready.key, rel_path, ready.folder, ready.signature, ready.note))
    return events
