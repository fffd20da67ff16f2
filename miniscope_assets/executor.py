"""The executor of the conversion runs, chosen by the settings (`MINISCOPE_EXECUTOR`), not code.

- `in_process` (default): a run's steps one after another in the run's process; one machine.
- `multiprocess`: a process per step on the machine that runs the run.
- `celery`: each step is a Celery task that any worker listening on the broker may take, on any
  machine. The steps of one session may then run on different machines, which is safe because
  nothing passes between them but files under the configured roots (chunk files, timestamp
  tables, previews, the NWB file: `<output_root>/<key>/`) and records in the Dagster instance:
  the assets return no values (no IO manager output), so raw and output roots must be the same
  paths on every machine (shared storage), and so must `DAGSTER_HOME`.

Celery is told to acknowledge a step only once it is done (`task_acks_late`): a step whose
worker vanished (machine down, killed) goes back to the queue after `celery_requeue_seconds` and
another worker runs it again; a step whose process crashed under a live worker fails, and the
instance's run retries run it again.

`python -m miniscope_assets.executor worker` is a worker with exactly these settings, read from
the environment in its own memory: `dagster-celery worker start` would instead write the broker
URL (and its password) into a Python file under `$DAGSTER_HOME` that nothing removes. It logs one
short line per step, naming the session, instead of Celery's line holding every event.
`python -m miniscope_assets.executor` prints the settings as YAML, the password masked.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import dagster as dg
import yaml

from .settings import MiniscopeSettings, SettingsError

CLUSTER_EXTRA = "pip install 'miniscope-nwb[dagster,cluster]'"


def celery_config(settings: MiniscopeSettings) -> dict[str, Any]:
    """The celery executor's config, which the workers' YAML repeats."""
    from dagster_celery.defaults import broker_transport_options

    requeue = settings.celery_requeue_seconds
    transport = {
        **broker_transport_options,
        "visibility_timeout": requeue,
        # How often a worker looks for steps of vanished workers: a tenth of the wait, at most
        # a minute (kombu's default scans every 100 s whatever the wait).
        "unacked_restore_interval": min(60, max(1, requeue // 10)),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": {
            "task_acks_late": True,
            "broker_transport_options": transport,
        },
    }


def _celery_executor() -> dg.ExecutorDefinition:
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise SettingsError(
            f"MINISCOPE_EXECUTOR='celery': dagster-celery is not installed ({CLUSTER_EXTRA})"
        ) from None
    return celery_executor


def executor_for(settings: MiniscopeSettings) -> dg.ExecutorDefinition:
    """The executor `settings.executor` names; dagster_celery is imported only when chosen."""
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor
    if settings.executor == "celery":
        return _celery_executor().configured(celery_config(settings))
    return dg.in_process_executor


def worker_yaml(settings: MiniscopeSettings) -> str:
    """The executor's config as `dagster-celery worker start -y` reads it, passwords masked."""
    from kombu.utils.url import maybe_sanitize_url

    config = celery_config(settings)
    shown = {**config, **{k: maybe_sanitize_url(config[k]) for k in ("broker", "backend")}}
    return yaml.safe_dump({"execution": {"config": shown}}, sort_keys=False)


_log = logging.getLogger("miniscope.worker")
_started: dict[str, tuple[str, float]] = {}  # task id -> (what, start), in the pool process
_instances: dict[str, dg.DagsterInstance] = {}  # instance ref (as text) -> instance


def _what(kwargs: dict[str, Any]) -> str:
    """`<session key> <steps> (run <id>)` of an execute_plan task, from its arguments."""
    from dagster._grpc.types import ExecuteStepArgs
    from dagster._serdes import unpack_value

    args = unpack_value(kwargs["execute_step_args_packed"], as_type=ExecuteStepArgs)
    ref = args.instance_ref
    key = "?"
    if ref is not None:
        if repr(ref) not in _instances:
            _instances[repr(ref)] = dg.DagsterInstance.from_ref(ref)
        run = _instances[repr(ref)].get_run_by_id(args.run_id)
        key = (run.tags.get("dagster/partition") if run else None) or "?"
    return f"{key} {','.join(args.step_keys_to_execute or [])} (run {args.run_id[:8]})"


