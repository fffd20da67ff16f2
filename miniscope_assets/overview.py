"""The lab's view: every folder under the raw root with its state, and one page listing them.

`folder_states` is the one answer to "what became of each folder I recorded": converted, stale,
failed, being converted, waiting (being copied, settling), held back (settled but incomplete or
broken) or refused (a session metaData.json that does not parse: never a partition), and
handed-over sessions whose folder is gone. It reads what others decided and recorded: the
library's listing, the session sensor's state file (why a folder waits), the instance's
handovers and failed runs, and the files' provenance (`stale_reason`). `lab_overview` adds each
session's numbers from its latest `nwb_file` materialization and writes `<output_root>/index.html`,
a page that opens from a shared drive (links relative to it, nothing fetched).
"""

import html
import os
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg

from miniscope_core import folder_status, write_bytes

from .assets import nwb_file, report_path
from .checks import NWB_CHECKS, TIMESTAMP_CHECKS
from .partitions import GROUP, RAW_ROOT, RAW_SESSION
from .registry import Handover, failed_runs, failure_lines, handovers, latest_metadata, rel_paths
from .resources import MiniscopeStorage
from .scan import list_sessions
from .sensors import (
    HELD_BACK,
    REFUSED,
    SENSOR_INTERVAL_SECONDS,
    WAITING,
    Cursor,
    below,
    refused,
)
from .settings import SettingsError
from .ui import table

CONVERTED, STALE, FAILED = "converted", "stale", "failed"
CONVERTING, NOT_CONVERTED, NEW, GONE = "converting", "not converted", "new", "gone"
# Worst first: the order of the page's summary and of its colours.
STATES = (FAILED, REFUSED, HELD_BACK, GONE, STALE, NOT_CONVERTED, WAITING, NEW, CONVERTING,
          CONVERTED)  # fmt: skip
_NEXT_LOOK = f"looked at again at the sensor's next tick (every {SENSOR_INTERVAL_SECONDS} s)"


@dataclass(frozen=True)
class FolderState:
    """One folder under the raw root (or a session whose folder is gone), and what became of it.

    `key` is its partition key (the one it would get, if refused); `folder` is relative to the
    raw root; `why` is one line ("" for a current file); `file` its NWB file, if any."""

    key: str
    folder: str
    state: str
    why: str = ""
    file: Path | None = None


def folder_states(
    storage: MiniscopeStorage, instance: dg.DagsterInstance | None = None
) -> list[FolderState]:
    """Every folder under the raw root with its state, sorted by folder. Without an instance
    (a shell with no Dagster home) only the files and the sensor's state file are read, so a
    failed or running conversion shows as `not converted`. A folder neither converted nor
    handed over nor known to the sensor is checked for completeness here (one read of its
    files), as the sensor would."""
    listed = list_sessions(storage.raw_path, with_unreadable=True)
    waiting = Cursor.load(storage, None).waiting
    handed = handovers(instance).handed if instance is not None else {}
    failures = failed_runs(instance) if instance is not None else {}
    lines = failure_lines(instance, failures.values()) if instance is not None else {}
    converted = storage.converted()
    running = _running(instance, handed.keys() - converted.keys())
    states = []
    for key, found in listed.items():
        folder = storage.rel_path(found.folder).as_posix()
        file = converted.get(key)
        if refused(found):
            why = (
                f"{below(storage, found.refusal())}; never converted until it parses, {_NEXT_LOOK}"
            )
            states.append(FolderState(key, folder, REFUSED, why))
        elif key in waiting:
            state, why = waiting[key].state, f"{waiting[key].why}; {_NEXT_LOOK}"
            states.append(FolderState(key, folder, state, why, file))
        elif run_id := failures.get(key):
            why = f"{lines.get(run_id, 'see the run')} (run {run_id[:8]}); {_AFTER_FAILURE}"
            states.append(FolderState(key, folder, FAILED, why, file))
        elif file is not None:
            states.append(_judged(storage, key, folder, file))
        elif key in running:
            states.append(FolderState(key, folder, CONVERTING, f"run {running[key][:8]}"))
        elif key not in handed and (reason := folder_status(found.folder).reason):
            why = f"{below(storage, reason)} (not looked at by the sensor yet)"
            states.append(FolderState(key, folder, WAITING, why))
        elif key in handed or instance is None:
            why = f"no file yet: `miniscope-dagster backfill {key}` converts it"
            states.append(FolderState(key, folder, NOT_CONVERTED, why))
        else:
            why = "found; the sensor has not read it yet (it reads a bounded number per tick)"
            states.append(FolderState(key, folder, NEW, why))
    states += _gone(instance, converted, handed, listed.keys())
    return sorted(states, key=lambda state: (state.folder, state.key))


_AFTER_FAILURE = "converted again once its folder changes, or by `miniscope-dagster backfill`"


