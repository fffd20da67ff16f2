"""`miniscope-nwb`: convert Miniscope DAQ sessions to NWB, inspect folders, validate NWB files."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from tqdm import tqdm

from .collection.discovery import CollectionError, discover, list_sessions
from .encode.deflate import ENGINES
from .errors import MiniscopeFormatError
from .metadata.layers import resolve_metadata
from .nwb.backends.support import for_backend, stored_bytes
from .options import DANDI_LAYOUT, ConversionOptions, add_option_flags, given_options
from .outputs.atomic import unwritable, writable_folder
from .outputs.guard import absolute, refuse_writes_inside
from .pipeline.convert import ConversionResult, convert_session, stub_output
from .pipeline.dandi import dandi_output
from .quality.model import SessionQC
from .reports.session import SessionReport, inspect_session
from .testing import write_demo_session
from .timing.sync import SYNC_FILE
from .verify.dandiset import dandiset_findings, nwb_outputs
from .verify.validate import check_file

# Each stage's progress bar (see convert_session's `progress`): its name and what it counts.
_STAGES = (("decoding + compressing", "frame"), ("assembling NWB", "frame"), ("QC report", "page"))
_CONVERSION = tuple(field.name for field in fields(ConversionOptions))
_FLAGS = (*_CONVERSION, DANDI_LAYOUT.name)
_EXIT_CODES = """exit codes: 0 done; 1 some sessions of a collection (or files to validate) failed;
2 bad input or usage (the one-line error names the file and what is wrong; nothing is written);
130 interrupted (nothing written)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miniscope-nwb",
        description=__doc__,
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_convert(commands.add_parser("convert", help="write one NWB file per session"))
    inspect = commands.add_parser("inspect", help="print what a session folder holds")
    inspect.add_argument("session", type=Path, help="session folder, or a collection of them")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--no-decode", action="store_true", help="do not count video frames")
    validate = commands.add_parser(
        "validate",
        help="check NWB files as DANDI does (pynwb, nwbinspector with DANDI's configuration) and "
        "that every image series reads back",
    )
    validate.add_argument(
        "files", type=Path, nargs="*", help=".nwb files or .nwb.zarr stores (with --dandi: "
        "default every one in the dandiset)",
    )  # fmt: skip
    validate.add_argument(
        "--dandi", type=Path, metavar="DANDISET",
        help="also DANDI's rules for the dandiset folder: dandiset.yaml, `dandi organize` names",
    )  # fmt: skip
    demo = commands.add_parser("demo", help="write the built-in demo session and convert it")
    demo.add_argument("folder", type=Path, nargs="?", default=Path("demo_data"))
    return parser


