"""One conversion through `convert_session`, with the series names a script's metadata gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..daq.model import Session
from ..options import ConversionOptions
from ..pipeline.convert import ConversionResult, convert_session
from ..timing.recordings import Recording
from ._timing import recordings


def write(
    session: Session,
    output: Path,
    options: ConversionOptions,
    overrides: dict[str, Any],
    series_names: Callable[[list[Recording]], Mapping[str, str]],
    overwrite: bool,
) -> ConversionResult:
    """Convert `session` to `output`; `series_names` maps the library's series names (of the
    session's recordings) to the script's, which the layout then gives (`series_names`)."""
    names = {old: new for old, new in series_names(recordings(session)).items() if old != new}
    options = replace(options, series_names=tuple(names.items()))
    return convert_session(session, output, options, metadata=overrides, overwrite=overwrite)
