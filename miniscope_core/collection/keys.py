"""Names for session folders: readable, safe as file names and in the Dagster UI, reversible.

The same name is a session's Dagster partition key and its file name under
`miniscope-nwb convert COLLECTION --output-dir DIR`, so both tools name a session alike.

A key is the folder's path relative to the raw root with its parts joined by "__"
(`alice/exp1/2024_01_15` -> `alice__exp1__2024_01_15`). Dagster stores any dynamic key, but
`/`, `,`, `|`, `...`, whitespace and control characters break its UI and URLs, so a path with a
part that does not fit becomes a slug plus a hash of the real path. Such a key cannot be parsed
back; it is found again by rescanning the raw root (and the real path is in the raw asset's
metadata).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
SEPARATOR = "__"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HASH_LENGTH = 8


def _part_fits(part: str) -> bool:
    """A part that joins with "__" unambiguously and cannot form the UI's "..." range token."""
    return (
        bool(_PART.match(part))
        and SEPARATOR not in part
        and not part.endswith("_")
        and "..." not in part
    )


def _slug(rel_path: PurePosixPath) -> str:
    parts = [re.sub(r"[^A-Za-z0-9.-]+", "-", part).strip("-.") for part in rel_path.parts]
    slug = re.sub(r"\.{2,}", ".", SEPARATOR.join(p for p in parts if p))
    return slug.lstrip("_.-")


def partition_key(rel_path: PurePosixPath) -> str:
    """The key of the session folder at `rel_path` (relative to the raw root)."""
    if not rel_path.parts or rel_path.is_absolute():
        raise ValueError(f"{rel_path} is not a folder below the raw root")
    if all(_part_fits(part) for part in rel_path.parts):
        key = SEPARATOR.join(rel_path.parts)
        if KEY_PATTERN.match(key):
            return key
    digest = hashlib.sha1(rel_path.as_posix().encode()).hexdigest()[:_HASH_LENGTH]
    slug = _slug(rel_path)[: 200 - _HASH_LENGTH - 1].rstrip("_.-")
    return f"{slug}-{digest}" if slug else digest


def parsed_rel_path(key: str) -> PurePosixPath | None:
    """The relative path `key` spells when read as a plain key, or None if it cannot be one.

    A hashed key also reads as a (nonexistent) folder name: callers check that the folder exists
    and otherwise rescan the raw root.
    """
    if not KEY_PATTERN.match(key):
        return None
    candidate = PurePosixPath(*key.split(SEPARATOR))
    return candidate if partition_key(candidate) == key else None
