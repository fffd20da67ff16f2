"""Errors and warnings that name the file at fault, so a lab knows what to fix."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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


class InventoryWarning(MiniscopeWarning):
    """Something under a session that looks like recording data does not reach the file."""


class MissingDeviceWarning(InventoryWarning):
    """A device listed in a session's metaData.json has no folder (or no usable files)."""


@contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised inside, kept rather than printed, to report with the result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


@contextmanager
def relayed_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """`recorded_warnings`, warned again on the way out, also when the block fails (what was
    found in a session may say why its conversion failed)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with recorded_warnings() as caught:
            yield caught
    finally:
        replay(caught)


def replay(caught: list[warnings.WarningMessage]) -> None:
    """Warn again what was recorded, as it was first warned (to an outer recorder, or the user)."""
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def lab_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    """The recorded warnings meant for the lab (about its recording), not library chatter."""
    return [str(w.message) for w in caught if issubclass(w.category, MiniscopeWarning)]
