"""A session from explicit file paths, like NeuroConv's `MiniscopeImagingInterface(file_paths=...)`.

For labs whose videos were renamed or moved away from the DAQ's folder layout: the files are
taken in the order given, back to back, and matched to the timestamp rows in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import MiniscopeFormatError
from .inventory import is_session_metadata, read_json
from .model import Acquisition, Device, Session
from .start_time import parse_start_time


def session_from_files(
    file_paths: Sequence[Path | str],
    configuration_file_path: Path | str,
    timestamps_file_path: Path | str | None = None,
    session_metadata_path: Path | str | None = None,
) -> Session:
    """One Miniscope from `file_paths` (.avi), its device metaData.json and timeStamps.csv.

    Without timestamps, frames get regular times from the configured frame rate. The start time
    comes from `session_metadata_path`, or a session metaData.json one folder above the device's.
    """
    config = Path(configuration_file_path)
    videos = tuple(Path(path) for path in file_paths)
    for video in videos:
        if not video.is_file():
            raise MiniscopeFormatError(video, "is missing")
    settings = read_json(config)
    device = Device(
        name=str(settings.get("deviceName") or config.parent.name),
        kind="miniscope",
        folder=config.parent,
        settings=settings,
        videos=videos,
        video_indices=tuple(range(len(videos))),
        timestamps_path=Path(timestamps_file_path) if timestamps_file_path else None,
        head_orientation_path=None,
        sequential=True,
    )
    meta_path = Path(session_metadata_path) if session_metadata_path else None
    if meta_path is None and (config.parent.parent / "metaData.json").is_file():
        meta_path = config.parent.parent / "metaData.json"
    metadata = read_json(meta_path) if meta_path else {}
    start = (
        parse_start_time(metadata, meta_path)
        if meta_path and is_session_metadata(metadata)
        else None
    )
    acquisition = Acquisition(
        folder=config.parent,
        label=config.parent.name,
        metadata=metadata,
        start=start,
        devices=(device,),
        notes_path=None,
    )
    return Session(root=config.parent, acquisitions=(acquisition,))
