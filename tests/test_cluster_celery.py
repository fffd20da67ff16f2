"""Past one machine: the executor chosen by the settings, and a real Celery cluster on loopback."""

from __future__ import annotations

import sys

import dagster as dg
import pytest
import yaml

from miniscope_assets.executor import executor_for, worker_yaml
from miniscope_core import MiniscopeSettings, SettingsError


def test_the_executor_is_chosen_by_the_settings():
    assert executor_for(MiniscopeSettings()) is dg.in_process_executor
    assert executor_for(MiniscopeSettings(executor="multiprocess")) is dg.multiprocess_executor


def test_without_the_cluster_extra_celery_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_celery", None)  # import fails as if not installed
    with pytest.raises(SettingsError, match=r"^MINISCOPE_EXECUTOR='celery': dagster-celery is not"):
        executor_for(MiniscopeSettings(executor="celery"))


def test_the_workers_get_the_executors_celery_settings():
    pytest.importorskip("dagster_celery")
    settings = MiniscopeSettings(
        executor="celery", celery_broker="redis://head:6379/3", celery_requeue_seconds=60
    )
    executor = executor_for(settings)
    assert executor.name == "celery"
    config = yaml.safe_load(worker_yaml(settings))["execution"]["config"]
    assert config["broker"] == "redis://head:6379/3"
    assert config["config_source"]["task_acks_late"] is True
    assert config["config_source"]["broker_transport_options"]["visibility_timeout"] == 60
