"""The Dagster code location: `dagster dev` (workspace.yaml) and `dagster-daemon` load `defs`.

Runs use the in-process executor: the steps of one session run one after another in the run's
process (heavy steps use every core themselves), which saves a process per step and keeps SQLite
storage free of concurrent writers within a run.

The settings (MINISCOPE_* variables, settings file) are read as the code location loads (here
for the resource, in `sensors` for the tick interval): a bad one stops the load with a one-line
`SettingsError` naming the variable and its value.
"""

from __future__ import annotations

import dagster as dg

from .assets import CONVERSION_ASSETS
from .partitions import raw_session
from .resources import MiniscopeStorage
from .sensors import convert_session_job, session_sensor

defs = dg.Definitions(
    assets=[raw_session, *CONVERSION_ASSETS],
    jobs=[convert_session_job],
    sensors=[session_sensor],
    resources={"storage": MiniscopeStorage.from_env()},
    executor=dg.in_process_executor,
)
