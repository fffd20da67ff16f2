"""Miniscope DAQ recordings to NWB: a streaming conversion library with no orchestration inside.

from miniscope_core import convert_session
convert_session("session_folder", "session.nwb", metadata_path="subject.yaml")
"""

from .collection import CollectionError, discover, find_sessions, session_names
from .convert import ConversionOptions, ConversionResult, convert_session
from .errors import FrameCountMismatch, MiniscopeFormatError
from .explicit import session_from_files
from .report import inspect_session
from .settings_model import MiniscopeSettings, SettingsError

__all__ = [
    "ConversionOptions",
    "ConversionResult",
    "FrameCountMismatch",
    "CollectionError",
    "MiniscopeFormatError",
    "MiniscopeSettings",
    "SettingsError",
    "convert_session",
    "discover",
    "find_sessions",
    "inspect_session",
    "session_from_files",
    "session_names",
]
