"""The conversion of one session as four assets, each a thin call into `miniscope_core`.

raw_session -> acquisition_metadata -> {timestamp_tables, video_chunks} -> nwb_file

Every asset writes its own files under `<output_root>/<partition key>/` (atomically) and returns
only metadata: no IO manager, no values passed through Dagster, so re-materialising a partition
just rewrites the same files. The two heavy steps share a concurrency pool so that a backfill of
hundreds of sessions decodes only as many at once as the instance allows.

The assets that depend on the run's conversion choices read one `ConversionConfig`; a run
launched with choices gives every one of them the same (`conversion_run_config`). `nwb_file`
re-encodes any chunk file not made with its own choices, so its config decides the file.
"""

import functools
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg
import pandas as pd

from miniscope_core import (
    ChunkFile,
    MiniscopeFormatError,
    Session,
    SessionQC,
    check_file,
    chunk_file_preview,
    convert_session,
    describe_session,
    discover,
    encode_videos,
    frame_counts,
    lab_messages,
    miniscope_totals,
    recorded_warnings,
    recording_reports,
    require_dandi_metadata,
    stored_bytes,
    write_bytes,
    write_csv,
    write_json,
)

from .checks import (
    NWB_CHECKS,
    TIMESTAMP_CHECKS,
    frame_counts_agree,
    nwb_valid,
    quality_checks,
    timestamps_increase,
)
from .partitions import GROUP, raw_session, sessions
from .resources import CONVERTER, ConversionConfig, MiniscopeStorage
from .settings import SettingsError
from .ui import images, table

HEAVY_POOL = "miniscope_heavy"
# The converter's version: files made by another show as changed code in the UI (`--stale`).
CODE_VERSION = CONVERTER
P = ParamSpec("P")
R = TypeVar("R")


# Dagster's run tag that keeps the instance's run retries off a run failed by a step.
NO_RETRY = {"dagster/retry_on_asset_or_op_failure": "false"}


class SessionRefused(dg.Failure):
    """A step refused by the library. Dagster heads the error with the exception's module and
    class: `miniscope_assets.assets.SessionRefused: <the library's line>` says who refused,
    where a plain `dg.Failure` reads `dagster._core.definitions.events.Failure: ...`."""


def _plain_failures(asset_fn: Callable[P, R]) -> Callable[P, R]:
    """A problem in the recording, its metadata or the run's choices fails the step with the
    library's one-line message as the headline, not a traceback from inside the library; and
    its run is not retried, since the same input fails the same way (a crash still is)."""

    @functools.wraps(asset_fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asset_fn(*args, **kwargs)
        except (MiniscopeFormatError, SettingsError, SessionRefused) as error:
            context = args[0]
            if isinstance(context, dg.AssetExecutionContext):
                context.instance.add_run_tags(context.run.run_id, NO_RETRY)
            line = error.description if isinstance(error, SessionRefused) else str(error)
            raise SessionRefused(description=line, allow_retries=False) from None

    return run


def _session(context: dg.AssetExecutionContext, storage: MiniscopeStorage) -> tuple[str, Session]:
    key = context.partition_key
    return key, discover(storage.session_folder(key))


@dg.asset(
    partitions_def=sessions,
    deps=[raw_session],
    group_name=GROUP,
    kinds={"json"},
    code_version=CODE_VERSION,
)
@_plain_failures
def acquisition_metadata(
    context: dg.AssetExecutionContext, storage: MiniscopeStorage, config: ConversionConfig
) -> dg.MaterializeResult:
    """Every acquisition and device of the session, and the NWB metadata it will get."""
    key, session = _session(context, storage)
    config = storage.session_config(key, config)
    rel_path = storage.rel_path(session.root)
    metadata = storage.nwb_metadata(session, config.metadata)
    if storage.dandi_layout_for(config):
        require_dandi_metadata(metadata, session.root)
    report = describe_session(session)
    if report.refusals:
        raise SessionRefused(description=report.refusals[0])  # what converting would refuse
    description = {"rel_path": rel_path.as_posix(), **report.as_dict(), "nwb_metadata": metadata}
    path = write_json(storage.session_dir(key) / "acquisitions.json", description)
    starts = [a.start for a in report.acquisitions if a.start]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "rel_path": rel_path.as_posix(),
            "acquisitions": len(session.acquisitions),
            "first_start": starts[0] if starts else "unknown",
            "devices": table([device.rig_row() for device in report.devices]),
            "clock_alignment": report.clock_alignment or "none (no sync.csv)",
            "files": report.files,
            "left_out": table(report.left_out),
            "problems": report.problems,
        }
    )


