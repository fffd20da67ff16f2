"""Asset checks, evaluated inside the asset that produces the data, one result per session.

Checks carry the sessions partitions so that each session gets its own pass/fail in the UI
(partitioned check specs are a preview feature of Dagster 1.13; without them every session
would share one status). Numeric check metadata is plotted per partition by the UI.
"""

from __future__ import annotations

import warnings

import dagster as dg

from miniscope_core import DeviceReport, FileCheck, FrameCount

from .partitions import sessions
from .ui import table

TIMESTAMPS_INCREASE = "timestamps_increase"
DROPPED_FRAMES = "dropped_frames_under_threshold"
NWB_VALID = "nwb_valid"
FRAME_COUNTS = "frame_counts_agree"


def _spec(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, partitions_def=sessions, description=description
        )


TIMESTAMP_CHECKS = [
    _spec(
        TIMESTAMPS_INCREASE,
        "timestamp_tables",
        "No timeStamps.csv row is earlier than the one before (equal times occur in bursts).",
    ),
    _spec(
        DROPPED_FRAMES,
        "timestamp_tables",
        "Each device lost at most MINISCOPE_DROPPED_FRACTION_WARN of its frames (a warning).",
    ),
]
NWB_CHECKS = [
    _spec(
        NWB_VALID,
        "nwb_file",
        "pynwb validates the file, nwbinspector finds nothing CRITICAL, and every image series "
        "reads back (`miniscope-nwb validate`: one chunk per frame, first and last frames "
        "inflate to the series' frame size, as many timestamps as frames).",
    ),
    _spec(
        FRAME_COUNTS,
        "nwb_file",
        "Per Miniscope, decoded video frames = timestamp rows = frames in the NWB series. "
        "A warning if only the recording disagrees (the NWB keeps the frames that have both).",
    ),
]


def timestamps_increase(devices: list[DeviceReport]) -> dg.AssetCheckResult:
    steps = {f"{d.acquisition}/{d.device}": d.decreasing_steps for d in devices}
    return dg.AssetCheckResult(
        check_name=TIMESTAMPS_INCREASE,
        passed=not any(steps.values()),
        metadata={"decreasing_steps": sum(steps.values()), "per_device": steps},
    )


def dropped_frames(devices: list[DeviceReport], threshold: float) -> dg.AssetCheckResult:
    worst = max(devices, key=lambda d: d.dropped_fraction, default=None)
    fraction = worst.dropped_fraction if worst else 0.0
    return dg.AssetCheckResult(
        check_name=DROPPED_FRAMES,
        passed=fraction <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "worst_fraction": round(fraction, 4),
            "worst_device": f"{worst.acquisition}/{worst.device}" if worst else "",
            "threshold": threshold,
        },
    )


def nwb_valid(validation: FileCheck) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=NWB_VALID,
        passed=validation.passed,
        metadata={
            "schema_errors": list(validation.schema_errors),
            "critical": list(validation.critical),
            "readback_problems": list(validation.readback.problems),
            "image_series_read_back": validation.readback.series,
            "inspector_findings": validation.findings,
        },
    )


def frame_counts_agree(counts: list[FrameCount]) -> dg.AssetCheckResult:
    writer_ok = all(c.nwb_holds_the_overlap for c in counts)
    return dg.AssetCheckResult(
        check_name=FRAME_COUNTS,
        passed=all(c.agree for c in counts),
        severity=dg.AssetCheckSeverity.WARN if writer_ok else dg.AssetCheckSeverity.ERROR,
        metadata={
            "counts": table(
                [
                    {
                        "device": c.device,
                        "decoded": c.decoded,
                        "timestamps": c.timestamps,
                        "nwb": c.nwb,
                    }
                    for c in counts
                ]
            )
        },
    )