def _task_started(task_id: str, kwargs: dict[str, Any], **_: Any) -> None:
    if "execute_step_args_packed" not in kwargs:
        return  # not a step (Celery's own test task)
    what = _what(kwargs)
    _started[task_id] = (what, time.monotonic())
    _log.info("%s: started", what)


def _task_ended(task_id: str, state: str, retval: Any = None, **_: Any) -> None:
    if task_id not in _started:
        return
    what, start = _started.pop(task_id)
    took = time.monotonic() - start
    why = _step_failure(retval) if state == "SUCCESS" else None
    if why is None:
        _log.info("%s: %s in %.1f s", what, state.lower(), took)
    else:
        _log.warning("%s: step failed in %.1f s: %s", what, took, why)


def _step_failure(events: Any) -> str | None:
    """Why a step failed, if one did, among a task's serialized events."""
    from dagster._core.events import DagsterEvent
    from dagster._serdes import deserialize_value

    for text in events if isinstance(events, list) else []:
        event = deserialize_value(text, DagsterEvent)
        if event.is_step_failure:
            return failure_reason(event)
    return None


def failure_reason(event: Any) -> str:
    """The first line of why a step failed (a DagsterEvent of STEP_FAILURE): the library's
    one-line message, not Dagster's "Execution of step ... failed"."""
    data = event.step_failure_data
    user = data.user_failure_data
    error = data.error
    while error is not None and error.cause and error.cls_name.endswith("ExecutionError"):
        error = error.cause  # Dagster's wrapper: the step's own exception is its cause
    why = (user.description if user else None) or (error.message if error else "")
    return next(iter(why.strip().splitlines()), "")


def _quiet_celery(**_: Any) -> None:
    """Celery's own lines per task (received; succeeded with every event, about 1 kB) and the
    step's Dagster event log, which Celery copies from stderr line by line: both are in the
    run's event log in the UI, and would bury the line per step that names its session."""
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.redirected"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _app(settings: MiniscopeSettings) -> Any:
    """The Celery app of the runs' executor, with its execute_plan task."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    app = make_app(CeleryExecutor.for_cli(**celery_config(settings)).app_args())
    create_task(app)
    return app


def active_tasks(settings: MiniscopeSettings) -> dict[str, list[str]] | None:
    """{worker: the text of each task it is running} of the workers that answer within 2 s;
    None if the broker does not answer."""
    from kombu.exceptions import OperationalError

    try:
        answer = _app(settings).control.inspect(timeout=2).active()
    except (OperationalError, OSError):
        return None
    return {worker: [str(task) for task in tasks] for worker, tasks in (answer or {}).items()}


def run_worker(settings: MiniscopeSettings, slots: int, name: str) -> None:
    """A Celery worker taking the runs' steps: `slots` at once, NAME@host in the event log.
    SIGINT or SIGTERM: warm shutdown, the running steps finish first."""
    from celery import signals

    app = _app(settings)
    signals.after_setup_logger.connect(_quiet_celery, weak=False)
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_ended, weak=False)
    argv = ["worker", "--prefetch-multiplier=1", "--loglevel=INFO", "-Q", "dagster"]
    argv += ["-n", f"{name}@%h", "-I", "miniscope_assets.definitions", "-c", str(slots)]
    app.worker_main(argv)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m miniscope_assets.executor",
        description="Print the Celery settings of the runs (YAML), or run a worker with them.",
    )
    commands = parser.add_subparsers(dest="command")
    worker = commands.add_parser("worker", help="a Celery worker taking the runs' steps")
    worker.add_argument("--slots", type=int, default=1, help="steps at once (default 1)")
    worker.add_argument("--name", default="miniscope", help="NAME@host in the event log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        _celery_executor()
        settings = MiniscopeSettings.load()
    except SettingsError as error:
        print(f"miniscope_assets.executor: {error}", file=sys.stderr)
        return 2
    if args.command == "worker":
        run_worker(settings, args.slots, args.name)
    else:
        print(worker_yaml(settings), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
