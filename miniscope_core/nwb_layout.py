"""The NWB layout's public names, kept at their old import path; the parts are in `nwb/`."""

from .nwb.base import Fill, Layout, LayoutOptions, SessionClock, acquisition_suffix, camel
from .nwb.layout import build_layout

__all__ = [
    "Fill",
    "Layout",
    "LayoutOptions",
    "SessionClock",
    "acquisition_suffix",
    "build_layout",
    "camel",
]
