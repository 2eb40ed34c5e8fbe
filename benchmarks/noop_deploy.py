"""A deployment that changes nothing: `fintech-release deploy staging` again, after the demo's services run there.

    .venv/bin/python -m benchmarks noop_deploy          (BENCH_REPEATS=5 by default)

Set-up (benchmarks/local_release.py): a `make demo` checkout of its own — registry, MariaDB, the JRE base image,
the three demo services built and pushed, staging approved and deployed once (2 replicas each, nginx, databases
migrated). Then the command a user types, `fintech-release deploy staging`, is run BENCH_REPEATS times in a fresh
process each (the interpreter started as the user's shell starts it; no webserver runs, so the run executes in the
CLI's process), after one unmeasured warm-up. Each must exit 0 and print `unchanged` for every service; from the
event log, the run's own duration (RUN_START → RUN_SUCCESS) and its step work (the sum of STEP_START →
STEP_SUCCESS of its four steps) are read beside the wall time.

Beside it, in the same run and from the same checkout, what any command built on Dagster pays before it does
anything of its own: a fresh process that only imports dagster; one that loads our Definitions (import + build from
release.yaml, the deploy job resolved); and one that opens the same instance and executes an empty one-op job
in-process (its execution also timed inside the process). That last one is the floor of any in-process command.
Medians are reported; the 1-minute load average is in the notes, since 2 shared cores make single runs noisy.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.harness import Figure
from benchmarks.local_release import LocalRelease, local_release

NAME = "noop_deploy"
ENVIRONMENT = "staging"
TARGET_SECONDS = 2.0
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))

EMPTY_JOB = """
import json, time
started = time.monotonic()
from dagster import DagsterInstance, job, op

@op
def nothing():
    pass

@job
def empty():
    nothing()

with DagsterInstance.get() as instance:
    opened = time.monotonic()
    result = empty.execute_in_process(instance=instance)
    executed = time.monotonic()
assert result.success
print(json.dumps({"import_and_open": opened - started, "execute": executed - opened}))
"""
LOAD_DEFINITIONS = """
from fintech_release.definitions import defs
defs.resolve_job_def("deploy_staging")
"""


def _wall(release: LocalRelease, argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds a fresh process running `argv` takes at the checkout's root, and what it printed."""
    started = time.monotonic()
    completed = subprocess.run(
        argv, cwd=release.root, env=release.process_env(), capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
    return elapsed, completed


def _run_times(release: LocalRelease, run_id: str) -> tuple[float, float, dict[str, float]]:
    """The run's duration, the sum of its steps' durations and each step's, from the event log."""
    from dagster import DagsterEventType

    from fintech_release.cli.instance import open_instance

    with release.environ(), open_instance() as instance:
        starts: dict[str, float] = {}
        steps: dict[str, float] = {}
        run_start = run_end = None
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type
            if kind is DagsterEventType.RUN_START:
                run_start = entry.timestamp
            elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
                run_end = entry.timestamp
            elif kind is DagsterEventType.STEP_START:
                starts[event.step_key] = entry.timestamp
            elif kind is DagsterEventType.STEP_SUCCESS:
                steps[event.step_key] = entry.timestamp - starts[event.step_key]
    if run_start is None or run_end is None:
        raise RuntimeError(f"run {run_id} has no start or end in the event log")
    return run_end - run_start, sum(steps.values()), steps


def _check_noop(completed: subprocess.CompletedProcess[str], services: list[str]) -> str:
    """The run id of a no-op deployment's output; RuntimeError unless every service says `unchanged`."""
    lines = completed.stdout.splitlines()
    for service in services:
        if not any(line.split()[:2] == [service, "unchanged"] for line in lines if line.strip()):
            raise RuntimeError(f"no-op deploy did not print `{service} unchanged`:\n{completed.stdout}")
    first = lines[0]  # "staging: deployed (run <id>)"
    return first.rsplit("(run ", 1)[1].rstrip(")")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float]) -> str:
    return f"min {min(values):.2f} s, max {max(values):.2f} s, n={len(values)}"


def run() -> list[Figure]:
    cli = [sys.executable, "-m", "fintech_release.cli", "deploy", ENVIRONMENT]
    with local_release("noop") as release:
        release.build_and_push_all()
        release.cli("approve", ENVIRONMENT, "--decision", "yes", "--approver", "bench@fintech-release.example",
                    "--reason", "benchmark")
        release.cli("deploy", ENVIRONMENT)
        services = release.config().service_names
        _check_noop(release.cli("deploy", ENVIRONMENT), services)  # warm-up: the first no-op after the deployment

        loads: list[float] = []
        walls: list[float] = []
        runs: list[float] = []
        steps: list[float] = []
        per_step: dict[str, list[float]] = {}
        imports: list[float] = []
        definitions: list[float] = []
        floors: list[float] = []
        empty_executions: list[float] = []
        for _ in range(REPEATS):
            # Interleaved, so that the machine's load falls on all of them alike.
            loads.append(os.getloadavg()[0])
            wall, completed = _wall(release, cli)
            run_id = _check_noop(completed, services)
            run_seconds, step_seconds, each = _run_times(release, run_id)
            walls.append(wall)
            runs.append(run_seconds)
            steps.append(step_seconds)
            for key, seconds in each.items():
                per_step.setdefault(key, []).append(seconds)
            imports.append(_wall(release, [sys.executable, "-c", "import dagster"])[0])
            definitions.append(_wall(release, [sys.executable, "-c", LOAD_DEFINITIONS])[0])
            floor, empty = _wall(release, [sys.executable, "-c", EMPTY_JOB])
            floors.append(floor)
            empty_executions.append(json.loads(empty.stdout.strip().splitlines()[-1])["execute"])

    load = f"load average (1 min) {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs"
    wall = _median(walls)
    floor = _median(floors)
    step_list = ", ".join(f"{key} {_median(values):.2f} s" for key, values in per_step.items())
    return [
        Figure(
            NAME, "deploy staging, nothing changed: CLI wall (fresh process, in-process run)", wall, "s",
            baseline="Dagster floor: fresh process, import dagster, open the instance, empty 1-op job in-process",
            baseline_value=floor, target=f"< {TARGET_SECONDS:g} s (or the reason it cannot be)",
            met=wall < TARGET_SECONDS, note=f"{_spread(walls)}; {load}; every run printed `unchanged` per service",
        ),
        Figure(
            NAME, "the run inside the CLI (RUN_START → RUN_SUCCESS)", _median(runs), "s",
            note=_spread(runs),
        ),
        Figure(
            NAME, "its step work (sum of the 4 steps' STEP_START → STEP_SUCCESS)", _median(steps), "s",
            note=f"{_spread(steps)}; medians per step: {step_list}",
        ),
        Figure(NAME, "python -c 'import dagster' (fresh process)", _median(imports), "s", note=_spread(imports)),
        Figure(
            NAME, "load our Definitions from release.yaml (fresh process)", _median(definitions), "s",
            baseline="import dagster", baseline_value=_median(imports), note=_spread(definitions),
        ),
        Figure(
            NAME, "empty 1-op job execute_in_process on the same instance (in a process that has it open)",
            _median(empty_executions), "s", note=_spread(empty_executions),
        ),
    ]
