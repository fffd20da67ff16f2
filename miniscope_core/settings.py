"""Normalise device settings that the DAQ stores as strings or numbers depending on GUI history."""

from __future__ import annotations

import re
from typing import Any

# Gain labels of the V4 sensor as the DAQ's videoDevices.json maps them to display values.
_GAIN_LABELS = {"low": 1.0, "medium": 2.0, "high": 3.5}
# Our names for the saved ROI's fields -> the DAQ's keys inside metaData.json's "ROI".
_ROI_KEYS = {"width": "width", "height": "height", "left": "leftEdge", "top": "topEdge"}


def frame_rate_hz(value: Any) -> float | None:
    """`"30FPS"` or `30` -> 30.0; None when absent or unparseable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    match = re.search(r"\d+(\.\d+)?", str(value))
    return float(match.group()) if match else None


def gain_factor(value: Any) -> float | None:
    """`"Low"`/`"HIGH"` -> 1.0/3.5, numbers kept; None when absent or unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    if text in _GAIN_LABELS:
        return _GAIN_LABELS[text]
    return number(text)


def number(value: Any) -> float | None:
    """A plain numeric setting (`led0`, `ewl`, `framesPerFile`), also when the DAQ wrote it as a
    string; None when absent or not a number (a bool is a flag, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
