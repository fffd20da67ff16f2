"""Atomic writes: a reader (or the UI) never finds a half-written file where a finished one goes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a `.partial` sibling and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_json(path: Path, value: Any) -> Path:
    return write_bytes(path, json.dumps(value, indent=2, default=str).encode())


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    return write_bytes(path, table.to_csv(index=False).encode())
