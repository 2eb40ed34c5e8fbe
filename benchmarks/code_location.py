"""Code location figures: what `dagster dev` pays to load fintech-release for 10, 200 and 1,000 services.

    .venv/bin/python -m benchmarks code_location

Writes synthetic release.yaml files (the repository's own three environments; services whose git repositories
do not exist, which `fintech-release check` accepts) into a temporary directory and, for each, loads the code
location in a fresh Python process the way Dagster's gRPC code server does for `dagster dev`:

- import: `fintech_release.release_graph` and `fintech_release.config` (what fintech_release/definitions.py imports);
- definitions: `LoadedRepositories` on the module `fintech_release.definitions` (release.yaml read and validated,
  `build_definitions`, the repository built and `load_all_definitions()`), as `dagster api grpc` does at start-up;
- snapshot: what the webserver then asks the code server for, serialized: `RepositorySnap.from_def(...,
  defer_snapshots=True)` and one `JobDataSnap.from_job_def(job, include_parent_snapshot=True)` per job.

The baseline is a fresh process that imports only Dagster (with the code server's own modules, among them
`dagster._utils.test.definitions`, which it imports to look for lazy definitions), measured in the same rounds: the
figures are what fintech-release adds on top of it. Time is wall clock and CPU time (user + system: on a shared
machine, the figure the other work does not move); memory is the process's peak RSS (`ru_maxrss`). Modules are
compiled once by a warm-up run into a bytecode cache of the run's own (PYTHONPYCACHEPREFIX), as pip's compiled
install in the image has them. Each case runs REPEATS times in interleaved rounds (baseline, 10, 200, 1,000, then
again) and the median is reported. See benchmarks/README.md (code_location) for the figures and how to read them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = "code_location"
SIZES = (10, 200, 1000)
REPEATS = 3
TARGET_SIZE = 200
TARGET_SECONDS = 2.0
TARGET_MIB = 300.0
PHASES = ("import", "definitions", "snapshot")


def release_yaml(services: int) -> str:
    """A release.yaml with `services` services and the repository's own environments (ci, staging, production).

    Every service has a database and an owner; every other one a production override, as payments has. Their git
    repositories do not exist: the file is valid (`fintech-release check`) but nothing in it can build.
    """
    lines = [
        "# Synthetic: written by benchmarks/code_location.py",
        "build: {workspace: work/workspaces}",
        "local: {state_dir: work/state}",
        "owners: [team:release]",
        "services:",
    ]
    for number in range(1, services + 1):
        name = f"svc-{number:04d}"
        lines += [
            f"  - name: {name}",
            f"    repository: git/{name}.git",
            f"    port: {10000 + number}",
            f"    database: svc_{number:04d}",
            f"    owners: [team:team-{number % 25}]",
            "    deployment:",
            "      replicas: 2",
        ]
        if number % 2 == 0:
            lines.append("      environments: {production: {replicas: 3}}")
    lines += [
        "environments:",
        "  - {name: ci, ephemeral: true, deploy_after_build: true, health_window_seconds: 3}",
        "  - {name: staging, approval: {required: true}, health_window_seconds: 5}",
        "  - name: production",
        "    promotes_from: staging",
        "    approval: {required: true, four_eyes: true}",
        "    health_window_seconds: 5",
    ]
    return "\n".join(lines) + "\n"


def _child(mode: str) -> None:
    """In the fresh process: import Dagster, then (mode `load`) load the code location; print the figures as JSON."""
    import resource

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    figures: dict[str, Any] = {}
    started = time.perf_counter()
    import dagster
    import dagster._utils.test.definitions  # noqa: F401 - the code server imports it to look for lazy definitions
    from dagster._core.remote_representation.external_data import JobDataSnap, RepositorySnap
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._grpc.server import LoadedRepositories
    from dagster._serdes import serialize_value

    figures["dagster"] = {"seconds": time.perf_counter() - started, "cpu": cpu_seconds(), "peak_mib": peak_mib()}
    if mode == "load":
        mark, cpu = time.perf_counter(), cpu_seconds()

        def phase(name: str) -> None:
            nonlocal mark, cpu
            now, cpu_now = time.perf_counter(), cpu_seconds()
            figures[name] = {"seconds": now - mark, "cpu": cpu_now - cpu, "peak_mib": peak_mib()}
            mark, cpu = now, cpu_now

        import fintech_release.config
        import fintech_release.release_graph  # noqa: F401 - what fintech_release/definitions.py imports

        phase("import")
        loaded = LoadedRepositories(
            LoadableTargetOrigin(
                executable_path=sys.executable, module_name="fintech_release.definitions", working_directory=str(ROOT)
            ),
            container_image=None,
            entry_point=[sys.executable, "-m", "dagster"],
            container_context=None,
        )
        (repository,) = loaded.definitions_by_name.values()
        phase("definitions")
        size = len(serialize_value(RepositorySnap.from_def(repository, defer_snapshots=True)))
        jobs = repository.get_all_jobs()
        size += sum(len(serialize_value(JobDataSnap.from_job_def(job, include_parent_snapshot=True))) for job in jobs)
        phase("snapshot")
        figures["counts"] = {
            "assets": len(repository.asset_graph.get_all_asset_keys()),
            "checks": len(repository.asset_graph.asset_check_keys),
            "jobs": len(jobs),
            "sensors": len(repository.sensor_defs),
            "snapshot_mib": size / 2**20,
        }
    print(json.dumps(figures))


def _measure(mode: str, config: Path | None, bytecode: Path) -> dict[str, Any]:
    """One fresh process of `_child(mode)`, with release.yaml at `config` and compiled modules cached in `bytecode`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("FINTECH_RELEASE_CONFIG", None)
    # Bytecode is cached, as in the image (pip compiles at install) and a developer's venv; outside the work tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    if config is not None:
        env["FINTECH_RELEASE_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-c", f"from benchmarks.code_location import _child; _child({mode!r})"],
        cwd=config.parent if config is not None else ROOT, env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} ({config}) failed with exit code {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check(config: Path) -> None:
    """`fintech-release check` accepts the synthetic file (it builds the same definitions, so it must)."""
    done = subprocess.run(
        [sys.executable, "-m", "fintech_release.cli", "check"], cwd=config.parent, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FINTECH_RELEASE_CONFIG": str(config)}, timeout=900, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fintech-release check refused {config}: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def _median(samples: list[dict[str, Any]], *path: str) -> float:
    values = []
    for sample in samples:
        value: Any = sample
        for part in path:
            value = value[part]
        values.append(float(value))
    return statistics.median(values)


def _load_seconds(sample: dict[str, Any]) -> float:
    return sum(sample[phase]["seconds"] for phase in PHASES)


def _load_cpu(sample: dict[str, Any]) -> float:
    return sum(sample[phase]["cpu"] for phase in PHASES)


def run(sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> list[Figure]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="code-location-bench-") as work:
        configs: dict[int, Path] = {}
        for size in sizes:
            folder = Path(work) / f"services-{size}"
            folder.mkdir()
            configs[size] = folder / "release.yaml"
            configs[size].write_text(release_yaml(size))
        print(f"checking the synthetic release.yaml files ({', '.join(map(str, sizes))} services) …", flush=True)
        for config in configs.values():
            _check(config)
        bytecode = Path(work) / "bytecode"
        _measure("load", configs[min(sizes)], bytecode)  # warm-up: compiles every module once, fills the page cache
        baseline: list[dict[str, Any]] = []
        loads: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
        for round_number in range(1, repeats + 1):
            baseline.append(_measure("dagster", None, bytecode))
            for size in sizes:
                loads[size].append(_measure("load", configs[size], bytecode))
                sample = loads[size][-1]
                print(
                    f"round {round_number}: {size} services: {_load_seconds(sample):.2f} s "
                    f"(CPU {_load_cpu(sample):.2f} s) on top of {sample['dagster']['seconds']:.2f} s importing "
                    f"Dagster; peak {sample['snapshot']['peak_mib']:.0f} MiB (Dagster alone "
                    f"{baseline[-1]['dagster']['peak_mib']:.0f} MiB); load average {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    load_after = os.getloadavg()[0]
    return _figures(baseline, loads, load_before, load_after)


def _figures(
    baseline: list[dict[str, Any]], loads: dict[int, list[dict[str, Any]]], load_before: float, load_after: float
) -> list[Figure]:
    dagster = "import dagster (fresh process)"
    dagster_seconds = _median(baseline, "dagster", "seconds")
    dagster_cpu = _median(baseline, "dagster", "cpu")
    dagster_mib = _median(baseline, "dagster", "peak_mib")
    seconds = {size: statistics.median(map(_load_seconds, samples)) for size, samples in loads.items()}
    cpu = {size: statistics.median(map(_load_cpu, samples)) for size, samples in loads.items()}
    mib = {size: _median(samples, "snapshot", "peak_mib") - dagster_mib for size, samples in loads.items()}
    conditions = f"median of {len(baseline)}; load average {load_before:.2f} before, {load_after:.2f} after"
    figures: list[Figure] = []
    for size, samples in loads.items():
        counts = samples[-1]["counts"]
        growth = ", ".join(
            f"{phase} +{_median(samples, phase, 'peak_mib') - _median(samples, previous, 'peak_mib'):.0f} MiB"
            for previous, phase in zip(("dagster", *PHASES[:-1]), PHASES, strict=True)
        )
        on_target = size == TARGET_SIZE
        seconds_target = f"< {TARGET_SECONDS:g} s" if on_target else ""
        figures += [
            Figure(
                BENCHMARK, f"{size} services: load time on top of Dagster", seconds[size], "s",
                baseline=dagster, baseline_value=dagster_seconds, target=seconds_target,
                met=seconds[size] < TARGET_SECONDS if on_target else None,
                note=f"{counts['assets']} assets, {counts['checks']} checks, {counts['jobs']} jobs, "
                f"{counts['sensors']} sensors, snapshot {counts['snapshot_mib']:.1f} MiB serialized; "
                f"wall clock, {conditions}",
            ),
            Figure(
                BENCHMARK, f"{size} services: load CPU time on top of Dagster", cpu[size], "s",
                baseline=dagster, baseline_value=dagster_cpu, target=seconds_target,
                met=cpu[size] < TARGET_SECONDS if on_target else None,
                note="user + system time of the process: the load without the machine's other work"
                if on_target else "",
            ),
            Figure(
                BENCHMARK, f"{size} services: peak RSS on top of Dagster", mib[size], "MiB",
                baseline=dagster, baseline_value=dagster_mib,
                target=f"< {TARGET_MIB:g} MiB" if on_target else "",
                met=mib[size] < TARGET_MIB if on_target else None,
                note=f"peak grows by phase: {growth}",
            ),
        ]
        figures += [
            Figure(
                BENCHMARK, f"{size} services: {phase}", _median(samples, phase, "seconds"), "s",
                note=f"CPU {_median(samples, phase, 'cpu'):.2f} s",
            )
            for phase in PHASES
        ]
    if len(loads) >= 3:
        figures += [
            _linearity(seconds, "s", "load time"),
            _linearity(cpu, "s", "load CPU time"),
            _linearity(mib, "MiB", "peak RSS"),
        ]
    return figures


def _linearity(cost: dict[int, float], unit: str, what: str) -> Figure:
    """How the cost on top of Dagster grows from the middle size to the largest (200 → 1,000 services).

    growth = cost(largest) / cost(middle). Linear growth gives at most largest/middle (5.0: exactly that without a
    fixed cost, less with one); growth with the square of the services about (largest/middle)² (25). The note gives
    the cost per service at both sizes and the marginal cost of each added service on each step: for a linear
    cost the two marginal costs are the same, and their ratio is the plainest linearity figure (1.0 = linear).
    """
    small, middle, large = sorted(cost)[:3]
    linear = large / middle
    growth = cost[large] / cost[middle]
    scale, per = (1000, "ms") if unit == "s" else (1024, "KiB")
    low = (cost[middle] - cost[small]) / (middle - small) * scale
    high = (cost[large] - cost[middle]) / (large - middle) * scale
    ratio = f"{high / low:.2f}" if low > 0 else "—"
    return Figure(
        BENCHMARK, f"{what}: growth {middle} → {large} services", growth, "×",
        baseline="linear growth", baseline_value=linear, target=f"≤ {linear:g}×", met=growth <= linear,
        note=f"per service: {cost[middle] / middle * scale:.1f} {per} at {middle}, {cost[large] / large * scale:.1f} "
        f"{per} at {large}; each added service: {low:.1f} {per} ({small}→{middle}), {high:.1f} {per} "
        f"({middle}→{large}), ratio {ratio}",
    )
