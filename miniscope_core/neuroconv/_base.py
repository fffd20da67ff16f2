"""What every NeuroConv interface here shares: its part of a session, its alignment, and the
conversion options it takes (converters import this; the interfaces add run_conversion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..daq.model import Device
from ..daq.timestamps import measure_timing
from ..metadata.layers import camel
from ..options import STUB_FRAMES
from ._metadata import ScopeEntry
from ._sources import Part, combined_session
from ._timing import Alignment, aligned, native_seconds, recordings
from .errors import NeuroConvUnsupported

# The conversion options each interface takes: NeuroConv's names, the library's meaning.
CONVERSION_OPTIONS: dict[str, dict[str, Any]] = {
    "stub_test": {"type": "boolean", "default": False,
                  "description": f"Only the first {STUB_FRAMES} frames of each device."},
    "stub_samples": {"type": "integer", "default": STUB_FRAMES, "enum": [STUB_FRAMES],
                     "description": f"Frames of a stub run: {STUB_FRAMES} (fixed)."},
}  # fmt: skip
IMAGING_OPTIONS: dict[str, dict[str, Any]] = {
    "photon_series_index": {"type": "integer", "default": 0, "minimum": 0,
                            "description": "Which Ophys.OnePhotonSeries entry names the series."},
    "photon_series_type": {"type": "string", "default": "OnePhotonSeries",
                           "enum": ["OnePhotonSeries"]},
    "parent_container": {"type": "string", "default": "acquisition", "enum": ["acquisition"]},
    "always_write_timestamps": {"type": "boolean", "default": True,
                                "description": "Timestamps are always written (never a rate)."},
}  # fmt: skip


class BaseInterface:
    """What every interface shares: its part of a session, its alignment, run_conversion."""

    kind: str = "miniscope"
    options: dict[str, dict[str, Any]] = CONVERSION_OPTIONS
    embed_cameras: bool = False

    def __init__(self, part: Part, verbose: bool = False, metadata_key: str | None = None) -> None:
        self._part = part
        self.verbose = verbose
        self.metadata_key = metadata_key or "miniscope_imaging"
        self._alignment = Alignment()
        self.conversion_result: Any = None  # the library's ConversionResult of run_conversion

    @property
    def devices(self) -> tuple[Device, ...]:
        return self._part.devices

    def scope_entries(self, key: str) -> list[ScopeEntry]:
        """This interface's scopes, as its converter's metadata describes them."""
        return [
            ScopeEntry(key, self.metadata_key, d, camel(d.name), _rate(d))
            for d in self.devices
            if d.kind == "miniscope"
        ]

    def get_metadata_schema(self) -> dict[str, Any]:
        raise NeuroConvUnsupported(
            "get_metadata_schema", "the library checks metadata itself in run_conversion"
        )

    def get_conversion_options_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": dict(self.options),
        }

    def get_original_timestamps(self) -> np.ndarray:
        """`timeStamps.csv` of the frames converted, in seconds since this acquisition's Record."""
        session = combined_session([self._part])
        own = [r for r in recordings(session) if r.device in self.devices]
        if len(own) != 1:
            raise NeuroConvUnsupported(
                "timestamps of an interface with several devices", "ask each device's interface"
            )
        return native_seconds(own[0])

    def get_timestamps(self) -> np.ndarray:
        """The times this interface's frames get in the file (aligned ones when set)."""
        return aligned(self.get_original_timestamps(), self._alignment)

    def set_aligned_timestamps(self, aligned_timestamps: Sequence[float] | np.ndarray) -> None:
        times = np.asarray(aligned_timestamps, dtype=np.float64)
        expected = len(self.get_original_timestamps())
        if times.shape != (expected,):
            raise ValueError(
                f"expected {expected} aligned timestamps (one per frame), not {times.shape}"
            )
        self._alignment = Alignment(timestamps=times)

    def set_aligned_starting_time(self, aligned_starting_time: float) -> None:
        """Shift every time by `aligned_starting_time` s (added to any shift set before)."""
        shift = float(aligned_starting_time)
        if self._alignment.timestamps is not None:
            self._alignment = Alignment(timestamps=self._alignment.timestamps + shift)
        else:
            self._alignment = Alignment(
                starting_time=(self._alignment.starting_time or 0.0) + shift
            )

    def align_by_interpolation(self, unaligned_timestamps: Any, aligned_timestamps: Any) -> None:
        raise NeuroConvUnsupported(
            "align_by_interpolation",
            "pass sync pairs as ConversionOptions(alignment=TimeAlignment(local, reference)) "
            "to convert_session, or set_aligned_timestamps with every frame's time",
        )

    def add_to_nwbfile(self, *args: Any, **kwargs: Any) -> None:
        raise NeuroConvUnsupported(
            "adding to an in-memory NWBFile", "run_conversion(nwbfile_path=...) writes the file"
        )

    create_nwbfile = add_to_nwbfile


def _rate(device: Device) -> float | None:
    table = device.timestamps
    return measure_timing(table).rate_hz if table is not None and len(table) > 1 else None
