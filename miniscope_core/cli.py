"""`miniscope-nwb`: convert a Miniscope DAQ session to NWB, or inspect what a folder holds."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from .convert import ConversionOptions, ConversionResult, convert_session
from .deflate import DEFAULT_ENGINE, DEFAULT_LEVEL, ENGINES
from .errors import MiniscopeFormatError
from .report import SessionReport, inspect_session

_STAGES = ("decoding + compressing", "assembling NWB")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miniscope-nwb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="write one NWB file for a session folder")
    convert.add_argument("session", type=Path, help="session, acquisition or device folder")
    convert.add_argument("-o", "--output", type=Path, required=True, help="the .nwb to write")
    convert.add_argument("--metadata", type=Path, help="YAML/JSON with NWBFile, Subject, Ophys")
    convert.add_argument(
        "--per-acquisition", action="store_true", help="one series per acquisition"
    )
    convert.add_argument(
        "--strict", action="store_true", help="frame/timestamp mismatches are errors"
    )
    convert.add_argument("--embed-cameras", action="store_true", help="store behaviour video")
    convert.add_argument(
        "--deflate-engine", choices=sorted(ENGINES), default=DEFAULT_ENGINE, help="gzip encoder"
    )
    convert.add_argument(
        "--compression-level", type=int, default=DEFAULT_LEVEL, help="isal 0-3, zlib 0-9"
    )
    convert.add_argument("--workers", type=int, help="compression threads (default: all cores)")
    convert.add_argument("--work-dir", type=Path, help="keep chunk files here for re-runs")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    inspect = commands.add_parser("inspect", help="print what a session folder holds")
    inspect.add_argument("session", type=Path)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--no-decode", action="store_true", help="do not count video frames")
    demo = commands.add_parser("demo", help="write the built-in demo session and convert it")
    demo.add_argument("folder", type=Path, nargs="?", default=Path("demo_data"))
    return parser


def _progress_bars(quiet: bool) -> Callable[[int, int], Callable[[int], None]] | None:
    if quiet:
        return None
    bars: list[tqdm] = []

    def start(total: int, stage: int) -> Callable[[int], None]:
        for bar in bars:
            bar.close()
        bars.append(tqdm(total=total, desc=_STAGES[stage], unit="frame", file=sys.stderr))
        return bars[-1].update

    return start


def _convert(args: argparse.Namespace) -> int:
    options = ConversionOptions(
        per_acquisition=args.per_acquisition,
        strict=args.strict,
        compression_level=args.compression_level,
        deflate_engine=args.deflate_engine,
        embed_cameras=args.embed_cameras,
        workers=args.workers,
    )
    result = convert_session(
        args.session,
        args.output,
        options,
        metadata_path=args.metadata,
        work_dir=args.work_dir,
        progress=_progress_bars(args.quiet),
    )
    _print_result(result)
    return 0


def _print_result(result: ConversionResult) -> None:
    size_mb = result.output.stat().st_size / 1e6
    print(f"wrote {result.output} ({size_mb:.1f} MB) in {result.seconds:.1f} s")
    for name, frames in result.series_frames.items():
        print(f"  {name}: {frames} frames")
    print(f"  dropped frames detected: {result.dropped_frames}")
    if result.warnings:
        print(f"  {len(result.warnings)} warning(s), see above")


def _inspect(args: argparse.Namespace) -> int:
    report = inspect_session(args.session, decode=not args.no_decode)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(_format_report(report))
    return 0


def _format_report(report: SessionReport) -> str:
    lines = [f"session {report.root}: {len(report.acquisitions)} acquisition(s)"]
    for acquisition in report.acquisitions:
        lines.append(f"  {acquisition.label}  start {acquisition.start or 'unknown'}")
        for d in acquisition.devices:
            rate = f"{d.measured_rate_hz:.2f} Hz" if d.measured_rate_hz else "rate unknown"
            frames = f"{d.decoded_frames} frames decoded / " if d.decoded_frames is not None else ""
            lines.append(
                f"    {d.kind:9} {d.name} ({d.device_type}): {d.videos} videos, {frames}"
                f"{d.timestamp_rows} timestamps, {d.duration_s:.1f} s, {rate}, "
                f"{d.dropped_frames} dropped"
            )
    lines.append(f"problems: {len(report.problems)}")
    lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from .synthetic import write_demo_session

    session = write_demo_session(args.folder / "raw")
    output = args.folder / "nwb" / f"{session.name}.nwb"
    result = convert_session(session, output, progress=_progress_bars(False))
    _print_result(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"convert": _convert, "inspect": _inspect, "demo": _demo}[args.command]
    plain = warnings.formatwarning
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            return handler(args)
    except MiniscopeFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":
    sys.exit(main())
