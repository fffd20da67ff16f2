"""Errors and warnings that name the file at fault, so a lab knows what to fix."""

from __future__ import annotations

from pathlib import Path


class MiniscopeFormatError(ValueError):
    """A recording file is missing, unreadable or not in the Miniscope DAQ format."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MiniscopeWarning(UserWarning):
    """Something in a recording a lab should know about; the conversion went on."""


class FrameCountMismatch(MiniscopeWarning):
    """Decoded video frames and timeStamps.csv rows disagree; the shorter was kept."""


class MissingDeviceWarning(MiniscopeWarning):
    """A device listed in a session's metaData.json has no folder (or no usable files)."""