def _add_convert(convert: argparse.ArgumentParser) -> None:
    convert.add_argument("session", type=Path, help="session, acquisition or device folder")
    where = convert.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", type=Path, help="the .nwb (.nwb.zarr) to write")
    where.add_argument(
        "--output-dir", type=Path, help="one <session name>.nwb[.zarr] per session here"
    )
    convert.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    convert.add_argument("--metadata", type=Path, help="YAML/JSON with NWBFile, Subject, Ophys")
    convert.add_argument(
        "--lab-metadata", type=Path, help="lab-wide metadata, under the session's and --metadata"
    )
    convert.add_argument("--work-dir", type=Path, help="keep chunk files here for re-runs")
    add_option_flags(convert.add_argument_group("conversion"), _FLAGS)
    convert.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_level(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The parser refuses a level the chosen deflate engine does not have, one sync file for
    many sessions, and `validate` with nothing to validate."""
    if args.command == "validate" and not (args.files or args.dandi):
        parser.error("validate: give .nwb files, or --dandi DANDISET")
    if args.command != "convert":
        return
    if args.alignment is not None and args.output_dir is not None:
        parser.error(
            f"argument --sync: pairs belong to one session (-o); with --output-dir put a "
            f"{SYNC_FILE} in each session folder"
        )
    levels = ENGINES[args.deflate_engine][1]
    if args.compression_level not in levels:
        parser.error(
            f"argument --compression-level: {args.deflate_engine} takes "
            f"{levels.start}-{levels.stop - 1}, not {args.compression_level}"
        )


def _progress_bars(quiet: bool) -> Callable[[int, int], Callable[[int], None]] | None:
    if quiet:
        return None
    bars: list[tqdm] = []

    def start(total: int, stage: int) -> Callable[[int], None]:
        for bar in bars:
            bar.close()
        name, unit = _STAGES[stage]
        bars.append(tqdm(total=total, desc=name, unit=unit, file=sys.stderr))
        return bars[-1].update

    return start


def _options(args: argparse.Namespace) -> ConversionOptions:
    return ConversionOptions(**given_options(args, _CONVERSION))


def _convert_one(args: argparse.Namespace, session: Path, output: Path) -> ConversionResult:
    return convert_session(
        session,
        output,
        _options(args),
        metadata_path=args.metadata,
        work_dir=args.work_dir,
        progress=_progress_bars(args.quiet),
        lab_metadata_path=args.lab_metadata,
        overwrite=args.overwrite,
    )


def _convert(args: argparse.Namespace) -> int:
    """One session to -o, or each session of a collection into --output-dir; nothing is ever
    written inside the recordings (see `output_guard`), which is checked before any decoding."""
    if args.dandi_layout and args.output is not None:
        raise MiniscopeFormatError(args.output, "--dandi names the files: use --output-dir")
    # Absolute, so that a session given as `.` (or `..`) is named as its folder is.
    args = argparse.Namespace(**{**vars(args), "session": absolute(args.session)})
    if args.output is not None:
        _print_result(_convert_one(args, args.session, args.output))
        return 0
    listed = list_sessions(args.session)
    if not listed:
        raise MiniscopeFormatError(args.session, "holds no Miniscope session")
    refuse_writes_inside(
        [*listed.values(), args.session, args.metadata, args.lab_metadata],
        folders=[args.output_dir, args.work_dir],
    )
    folders = [folder for folder in (args.output_dir, args.work_dir) if folder is not None]
    for folder in folders:
        writable_folder(folder)
    for folder in folders:  # made now, so that a folder that cannot be is said once
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise unwritable(folder, error) from error
    return _convert_all(args, {name: session.folder for name, session in listed.items()})


def _convert_all(args: argparse.Namespace, sessions: dict[str, Path]) -> int:
    """One file per session; a session that fails does not stop the others."""
    done, skipped, failed = 0, 0, 0
    taken: dict[Path, Path] = {}  # output -> session folder, in this run
    for name, folder in sessions.items():
        try:
            output = _output_path(args, name, folder)
            if output in taken:
                raise MiniscopeFormatError(
                    folder,
                    f"would be written to {output} like {taken[output]} (same subject_id and "
                    "session_id): give one of them its own NWBFile.session_id",
                )
            taken[output] = folder
        except MiniscopeFormatError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{folder} -> {output}")
        if output.exists() and not args.overwrite:
            print(f"  skipped: {output} exists (--overwrite replaces it)")
            skipped += 1
            continue
        try:
            work = args.work_dir / name if args.work_dir else None
            _print_result(_convert_one(argparse.Namespace(**{**vars(args), "work_dir": work}),
                                       folder, output))  # fmt: skip
            done += 1
        except MiniscopeFormatError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
    print(f"{len(sessions)} sessions: {done} converted, {skipped} skipped, {failed} failed")
    return 1 if failed else 0


def _output_path(args: argparse.Namespace, name: str, folder: Path) -> Path:
    """`<name>.nwb`, or with --dandi the name `dandi organize` gives (metadata checked first);
    `.nwb.zarr` for Zarr; a stub's name never is the full file's."""
    output = Path(args.output_dir / f"{name}.nwb")
    if args.dandi_layout:
        session = discover(folder)
        metadata = resolve_metadata(session, args.lab_metadata, args.metadata)
        output = dandi_output(session, args.output_dir, metadata, _options(args))
    output = for_backend(output, args.backend)
    return stub_output(output) if args.stub else output


def _print_result(result: ConversionResult) -> None:
    """What a scientist asks first: frames, time, rate, drops, motion, and where to look."""
    size_mb = stored_bytes(result.output) / 1e6
    print(f"wrote {result.output} ({size_mb:.1f} MB) in {result.seconds:.1f} s")
    for name, frames in result.series_frames.items():
        print(f"  {name}: {frames} frames")
    qc = result.quality
    if qc is None:
        print(f"  dropped frames detected: {result.dropped_frames}")
    else:
        for line in _quality_lines(qc):
            print(f"  {line}")
    if result.warnings:
        print(f"  {len(result.warnings)} warning(s), see above")
    if result.report is not None:
        print(f"  QC report: {result.report} (opens in any browser)")


def _quality_lines(qc: SessionQC) -> list[str]:
    lines = []
    for timeline in qc.timelines:
        rate = f"{timeline.rate_hz:.2f} Hz" if timeline.rate_hz else "rate unknown"
        dropped = f"{timeline.dropped} dropped"
        if timeline.dropped_percent is not None:
            dropped += f" ({timeline.dropped_percent:.2f} %)"
        lines.append(
            f"{timeline.device}: {timeline.n_frames} frames, {timeline.duration_s:.1f} s, "
            f"{rate}, {dropped}"
        )
    lines += [f"{verdict.label.lower()}: {verdict.describe()}" for verdict in qc.verdicts()]
    beyond = [v.label.lower() for v in qc.verdicts() if v.passed is False]
    invalid = qc.validation is not None and not qc.validation.passed
    verdict = (
        "good"
        if qc.passed
        else "look closer: " + ", ".join([*beyond, *(["validation"] if invalid else [])])
    )
    return [*lines, f"QC: {verdict}"]


def _inspect(args: argparse.Namespace) -> int:
    """One session's report; for a collection, a report per session (never merged)."""
    try:
        report = inspect_session(args.session, decode=not args.no_decode)
    except CollectionError as collection:
        reports = [inspect_session(s, decode=not args.no_decode) for s in collection.sessions]
        if args.json:
            listing = {"collection": str(args.session), "sessions": [r.as_dict() for r in reports]}
            print(json.dumps(listing, indent=2))
        else:
            print(f"collection {args.session}: {len(reports)} sessions")
            print("\n".join(_format_report(r) for r in reports))
        return 0
    print(json.dumps(report.as_dict(), indent=2) if args.json else _format_report(report))
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Exit 1 when any file fails DANDI's gate (a schema error, a finding DANDI counts as an
    error) or the read-back, or the dandiset breaks one of DANDI's rules; warnings never fail."""
    findings = dandiset_findings(args.dandi) if args.dandi else None  # a bad folder: exit 2 first
    files = list(args.files) or (nwb_outputs(args.dandi) if args.dandi else [])
    if not files:
        raise MiniscopeFormatError(args.dandi, "holds no .nwb file to validate")
    failed = 0
    for path in files:
        result = check_file(path)
        print(f"{path}: {'ok' if result.passed else 'FAILED'} ({result.summary})")
        for problem in result.schema_errors:
            print(f"  - error (DANDI: error, pynwb) {problem}")
        for problem in result.critical:
            print(f"  - error (DANDI: error) {problem}")
        for problem in result.readback.problems:
            print(f"  - error (read-back; DANDI does not check it) {problem}")
        for warning in result.warnings:
            print(f"  - warning: {warning}")
        failed += not result.passed
    if findings is not None:
        broken = [finding for finding in findings if finding.fails]
        print(f"{args.dandi}: DANDI's dandiset rules {'FAILED' if broken else 'ok'}")
        for finding in findings:
            kind = "error" if finding.fails else "warning"
            print(f"  - {kind} (DANDI: {finding.severity.lower()}) {finding}")
        failed += bool(broken)
    return 1 if failed else 0


