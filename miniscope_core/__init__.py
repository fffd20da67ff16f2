"""Miniscope DAQ recordings to NWB: a streaming conversion library with no orchestration inside.

from miniscope_core import convert_session
convert_session("session_folder", "session.nwb", metadata_path="subject.yaml")
"""

from .convert import ConversionOptions, ConversionResult, convert_session
from .errors import FrameCountMismatch, MiniscopeFormatError
from .explicit import session_from_files
from .report import inspect_session
from .session import discover

__all__ = [
    "ConversionOptions",
    "ConversionResult",
    "FrameCountMismatch",
    "MiniscopeFormatError",
    "convert_session",
    "discover",
    "inspect_session",
    "session_from_files",
]
