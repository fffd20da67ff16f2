"""One dynamic partition per session folder, and the external asset that stands for the folder."""

from __future__ import annotations

import dagster as dg

# The name is the storage key of the partitions in the instance: never rename it.
sessions = dg.DynamicPartitionsDefinition(name="sessions")

GROUP = "miniscope"
RAW_SESSION = dg.AssetKey("raw_session")
RAW_ROOT = dg.AssetKey("raw_root")

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

raw_root = dg.AssetSpec(
    RAW_ROOT,
    group_name=GROUP,
    kinds={"folder"},
    description=(
        "The raw root as the session sensor sees it: the folders not handed to conversion yet "
        "(being copied, settling, held back by an incomplete or broken file) and those refused "
        "(a session metaData.json that does not parse), each with why. Reported when that "
        "changes; the lab overview lists every folder."
    ),
)
