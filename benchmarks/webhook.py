"""Webhook figures: answer times and delivery-to-launch times for concurrent deliveries of different commits.

    .venv/bin/python -m benchmarks webhook                  (with the others' table: `make bench`)
    .venv/bin/python -m benchmarks.webhook [--deliveries 50] [--json benchmarks/webhook.json]

Starts a real `dagster dev` (run queue paused: runs stay QUEUED and build nothing) and the real endpoint
(uvicorn on loopback, its SQLite record in a temporary directory), sends N signed Bitbucket Cloud pushes
at once, each a different commit on its own feature branch (so none supersedes another), and reads from
the record when each one's run was launched. Then the same against an endpoint whose Dagster is down
(nothing listens), at once and one at a time: the answers must not change. Prints a table and writes
the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure
from fintech_release.triggers.webhook import Limits, WebhookEndpoint
from fintech_release_tests.components import free_port
from fintech_release_tests.fixtures_dagster import TELEMETRY_OFF, start_dagster_dev
from fintech_release_tests.fixtures_webhook import SECRET, SECRET_ENV, cloud_push, commit, deliver, write_config

HERE = Path(__file__).resolve().parent
DELIVERIES = 50
ANSWER_TARGET_MS = 2000  # issue #11: every delivery answered within 2 s, whatever Dagster is doing


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def send_at_once(url: str, count: int, first_commit: int) -> list[float]:
    """POST `count` deliveries from `count` threads released together; their answer times in seconds."""
    gate = threading.Barrier(count)

    def one(number: int) -> float:
        body = cloud_push("acme/contact-us", f"feature/bench-{number}", sha=commit(first_commit + number))
        gate.wait()
        started = time.monotonic()
        response = deliver(url, body)
        elapsed = time.monotonic() - started
        if response.status_code != 202:
            raise RuntimeError(f"delivery {number}: HTTP {response.status_code} {response.text}")
        return elapsed

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def send_one_by_one(url: str, count: int, first_commit: int) -> list[float]:
    """POST `count` deliveries one after another; their answer times in seconds."""
    times = []
    for number in range(count):
        body = cloud_push("acme/payments", f"feature/one-{number}", sha=commit(first_commit + number))
        started = time.monotonic()
        deliver(url, body).raise_for_status()
        times.append(time.monotonic() - started)
    return times


def summary(answers: list[float], launches: list[float] | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "answer_p50_ms": round(percentile(answers, 0.50) * 1000, 1),
        "answer_p99_ms": round(percentile(answers, 0.99) * 1000, 1),
        "answer_max_ms": round(max(answers) * 1000, 1),
    }
    if launches:
        figures |= {
            "launch_p50_s": round(percentile(launches, 0.50), 2),
            "launch_p99_s": round(percentile(launches, 0.99), 2),
            "all_launched_s": round(max(launches), 2),
        }
    return figures


def run_deliveries(count: int, work: Path, limits: Limits) -> dict[str, Any]:
    os.environ[SECRET_ENV] = SECRET
    os.environ.setdefault("FINTECH_RELEASE_BITBUCKET_TOKEN", "unused")
    dagster_port = free_port()
    config = write_config(work / "up", f"http://127.0.0.1:{dagster_port}/graphql")
    home = work / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TELEMETRY_OFF + "concurrency:\n  runs:\n    max_concurrent_runs: 0\n")
    print(f"starting dagster dev on 127.0.0.1:{dagster_port} …", flush=True)
    dev = start_dagster_dev(config.source, home, work / "dagster-dev.log", port=dagster_port)
    try:
        endpoint = WebhookEndpoint(config, port=0, limits=limits)
        endpoint.start()
        try:
            answers = send_at_once(endpoint.url, count, first_commit=1)
            deadline = time.monotonic() + 300
            while endpoint.store.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            records = endpoint.store.launches()
        finally:
            endpoint.stop()
    finally:
        dev.stop()
    if any(record.state != "launched" for record in records):
        raise RuntimeError(f"not every delivery launched: {[record.state for record in records]}")
    first = min(record.received_at for record in records)
    up = summary(answers, [record.launched_at - record.received_at for record in records])
    up["throughput_runs_per_s"] = round(count / (max(record.launched_at for record in records) - first), 1)

    down_config = write_config(work / "down", f"http://127.0.0.1:{free_port()}/graphql")
    down_endpoint = WebhookEndpoint(down_config, port=0, limits=limits)
    down_endpoint.start()
    try:
        down = summary(send_at_once(down_endpoint.url, count, first_commit=1000))
        one_by_one = summary(send_one_by_one(down_endpoint.url, count, first_commit=2000))
    finally:
        down_endpoint.stop()
    return {
        "deliveries": count,
        "launch_workers": limits.launch_workers,
        "dagster_up": up,
        "dagster_down": down,
        "one_at_a_time": one_by_one,
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "uvicorn": version("uvicorn"),
            "starlette": version("starlette"), "dagster": version("dagster"),
        },
    }


def run() -> list[Figure]:
    """The figures for `make bench`: answers beside the one-at-a-time answer of the same endpoint."""
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as work:
        measured = run_deliveries(DELIVERIES, Path(work), Limits())
    up, down, alone = measured["dagster_up"], measured["dagster_down"], measured["one_at_a_time"]
    baseline = "one delivery at a time, p99"
    target = f"< {ANSWER_TARGET_MS} ms"

    def answer(case: str, figures: dict[str, Any], key: str) -> Figure:
        value = figures[key]
        return Figure("webhook", case, value, "ms", baseline, alone["answer_p99_ms"], target, value < ANSWER_TARGET_MS)

    return [
        answer(f"{DELIVERIES} at once, Dagster up: answer p50", up, "answer_p50_ms"),
        answer(f"{DELIVERIES} at once, Dagster up: answer p99", up, "answer_p99_ms"),
        answer(f"{DELIVERIES} at once, Dagster down: answer p99", down, "answer_p99_ms"),
        Figure(
            "webhook", f"{DELIVERIES} at once: delivery → run launched, p50", up["launch_p50_s"], "s",
            note=f"p99 {up['launch_p99_s']} s, {up['throughput_runs_per_s']} runs/s: bounded by the webserver's "
            "launchRun, not by the endpoint",
        ),
    ]


def print_table(figures: dict[str, Any]) -> None:
    up, down = figures["dagster_up"], figures["dagster_down"]
    print(f"\n{figures['deliveries']} concurrent deliveries of different commits, {figures['launch_workers']} launch "
          f"workers, {figures['machine']['cpus']} CPUs")
    print(f"{'':24} {'answer p50':>11} {'answer p99':>11} {'launch p50':>11} {'launch p99':>11} {'all launched':>13}")
    print(f"{'Dagster up':24} {up['answer_p50_ms']:>8} ms {up['answer_p99_ms']:>8} ms {up['launch_p50_s']:>9} s "
          f"{up['launch_p99_s']:>9} s {up['all_launched_s']:>11} s")
    print(f"{'Dagster down':24} {down['answer_p50_ms']:>8} ms {down['answer_p99_ms']:>8} ms")
    one = figures["one_at_a_time"]
    print(f"{'one at a time':24} {one['answer_p50_ms']:>8} ms {one['answer_p99_ms']:>8} ms")
    print(f"launch throughput: {up['throughput_runs_per_s']} runs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=DELIVERIES)
    parser.add_argument("--launch-workers", type=int, default=Limits().launch_workers)
    parser.add_argument("--json", type=Path, default=HERE / "webhook.json", help="where the figures are written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as work:
        figures = run_deliveries(args.deliveries, Path(work), Limits(launch_workers=args.launch_workers))
    print_table(figures)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
