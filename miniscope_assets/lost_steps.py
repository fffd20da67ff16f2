"""A step whose Celery worker vanished, said on its run in the UI.

Celery acknowledges a step only once it is done (`executor.celery_config`), so the broker hands a
step whose worker vanished (machine down, worker killed) to a live worker only
`MINISCOPE_CELERY_REQUEUE_SECONDS` after a worker took it; meanwhile its run sits STARTED.
`lost_steps_sensor` (defined only with the celery executor) looks at the started runs every
sixth of that wait (30 s at most, so a run is tagged well before), asks the live workers which
steps they run, and tags a run whose taken step no live worker runs, in two
looks in a row (a step may be between two workers), with `miniscope/lost_step`: which step, when
it runs again and what to do. `miniscope-dagster backfill --wait` says the same in a shell.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from .executor import active_tasks
from .settings import MiniscopeSettings

LOST_TAG = "miniscope/lost_step"
_TAKEN = "in celery worker"  # dagster-celery's engine event as a worker takes a step
_ENDED = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}


def steps_taken(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Step -> when a Celery worker took it, of the run's steps taken and not ended (the
    worker's event comes before the step's start, which a worker killed at once never writes)."""
    taken: dict[str, float] = {}
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.ENGINE_EVENT, *_ENDED}):
        event, step = entry.dagster_event, entry.step_key
        if event is None or not step:
            continue
        if event.event_type in _ENDED:
            taken.pop(step, None)
        elif _TAKEN in (event.message or ""):
            taken[step] = entry.timestamp
    return taken


def lost_line(step: str, since: float, requeue: int) -> str:
    """What to say of `step`, taken at `since` by a worker that is gone."""
    at = datetime.fromtimestamp(since + requeue, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{step}: no live worker runs it (its worker was lost); it runs again on a live worker "
        f"from about {at} (MINISCOPE_CELERY_REQUEUE_SECONDS={requeue} after a worker took it); "
        "to convert sooner, terminate the run and backfill the session again"
    )


def lost_steps_sensor(settings: MiniscopeSettings) -> dg.SensorDefinition:
    """The sensor for the deployment's Celery settings (its wait decides how often it looks)."""
    requeue = settings.celery_requeue_seconds

    @dg.sensor(
        minimum_interval_seconds=int(min(30, max(2, requeue // 6))),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Tags a started run whose Celery worker vanished with miniscope/lost_step "
        "(which step, when it runs again, what to do). Its cursor: the steps seen on no live "
        "worker at the last look.",
    )
    def lost_steps(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        instance = context.instance
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        if not runs:
            return dg.SkipReason("no run is started")
        workers = active_tasks(settings)
        if workers is None:
            return dg.SkipReason("the Celery broker does not answer")
        running = " ".join(task for tasks in workers.values() for task in tasks)
        before = set((context.cursor or "").split())
        suspects: set[str] = set()
        for run in runs:
            if run.run_id in running:
                continue
            for step, since in steps_taken(instance, run.run_id).items():
                mark = f"{run.run_id}/{step}"
                suspects.add(mark)
                if mark in before and LOST_TAG not in run.tags:
                    line = lost_line(step, since, requeue)
                    instance.add_run_tags(run.run_id, {LOST_TAG: line})
                    context.log.warning(f"run {run.run_id}: {line}")
        context.update_cursor(" ".join(sorted(suspects)))
        return dg.SkipReason(
            f"{len(runs)} started runs, {len(workers)} workers answering, "
            f"{len(suspects)} steps on no live worker"
        )

    return lost_steps
