"""`miniscope-dagster`: the demo, a listing of sessions, and backfills, from a shell.

    miniscope-dagster demo [--write-only]
    miniscope-dagster sessions [--stale]
    miniscope-dagster backfill (--all | SESSION ... | --stale) [--stale | --overwrite]
        [--url URL [--wait] | --in-process]
        [--per-acquisition] [--strict] [--embed-cameras] [--neuroconv-names] [--dandi]
        [--compression-level N] [--stub] [--backend hdf5|zarr]
    miniscope-dagster wait BACKFILL [--url URL]

`sessions` lists every folder under the raw root with its state and why (converted, stale,
failed, waiting, held back, refused, ...), as the lab overview does.

A backfill converts the sessions chosen that are not converted yet; `--stale` only those whose
file is stale, `--overwrite` every one (finished files are written again only when asked).

Settings come from the MINISCOPE_* environment variables and settings file (see
`miniscope_assets.settings`) unless given here. A backfill's conversion flags become the run
config of every run it launches, in process or on the server. In-process conversions record
their runs in $DAGSTER_HOME if it is set, else in a throwaway instance (the files are written
either way).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from miniscope_core import (
    RUN_CONFIG_OPTIONS,
    SESSION_METADATA_FILE,
    MiniscopeFormatError,
    add_option_flags,
    given_options,
    load_metadata_file,
    partition_key,
    signature,
)
from miniscope_core.testing import write_demo_session

from .assets import CONVERSION_ASSETS, conversion_run_config, report_path
from .executor import active_tasks, failure_reason
from .lost_steps import lost_line
from .overview import STALE, folder_states
from .partitions import raw_session
from .registry import raw_metadata, register, state_text
from .remote import BACKFILL_ENDED, RUN_ENDED, Run, Server, ServerError
from .resources import ConversionConfig, MiniscopeStorage
from .scan import find_sessions
from .settings import MiniscopeSettings, SettingsError

DEMO_FOLDER = "demo_session"
# nwbinspector calls a file without the subject's sex and age CRITICAL.
DEMO_METADATA = """\
# NWB metadata for this session, merged over what the DAQ recorded (NWB field names).
NWBFile:
  experimenter: ["Doe, Jane"]
  institution: Demo Lab
  keywords: [Miniscope, calcium imaging, demo]
Subject:
  species: Mus musculus
  sex: M
  age: P90D
  description: Synthetic animal of the built-in demo session.
Ophys:
  indicator: GCaMP6f
  location: CA1
"""
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def ensure_demo_session(raw_root: Path) -> Path:
    """`<raw_root>/demo_session`, written first (into a hidden folder, then renamed) if absent."""
    target = raw_root / DEMO_FOLDER
    if target.is_dir():
        return target
    scratch = raw_root / f".{DEMO_FOLDER}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    written = write_demo_session(scratch)
    (written / SESSION_METADATA_FILE).write_text(DEMO_METADATA, encoding="utf-8")
    os.replace(written, target)
    shutil.rmtree(scratch)
    return target


@contextmanager
def _instance() -> Iterator[dg.DagsterInstance]:
    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    print("DAGSTER_HOME is not set: run history is not kept (the files are).", file=sys.stderr)
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _print_result(key: str, result: dg.ExecuteInProcessResult, storage: MiniscopeStorage) -> bool:
    """Print what a scientist asks (frames, time, rate, drops, the QC verdict and its report,
    the checks that did not pass); True if converted and no ERROR check failed."""
    state = "converted" if result.success else "FAILED"
    written = result.asset_materializations_for_node("nwb_file") if result.success else []
    shown = written[-1].metadata if written else {}
    path = shown["path"].value if shown else storage.nwb_path(key)
    print(f"{key}: {state} -> {path}")
    for step, why in _failures(result):
        print(f"  {step} failed: {why}")
    for line in _session_lines(shown):
        print(f"  {line}")
    checks = result.get_asset_check_evaluations()
    failed = [check for check in checks if not check.passed]
    print(f"  checks: {len(checks) - len(failed)} of {len(checks)} passed")
    for check in failed:
        why = f": {check.description}" if check.description else ""
        print(f"    {check.severity.value.lower()}: {check.check_name}{why}")
    blocking = [check for check in failed if check.severity != dg.AssetCheckSeverity.WARN]
    return result.success and not blocking


def _failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """(step, the first line of why) of each failed step: the library's one-line message."""
    return [
        (event.step_key or "", failure_reason(event))
        for event in result.all_events
        if event.is_step_failure
    ]


