"""Runs launched on the Dagster instance a webserver serves, so the UI sees them, queues them and can re-execute them.

A command launches its run on the webserver at `--url` (default $FINTECH_RELEASE_DAGSTER_URL or
http://127.0.0.1:3000, as `make ui`) when that webserver serves the very instance the command uses
(its instance configuration is the one of $DAGSTER_HOME); otherwise it runs the plan in its own
process and says so. A launched run goes through the instance's run queue (one deployment per
environment at a time) and has a code-location origin, so "Re-execute" works in the UI. The command
follows it until it ends, saying when it waits in the queue; Ctrl-C or SIGTERM asks the webserver to
stop the run and waits until it has stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
import yaml
from dagster import DagsterEvent, DagsterInstance

from fintech_release.cli.launch import RunPlan
from fintech_release.dagster_graphql import (
    DagsterGraphQLError,
    instance_info,
    launch_run,
    run_status,
    session,
    terminate_run,
)

LOCATION_NAME = "fintech_release"  # workspace.yaml
REPOSITORY_NAME = "__repository__"  # what Dagster calls the repository of a Definitions object
PROBE_TIMEOUT = (0.5, 5.0)
POLL_SECONDS = 1.0
ENDED = ("SUCCESS", "FAILURE", "CANCELED")
STORAGE_SETTINGS = ("local_artifact_storage", "run_storage", "event_log_storage", "schedule_storage", "storage")
SAYINGS = {
    "QUEUED": "queued: the run waits its turn in the instance's run queue (one deployment per environment at a time)",
    "STARTING": "starting",
    "STARTED": "running",
    "CANCELING": "stopping",
}


def _settings(info: str) -> object:
    """Where an instance keeps its runs and events, from `DagsterInstance.info_str()`: what makes two the same.

    The rest may differ between two processes on one instance (`dagster dev` puts a queued run
    coordinator in front of a home that names none), and the webserver sorts the keys it prints.
    """
    try:
        document = yaml.safe_load(info)
    except yaml.YAMLError:
        return None
    if not isinstance(document, dict):
        return None
    return {key: document.get(key) for key in STORAGE_SETTINGS}


class LaunchedRun:
    """A run this command launched on the webserver, followed until it ends."""

    def __init__(self, run_id: str, status: str, interrupted: bool) -> None:
        self.run_id, self.status, self.interrupted = run_id, status, interrupted

    @property
    def success(self) -> bool:
        """Whether the run succeeded."""
        return self.status == "SUCCESS"

    def events(self, instance: DagsterInstance) -> list[DagsterEvent]:
        """The run's Dagster events, read from the shared instance (for the command's report)."""
        return [entry.dagster_event for entry in instance.all_logs(self.run_id) if entry.dagster_event is not None]


class Webserver:
    """A Dagster webserver serving this command's instance, with the `fintech_release` code location."""

    def __init__(self, url: str, http: requests.Session) -> None:
        self.url, self.http = url.rstrip("/"), http
        self.endpoint = f"{self.url}/graphql"

    @classmethod
    def serving(cls, url: str, instance: DagsterInstance) -> Webserver | None:
        """The webserver at `url` if it answers and serves `instance`; None otherwise (run in this process)."""
        http = session()
        try:
            info = instance_info(http, f"{url.rstrip('/')}/graphql", timeout=PROBE_TIMEOUT)
        except DagsterGraphQLError:
            return None
        mine = _settings(instance.info_str())
        if info is None or mine is None or _settings(info) != mine:
            return None
        return cls(url, http)

    def run(self, plan: RunPlan, *, say: Callable[[str], None]) -> LaunchedRun:
        """Launch `plan`'s run and follow it to its end; Ctrl-C/SIGTERM stop the run, then wait for it."""
        run_id = launch_run(
            self.http, self.endpoint, location_name=LOCATION_NAME, repository_name=REPOSITORY_NAME,
            job_name=plan.job_name, tags=dict(plan.tags), run_config=dict(plan.run_config),
            asset_selection=[key.path for key in plan.asset_selection] if plan.asset_selection else None,
        )
        say(f"{plan.what} in run {run_id}, launched on {self.url} ({self.url}/runs/{run_id}); Ctrl-C stops it …")
        interrupted = False
        status, said = "", ""
        while status not in ENDED:
            try:
                status = run_status(self.http, self.endpoint, run_id)
                if status in SAYINGS and status != said:
                    say(f"  {SAYINGS[status]}")
                    said = status
                if status not in ENDED:
                    time.sleep(POLL_SECONDS)
            except KeyboardInterrupt:
                if interrupted:
                    say(f"  stopped waiting; run {run_id} goes on stopping on {self.url}")
                    return LaunchedRun(run_id, "CANCELING", True)
                interrupted = True
                say(f"  stopping run {run_id} (Ctrl-C again to stop waiting) …")
                terminate_run(self.http, self.endpoint, run_id)
        return LaunchedRun(run_id, status, interrupted)
