"""Asset checks, evaluated inside the asset that produces the data, one result per session.

Checks carry the sessions partitions so that each session gets its own pass/fail in the UI
(partitioned check specs are a preview feature of Dagster 1.13; without them every session
would share one status). Numeric check metadata is plotted per partition by the UI.
"""

from __future__ import annotations

import warnings

import dagster as dg

from miniscope_core import DeviceReport, FileCheck, FrameCount, SessionQC

from .partitions import sessions
from .ui import table

TIMESTAMPS_INCREASE = "timestamps_increase"
NWB_VALID = "nwb_valid"
FRAME_COUNTS = "frame_counts_agree"
# The QC report's verdicts (`SessionQC.verdicts`, keyed as in its metadata): a warning each.
QC_CHECKS = {
    "dropped_percent": (
        "dropped_frames_under_threshold",
        "Each device lost at most MINISCOPE_QC_DROPPED_PERCENT % of its frames.",
    ),
    "max_motion_px": (
        "motion_under_threshold",
        "The field of view moved at most MINISCOPE_QC_MAX_MOTION_PX pixels (rigid shift of a "
        "subsample of frames).",
    ),
    "brightness_drift_percent": (
        "brightness_steady",
        "The mean brightness drifted at most MINISCOPE_QC_BRIGHTNESS_DRIFT_PERCENT % either way "
        "(LED, focus, bleaching).",
    ),
}


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
]
NWB_CHECKS = [
    *(_spec(name, "nwb_file", description) for name, description in QC_CHECKS.values()),
    _spec(
        NWB_VALID,
        "nwb_file",
        "DANDI's gate passes (pynwb validates the file; nwbinspector, with DANDI's configuration, "
        "finds nothing DANDI counts as an error) and every image series reads back "
        "(`miniscope-nwb validate`: every frame stored, first and last chunks inflate to the "
        "series' frame size, as many timestamps as frames); what DANDI only warns about is "
        "listed under `dandi_warnings` and does not fail the check.",
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


def quality_checks(qc: SessionQC) -> list[dg.AssetCheckResult]:
    """The QC report's verdicts as warnings; a number not measured (no frames) passes."""
    return [
        dg.AssetCheckResult(
            check_name=QC_CHECKS[verdict.key][0],
            passed=verdict.passed is not False,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.describe(),
            metadata={"value": verdict.value, "limit": verdict.limit, "unit": verdict.unit},
        )
        for verdict in qc.verdicts()
    ]


def nwb_valid(validation: FileCheck) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=NWB_VALID,
        passed=validation.passed,
        metadata={
            "schema_errors": list(validation.schema_errors),
            "critical": list(validation.critical),
            "readback_problems": list(validation.readback.problems),
            "dandi_warnings": list(validation.warnings),
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