@dg.asset(
    partitions_def=sessions,
    code_version=CODE_VERSION,
    deps=[acquisition_metadata],
    group_name=GROUP,
    kinds={"csv"},
    check_specs=TIMESTAMP_CHECKS,
)
@_plain_failures
def timestamp_tables(
    context: dg.AssetExecutionContext, storage: MiniscopeStorage
) -> dg.MaterializeResult:
    """timeStamps.csv of every device per acquisition, read by column name, with its timing.

    Frames, duration, rate, jitter and dropped frames are Miniscope totals; the table has every
    device (cameras too).
    """
    key, session = _session(context, storage)
    folder = storage.session_dir(key) / "timestamps"
    for acquisition in session.acquisitions:
        for device in acquisition.devices:
            if (times := device.timestamps) is not None:
                write_csv(folder / acquisition.label / f"{device.folder.name}.csv", times)
    timed = [device for device in describe_session(session).devices if device.timestamps]
    rows = [device.timing_row() for device in timed]
    summary = write_csv(folder / "summary.csv", pd.DataFrame(rows))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(summary)),
            **miniscope_totals(timed).metadata(),
            "devices": table(rows),
        },
        check_results=[timestamps_increase(timed)],
    )


@dg.asset(
    partitions_def=sessions,
    code_version=CODE_VERSION,
    deps=[acquisition_metadata],
    group_name=GROUP,
    kinds={"hdf5"},
    pool=HEAVY_POOL,
)
@_plain_failures
def video_chunks(
    context: dg.AssetExecutionContext, storage: MiniscopeStorage, config: ConversionConfig
) -> dg.MaterializeResult:
    """Every video decoded and compressed into the chunk layout of its NWB dataset.

    A chunk file whose source video is unchanged is reused, so an acquisition added to a session
    later decodes only its own videos (when chunk files are kept). Camera frames are decoded
    only when the run embeds cameras.
    """
    key, session = _session(context, storage)
    config = storage.session_config(key, config)
    if config.stub:
        return dg.MaterializeResult(metadata={"stub": True, "note": "stub run: nwb_file decodes"})
    work = storage.chunks_dir(key)
    before = {path: path.stat().st_mtime_ns for path in work.rglob("*.h5")}
    began = time.perf_counter()
    chunks = encode_videos(session, work, storage.options(config))
    seconds = time.perf_counter() - began
    decoded = [c for c in chunks.values() if before.get(c.path) != c.path.stat().st_mtime_ns]
    errors = {str(c.source): c.decode_error for c in chunks.values() if c.decode_error}
    for source, error in errors.items():
        context.log.warning(f"{source}: {error}")
    previews = _write_previews(session, chunks, storage.previews_dir(key))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(work)),
            "frames": sum(c.n_frames for c in chunks.values()),
            "files": len(chunks),
            "files_decoded_now": len(decoded),
            "bytes": sum(c.path.stat().st_size for c in chunks.values()),
            "decode_errors": errors,
            "seconds": round(seconds, 2),
            "preview": images(previews),
        }
    )


def _write_previews(
    session: Session, chunks: dict[Path, ChunkFile], folder: Path
) -> dict[str, bytes]:
    """A max projection of the first frames of each Miniscope, saved as `<folder>/<name>.png`."""
    previews: dict[str, bytes] = {}
    for acquisition in session.acquisitions:
        for device in acquisition.devices:
            if device.kind != "miniscope" or device.name in previews:
                continue
            decoded = [chunks[v] for v in device.videos if chunks[v].n_frames]
            if decoded:
                previews[device.name] = chunk_file_preview(decoded[0].path)
                write_bytes(folder / f"{device.folder.name}.png", previews[device.name])
    return previews


