"""The names the layout gives NWB objects: ours by default, or NeuroConv's for labs whose
analysis scripts look objects up by the names NeuroConv's MiniscopeConverter writes.

One table, used by every part of the layout. `<dev>`, `<cam>`: the device's NWB name; `<acq>`:
the acquisition folder `_`-joined; `<rel>`: `neuroconv_relative_path` with `/` and the device
folder removed. Per object: ours | NeuroConv, one series per device | NeuroConv, per acquisition.

- Miniscope device: camel(deviceName) | to_camel_case(deviceName without spaces) |
  to_camel_case(device folder)
- imaging plane: ImagingPlane<dev> in all three
- acquisition/ one-photon series: OnePhotonSeries<dev>[_<acq>] | OnePhotonSeries<dev>, then
  `Miniscope` (its folder) unless the device is so named | OnePhotonSeries<dev><rel>
- processing/behavior/ head orientation: TimeSeriesMiniscopeHeadOrientation<dev>[_<acq>] |
  TimeSeriesMiniscopeHeadOrientation<dev> | TimeSeriesMiniscopeHeadOrientation<dev><rel>
- camera device: camel(deviceName) | deviceName without spaces | to_camel_case(device folder)
- acquisition/ camera series: ImageSeries<cam>[_<acq>] | BehavCamImageSeries |
  ImageSeries<cam><rel>

"One series per device" is NeuroConv's folder-discovery converter (no User Config: every
acquisition concatenated, `BehavCamImageSeries`); "per acquisition" is its User-Config converter
(one series per device and acquisition), so `--neuroconv-names` follows the first by default and
the second with `--per-acquisition`. NeuroConv's folder-discovery mode writes one camera only; a
second camera here is `BehavCamImageSeries<cam>`. A series split where the frame size changes
keeps our `_<acq>` suffix in both styles (NeuroConv cannot write such a device).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..metadata.layers import camel
from ..timing.recordings import Recording
from .base import LayoutOptions, acquisition_suffix

_DAQ_DATE_FOLDER = re.compile(r"\d{4}_\d{2}_\d{2}")
_LEGACY_SCOPE_FOLDER = "Miniscope"  # NeuroConv's folder discovery finds only folders so named


def neuroconv_camel(name: str) -> str:
    """NeuroConv's `to_camel_case`: all-capital parts kept, others capitalised (the rest lower
    case): `HPC_miniscope1` -> `HPCMiniscope1`, `BehavCam_2` -> `Behavcam2`."""
    parts = name.replace("-", "_").split("_")
    return "".join(part if part.isupper() else part.capitalize() for part in parts)


def _glued(relative_path: str, device_folder: str) -> str:
    """NeuroConv's series suffix: the path with `/` removed and the device folder stripped."""
    glued = relative_path.replace("/", "")
    return glued[: -len(device_folder)] if glued.endswith(device_folder) else glued


def neuroconv_relative_path(recording: Recording) -> str:
    """The device folder's path below the folder NeuroConv's User Config fixes (the animal's):
    `<date>/<time>/<device>` when the acquisition folder is in a DAQ `YYYY_MM_DD` date folder,
    else `<acquisition>/<device>`."""
    acquisition = recording.acquisition.folder
    parts = [acquisition.name, recording.device.folder.name]
    if _DAQ_DATE_FOLDER.fullmatch(acquisition.parent.name):
        parts.insert(0, acquisition.parent.name)
    return "/".join(parts)


@dataclass(frozen=True)
class Naming:
    """The names of one style (see the table above)."""

    neuroconv: bool = False
    per_acquisition: bool = False

    def device(self, recording: Recording) -> str:
        device = recording.device
        if not self.neuroconv:
            return camel(device.name)
        if self.per_acquisition:
            return neuroconv_camel(device.folder.name)
        if device.kind == "camera":
            return device.name.replace(" ", "")
        return neuroconv_camel(device.name.replace(" ", ""))

    def imaging_plane(self, device_name: str) -> str:
        return f"ImagingPlane{device_name}"

    def scope_series(self, recording: Recording, device_name: str) -> str:
        """The name of a scope's series (all acquisitions, or the first of a split)."""
        if self.neuroconv and not self.per_acquisition:
            suffix = _glued(_LEGACY_SCOPE_FOLDER, recording.device.name.replace(" ", ""))
            return f"OnePhotonSeries{device_name}{suffix}"
        return f"OnePhotonSeries{device_name}"

    def head_orientation(self, device_name: str) -> str:
        return f"TimeSeriesMiniscopeHeadOrientation{device_name}"

    def camera_series(self, device_name: str, first_camera: bool) -> str:
        if self.neuroconv and not self.per_acquisition:
            return "BehavCamImageSeries" + ("" if first_camera else device_name)
        return f"ImageSeries{device_name}"

    def acquisition_suffix(self, recording: Recording) -> str:
        """What a series of one acquisition adds to its device's series name."""
        if self.neuroconv:
            return _glued(neuroconv_relative_path(recording), recording.device.folder.name)
        return "_" + acquisition_suffix(recording.acquisition.label)


def naming_of(options: LayoutOptions) -> Naming:
    return Naming(options.neuroconv_names, options.per_acquisition)
