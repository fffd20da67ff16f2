"""A run whose Celery worker vanished is tagged in the UI with the lost step and what to do."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from miniscope_assets import lost_steps
from miniscope_assets.settings import MiniscopeSettings

pytest.importorskip("dagster_celery")

TAKEN = "Executing steps video_chunks in celery worker"  # what dagster-celery reports


def _started_run(instance: dg.DagsterInstance, taken: bool = True) -> str:
    run_id = str(uuid.uuid4())
    run = dg.DagsterRun(job_name="convert_session", run_id=run_id)
    instance.add_run(run)
    instance.handle_run_event(run_id, dg.DagsterEvent(  # the run as the daemon starts it
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name="convert_session"
    ))  # fmt: skip
    if taken:
        instance.report_engine_event(TAKEN, run, step_key="video_chunks")
    return run_id


def _tick(instance, settings, cursor=None):
    sensor = lost_steps.lost_steps_sensor(settings)
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensor(context)
    return result, context.cursor


def test_a_taken_step_no_live_worker_runs_is_tagged_at_the_second_look(monkeypatch):
    settings = MiniscopeSettings(executor="celery", celery_requeue_seconds=600)
    with dg.instance_for_test() as instance:
        lost, running, waiting = (
            _started_run(instance),
            _started_run(instance),
            _started_run(instance, taken=False),
        )
        tasks = {"w1@node": [f"{{'execute_step_args_packed': '... {running} ...'}}"]}
        monkeypatch.setattr(lost_steps, "active_tasks", lambda _: tasks)
        assert lost_steps.steps_taken(instance, lost).keys() == {"video_chunks"}
        _, cursor = _tick(instance, settings)
        assert cursor == f"{lost}/video_chunks"  # a step may be between two workers: not yet
        assert lost_steps.LOST_TAG not in instance.get_run_by_id(lost).tags
        result, cursor = _tick(instance, settings, cursor)
        tag = instance.get_run_by_id(lost).tags[lost_steps.LOST_TAG]
        assert tag.startswith("video_chunks: no live worker runs it (its worker was lost)")
        assert "MINISCOPE_CELERY_REQUEUE_SECONDS=600" in tag and "backfill the session" in tag
        for other in (running, waiting):
            assert lost_steps.LOST_TAG not in instance.get_run_by_id(other).tags
        assert "1 steps on no live worker" in result.skip_message


def test_nothing_is_said_when_the_broker_does_not_answer(monkeypatch):
    settings = MiniscopeSettings(executor="celery")
    with dg.instance_for_test() as instance:
        _started_run(instance)
        monkeypatch.setattr(lost_steps, "active_tasks", lambda _: None)
        result, _ = _tick(instance, settings)
        assert result.skip_message == "the Celery broker does not answer"