def _session_lines(shown: Mapping[str, dg.MetadataValue]) -> list[str]:
    """Per acquisition and device: frames, duration, rate, drops; the QC verdict and report."""
    devices = shown.get("devices")
    if not isinstance(devices, dg.TableMetadataValue):
        return []
    lines = []
    for row in devices.records:
        d = row.data
        rate = f"{d['measured_rate_hz']:.2f} Hz" if d["measured_rate_hz"] else "rate unknown"
        lines.append(
            f"{d['acquisition']} {d['device']}: {d['timestamp_rows']} frames, "
            f"{d['duration_s']:.1f} s, {rate}, {d['dropped_frames']} dropped "
            f"({100 * float(d['dropped_fraction'] or 0):.2f} %)"
        )
    if "qc" in shown:
        lines.append(f"QC: {shown['qc'].value}")
        lines.append(f"QC report: {report_path(shown)}")
    return lines


def convert_in_process(
    storage: MiniscopeStorage,
    folders: dict[str, Path],
    note: str,
    config: ConversionConfig | None = None,
) -> int:
    """Register `folders` (key -> folder) and materialise them one after another, with the
    conversion choices of `config` (default: the settings'); exit code."""
    run_config = {**_QUIET, **conversion_run_config(config or ConversionConfig())}
    failed = 0
    with _instance() as instance:
        register(instance, storage, folders, note)
        for key in folders:
            result = dg.materialize(
                [raw_session, *CONVERSION_ASSETS],
                selection=CONVERSION_ASSETS,
                partition_key=key,
                instance=instance,
                resources={"storage": storage},
                run_config=run_config,
                raise_on_error=False,
            )
            failed += not _print_result(key, result, storage)
    return 1 if failed else 0


def _demo(args: argparse.Namespace, storage: MiniscopeStorage) -> int:
    folder = ensure_demo_session(storage.raw_path)
    print(f"demo session: {folder}")
    if args.write_only:
        return 0
    key = partition_key(storage.rel_path(folder))
    code = convert_in_process(storage, {key: folder}, "demo")
    print("next:")
    for command, what in (
        ("dagster dev", "the web UI (http://localhost:3000): every session, its checks and report"),
        (f"cp -r YOUR_SESSION {storage.raw_path}/", "a recording copied in converts by itself"),
        (f"miniscope-nwb inspect {folder}", "what a recording holds, before converting it"),
    ):
        print(f"  {command:<52} {what}")
    return code


def _sessions(args: argparse.Namespace, storage: MiniscopeStorage) -> int:
    """Every folder under the raw root with its state and why, as the lab overview lists them
    (tab-separated, a header first); with --stale only the stale files. Without DAGSTER_HOME
    only the files and the sensor's state are read (a failed run shows as not converted)."""
    _require_raw_root(storage)
    with ExitStack() as stack:
        home = os.environ.get("DAGSTER_HOME")
        instance = stack.enter_context(dg.DagsterInstance.get()) if home else None
        states = folder_states(storage, instance)
    print("key\tfolder\tstate\twhy")
    for state in states:
        if not args.stale or state.state == STALE:
            print(f"{state.key}\t{state.folder}\t{state.state}\t{state.why}")
    return 0


