"""NeuroConv's Miniscope API over this library: a script written for NeuroConv's Miniscope
guide runs by changing its imports to `from miniscope_core.neuroconv import ...`.

Every call maps onto the library (`discover` / `session_from_files`, the metadata layers,
`ConversionOptions`, `TimeAlignment`, `convert_session`); nothing of NeuroConv is imported. What
has no counterpart raises `NeuroConvUnsupported`, naming the alternative. See docs/neuroconv.md.
"""

from .converters import ConverterPipe, MiniscopeConverter
from .errors import NeuroConvUnsupported
from .interfaces import (
    ExternalVideoInterface,
    InternalVideoInterface,
    MiniscopeHeadOrientationInterface,
    MiniscopeImagingInterface,
    VideoInterface,
)

__all__ = [
    "ConverterPipe",
    "ExternalVideoInterface",
    "InternalVideoInterface",
    "MiniscopeConverter",
    "MiniscopeHeadOrientationInterface",
    "MiniscopeImagingInterface",
    "NeuroConvUnsupported",
    "VideoInterface",
]
