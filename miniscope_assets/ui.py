"""Metadata values that render well in the Dagster UI: tables and small inline images."""

from __future__ import annotations

import base64
from typing import Any

import dagster as dg

_TYPES = {bool: "bool", int: "int", float: "float"}


def table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """Rows of plain values as a UI table; column types are taken from the first row."""
    columns = [
        dg.TableColumn(name, _TYPES.get(type(value), "string"))
        for name, value in (rows[0].items() if rows else [])
    ]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(row) for row in rows], schema=dg.TableSchema(columns=columns)
    )


def images(pngs: dict[str, bytes]) -> dg.MarkdownMetadataValue:
    """PNG images inline (base64) with their names as captions; keep them small (event log)."""
    parts = [
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for name, png in pngs.items()
    ]
    return dg.MetadataValue.md("\n\n".join(parts) or "no preview")