def _judged(storage: MiniscopeStorage, key: str, folder: str, file: Path) -> FolderState:
    """A converted session: current, or stale and why."""
    try:
        reason = storage.stale_reason(key, file)
    except SettingsError as error:  # a damaged choices.json: the next run says the same
        return FolderState(key, folder, STALE, str(error), file)
    if reason is None:
        return FolderState(key, folder, CONVERTED, "", file)
    return FolderState(key, folder, STALE, f"{reason}; `backfill --stale` re-converts", file)


def _running(instance: dg.DagsterInstance | None, keys: Set[str]) -> dict[str, str]:
    """Key -> id of a queued or running run of one of the handed-over `keys` with no file."""
    if instance is None or not keys:
        return {}
    runs = instance.get_runs(dg.RunsFilter(statuses=_IN_PROGRESS))
    return {
        key: run.run_id for run in runs if (key := run.tags.get("dagster/partition", "")) in keys
    }


_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]  # fmt: skip


def _gone(
    instance: dg.DagsterInstance | None,
    converted: Mapping[str, Path],
    handed: Mapping[str, Handover],
    listed: Set[str],
) -> list[FolderState]:
    """Sessions handed over whose folder the sensor found gone: partition and outputs kept."""
    keys = [key for key, record in handed.items() if record.deleted and key not in listed]
    if instance is None or not keys:
        return []
    return [
        FolderState(key, folder, GONE, "its folder is gone; partition and outputs kept",
                    converted.get(key))
        for key, folder in rel_paths(instance, keys).items()
    ]  # fmt: skip


# The overview: each session's numbers from its latest nwb_file materialization.

COLUMNS = ("state", "session", "why", "date", "animal", "frames", "duration_s",
           "dropped_percent", "max_motion_px", "checks", "report", "file")  # fmt: skip
_HEADINGS = {"duration_s": "duration (s)", "dropped_percent": "dropped %",
             "max_motion_px": "motion (px)"}  # fmt: skip
_FACTS = {  # column -> nwb_file metadata key
    "date": "session_start",
    "animal": "subject",
    "frames": "frames",
    "duration_s": "duration_s",
    "dropped_percent": "qc_dropped_percent",
    "max_motion_px": "qc_max_motion_px",
}
_CHECKS = [spec.key for spec in (*TIMESTAMP_CHECKS, *NWB_CHECKS)]


