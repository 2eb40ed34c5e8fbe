"""Commit-sensor figures (issue #15, item 2): one tick over 200 repositories, and push-to-run latency.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks commit_sensor

Everything runs for real in a temporary directory that is removed at the end (also on Ctrl-C or a failure):

* 200 bare git repositories (one commit each, made with the suite's GitBareRepo) and a release.yaml with 200
  services, each on its own repository;
* ticks of the real `commit_sensor`, evaluated as the daemon's code server does (only the resources the sensor
  needs, the repository definition, a persistent instance, the cursor carried from tick to tick): the first
  tick (it reads and records 200 heads), a quiet tick and a tick that finds one new commit;
* the baseline, what a cron script would pay: `git ls-remote` of the 200 repositories one after another in a
  shell loop;
* a real `dagster dev` (run queue at 0: requested runs stay QUEUED and build nothing) with the sensor polling at
  the smallest interval release.yaml allows (5 s): the daemon's own tick durations, and from a push to its run
  being requested;
* then the sensor is stopped and the same is measured through the real webhook endpoint: a signed Bitbucket
  Cloud push delivered to it until its run exists on the instance.

The default poll interval (60 s) is not waited for: its latency is computed from the measured daemon tick,
and the note says so.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml
from dagster import DagsterInstance, RunsFilter, build_sensor_context

from benchmarks.harness import Figure, environment, expect, stopwatch, wait_for
from fintech_release.cli.instance import INSTANCE_SETTINGS
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.config.models import SourceSettings
from fintech_release.records.keys import COMMIT_TAG
from fintech_release.release_graph import build_definitions
from fintech_release.triggers.commit_sensor import COMMIT_SENSOR
from fintech_release.triggers.webhook import WebhookEndpoint
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.fixtures_dagster import start_dagster_dev
from fintech_release_tests.fixtures_webhook import CLOSED_PORT_URL, SECRET, SECRET_ENV, cloud_push, commit, deliver

NAME = "commit_sensor"
AUTHOR = "ada@bank.example"
SERVICES = 200
REPEATS = 5  # ticks (and baseline loops) per case; the median is reported
LATENCY_SAMPLES = 5  # pushes through the daemon, and deliveries through the webhook
TARGET_SECONDS = 2.0
FAST_POLL_SECONDS = 5  # the smallest source_control.poll_interval_seconds release.yaml accepts
DEFAULT_POLL_SECONDS = SourceSettings().poll_interval_seconds
DAEMON_LOOP_SECONDS = 5  # dagster/_daemon/sensor.py MIN_INTERVAL_LOOP_TIME: the daemon looks at sensors this often
# Requested runs stay QUEUED: the run queue launches none, so nothing is built.
QUEUED_ONLY = INSTANCE_SETTINGS.replace("  runs:\n", "  runs:\n    max_concurrent_runs: 0\n", 1)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-commit-sensor-") as folder:
        work = Path(folder)
        print(f"creating {SERVICES} bare repositories …", flush=True)
        repos = [
            GitBareRepo.create(work / "git", None, author_name="Ada", author_email=AUTHOR,
                               message="Start", name=service_name(index))
            for index in range(SERVICES)
        ]
        config = write_local_config(work / "default", repos)
        ticks = measure_ticks(config, repos, work / "tick-home")
        loop = measure_ls_remote(repos)
        print(f"starting dagster dev with the sensor polling every {FAST_POLL_SECONDS} s …", flush=True)
        daemon = measure_through_dagster_dev(write_local_config(work / "fast", repos, FAST_POLL_SECONDS), repos, work)
    return figures(ticks, loop, daemon)


def service_name(index: int) -> str:
    return f"svc-{index:03d}"


def write_local_config(folder: Path, repos: list[GitBareRepo], poll_seconds: int | None = None) -> ReleaseConfig:
    """release.yaml: one service per repository (the local platform), feature/* watched, one ephemeral ci."""
    folder.mkdir(parents=True)
    source: dict[str, Any] = {"branch_patterns": ["feature/*"]}
    if poll_seconds is not None:
        source["poll_interval_seconds"] = poll_seconds
    document = {
        "build": {"workspace": str(folder / "workspaces")},
        "local": {"scope": "fintech-release-bench-sensor", "state_dir": str(folder / "state")},
        "source_control": source,
        "services": [
            {"name": service_name(index), "repository": str(repo.bare_path), "port": 20000 + index}
            for index, repo in enumerate(repos)
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    (folder / "release.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(folder / "release.yaml")


# --------------------------------------------------------------------------- #
# One tick, in process
# --------------------------------------------------------------------------- #


def measure_ticks(config: ReleaseConfig, repos: list[GitBareRepo], home: Path) -> dict[str, list[float]]:
    """Seconds per tick: the first (empty cursor), quiet ones, and ones that find one new commit."""
    defs = build_definitions(config)
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def(COMMIT_SENSOR)
    # What the code server builds for a sensor evaluation: the resources it needs, nothing else.
    resources = {key: defs.resources[key] for key in sensor.required_resource_keys}
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_SETTINGS)
    times: dict[str, list[float]] = {"first": [], "quiet": [], "one": []}
    with DagsterInstance.from_config(str(home)) as instance:

        def tick(cursor: str | None) -> tuple[float, Any]:
            context = build_sensor_context(
                instance=instance, cursor=cursor, repository_def=repository, resources=resources
            )
            with stopwatch() as elapsed:
                result = sensor.evaluate_tick(context)
            return elapsed(), result

        print(f"timing ticks over {SERVICES} repositories …", flush=True)
        cursor = None
        for _ in range(REPEATS):
            seconds, result = tick(None)
            expect(not result.run_requests and len(result.asset_events) == SERVICES, "the first tick records heads")
            times["first"].append(seconds)
            cursor = result.cursor
        for _ in range(REPEATS):
            seconds, result = tick(cursor)
            expect(not result.run_requests, "a quiet tick requests nothing")
            times["quiet"].append(seconds)
            cursor = result.cursor
        for index in range(REPEATS):
            sha = repos[index].commit({"CHANGES.md": f"tick {index}\n"}, f"Tick {index}", author_email=AUTHOR)
            seconds, result = tick(cursor)
            expect([request.tags[COMMIT_TAG] for request in result.run_requests] == [sha], "one commit, one run")
            times["one"].append(seconds)
            cursor = result.cursor
    return times


def measure_ls_remote(repos: list[GitBareRepo]) -> list[float]:
    """Seconds per `git ls-remote` of every repository, one after another in a shell loop."""
    script = 'for repository in "$@"; do git ls-remote "$repository" > /dev/null || exit 1; done'
    times = []
    for _ in range(REPEATS):
        with stopwatch() as elapsed:
            subprocess.run(["sh", "-c", script, "sh", *[str(repo.bare_path) for repo in repos]], check=True)
        times.append(elapsed())
    return times


# --------------------------------------------------------------------------- #
# Through a real daemon, and through the webhook
# --------------------------------------------------------------------------- #


def measure_through_dagster_dev(config: ReleaseConfig, repos: list[GitBareRepo], work: Path) -> dict[str, Any]:
    """Daemon tick durations and push-to-run seconds with the sensor polling; then through the webhook."""
    home = work / "dev-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(QUEUED_ONLY)
    with stopwatch() as started:
        dev = start_dagster_dev(config.source, home, work / "dagster-dev.log", timeout=300)
    print(f"dagster dev serves {dev.url} after {started():.0f} s", flush=True)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            state = wait_for(lambda: sensor_state(instance), 120, "the commit sensor's first tick", dev.log_path)
            wait_for(lambda: finished_ticks(instance, state), 120, "the commit sensor's first tick", dev.log_path)
            first_tick = finished_ticks(instance, state)[-1]  # oldest: the baseline tick
            sensor_latency = []
            for index in range(LATENCY_SAMPLES):
                # Push at a different moment of the poll interval each time.
                time.sleep(FAST_POLL_SECONDS * index / LATENCY_SAMPLES)
                repo = repos[SERVICES - 1 - index]
                sha = repo.commit({"CHANGES.md": f"push {index}\n"}, f"Push {index}", author_email=AUTHOR)
                pushed = time.time()
                created = wait_for(lambda sha=sha: run_created(instance, sha), 120, f"the run of {sha[:12]}",
                                   dev.log_path)
                sensor_latency.append(created - pushed)
                print(f"  push {index + 1}: run requested after {created - pushed:.2f} s", flush=True)
            daemon_ticks = [
                tick.end_timestamp - tick.timestamp
                for tick in finished_ticks(instance, state)
                if tick.timestamp > first_tick.timestamp
            ]
            stop_sensor(dev.url, state.instigator_origin_id, state.selector_id)
            webhook_latency = measure_webhook(work / "webhook", f"{dev.url}/graphql", instance)
    finally:
        dev.stop()
    return {
        "load_seconds": started(),
        "first_tick": first_tick.end_timestamp - first_tick.timestamp,
        "daemon_ticks": daemon_ticks,
        "sensor_latency": sensor_latency,
        "webhook_latency": webhook_latency,
    }


def measure_webhook(folder: Path, graphql_url: str, instance: DagsterInstance) -> list[float]:
    """Seconds from sending a signed push of a new commit to the real endpoint until its run exists."""
    with environment(**{SECRET_ENV: SECRET}):  # the webhook's secret while the endpoint runs
        endpoint = WebhookEndpoint(write_bitbucket_config(folder, graphql_url), port=0)
        endpoint.start()
        try:
            times = []
            for index in range(LATENCY_SAMPLES):
                sha = commit(7000 + index)
                body = cloud_push(f"acme/{service_name(index)}", "master", sha=sha)
                sent = time.time()
                response = deliver(endpoint.url, body)
                expect(response.status_code == 202, f"the webhook accepts the push: HTTP {response.status_code}")
                created = wait_for(lambda sha=sha: run_created(instance, sha), 120, f"the webhook's run of {sha[:12]}")
                times.append(created - sent)
                print(f"  delivery {index + 1}: run launched after {created - sent:.2f} s", flush=True)
            return times
        finally:
            endpoint.stop()


def write_bitbucket_config(folder: Path, graphql_url: str) -> ReleaseConfig:
    """release.yaml for the webhook: the same 200 services, as repositories of the Bitbucket Cloud workspace acme.

    The Dagster it launches on loaded the local release.yaml: the same service names, so the same jobs and
    partitions; only the source platform differs, which the launch does not read.
    """
    folder.mkdir(parents=True)
    document = {
        "source_control": {
            "platform": "bitbucket", "branch_patterns": ["feature/*"],
            "bitbucket": {"flavor": "cloud", "owner": "acme", "base_url": CLOSED_PORT_URL},
        },
        "webhook": {"secret_env": SECRET_ENV, "dagster_graphql_url": graphql_url, "state_dir": str(folder / "state")},
        "services": [
            {"name": service_name(index), "repository": service_name(index), "port": 20000 + index}
            for index in range(SERVICES)
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    (folder / "release.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(folder / "release.yaml")


def sensor_state(instance: DagsterInstance) -> Any:
    """The commit sensor's stored state (once the daemon has looked at it), else None."""
    states = instance.all_instigator_state()
    return next((state for state in states if state.instigator_name == COMMIT_SENSOR), None)


def finished_ticks(instance: DagsterInstance, state: Any) -> list[Any]:
    """The sensor's finished ticks, newest first."""
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000)
    return [tick for tick in ticks if tick.end_timestamp is not None]


def run_created(instance: DagsterInstance, sha: str) -> float | None:
    """When the run building `sha` was created (epoch seconds), or None while there is none."""
    records = instance.get_run_records(RunsFilter(tags={COMMIT_TAG: sha}), limit=1)
    return records[0].create_timestamp.timestamp() if records else None


STOP_SENSOR = """
mutation Stop($origin: String, $selector: String) {
  stopSensor(jobOriginId: $origin, jobSelectorId: $selector) { __typename }
}
"""


def stop_sensor(url: str, origin_id: str, selector_id: str) -> None:
    """Stop the commit sensor through the webserver, as the UI's switch does."""
    with requests.Session() as http:
        http.trust_env = False
        answer = http.post(f"{url}/graphql", json={
            "query": STOP_SENSOR, "variables": {"origin": origin_id, "selector": selector_id},
        }, timeout=30).json()
    kind = ((answer.get("data") or {}).get("stopSensor") or {}).get("__typename")
    expect(kind == "StopSensorMutationResult", f"the commit sensor stops: {answer}")


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #


def figures(ticks: dict[str, list[float]], loop: list[float], daemon: dict[str, Any]) -> list[Figure]:
    median = statistics.median
    baseline = f"git ls-remote × {SERVICES}, shell loop (median of {REPEATS})"
    loop_value = median(loop)

    def tick_figure(case: str, samples: list[float], note: str) -> Figure:
        value = median(samples)
        return Figure(
            NAME, case, value, "s", baseline=baseline, baseline_value=loop_value, target=f"< {TARGET_SECONDS:g} s",
            met=value < TARGET_SECONDS, note=f"{note}; median of {len(samples)}, max {max(samples):.2f} s",
        )

    daemon_tick = median(daemon["daemon_ticks"]) if daemon["daemon_ticks"] else float("nan")
    sensor_latency = median(daemon["sensor_latency"])
    worst_default = DEFAULT_POLL_SECONDS + DAEMON_LOOP_SECONDS + daemon_tick
    return [
        tick_figure(f"first tick, {SERVICES} repos (records heads)", ticks["first"],
                    "build_sensor_context with the instance, repository and the sensor's resources, as the code "
                    f"server evaluates it; lists and records {SERVICES} heads, requests nothing"),
        tick_figure("quiet tick (no new commit)", ticks["quiet"], "the cursor of the tick before"),
        tick_figure("tick with one new commit", ticks["one"], "one repository moved: one run request, its head read"),
        Figure(
            NAME, f"daemon first tick (records {SERVICES} heads)", daemon["first_tick"], "s", baseline=baseline,
            baseline_value=loop_value, target=f"< {TARGET_SECONDS:g} s", met=daemon["first_tick"] < TARGET_SECONDS,
            note="tick start to end as dagster dev's daemon records it; once per repository (an empty cursor or a "
            f"service added): the daemon stores the {SERVICES} source/commit materializations the tick returns one "
            f"by one (instance.report_runless_asset_event, SQLite here); one sample. The code location with "
            f"{SERVICES} services loaded in {daemon['load_seconds']:.0f} s",
        ),
        Figure(
            NAME, "daemon tick (dagster dev)", daemon_tick, "s", baseline=baseline, baseline_value=loop_value,
            target=f"< {TARGET_SECONDS:g} s", met=daemon_tick < TARGET_SECONDS,
            note=f"tick start to end as the daemon records it (gRPC to the code server, cursor and tick stored); "
            f"median of the {len(daemon['daemon_ticks'])} ticks after the first (quiet ones and ones with a push)",
        ),
        Figure(
            NAME, f"push → run requested, sensor polling every {FAST_POLL_SECONDS} s", sensor_latency, "s",
            note=f"measured through dagster dev: push done to run created; median of {LATENCY_SAMPLES} pushes at "
            f"spread moments of the interval, max {max(daemon['sensor_latency']):.2f} s",
        ),
        Figure(
            NAME, f"push → run requested, sensor at the default {DEFAULT_POLL_SECONDS} s (worst case)", worst_default,
            "s", baseline="cron each minute running the ls-remote loop (worst case)",
            baseline_value=60 + loop_value,
            note=f"computed, not waited for: poll interval {DEFAULT_POLL_SECONDS} s + the daemon's "
            f"{DAEMON_LOOP_SECONDS} s loop + the median daemon tick; on average half the interval and loop plus "
            f"the tick "
            f"({(DEFAULT_POLL_SECONDS + DAEMON_LOOP_SECONDS) / 2 + daemon_tick:.1f} s)",
        ),
        Figure(
            NAME, "push → run launched, webhook", median(daemon["webhook_latency"]), "s",
            baseline=f"sensor polling every {FAST_POLL_SECONDS} s (above)", baseline_value=sensor_latency,
            note=f"a signed Bitbucket Cloud push POSTed to the real endpoint until its run exists on the instance "
            f"(launched through the webserver's GraphQL; the commit sensor stopped meanwhile); median of "
            f"{LATENCY_SAMPLES}, max {max(daemon['webhook_latency']):.2f} s",
        ),
    ]