def _format_report(report: SessionReport) -> str:
    lines = [f"session {report.root}: {len(report.acquisitions)} acquisition(s)"]
    if report.clock_alignment:
        lines.append(f"  {SYNC_FILE}: {report.clock_alignment}")
    for acquisition in report.acquisitions:
        lines.append(f"  {acquisition.label}  start {acquisition.start or 'unknown'}")
        for d in acquisition.devices:
            rate = f"{d.measured_rate_hz:.2f} Hz" if d.measured_rate_hz else "rate unknown"
            frames = f"{d.decoded_frames} frames decoded / " if d.decoded_frames is not None else ""
            lines.append(
                f"    {d.kind:9} {d.device} ({d.device_type}): {len(d.videos)} videos, {frames}"
                f"{d.timestamp_rows} timestamps, {d.duration_s:.1f} s, {rate}, "
                f"{d.dropped_frames} dropped"
            )
    if report.files:
        lines.append(f"files: {report.files}")
        lines += [
            f"  - {row['path']}{' (link to ' + row['link'] + ')' if row['link'] else ''}: "
            f"{row['reason']}"
            for row in report.left_out
        ]
    lines.append(f"problems: {len(report.problems)}")
    lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    session = write_demo_session(args.folder / "raw")
    output = args.folder / "nwb" / f"{session.name}.nwb"
    result = convert_session(session, output, progress=_progress_bars(False), overwrite=True)
    _print_result(result)
    tool = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "miniscope-nwb"
    print("next:")
    for command, what in (
        (f"{tool} inspect {session}", "what a recording holds, before converting it"),
        (f"{tool} convert YOUR_SESSION -o session.nwb", "your own recording"),
        ("dagster dev", "sessions that convert themselves, in a web UI (see the README)"),
    ):
        print(f"  {command:<60} {what}")
    return 0


def _report_error(error: MiniscopeFormatError) -> None:
    print(f"error: {error}", file=sys.stderr)
    if isinstance(error, CollectionError):
        for session in error.sessions:
            print(f"  {session}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_level(parser, args)
    handler = {"convert": _convert, "inspect": _inspect, "validate": _validate, "demo": _demo}
    plain = warnings.formatwarning
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return handler[args.command](args)
    except MiniscopeFormatError as error:
        _report_error(error)
        return 2
    except KeyboardInterrupt:
        print("interrupted, nothing written", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":
    sys.exit(main())
