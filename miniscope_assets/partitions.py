"""One dynamic partition per session folder, and the external asset that stands for the folder."""

from __future__ import annotations

import dagster as dg

# The name is the storage key of the partitions in the instance: never rename it.
sessions = dg.DynamicPartitionsDefinition(name="sessions")

GROUP = "miniscope"
RAW_SESSION = dg.AssetKey("raw_session")

raw_session = dg.AssetSpec(
    RAW_SESSION,
    partitions_def=sessions,
    group_name=GROUP,
    kinds={"folder"},
    description=(
        "A session folder under the raw root, written by the Miniscope DAQ software. Reported "
        "(with its file count, size and signature) when the sensor or a backfill hands it to "
        "conversion; never modified."
    ),
)
