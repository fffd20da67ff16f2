"""One-photon imaging: a scope's device, imaging plane, image series and head orientation."""

from __future__ import annotations

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from ndx_miniscope import Miniscope
from pynwb.ophys import ImagingPlane, OnePhotonSeries, OpticalChannel

from ..metadata.layers import ophys_for
from ..timing.recordings import Recording
from .base import LayoutContext, SeriesGroup, series_groups, timestamps_sources
from .behavior import add_head_orientation
from .devices import miniscope_device
from .naming import naming_of


def add_miniscope(ctx: LayoutContext, recordings: list[Recording]) -> None:
    """Everything of one scope; its series share one imaging plane even when split by size."""
    naming = naming_of(ctx.options)
    device = miniscope_device(ctx, recordings)
    plane = _imaging_plane(ctx, recordings, device)
    prefix = naming.scope_series(recordings[0], device.name)
    suffix = naming.acquisition_suffix
    groups = series_groups(recordings, prefix, ctx.options.per_acquisition, True, suffix)
    for group in ctx.named(groups):
        _add_image_series(ctx, group, plane)
    add_head_orientation(ctx, recordings, naming.head_orientation(device.name))


def _imaging_plane(
    ctx: LayoutContext, recordings: list[Recording], device: Miniscope
) -> ImagingPlane:
    """The plane with the lab's optics; the rate is measured, not the requested frameRate."""
    ophys = ophys_for(ctx.metadata, recordings[0].device.name)
    return ctx.nwbfile.create_imaging_plane(
        name=naming_of(ctx.options).imaging_plane(device.name),
        optical_channel=OpticalChannel(
            name="OpticalChannel",
            description="Green emission light collected by the Miniscope.",
            emission_lambda=float(ophys["emission_lambda"]),
        ),
        description=str(ophys["imaging_plane_description"]),
        device=device,
        excitation_lambda=float(ophys["excitation_lambda"]),
        imaging_rate=float(recordings[0].timing.rate_hz or np.nan),
        indicator=str(ophys["indicator"]),
        location=str(ophys["location"]),
    )


def _add_image_series(ctx: LayoutContext, group: SeriesGroup, plane: ImagingPlane) -> None:
    recordings = group.recordings
    series = OnePhotonSeries(
        name=group.name,
        imaging_plane=plane,
        data=ctx.empty_dataset(group.name, recordings),
        unit=str(ophys_for(ctx.metadata, recordings[0].device.name)["unit"]),
        dimension=list(recordings[0].frame_shape[:2]),
        timestamps=H5DataIO(
            np.concatenate([ctx.seconds(r) for r in recordings]), compression="gzip"
        ),
        description=(
            f"Frames of Miniscope {recordings[0].device.name!r}, (frame, width, height), "
            f"from acquisitions {group.labels}; timestamps from {timestamps_sources(recordings)}."
            + group.split_note
        ),
        device=plane.device,
    )
    ctx.nwbfile.add_acquisition(series)