def _with_files(
    storage: MiniscopeStorage, found: dict[str, Path]
) -> Iterator[tuple[str, Path, str | None]]:
    """(key, folder, what is not right with its file: "not converted", "stale: ..."; None)."""
    converted = storage.converted()
    for key, folder in found.items():
        path = converted.get(key)
        if path is None:
            yield key, folder, "not converted"
            continue
        reason = storage.stale_reason(key, path)
        yield key, folder, f"stale: {reason}" if reason else None


def _require_raw_root(storage: MiniscopeStorage) -> None:
    if not storage.raw_path.is_dir():
        raise SystemExit(
            f"miniscope-dagster: {storage.raw_path}: the raw root is not a folder "
            "(MINISCOPE_RAW_ROOT or --raw-root)"
        )


def _chosen(names: list[str], found: dict[str, Path], raw_root: Path) -> dict[str, Path]:
    """Sessions named by partition key or by folder (absolute or relative to the raw root)."""
    by_folder = {folder: key for key, folder in found.items()}
    chosen = {}
    for name in names:
        key = name if name in found else by_folder.get((raw_root / name).resolve())
        if key is None:
            raise SystemExit(f"{name} is not a session folder under {raw_root} (or its key)")
        chosen[key] = found[key]
    return chosen


def _choices(args: argparse.Namespace) -> ConversionConfig:
    """The backfill's conversion flags; those not given stay unset (the settings decide)."""
    given = given_options(args, RUN_CONFIG_OPTIONS)
    metadata = _metadata(args.metadata) if args.metadata else {}
    return ConversionConfig(
        **{name: value for name, value in given.items() if value is not None}, metadata=metadata
    )


def _metadata(path: Path) -> dict[str, Any]:
    """--metadata as run config: plain JSON values (YAML's dates become ISO text, which the
    metadata schema reads back); a file that does not read is one line, before any run."""
    try:
        loaded = load_metadata_file(path)
    except MiniscopeFormatError as error:
        raise SystemExit(f"miniscope-dagster: {error}") from error
    plain: dict[str, Any] = json.loads(json.dumps(loaded, default=_iso))
    return plain


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _title(n_sessions: int, config: ConversionConfig) -> str:
    """The backfill's name in the UI, with its choices: the backfill page shows no run config."""
    chosen = {**config.choices(), **({"stub": True} if config.stub else {})}
    choices = ", ".join(f"{name}={value}" for name, value in chosen.items())
    return f"{n_sessions} sessions" + (f" ({choices})" if choices else "")


def _to_convert(args: argparse.Namespace, storage: MiniscopeStorage) -> tuple[dict[str, Path], int]:
    """The chosen sessions to convert, and how many chosen ones are left as they are."""
    found = find_sessions(storage.raw_path)
    chosen = _chosen(args.sessions, found, storage.raw_path) if args.sessions else found
    if args.overwrite:
        return chosen, 0
    wanted = "stale" if args.stale else "not converted"
    folders = {
        key: folder
        for key, folder, reason in _with_files(storage, chosen)
        if (reason or "").startswith(wanted)
    }
    return folders, len(chosen) - len(folders)


