"""The Dagster instance the CLI, the demo and `make ui` share: $DAGSTER_HOME, by default ./.dagster_home.

A new home gets the settings below: SQLite storage (Dagster's default), no telemetry, every pool one
step wide, the run queue admitting one run per `fintech-release/deployment` value (one deployment
per environment, for whole runs, when the UI or a sensor launches them), and run monitoring, so
a run that never starts is failed and the pool slots of a run that ended are freed. A killed run
worker of `dagster dev` is failed by its code server; runs the CLI executes are guarded by
`deployment_lock`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from fintech_release.records.keys import DEPLOYMENT_TAG

DEFAULT_DAGSTER_HOME = Path(".dagster_home")
INSTANCE_SETTINGS = f"""\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    tag_concurrency_limits:
      - key: {DEPLOYMENT_TAG}
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""


def dagster_home() -> Path:
    """$DAGSTER_HOME (default ./.dagster_home), created with INSTANCE_SETTINGS when it has no dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(INSTANCE_SETTINGS)
    return home


def open_instance() -> DagsterInstance:
    """The instance in `dagster_home()`."""
    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return DagsterInstance.get()
