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
instance's run retries run it again. The workers need the same Celery settings:
`python -m miniscope_assets.executor` prints them as the YAML of `dagster-celery worker start -y`.
"""

from __future__ import annotations

import sys
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
    """`dagster-celery worker start -y` config for these settings (the executor's own)."""
    return yaml.safe_dump({"execution": {"config": celery_config(settings)}}, sort_keys=False)


def main() -> int:
    """Print the workers' Celery YAML from the MINISCOPE_* settings."""
    try:
        _celery_executor()
        print(worker_yaml(MiniscopeSettings.load()), end="")
    except SettingsError as error:
        print(f"miniscope_assets.executor: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