def _backfill(args: argparse.Namespace, storage: MiniscopeStorage) -> int:
    if not (args.all or args.sessions or args.stale):
        raise SystemExit("miniscope-dagster backfill: name sessions, or give --all or --stale")
    config = _choices(args)
    storage.options(config)  # a bad choice fails here, before anything is registered
    _require_raw_root(storage)
    folders, left = _to_convert(args, storage)
    if not folders:
        if not left:
            print(f"no session folders under {storage.raw_path}", file=sys.stderr)
            return 1
        which = "current" if args.stale else "converted already"
        print(f"nothing to convert: the {left} sessions chosen are {which} (--overwrite: again)")
        return 0
    if left:
        which = "not stale" if args.stale else "converted already"
        print(f"{left} sessions chosen are {which}, left as they are (--overwrite: convert them)")
    if args.in_process:
        return convert_in_process(storage, folders, "backfill", config)
    # Imported here, not above: defining the sensor reads the settings, and a bad one is to be
    # reported by `main` in one line rather than as a traceback while this module loads.
    from .sensors import convert_session_job

    try:
        server = Server(args.url, convert_session_job.name)
        for key, folder in folders.items():
            server.add_partition(key)
            sig = signature(folder)
            metadata = raw_metadata(storage.rel_path(folder), folder, sig)
            server.report_raw(key, metadata, "backfill", state_text(sig))
        assets = [asset.key.to_user_string() for asset in CONVERSION_ASSETS]
        title = _title(len(folders), config)
        backfill = server.launch_backfill(
            list(folders), assets, title, conversion_run_config(config)
        )
        print(f"backfill {backfill} of {len(folders)} sessions: {server.url}/runs/b/{backfill}")
        if args.wait:
            return _wait(server, backfill, list(folders))
        print(f"follow it: miniscope-dagster wait {backfill} --url {server.url}")
        return 0
    except requests.ConnectionError:
        print(
            f"miniscope-dagster: no Dagster webserver answers at {args.url}: start one "
            "(dagster dev), give its address with --url, or convert here with --in-process",
            file=sys.stderr,
        )
        return 2
    except (ServerError, requests.RequestException) as error:
        print(f"{args.url}: {error}", file=sys.stderr)
        return 2


def _wait_command(args: argparse.Namespace, storage: MiniscopeStorage) -> int:
    """`wait BACKFILL`: follow a backfill launched earlier (without --wait, or from the UI)."""
    from .sensors import convert_session_job

    try:
        server = Server(args.url, convert_session_job.name)
        return _wait(server, args.backfill)
    except requests.ConnectionError:
        print(f"miniscope-dagster: no Dagster webserver answers at {args.url}", file=sys.stderr)
        return 2
    except (ServerError, requests.RequestException) as error:
        print(f"{args.url}: {error}", file=sys.stderr)
        return 2


def _wait(server: Server, backfill: str, keys: list[str] | None = None, every: float = 2.0) -> int:
    """Print each session's outcome as its run ends (a failed run the daemon retries is said
    and followed), until the backfill is done; 0 if every session (`keys`, default: those of
    its runs) converted."""
    said: dict[str, tuple[str, str]] = {}
    lost = _LostSteps()
    while True:
        status, runs = server.backfill_runs(backfill)
        latest: dict[str, Run] = {}
        for run in runs:  # newest first
            latest.setdefault(run.key, run)
        ended = status in BACKFILL_ENDED
        for key, run in latest.items():
            outcome = _outcome(run, ended)
            if outcome and said.get(key) != (run.run_id, outcome):
                said[key] = (run.run_id, outcome)
                took = f" in {run.end - run.start:.0f} s" if run.end and run.start else ""
                print(f"{key}: {outcome}{took} ({server.url}/runs/{run.run_id})", flush=True)
        if ended and all(run.status in RUN_ENDED for run in latest.values()):
            break
        lost.check(server, [run for run in latest.values() if run.status == "STARTED"])
        time.sleep(every)
    keys = list(latest) if keys is None else keys
    converted = [key for key in keys if key in latest and latest[key].status == "SUCCESS"]
    missing = [key for key in keys if key not in latest]
    for key in missing:
        print(f"{key}: no run was launched (the backfill is {status})")
    print(f"backfill {backfill}: {len(converted)} of {len(keys)} sessions converted ({status})")
    return 0 if len(converted) == len(keys) else 1


def _outcome(run: Run, backfill_ended: bool) -> str | None:
    """What to say of a session whose newest run is `run`; None while it is in flight."""
    if run.status not in RUN_ENDED:
        return None
    if run.status == "FAILURE" and run.will_retry and not backfill_ended:
        return "FAILURE, the daemon retries it"
    return "converted" if run.status == "SUCCESS" else run.status


