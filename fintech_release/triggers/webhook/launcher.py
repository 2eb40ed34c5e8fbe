"""Launching what the recorded deliveries owe, in the background, until each launch has its run.

`LaunchWorkers` are a few threads that take the pending launch due first from the store, holding its run
key (one lock per commit: two deliveries of one commit never launch side by side, different commits do),
and ask the webserver through `Launcher`: a run of the same job with the commit's identity tags already
there is "exists", else launchRun. A failed attempt (Dagster down, a timeout, an error) is retried with
back-off doubling from `Backoff.first_seconds` to `Backoff.max_seconds`, until it launches or a newer head
of the branch supersedes it. Before a launchRun is sent, the record says so: when its answer is lost (a
read timeout, a dropped connection, this process killed), the webserver may still be creating the run,
so attempts only look it up until `Launcher.settle_seconds` after the launch's own timeout, and launch
again only if it never appeared. Nothing launches twice.

Against the commit sensor, a launched run carries the tags the sensor daemon's own run-key check looks for
(`dagster/run_key` and `dagster/sensor_name: commit_sensor`, see dagster/_daemon/sensor.py,
fetch_existing_runs), so the daemon skips its own request for a commit the webhook launched;
`fintech-release/launched-by: webhook` says who launched it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from fintech_release.dagster_graphql import (
    REQUEST_TIMEOUT,
    DagsterGraphQLError,
    answer_lost,
    find_runs,
    launch_run,
    session,
)
from fintech_release.triggers.ci_runs import PARTITION_TAG, CiRun
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release.triggers.webhook.store import DeliveryStore, Launch

log = logging.getLogger("fintech_release.webhook")

# The code location and repository of workspace.yaml (`Definitions` are served as "__repository__").
DEFAULT_LOCATION = "fintech_release"
DEFAULT_REPOSITORY = "__repository__"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
LAUNCHED_BY_TAG = "fintech-release/launched-by"
IDLE_SECONDS = 30.0  # a worker with nothing due looks again at least this often


class Launcher:
    """Looks up and launches a `CiRun`'s run on the Dagster webserver; DagsterGraphQLError when that fails.

    `settle_seconds`: how long after sending a launchRun whose answer was lost the run may still appear
    (the webserver may still be creating it); by default the launch's read timeout twice over.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        location_name: str = DEFAULT_LOCATION,
        repository_name: str = DEFAULT_REPOSITORY,
        lookup_timeout: tuple[float, float] = (3.05, 10.0),
        launch_timeout: tuple[float, float] = REQUEST_TIMEOUT,
        settle_seconds: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.location_name = location_name
        self.repository_name = repository_name
        self.lookup_timeout = lookup_timeout
        self.launch_timeout = launch_timeout
        self.settle_seconds = 2 * launch_timeout[1] if settle_seconds is None else settle_seconds

    def find(self, run: CiRun) -> str | None:
        """The id of a run of the job that already builds the commit, however it was launched."""
        with session() as http:
            existing = find_runs(
                http, self.endpoint, job_name=run.job_name, tags=run.identity_tags, limit=1,
                timeout=self.lookup_timeout,
            )
        return existing[0] if existing else None

    def launch(self, run: CiRun) -> str:
        """Launch the run (sent once); its id."""
        with session() as http:
            return launch_run(
                http,
                self.endpoint,
                location_name=self.location_name,
                repository_name=self.repository_name,
                job_name=run.job_name,
                tags=launch_tags(run),
                timeout=self.launch_timeout,
            )


def launch_tags(run: CiRun) -> dict[str, str]:
    """The tags a webhook-launched run carries: the CiRun's, its partition, and the commit sensor's run key."""
    tags = dict(run.tags)
    if run.partition_key is not None:
        tags[PARTITION_TAG] = run.partition_key
    tags[RUN_KEY_TAG] = run.run_key
    tags[SENSOR_NAME_TAG] = COMMIT_SENSOR
    tags[LAUNCHED_BY_TAG] = "webhook"
    return tags


