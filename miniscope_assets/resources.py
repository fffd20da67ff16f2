"""Where sessions are read and outputs written, and the knobs of the automation.

Every value comes from an environment variable with a default that works out of the box: the
demo data under `demo_data/` (gitignored) of the project checkout, or of the current folder when
the package is installed elsewhere. Values are read when the code location loads, so the UI shows
the paths in use.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from miniscope_core.convert import DEFAULT_LEVEL, ConversionOptions
from miniscope_core.session import Session
from miniscope_core.user_metadata import resolve_metadata

from .scan import session_folder

_CHECKOUT = Path(__file__).resolve().parents[1]
DEMO_DATA = (_CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()) / "demo_data"

# field -> (environment variable, default)
ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "raw_root": ("MINISCOPE_RAW_ROOT", str(DEMO_DATA / "raw")),
    "output_root": ("MINISCOPE_OUTPUT_ROOT", str(DEMO_DATA / "nwb")),
    "metadata_file": ("MINISCOPE_METADATA_FILE", ""),
    "keep_chunks": ("MINISCOPE_KEEP_CHUNKS", True),
    "settle_seconds": ("MINISCOPE_SETTLE_SECONDS", 60.0),
    "stale_seconds": ("MINISCOPE_STALE_SECONDS", 3600.0),
    "max_new_per_tick": ("MINISCOPE_MAX_NEW_PER_TICK", 50),
    "dropped_fraction_warn": ("MINISCOPE_DROPPED_FRACTION_WARN", 0.05),
    "compression_level": ("MINISCOPE_COMPRESSION_LEVEL", DEFAULT_LEVEL),
}


class MiniscopeStorage(dg.ConfigurableResource):
    """Raw root (read only), output root, and how sessions are converted and watched."""

    raw_root: str
    output_root: str
    metadata_file: str = ""
    keep_chunks: bool = True
    settle_seconds: float = 60.0
    stale_seconds: float = 3600.0
    max_new_per_tick: int = 50
    dropped_fraction_warn: float = 0.05
    compression_level: int = DEFAULT_LEVEL

    @classmethod
    def from_env(cls, **overrides: Any) -> MiniscopeStorage:
        """Values from MINISCOPE_* environment variables, then `overrides` that are not None."""
        values: dict[str, Any] = {}
        for field, (variable, default) in ENVIRONMENT.items():
            raw = os.environ.get(variable)
            values[field] = default if raw is None else _parse(raw, type(default))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def raw_path(self) -> Path:
        return Path(self.raw_root).expanduser()

    def session_folder(self, key: str) -> Path:
        return session_folder(self.raw_path, key)

    def rel_path(self, folder: Path) -> PurePosixPath:
        return PurePosixPath(folder.resolve().relative_to(self.raw_path.resolve()).as_posix())

    def session_dir(self, key: str) -> Path:
        """Everything written for one session: `<output_root>/<key>/`."""
        return Path(self.output_root).expanduser() / key

    def nwb_path(self, key: str) -> Path:
        return self.session_dir(key) / f"{key}.nwb"

    def chunks_dir(self, key: str) -> Path:
        return self.session_dir(key) / "chunks"

    def previews_dir(self, key: str) -> Path:
        return self.session_dir(key) / "previews"

    def options(self) -> ConversionOptions:
        return ConversionOptions(compression_level=self.compression_level)

    def nwb_metadata(self, session: Session) -> dict[str, Any]:
        """The library's one policy: what the recording says < the lab-wide file < the
        session's own nwb_metadata.yaml; validated, so a bad file fails the first asset."""
        lab = Path(self.metadata_file).expanduser() if self.metadata_file else None
        return resolve_metadata(session, lab_file=lab)


def _parse(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return kind(raw)