class _LostSteps:
    """Says once, per step, that a started step runs on no live Celery worker: its worker was
    lost, and the broker gives the step to another only after MINISCOPE_CELERY_REQUEUE_SECONDS.
    Looked at every sixth of that wait (30 s at most, so that it is said well before), a step
    is called lost when two looks in a row find it so (a step may be between two workers)."""

    def __init__(self) -> None:
        self.settings = MiniscopeSettings.load()
        self.every = min(30.0, max(2.0, self.settings.celery_requeue_seconds / 6))
        self.last = time.monotonic()
        self.suspects: set[tuple[str, str]] = set()
        self.said: set[tuple[str, str]] = set()
        self.no_worker_said = False

    def check(self, server: Server, started: list[Run]) -> None:
        settings = self.settings
        if settings.executor != "celery" or not started:
            return
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        workers = active_tasks(settings)
        if workers is None:
            return  # the broker does not answer here: nothing to tell
        if not workers and not self.no_worker_said:
            self.no_worker_said = True
            print("  no Celery worker answers: the steps wait until one starts (start-worker.sh)")
        running = " ".join(task for tasks in workers.values() for task in tasks)
        suspects = set()
        for run in started:
            if run.run_id in running:
                continue
            for step, since in server.steps_in_progress(run.run_id):
                suspects.add((run.run_id, step))
                if (run.run_id, step) in self.suspects and (run.run_id, step) not in self.said:
                    self.said.add((run.run_id, step))
                    print(f"  {run.key} {lost_line(step, since, settings.celery_requeue_seconds)}")
        self.suspects = suspects


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miniscope-dagster", description=__doc__.split("\n")[0])
    parser.add_argument("--raw-root", help="session folders (default: $MINISCOPE_RAW_ROOT)")
    parser.add_argument("--output-root", help="outputs (default: $MINISCOPE_OUTPUT_ROOT)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="write the demo session if absent and convert it")
    demo.add_argument(
        "--write-only", action="store_true", help="only write it (the sensor converts it)"
    )
    demo.set_defaults(command=_demo)

    listing = commands.add_parser(
        "sessions", help="every folder under the raw root: key, state and why"
    )
    listing.add_argument(
        "--stale", action="store_true",
        help="only sessions whose file an older converter or other options made",
    )  # fmt: skip
    listing.set_defaults(command=_sessions)

    backfill = commands.add_parser(
        "backfill", help="register sessions and convert those not converted yet"
    )
    which = backfill.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every session under the raw root")
    which.add_argument("sessions", nargs="*", default=[], help="partition keys or folders")
    redo = backfill.add_mutually_exclusive_group()
    redo.add_argument(
        "--stale", action="store_true",
        help="only those `sessions --stale` lists (of every session if none is named)",
    )  # fmt: skip
    redo.add_argument(
        "--overwrite", action="store_true", help="also those converted already: write them again"
    )
    where = backfill.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:3000", help="webserver to launch on")
    where.add_argument(
        "--in-process", action="store_true", help="convert here, one after another, no server"
    )
    backfill.add_argument(
        "--wait", action="store_true",
        help="with --url: wait for the runs, a line per session as each ends; exit code 1 if "
        "one failed",
    )  # fmt: skip
    _conversion_flags(backfill)
    backfill.set_defaults(command=_backfill)

    wait = commands.add_parser("wait", help="follow a backfill as `backfill --wait` does")
    wait.add_argument("backfill", help="its id (the end of its page's address)")
    wait.add_argument("--url", default="http://127.0.0.1:3000", help="the webserver")
    wait.set_defaults(command=_wait_command)
    return parser


def _conversion_flags(command: argparse.ArgumentParser) -> None:
    """Run config of the runs launched; a flag not given leaves the setting in force."""
    choices = command.add_argument_group("conversion (default: the MINISCOPE_* settings)")
    add_option_flags(choices, RUN_CONFIG_OPTIONS, unset=True)
    choices.add_argument(
        "--metadata", type=Path, metavar="FILE",
        help="YAML/JSON NWB metadata (NWBFile, Subject, Ophys) merged over every file",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        storage = MiniscopeStorage.from_env(raw_root=args.raw_root, output_root=args.output_root)
        return args.command(args, storage)
    except SettingsError as error:
        print(f"miniscope-dagster: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
