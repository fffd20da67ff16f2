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
from .lost_steps import lost_steps_sensor
from .overview import lab_overview, overview_after_failure, overview_job
from .partitions import raw_root, raw_session
from .resources import MiniscopeStorage
from .sensors import convert_session_job, session_sensor
from .settings import MiniscopeSettings

_SETTINGS = MiniscopeSettings.load()

# Declarative Automation re-materializes the overview as sessions change state (its condition
# says when); this sensor evaluates it, running from the start as the session sensor does.
overview_automation = dg.AutomationConditionSensorDefinition(
    "overview_automation",
    target=dg.AssetSelection.assets(lab_overview),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rewrites the lab overview after sessions are handed over, converted or fail.",
)

defs = dg.Definitions(
    assets=[raw_root, raw_session, *CONVERSION_ASSETS, lab_overview],
    jobs=[convert_session_job, overview_job],
    sensors=[
        session_sensor,
        overview_automation,
        overview_after_failure,
        # A lost step is a Celery matter: with another executor a step dies with its run.
        *([lost_steps_sensor(_SETTINGS)] if _SETTINGS.executor == "celery" else []),
    ],
    resources={"storage": MiniscopeStorage.from_settings(_SETTINGS)},
    executor=executor_for(_SETTINGS),
)
