"""Normalise device settings that the DAQ stores as strings or numbers depending on GUI history."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Gain labels of the V4 sensor as the DAQ's videoDevices.json maps them to display values.
_GAIN_LABELS = {"low": 1.0, "medium": 2.0, "high": 3.5}
# Our names for the saved ROI's fields -> the DAQ's keys inside metaData.json's "ROI".
_ROI_KEYS = {"width": "width", "height": "height", "left": "leftEdge", "top": "topEdge"}


# A number as the DAQ (or a hand edit) writes one: no "1_0", no "nan", no "inf".
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_TEXT = re.compile(_NUMBER)
_FRAME_RATE_TEXT = re.compile(rf"({_NUMBER})\s*(?:FPS)?", re.IGNORECASE)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def frame_rate_hz(value: Any) -> float | None:
    """`"30FPS"`, `"15 fps"`, `"30"` or `30` -> 30.0; None when absent or not a frame rate
    (`"30FSP"`, `"fast"`, 0, a negative number, a bool)."""
    if isinstance(value, bool) or value is None:
        return None
    rate: float | None = None
    if isinstance(value, int | float):
        rate = _finite(float(value))
    elif isinstance(value, str):
        match = _FRAME_RATE_TEXT.fullmatch(value.strip())
        rate = _finite(float(match.group(1))) if match else None
    return rate if rate is not None and rate > 0 else None


def gain_factor(value: Any) -> float | None:
    """`"Low"`/`"HIGH"` -> 1.0/3.5, numbers (also as strings) kept; None when absent or unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _GAIN_LABELS:
        return _GAIN_LABELS[value.strip().lower()]
    return number(value)


def number(value: Any) -> float | None:
    """A plain numeric setting (`led0`, `ewl`, `framesPerFile`), also when the DAQ wrote it as a
    string; None when absent or not a finite number (a bool is a flag, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _finite(float(value))
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return _finite(float(value))
    return None


# Settings `unreadable_settings` checks: what a readable value is, and what happens without one.
_READABLE = {
    "frameRate": (
        frame_rate_hz,
        "is not a frame rate (e.g. 30FPS); the rate measured from timeStamps.csv is used",
    ),
    "gain": (
        gain_factor,
        "is not a gain (a number, or Low, Medium or High); the device table's gain is NaN",
    ),
    "led0": (number, "is not a number (LED power in percent); the device table's led0 is NaN"),
    "led1": (number, "is not a number (LED power in percent); it is not in the device table"),
    "ewl": (number, "is not a number (focus setting); the device table's ewl is NaN"),
}


def unreadable_settings(raw: dict[str, Any]) -> list[str]:
    """For each setting in a device's metaData.json that is present but cannot be read, a short
    phrase saying so and what is used instead, e.g. `frameRate "30FSP" is not a frame rate
    (e.g. 30FPS); the rate measured from timeStamps.csv is used`. A null value is "not stored",
    not unreadable. `framesPerFile` and `ROI` are not checked here."""
    problems = []
    for key, (parse, problem) in _READABLE.items():
        value = raw.get(key)
        if value is not None and parse(value) is None:
            problems.append(f"{key} {_shown(value)} {problem}")
    return problems


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def saved_roi(raw: dict[str, Any]) -> dict[str, int | None]:
    """The ROI the video was saved at: width, height, left and top in sensor pixels, each None
    when not stored (older DAQ versions and most cameras store no ROI)."""
    roi = raw.get("ROI")
    roi = roi if isinstance(roi, dict) else {}
    values = {key: number(roi.get(name)) for key, name in _ROI_KEYS.items()}
    return {key: None if value is None else int(value) for key, value in values.items()}


def normalised_settings(raw: dict[str, Any]) -> dict[str, float]:
    """The numeric forms of the settings a lab compares across sessions."""
    out: dict[str, float] = {}
    parsers = (
        ("frameRate", frame_rate_hz),
        ("gain", gain_factor),
        ("led0", number),
        ("led1", number),
        ("ewl", number),
    )
    for key, parse in parsers:
        value = parse(raw.get(key))
        if value is not None:
            out[key] = value
    return out
