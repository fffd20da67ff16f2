"""What made an NWB file: the tool, its version, the libraries that shaped the bytes, the options.

Stored as JSON in the file's `source_script` so that a reader years later can tell how the file
was written and reproduce it, without guessing from file dates.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import imageio_ffmpeg

TOOL = "miniscope-nwb"
_LIBRARIES = ("pynwb", "hdmf", "h5py", "numpy", "ndx-miniscope", "imageio-ffmpeg", "isal")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def converter() -> str:
    """`miniscope-nwb <version>`: what made a file, as its provenance and the UIs name it."""
    return f"{TOOL} {tool_versions()[TOOL]}"


@cache
def tool_versions() -> dict[str, str]:
    """This tool's version and those of the libraries and the ffmpeg that wrote the pixels."""
    versions = {TOOL: _version(TOOL)}
    versions.update({name: _version(name) for name in _LIBRARIES})
    versions["ffmpeg"] = imageio_ffmpeg.get_ffmpeg_version()
    return versions


def source_script(options: dict[str, Any], metadata_files: list[str]) -> tuple[str, str]:
    """(`source_script` text, `source_script_file_name`) for the NWBFile."""
    record = {
        "tool": TOOL,
        "versions": tool_versions(),
        "options": options,
        "metadata_files": metadata_files,
    }
    return json.dumps(record, indent=1, default=str), converter()