def overview_rows(storage: MiniscopeStorage, instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """`folder_states` with each converted session's numbers, checks, QC report and file."""
    states = folder_states(storage, instance)
    keys = [state.key for state in states if state.state != REFUSED]
    facts = latest_metadata(instance, nwb_file.key, keys)
    checks = _check_summaries(instance, keys)
    rows = []
    for state in states:
        shown = facts.get(state.key, {}) if state.file is not None else {}
        report = report_path(shown)
        values = {
            "state": state.state,
            "session": state.key,
            "why": state.why,
            **{column: _plain(shown.get(name)) for column, name in _FACTS.items()},
            "date": _minute(_plain(shown.get(_FACTS["date"]))),
            "checks": checks.get(state.key, "") if state.file is not None else "",
            "report": report or "",
            "file": str(state.file) if state.file is not None else "",
        }
        rows.append({**{column: values[column] for column in COLUMNS}, "folder": state.folder})
    return rows


def _plain(value: dg.MetadataValue | None) -> Any:
    return "" if value is None else value.value


def _minute(start: str) -> str:
    """`2021-05-14 11:34` (the recording's own clock) from the file's ISO start time."""
    try:
        return datetime.fromisoformat(start).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return start


def _check_summaries(instance: dg.DagsterInstance, keys: Sequence[str]) -> dict[str, str]:
    """Key -> "5/6 passed; failed: motion_under_threshold" from the latest check results."""
    if not keys:
        return {}
    infos = instance.event_log_storage.get_asset_check_partition_info(_CHECKS, partition_keys=keys)
    done: dict[str, list[tuple[str, bool]]] = {}
    for info in infos:
        status = info.latest_execution_status.value
        if info.partition_key is not None and status in ("SUCCEEDED", "FAILED"):
            passed = status == "SUCCEEDED"
            done.setdefault(info.partition_key, []).append((info.check_key.name, passed))
    summaries = {}
    for key, results in done.items():
        failed = sorted(name for name, passed in results if not passed)
        summary = f"{len(results) - len(failed)}/{len(results)} passed"
        summaries[key] = summary + (f"; failed: {', '.join(failed)}" if failed else "")
    return summaries


def render_page(rows: Sequence[Mapping[str, Any]], root: Path, made: datetime) -> str:
    """The overview as one HTML page with no script and nothing fetched; links are relative
    to `root` (where the page is), so the page and its files can move together."""
    head = "".join(f"<th>{html.escape(_HEADINGS.get(c, c))}</th>" for c in COLUMNS)
    body = "\n".join(_row(row, root) for row in rows)
    return _PAGE.format(
        summary=html.escape(_summary(rows)),
        made=html.escape(made.strftime("%Y-%m-%d %H:%M UTC")),
        head=head,
        body=body or f'<tr><td colspan="{len(COLUMNS)}">no session folder yet</td></tr>',
    )


def _summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """`7 folders: 1 failed, 2 held back, 4 converted`, the worst first."""
    counts = Counter(row["state"] for row in rows)
    states = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
    return f"{len(rows)} folders: {states or 'none yet'}"


def _row(row: Mapping[str, Any], root: Path) -> str:
    cells = []
    for column in COLUMNS:
        value = row.get(column, "")
        if column == "state":
            text = html.escape(str(value))
            cells.append(f'<td><span class="state {_css(value)}">{text}</span></td>')
        elif column == "session":
            name, folder = html.escape(str(value)), html.escape(str(row.get("folder", "")))
            cells.append(f'<td class="name">{name}<div class="folder">{folder}</div></td>')
        elif column in ("report", "file") and value:
            label = "QC report" if column == "report" else Path(value).name
            href = html.escape(_relative(Path(value), root), quote=True)
            cells.append(f'<td><a href="{href}">{html.escape(label)}</a></td>')
        elif isinstance(value, float):
            cells.append(f'<td class="number">{value:g}</td>')
        elif isinstance(value, int):
            cells.append(f'<td class="number">{value}</td>')
        else:
            cells.append(f'<td class="{column}">{html.escape(str(value))}</td>')
    return f'<tr class="{_css(row.get("state", ""))}">{"".join(cells)}</tr>'


def _css(state: Any) -> str:
    return str(state).replace(" ", "-")


def _relative(path: Path, root: Path) -> str:
    """A link from the page in `root` to `path`: relative (URL-quoted) when below it."""
    absolute, top = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    if absolute.is_relative_to(top):
        return quote(absolute.relative_to(top).as_posix())
    return absolute.as_uri()


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Miniscope sessions</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
p.summary {{ margin: 0 0 16px; color: #444; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 6px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }}
td.number {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.name {{ font-weight: 600; }}
td.why {{ min-width: 20em; max-width: 36em; overflow-wrap: anywhere; color: #333; }}
td.date {{ white-space: nowrap; }}
div.folder {{ font-weight: normal; color: #666; font-size: 12px; }}
span.state {{ padding: 2px 8px; border-radius: 10px; white-space: nowrap; background: #eee; }}
span.converted {{ background: #d9f2dd; color: #14521d; }}
span.failed, span.refused {{ background: #fbdada; color: #7a1010; }}
span.held-back, span.stale, span.gone {{ background: #fdebc8; color: #6b4500; }}
span.waiting, span.new, span.converting, span.not-converted {{
  background: #dde8f8; color: #153e75; }}
</style></head>
<body>
<h1>Miniscope sessions</h1>
<p class="summary">{summary}. Every folder under the raw root, as of {made}: red needs a
person, amber a look, blue is on its way.</p>
<table><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table>
</body></html>
"""


def overview_condition() -> dg.AutomationCondition:
    """Re-materialize after a session is handed over or converted, or the folders waiting
    change (the sensor reports `raw_root`); not while a run of it is in progress.

    Not `eager()`: it waits for every partition of every dependency to exist, and a lab's
    collection always has sessions not converted (or failed), so it would never run. A failed
    conversion updates no asset, so `overview_after_failure` requests the overview then."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("a session changed state")


@dg.asset(
    deps=[RAW_ROOT, RAW_SESSION, nwb_file],
    group_name=GROUP,
    kinds={"html"},
    automation_condition=overview_condition(),
)
def lab_overview(
    context: dg.AssetExecutionContext, storage: MiniscopeStorage
) -> dg.MaterializeResult:
    """Every folder under the raw root with its state and, once converted, its date, animal,
    frames, duration, dropped frames, motion, checks, QC report and file: a table here and a
    page (`index.html` in the output root) that opens from a shared drive."""
    rows = overview_rows(storage, context.instance)
    page = storage.overview_path
    write_bytes(page, render_page(rows, page.parent, datetime.now(UTC)).encode())
    counts = Counter(row["state"] for row in rows)
    return dg.MaterializeResult(
        metadata={
            "page": dg.MetadataValue.url(storage.link(page)),
            "summary": _summary(rows),
            "sessions": table(rows) if rows else "no session folder yet",
            "path": dg.MetadataValue.path(str(page)),
            "dagster/uri": storage.link(page),
            "folders": len(rows),
            **{state.replace(" ", "_"): counts[state] for state in STATES},  # plotted over time
        }
    )


overview_job = dg.define_asset_job(
    "lab_overview_job", selection=[lab_overview], description="Rewrite the lab overview."
)


@dg.run_failure_sensor(
    request_job=overview_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rewrites the lab overview after a conversion run fails, so it lists the failure.",
)
def overview_after_failure(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    """A failed run materializes nothing, so no automation condition sees it: this does, for a
    session's run only (the overview's own runs are not partitioned: one that fails is not
    requested again, which would fail the same way)."""
    run = context.dagster_run
    if "dagster/partition" not in run.tags:
        return dg.SkipReason(f"run {run.run_id[:8]} converted no session: nothing to list")
    return dg.RunRequest(tags={"miniscope/after_failed_run": run.run_id})
