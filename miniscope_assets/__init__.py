"""Dagster assets, checks and sensor around `miniscope_core`: the optional `dagster` extra."""

from __future__ import annotations

import importlib.util
import sys


def main(argv: list[str] | None = None) -> int:
    """`miniscope-dagster`, with one clear line instead of an import traceback without Dagster."""
    if importlib.util.find_spec("dagster") is None:
        print(
            "error: miniscope-dagster needs Dagster: pip install 'miniscope-nwb[dagster]'",
            file=sys.stderr,
        )
        return 2
    from .cli import main as run

    return run(argv)
