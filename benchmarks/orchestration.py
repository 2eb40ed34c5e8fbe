"""The demo release, commit → pushed image → ci deployed and healthy: fintech-release against a plain shell script.

    .venv/bin/python -m benchmarks orchestration        (BENCH_REPEATS=2 measured pairs by default)

Set-up (benchmarks/local_release.py): a `make demo` checkout of its own — registry, MariaDB, the JRE base image, the
demo's three services seeded as bare git repositories (release.yaml as the repository has it: contact-us and payments
2 replicas, accounts 1; ci's health window 3 s).

Each pass pushes a new commit to every service and then releases it to ci, either

* **orchestrated**: a fresh process doing what `fintech-release demo` does for ci — `build_and_push_all` (observe the
  heads, run build_and_push for every service) then the deploy_ci run, in-process as `make demo` runs them; or
* **script**: benchmarks/pipeline.sh, the same tools one after another as the original Jenkins pipeline ran them
  (what each of our steps runs, read from the resources; see the script's header).

Same starting state for both: ci torn down (ours by `fintech-release teardown ci`, the script's containers, nginx,
databases and accounts removed), fresh clones (no Gradle build directories), the Docker layer cache as the previous
pass left it (only the jar layer is new), and **warm Gradle daemons**: one unmeasured warm-up pass of each side
first starts the daemons that side uses (both share one GRADLE_USER_HOME) and records the base image. Then the
measured passes alternate which side goes first. Per-step figures put each of our steps (STEP_START → STEP_SUCCESS in
the event log, summed over the services) beside the same tool's time in the script (from its stage log); the build
and deploy phases, Dagster's own time (each run's wall minus its steps) and the orchestrating process outside its
runs are figures of their own.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.harness import Figure
from benchmarks.local_release import (
    ADDRESSES,
    EXAMPLES_DIR,
    IMAGE_NAMESPACE,
    REPO_ROOT,
    SCOPE,
    LocalRelease,
    local_release,
)

NAME = "orchestration"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
TARGET_RATIO = 0.8
SCRIPT = REPO_ROOT / "benchmarks" / "pipeline.sh"
SCRIPT_SCOPE = f"{SCOPE}-script"
# Our step of each kind, and the script's stages that run the same tools.
STEPS = {
    "analysis": ("build__analysis", ("clone", "analysis")),
    "tests": ("build__tests", ("tests",)),
    "jar": ("build__jar", ("jar",)),
    "image": ("build__image", ("image",)),
    "push": ("registry__image", ("push",)),
    "databases": ("ci__database", ("database",)),
    "ingress": ("ci__ingress", ("ingress", "routes")),
    "replicas + health": ("ci_releases", ("replicas", "health")),
}
ORCHESTRATED = """
import json, sys
from pathlib import Path
from fintech_release.cli import launch
from fintech_release.cli.demo import build_and_push_all
from fintech_release.cli.instance import open_instance
from fintech_release.config import load_release_config
from fintech_release.release_graph import build_definitions

config = load_release_config()
defs = build_definitions(config)
with open_instance() as instance:
    build_and_push_all(config, defs, instance, Path(sys.argv[1]))
    result = launch.deploy(config, defs, instance, "ci")
print(json.dumps({"success": result.success, "run_id": result.run_id}))
"""


def _new_commits(release: LocalRelease, number: int) -> None:
    """One new commit on every service's master, as a developer pushes it."""
    config = release.config()
    for service in config.services:
        with tempfile.TemporaryDirectory(prefix="fr-bench-commit-") as scratch:
            clone = Path(scratch) / "clone"
            env = {**os.environ, "GIT_AUTHOR_NAME": "Demo Developer", "GIT_AUTHOR_EMAIL": "dev@fintech-release.example",
                   "GIT_COMMITTER_NAME": "Demo Developer", "GIT_COMMITTER_EMAIL": "dev@fintech-release.example"}
            subprocess.run(["git", "clone", "-q", str(config.resolve_path(service.repository)), str(clone)],
                           check=True, env=env)
            with (clone / "CHANGES.md").open("a") as changes:
                changes.write(f"benchmark change {number}\n")
            subprocess.run(["git", "-C", str(clone), "add", "CHANGES.md"], check=True, env=env)
            subprocess.run(
                ["git", "-C", str(clone), "commit", "-qm", f"benchmark change {number}"], check=True, env=env
            )
            subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", service.branch], check=True, env=env)


