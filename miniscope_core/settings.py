"""Normalise device settings that the DAQ stores as strings or numbers depending on GUI history."""

from __future__ import annotations

import re
from typing import Any

# Gain labels of the V4 sensor as the DAQ's videoDevices.json maps them to display values.
_GAIN_LABELS = {"low": 1.0, "medium": 2.0, "high": 3.5}


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
    try:
        return float(text)
    except ValueError:
        return None


def normalised_settings(raw: dict[str, Any]) -> dict[str, float]:
    """The numeric forms of the settings a lab compares across sessions."""
    out: dict[str, float] = {}
    for key, parse in (("frameRate", frame_rate_hz), ("gain", gain_factor)):
        value = parse(raw.get(key))
        if value is not None:
            out[key] = value
    for key in ("led0", "led1", "ewl"):
        if isinstance(raw.get(key), int | float) and not isinstance(raw.get(key), bool):
            out[key] = float(raw[key])
    return out