@dg.asset(
    partitions_def=sessions,
    code_version=CODE_VERSION,
    deps=[timestamp_tables, video_chunks],
    group_name=GROUP,
    kinds={"nwb"},
    pool=HEAVY_POOL,
    check_specs=NWB_CHECKS,
)
@_plain_failures
def nwb_file(
    context: dg.AssetExecutionContext, storage: MiniscopeStorage, config: ConversionConfig
) -> dg.MaterializeResult:
    """The session's NWB file, assembled by copying the compressed chunks (written atomically).

    Chunk files cleaned up earlier, or made with other choices, are decoded again first; they
    are removed afterwards unless MINISCOPE_KEEP_CHUNKS is true.
    """
    began = time.perf_counter()
    with recorded_warnings() as caught:  # from reading the folder on: its inventory warns
        key, session = _session(context, storage)
        config = storage.session_config(key, config)
        options = storage.options(config)
        metadata = storage.nwb_metadata(session, config.metadata)
        path = storage.output_path(key, session, metadata, config)
        # The library decides the path: a stub decodes straight into the file; otherwise the
        # chunk files video_chunks made are copied in (missing or stale ones are made again).
        done = convert_session(
            session, path, options, config.metadata or None, work_dir=storage.chunks_dir(key),
            lab_metadata_path=storage.lab_metadata, overwrite=True,
            thresholds=storage.thresholds(),
        )  # fmt: skip
    seconds = time.perf_counter() - began
    storage.record_choices(key, config)
    notes = lab_messages(caught)
    for note in notes:
        context.log.warning(note)
    counts = frame_counts(done.recordings, path, options.naming)
    if not storage.keep_chunks:
        shutil.rmtree(storage.chunks_dir(key), ignore_errors=True)
    devices = recording_reports(done.recordings)
    totals = miniscope_totals(devices)
    size = stored_bytes(path)
    previews = {p.stem: p.read_bytes() for p in sorted(storage.previews_dir(key).glob("*.png"))}
    validation = check_file(path)
    qc = done.quality
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "dagster/uri": storage.link(path),
            **_report_metadata(done.report, qc, storage),
            **_who_and_when(session, metadata),
            "size_bytes": size,
            "size_mb": round(size / 1e6, 3),
            **totals.metadata(),  # "frames": the Miniscopes' (as on timestamp_tables)
            "series_frames": done.series_frames,
            "dropped_frames_all_devices": done.dropped_frames,
            "devices": table([device.timing_row() for device in devices]),
            "seconds": round(seconds, 2),
            "warnings": notes,
            "files": session.inventory.summary() if session.inventory else "explicit files",
            "options": asdict(options),
            "options_not_the_labs": storage.differences_from_lab(options) or "none",
            "preview": images(previews),
        },
        check_results=[
            nwb_valid(validation),
            frame_counts_agree(counts),
            *(quality_checks(qc) if qc is not None else []),
        ],
    )


def _who_and_when(session: Session, metadata: dict[str, Any]) -> dict[str, str]:
    """The animal and the start as the file records them (the lab overview lists them): a
    given session_start_time, else the first acquisition's start."""
    start = (metadata.get("NWBFile") or {}).get("session_start_time")
    if start is None:
        starts = [a.start for a in session.acquisitions if a.start is not None]
        start = starts[0].as_datetime() if starts else None
    subject = (metadata.get("Subject") or {}).get("subject_id")
    shown = {"session_start": start.isoformat() if isinstance(start, datetime) else str(start)}
    if start is None:
        shown = {}
    return {**shown, "subject": str(subject)} if subject else shown


def _report_metadata(
    report: Path | None, qc: SessionQC | None, storage: MiniscopeStorage
) -> dict[str, Any]:
    """The QC report's link and numbers: what a person looks at first; its path beside the
    link, which may be an http URL (`reports_url`)."""
    if report is None or qc is None:
        return {}
    numbers = qc.as_metadata()
    return {
        "qc_report": dg.MetadataValue.url(storage.link(report)),
        "qc_report_path": dg.MetadataValue.path(str(report)),
        "qc": "good" if qc.passed else "look closer",
        **{
            f"qc_{name}": value
            for name, value in numbers.items()
            if name != "frames" and value is not None
        },
    }


def report_path(shown: Mapping[str, dg.MetadataValue]) -> str | None:
    """The QC report's path from an nwb_file materialization's metadata: the path stored
    beside the link, or (in one made before it was stored) its file:// link read back."""
    if "qc_report_path" in shown:
        return str(shown["qc_report_path"].value)
    link = str(shown["qc_report"].value) if "qc_report" in shown else None
    return url2pathname(urlsplit(link).path) if link and link.startswith("file:") else link


CONVERSION_ASSETS = [acquisition_metadata, timestamp_tables, video_chunks, nwb_file]
CONFIGURED_ASSETS = [acquisition_metadata, video_chunks, nwb_file]


def conversion_run_config(config: ConversionConfig) -> dict[str, Any]:
    """Run config giving every asset that reads ConversionConfig the same choices; empty when
    nothing is chosen, so the run takes the code location's settings."""
    values = config.model_dump(exclude_defaults=True)
    if not values:
        return {}
    return {"ops": {asset.op.name: {"config": values} for asset in CONFIGURED_ASSETS}}