def _orchestrated(release: LocalRelease) -> dict:
    """One orchestrated pass: its wall time, and each run's wall and step durations from the event log."""
    config = release.config()
    shutil.rmtree(config.resolve_path(config.build.workspace), ignore_errors=True)  # fresh clones, no build dirs
    since = time.time()
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", ORCHESTRATED, str(EXAMPLES_DIR)], cwd=release.root, env=release.process_env(),
        capture_output=True, text=True, timeout=1800, check=False,
    )
    wall = time.monotonic() - started
    outcome = json.loads(completed.stdout.strip().splitlines()[-1]) if completed.returncode == 0 else {}
    if not outcome.get("success"):
        raise RuntimeError(f"the orchestrated release failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    steps, runs = _runs_since(release, since)
    release.cli("teardown", "ci", "--in-process")
    return {"wall": wall, "steps": steps, "runs": runs}


def _runs_since(release: LocalRelease, since: float) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Summed step durations by step key, and each run's (start, end), of the runs created after `since`."""
    from dagster import DagsterEventType, RunsFilter

    from fintech_release.cli.instance import open_instance

    steps: dict[str, float] = defaultdict(float)
    runs: dict[str, tuple[float, float]] = {}
    with release.environ(), open_instance() as instance:
        for record in instance.get_run_records(RunsFilter(created_after=_utc(since))):
            starts: dict[str, float] = {}
            first = last = None
            for entry in instance.all_logs(record.dagster_run.run_id):
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type is DagsterEventType.RUN_START:
                    first = entry.timestamp
                elif event.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
                    last = entry.timestamp
                elif event.event_type is DagsterEventType.STEP_START:
                    starts[event.step_key] = entry.timestamp
                elif event.event_type is DagsterEventType.STEP_SUCCESS:
                    steps[event.step_key] += entry.timestamp - starts[event.step_key]
            if first is not None and last is not None:
                key = f"{record.dagster_run.job_name}[{record.dagster_run.tags.get('dagster/partition', '')}]"
                runs[key] = (first, last)
    return dict(steps), runs


def _utc(timestamp: float):  # noqa: ANN202 - a datetime
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def _script(release: LocalRelease, number: int) -> dict:
    """One pass of pipeline.sh: its wall time and each stage's duration (summed over services) from its stage log."""
    config = release.config()
    work = Path(tempfile.mkdtemp(prefix="fr-bench-script-", dir="/tmp"))
    database = config.local.database
    env = release.process_env({
        "WORK": str(work), "REGISTRY": release.registry_host, "REGISTRY_PATH": "bench-orch/script",
        "IMAGE_NAMESPACE": f"{IMAGE_NAMESPACE}/script", "BASE_IMAGE": config.build.base_image,
        "CHECKSTYLE_CONFIG": str(REPO_ROOT / "fintech_release" / "resources" / "checkstyle.xml"),
        "DB_HOST": database.host, "DB_PORT": str(database.port), "DB_ADMIN": database.user,
        "DB_PASSWORD": release.env["FINTECH_RELEASE_DB_PASSWORD"], "ADDRESS": ADDRESSES["ci"],
        "INGRESS_PORT": str(config.environment("ci").ingress_port),
        "HEALTH_WINDOW": str(round(config.environment("ci").health_window_seconds)),
        "SCOPE": SCRIPT_SCOPE, "BUILD": f"s{number}",
    })
    services = [
        f"{s.name}={config.resolve_path(s.repository)}={s.database}={s.deployment_in('ci').replicas}"
        for s in config.services
    ]
    try:
        started = time.monotonic()
        completed = subprocess.run(["bash", str(SCRIPT), *services], env=env, capture_output=True, text=True,
                                   timeout=1800, check=False)
        wall = time.monotonic() - started
        if completed.returncode != 0:
            raise RuntimeError(f"pipeline.sh failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
        stages: dict[str, float] = defaultdict(float)
        lines = [line.split() for line in (work / "stages.log").read_text().splitlines()]
        for (at, _, stage), (next_at, _, _) in itertools.pairwise(lines):
            stages[stage] += float(next_at) - float(at)
        return {"wall": wall, "stages": dict(stages)}
    finally:
        _remove_script_leftovers(release, work)


def _remove_script_leftovers(release: LocalRelease, work: Path) -> None:
    """What pipeline.sh leaves in ci: its containers, its nginx, its databases and accounts, its folder."""
    import docker
    import pymysql

    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    try:
        scoped = {"label": f"io.fintech-release.scope={SCRIPT_SCOPE}"}
        for container in client.containers.list(all=True, filters=scoped):
            container.remove(force=True)
    finally:
        client.close()
    pid_file = work / "nginx" / "nginx.pid"
    if pid_file.exists():
        subprocess.run(["nginx", "-s", "quit", "-c", str(work / "nginx" / "nginx.conf")], capture_output=True,
                       check=False)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    database = release.config().local.database
    connection = pymysql.connect(host=database.host, port=database.port, user=database.user,
                                 password=release.env["FINTECH_RELEASE_DB_PASSWORD"], ssl_disabled=True)
    try:
        with connection.cursor() as cursor:
            for service in release.config().services:
                db = f"ci_{service.database}"
                cursor.execute(f"DROP DATABASE IF EXISTS `{db}`")
                for role in ("mig", "app"):
                    cursor.execute(f"DROP USER IF EXISTS '{db}_{role}'@'127.0.0.1'")
    finally:
        connection.close()
    shutil.rmtree(work, ignore_errors=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def run() -> list[Figure]:
    from fintech_release.cli.demo import seed_repository

    orchestrated: list[dict] = []
    scripted: list[dict] = []
    loads: list[float] = []
    with local_release("orch") as release:
        config = release.config()
        for service in config.services:
            seed_repository(EXAMPLES_DIR / service.name, config.resolve_path(service.repository), branch=service.branch)
        for number in range(REPEATS + 1):
            sides = [("script", _script), ("orchestrated", _orchestrated)]
            for side, measure in sides if number % 2 == 0 else reversed(sides):
                _new_commits(release, number * 2 + (side == "script"))
                loads.append(os.getloadavg()[0])
                result = measure(release, number) if side == "script" else measure(release)
                if number > 0:  # pass 0 warms the Gradle daemons of each side up and records the base image
                    (scripted if side == "script" else orchestrated).append(result)

    ours = _median([result["wall"] for result in orchestrated])
    script = _median([result["wall"] for result in scripted])
    load = f"load average (1 min) {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} CPUs"
    figures = [
        Figure(
            NAME, "demo release to ci (3 services): fintech-release, wall", ours, "s",
            baseline="the same tools one after another in a shell script (benchmarks/pipeline.sh)",
            baseline_value=script, target=f"≤ {TARGET_RATIO} × script", met=ours <= TARGET_RATIO * script,
            note=f"ratio {ours / script:.2f}; passes: ours {[round(r['wall'], 1) for r in orchestrated]}, script "
            f"{[round(r['wall'], 1) for r in scripted]}; warm Gradle daemons; {load}",
        ),
    ]
    for kind, (step_key, stages) in STEPS.items():
        step = _median([result["steps"].get(step_key, 0.0) for result in orchestrated])
        tool = _median([sum(result["stages"].get(stage, 0.0) for stage in stages) for result in scripted])
        figures.append(Figure(
            NAME, f"step {kind}: our step (summed over services)", step, "s",
            baseline="the script's " + " + ".join(stages), baseline_value=tool,
        ))
    dagster_own = _median([
        sum(end - start for start, end in result["runs"].values()) - sum(result["steps"].values())
        for result in orchestrated
    ])
    builds = _median([_span([r for key, r in result["runs"].items() if key.startswith("build_and_push")])
                      for result in orchestrated])
    deploy = _median([_span([r for key, r in result["runs"].items() if key.startswith("deploy_ci")])
                      for result in orchestrated])
    outside = _median([result["wall"] - _span(list(result["runs"].values())) for result in orchestrated])
    figures += [
        Figure(NAME, "phase: the 3 build_and_push runs (first start → last end)", builds, "s",
               baseline="the script's clone … push, all services",
               baseline_value=_median([sum(r["stages"].get(stage, 0.0) for stage in BUILD_STAGES) for r in scripted])),
        Figure(NAME, "phase: the deploy_ci run (RUN_START → RUN_SUCCESS)", deploy, "s",
               baseline="the script's ingress … health",
               baseline_value=_median([sum(r["stages"].get(stage, 0.0) for stage in DEPLOY_STAGES) for r in scripted])),
        Figure(NAME, "Dagster's own time inside the runs (each run's wall − its steps, summed)", dagster_own, "s",
               note="run start/end, step and materialization events, pool slots"),
        Figure(NAME, "the orchestrating process outside its runs (start-up, imports, observe, run creation, "
               "build processes starting)", outside, "s"),
    ]
    return figures


BUILD_STAGES = ("clone", "analysis", "tests", "jar", "image", "push")
DEPLOY_STAGES = ("ingress", "database", "replicas", "routes", "health")


def _span(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of `intervals` was going (their union's length)."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total
