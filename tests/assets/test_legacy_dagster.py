"""Legacy V3 sessions in the Dagster layer: partitions from the sensor and every conversion asset
(kept apart from test_legacy.py, which a library-only install runs without Dagster)."""

from __future__ import annotations

import dagster as dg
import h5py
import numpy as np
import test_assets
from support import v3_cohort
from test_sensor import Daemon, storage_for

from miniscope_core.testing.synthetic_legacy import LegacySpec, write_legacy_recording


def test_the_sensor_makes_v3_sessions_partitions(tmp_path):
    v3_cohort(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        daemon = Daemon(instance, storage_for(tmp_path))
        daemon.handed_over("mouseA__6_11_2019", "mouseB__6_11_2019", "mouseC")
        assert sorted(instance.get_dynamic_partitions("sessions")) == [
            "mouseA__6_11_2019", "mouseB__6_11_2019", "mouseC",
        ]  # fmt: skip


def test_every_asset_converts_a_v3_session_and_its_checks_pass(tmp_path):
    truth = write_legacy_recording(tmp_path / "raw" / "mouseA", LegacySpec(scope_frames=40))
    storage = test_assets.storage_for(tmp_path)
    key = "mouseA__6_11_2019"
    with dg.instance_for_test() as instance:
        result = test_assets.materialise(storage, instance, key)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert all(checks.values()) and len(checks) == 6, checks
    with h5py.File(storage.nwb_path(key), "r") as nwb:
        pixels = nwb["acquisition/OnePhotonSeriesMiniscope/data"][()]
    np.testing.assert_array_equal(pixels.swapaxes(1, 2), truth.scope)
