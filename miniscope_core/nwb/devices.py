"""Device objects: an ndx-miniscope `Miniscope` per scope and a `DeviceModel` per device type."""

from __future__ import annotations

from typing import Any

from ndx_miniscope import Miniscope
from pynwb.device import DeviceModel

from ..daq.device_settings import normalised_settings, number
from ..timing.recordings import Recording
from .base import DEVICE_TABLE, MANUFACTURER, LayoutContext, differing_settings, settings_text
from .naming import naming_of

_MINISCOPE_FIELDS = (
    "compression", "deviceType", "frameRate", "framesPerFile", "gain", "led0",
    "excitation", "msCamExposure",  # legacy V3 settings_and_notes.dat
)  # fmt: skip


def device_model(ctx: LayoutContext, device_type: str) -> DeviceModel:
    """One shared `DeviceModel` per device type (`Miniscope_V4_BNO`, `WebCam`, ...)."""
    if device_type not in ctx.nwbfile.device_models:
        ctx.nwbfile.add_device_model(
            DeviceModel(name=device_type, manufacturer=MANUFACTURER, description=device_type)
        )
    return ctx.nwbfile.device_models[device_type]


def miniscope_device(ctx: LayoutContext, recordings: list[Recording]) -> Miniscope:
    """The scope with its first acquisition's settings in the ndx-miniscope fields."""
    first = recordings[0].device
    fields = _miniscope_fields(first.settings)
    device = Miniscope(
        name=naming_of(ctx.options).device(recordings[0]),
        description=_device_description(recordings, tuple(fields)),
        model=device_model(ctx, first.device_type),
        **fields,
    )
    ctx.nwbfile.add_device(device)
    return device


def _miniscope_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings in the types the schema wants; a fractional int field is left to the text."""
    fields = {k: settings[k] for k in _MINISCOPE_FIELDS if k in settings}
    for key in ("compression", "deviceType", "frameRate", "gain"):
        if key in fields:
            fields[key] = str(fields[key])
    for key in ("framesPerFile", "led0", "excitation", "msCamExposure"):
        if key in fields and (count := _count(fields[key])) is None:
            fields.pop(key)  # not a count the schema can hold: left to the description's text
        elif key in fields:
            fields[key] = count
    roi = settings.get("ROI")
    if isinstance(roi, dict) and {"height", "width"} <= roi.keys():
        sides = [_count(roi["height"]), _count(roi["width"])]
        if None not in sides:
            fields["ROI"] = sides
    return fields


def _count(value: Any) -> int | None:
    """A whole number from 0 up to the schema's 32-bit range, else None."""
    number_ = number(value)
    whole = number_ is not None and number_.is_integer() and 0 <= number_ < 2**31
    return int(number_) if whole and number_ is not None else None


def _device_description(recordings: list[Recording], stored: tuple[str, ...]) -> str:
    device = recordings[0].device
    text = f"{device.device_type} {device.name!r} recorded with the Miniscope DAQ software."
    extra = settings_text(device.settings, tuple(k for k in stored if k != "ROI"))
    if extra:
        text += f" Settings the ndx-miniscope schema has no field for: {extra}."
    normal = normalised_settings(device.settings)
    if normal:
        text += " As numbers: " + ", ".join(f"{k}: {v:g}" for k, v in normal.items()) + "."
    return text + changed_settings_note(recordings)


def changed_settings_note(recordings: list[Recording]) -> str:
    """Where to find settings that change between acquisitions (the device shows the first's)."""
    differing = differing_settings(recordings)
    if not differing:
        return ""
    return (
        f" Settings change between acquisitions: see intervals/{DEVICE_TABLE} (changed: "
        f"{', '.join(differing)}; the values given here are the first acquisition's)."
    )
