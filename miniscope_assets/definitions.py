"""The Dagster code location: `dagster dev` (workspace.yaml), `dagster-daemon` and the Celery
workers load `defs`.

The settings (MINISCOPE_* variables, settings file) are read as the code location loads: here for
the resource and the executor (`executor.py`: in-process by default, multiprocess or Celery), in
`sensors` for the tick interval. A bad one stops the load with a one-line `SettingsError` naming
the variable and its value. In-process runs execute the steps of one session one after another in
the run's process (heavy steps use every core themselves), which saves a process per step.
"""

from __future__ import annotations

import dagster as dg

from .assets import CONVERSION_ASSETS
from .executor import executor_for
from .partitions import raw_session
from .resources import MiniscopeStorage
from .sensors import convert_session_job, session_sensor
from .settings import MiniscopeSettings

_SETTINGS = MiniscopeSettings.load()

defs = dg.Definitions(
    assets=[raw_session, *CONVERSION_ASSETS],
    jobs=[convert_session_job],
    sensors=[session_sensor],
    resources={"storage": MiniscopeStorage.from_settings(_SETTINGS)},
    executor=executor_for(_SETTINGS),
)