class Backoff(BaseModel, frozen=True):
    """Seconds between the attempts of one launch: doubling from `first_seconds`, never above `max_seconds`."""

    first_seconds: float = Field(default=1.0, gt=0)
    max_seconds: float = Field(default=60.0, gt=0)

    def after(self, attempts: int) -> float:
        return min(self.max_seconds, self.first_seconds * 2 ** min(attempts - 1, 30))


class LaunchWorkers:
    """Threads launching the store's pending launches; `wake()` after recording, `stop()` at shutdown."""

    def __init__(
        self,
        store: DeliveryStore,
        launcher: Launcher,
        *,
        workers: int = 4,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.launcher = launcher
        self.backoff = backoff
        self._clock = clock
        self._count = workers
        self._threads: list[threading.Thread] = []
        self._busy: set[str] = set()  # run keys being launched: the lock per commit
        self._wakeup = threading.Condition()
        self._stopping = False

    def start(self) -> None:
        """Make every pending launch due (a restart tries at once) and start the threads."""
        pending = self.store.retry_now(self._clock())
        if pending:
            log.info("%d launch(es) pending from before; launching them now", pending)
        for index in range(self._count):
            thread = threading.Thread(target=self._work, name=f"webhook-launch-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    def stop(self, timeout: float) -> bool:
        """Stop taking launches; wait up to `timeout` seconds for those in flight. True when all threads ended.

        A launch still in flight afterwards stays pending in the store; the next start looks its run up first.
        """
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.stopped

    @property
    def stopped(self) -> bool:
        """True when no worker thread runs (before start, or after stop)."""
        return not any(thread.is_alive() for thread in self._threads)

    def _work(self) -> None:
        while (launch := self._take()) is not None:
            try:
                self._attempt(launch)
            except Exception:  # noqa: BLE001 - a store failure must not end the worker; the launch stays pending
                log.exception("launch %s (delivery %s): could not record the attempt", launch.run.run_key,
                              launch.delivery)
            finally:
                with self._wakeup:
                    self._busy.discard(launch.run.run_key)
                    self._wakeup.notify_all()

    def _take(self) -> Launch | None:
        """The next due launch, its run key held; None once stopping."""
        with self._wakeup:
            while not self._stopping:
                due = self.store.next_due(self._clock(), self._busy)
                if isinstance(due, Launch):
                    self._busy.add(due.run.run_key)
                    return due
                wait = IDLE_SECONDS if due is None else min(IDLE_SECONDS, max(0.0, due - self._clock()))
                self._wakeup.wait(wait)
        return None

    def _attempt(self, launch: Launch) -> None:
        run_key = launch.run.run_key
        launched = sent = False
        try:
            run_id = self.launcher.find(launch.run)
            if run_id is None:
                now = self._clock()
                if launch.unsure_until is not None and now < launch.unsure_until:
                    raise DagsterGraphQLError(
                        f"no run yet, and the launchRun sent earlier may still create it: looking it up for "
                        f"{launch.unsure_until - now:.0f} s more before launching again", transient=True,
                    )
                self.store.sending(launch.id, unsure_until=now + self.launcher.launch_timeout[1]
                                   + self.launcher.settle_seconds)
                sent = True
                run_id, launched = self.launcher.launch(launch.run), True
        except DagsterGraphQLError as error:
            delay = self.backoff.after(launch.attempts + 1)
            attempts = self.store.failed(
                launch.id, error=str(error), retry_at=self._clock() + delay,
                settled=sent and not answer_lost(error),  # the webserver answered this launchRun, or never got it
            )
            log.warning(
                "launch %s (delivery %s): attempt %d failed, next in %.0f s: %s",
                run_key, launch.delivery, attempts, delay, error,
            )
            return
        self.store.finished(launch.id, run_id=run_id, launched=launched, now=self._clock())
        log.info(
            "launch %s (delivery %s): %s run %s", run_key, launch.delivery,
            "launched" if launched else "already has", run_id,
        )
