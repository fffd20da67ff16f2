"""Legacy V3 sessions become Dagster partitions like DAQ-QT ones (kept apart from
test_legacy.py, which a library-only install runs without Dagster)."""

from __future__ import annotations

import dagster as dg
from test_legacy import v3_cohort
from test_sensor import Daemon, storage_for


def test_the_sensor_makes_v3_sessions_partitions(tmp_path):
    v3_cohort(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        daemon = Daemon(instance, storage_for(tmp_path))
        daemon.handed_over("mouseA__6_11_2019", "mouseB__6_11_2019", "mouseC")
        assert sorted(instance.get_dynamic_partitions("sessions")) == [
            "mouseA__6_11_2019", "mouseB__6_11_2019", "mouseC",
        ]  # fmt: skip
