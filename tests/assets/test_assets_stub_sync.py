"""Stub runs and a session's sync.csv through the Dagster assets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import test_assets
from support import read_nwb
from test_assets import KEY, failed_step, materialise, metadata, storage_for

from miniscope_assets.assets import conversion_run_config
from miniscope_assets.resources import ConversionConfig
from miniscope_core import STUB_FRAMES, stub_output
from miniscope_core.testing.synthetic import write_session

SCOPE = "OnePhotonSeriesMiniscope"
PER_ACQUISITION = 120


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """The session of test_assets (key KEY) with 2 x 120 scope frames, more than a stub keeps."""
    folder = tmp_path / "raw" / "mouse1" / "2024_01_15"
    scope = replace(test_assets.SCOPE, n_frames=PER_ACQUISITION)
    write_session(folder, n_acquisitions=2, scope=scope, cameras=[test_assets.CAMERA])
    return folder


def test_a_stub_run_writes_beside_the_full_file_and_never_in_its_place(raw, tmp_path):
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        config = conversion_run_config(ConversionConfig(stub=True))
        result = materialise(storage, instance, run_config=config)
        assert result.success
        stub = stub_output(storage.nwb_path(KEY))
        assert metadata(result, "nwb_file")["path"] == str(stub)
        assert not storage.nwb_path(KEY).exists()
        assert not storage.chunks_dir(KEY).exists() or not any(
            storage.chunks_dir(KEY).rglob("*.h5")
        )
        full = materialise(storage, instance)
        assert full.success
    rows = np.r_[0:STUB_FRAMES, PER_ACQUISITION : PER_ACQUISITION + STUB_FRAMES]
    with read_nwb(stub) as part, read_nwb(storage.nwb_path(KEY)) as whole:
        assert whole.acquisition[SCOPE].data.shape[0] == 2 * PER_ACQUISITION
        stored, full = part.acquisition[SCOPE], whole.acquisition[SCOPE]
        np.testing.assert_array_equal(stored.data[:], full.data[rows])
        np.testing.assert_array_equal(stored.timestamps[:], full.timestamps[rows])
        assert "Stub conversion" in part.notes


def test_the_sessions_sync_csv_is_applied_by_the_assets(raw, tmp_path):
    folder = raw
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        assert materialise(storage, instance).success
        with read_nwb(storage.nwb_path(KEY)) as nwb:
            local = nwb.acquisition[SCOPE].timestamps[:]
        (folder / "sync.csv").write_text("local_time,reference_time\n0,1000\n100,1100\n")
        assert materialise(storage, instance).success
    with read_nwb(storage.nwb_path(KEY)) as nwb:
        np.testing.assert_allclose(nwb.acquisition[SCOPE].timestamps[:], local + 1000, atol=1e-9)
        assert "from sync.csv" in nwb.notes


def test_a_bad_sync_csv_fails_the_first_asset_with_the_library_message(raw, tmp_path):
    (raw / "sync.csv").write_text("local_time,reference_time\n0,5\n1,4\n")
    storage = storage_for(tmp_path)
    with dg.instance_for_test() as instance:
        result = materialise(storage, instance, raise_on_error=False)
    step, message = failed_step(result)
    assert step == "acquisition_metadata"
    assert f"{raw / 'sync.csv'}: line 3: reference time 4 is not after 5" in message
