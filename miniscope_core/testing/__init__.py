"""Synthetic DAQ-QT and V3 recordings for tests and the demo; the converter never imports it."""

from .synthetic import (
    AcquisitionSpec,
    AcquisitionTruth,
    CameraSpec,
    DeviceTruth,
    ScopeSpec,
    write_acquisition,
    write_demo_session,
    write_session,
)

__all__ = [
    "AcquisitionSpec",
    "AcquisitionTruth",
    "CameraSpec",
    "DeviceTruth",
    "ScopeSpec",
    "write_acquisition",
    "write_demo_session",
    "write_session",
]
