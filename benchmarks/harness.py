"""What every benchmark returns and how `make bench` shows it: a figure, the baseline measured beside it in the
same run, the target, and whether the target was met. Timings are reported, never asserted."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fintech_release_tests.components import wait_until


@dataclass(frozen=True)
class Figure:
    """One measured figure.

    `baseline` names what it is measured against (Dagster's own start-up, a shell script, Helm's `--wait`) and
    `baseline_value` is that, measured in the same run (None when the baseline is a fixed number, such as a
    documented timeout). `target` says what is good enough in words; `met` is whether this run met it (None when
    the target is not a number this figure can be compared with).
    """

    benchmark: str
    case: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed:` … `elapsed()` is the seconds since the block started (frozen at its end)."""
    started = time.monotonic()
    ended: list[float] = []
    yield lambda: (ended[0] if ended else time.monotonic()) - started
    ended.append(time.monotonic())


@contextmanager
def environment(**variables: str) -> Iterator[None]:
    """`variables` in this process's environment for the block; what was there before comes back after."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, log: Path | None = None, interval: float = 0.05
) -> Any:
    """Poll `condition` every `interval` seconds until it returns something truthy, which is returned; on timeout an
    error naming `what` (with the last lines of `log`, when given)."""
    found: list[Any] = []
    if wait_until(lambda: bool(found.append(condition()) or found[-1]), timeout=timeout, interval=interval):
        return found[-1]
    tail = "" if log is None else f"; the last lines of {log}:\n" + "\n".join(log.read_text().splitlines()[-30:])
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s{tail}")


def expect(condition: bool, what: str) -> None:
    """A benchmark that measures the wrong thing must fail, not report (these are not timing assertions)."""
    if not condition:
        raise RuntimeError(f"expected: {what}")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
        "python": platform.python_version(),
        "dagster": version("dagster"),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.3g} {unit}" if abs(value) < 1000 else f"{value:.0f} {unit}"


def table(figures: Sequence[Figure]) -> str:
    """The figures as a plain-text table, one row each."""
    header = ("benchmark", "case", "measured", "baseline", "baseline value", "target", "met")
    rows = [
        (
            figure.benchmark,
            figure.case,
            _number(figure.value, figure.unit),
            figure.baseline or "—",
            _number(figure.baseline_value, figure.unit),
            figure.target or "—",
            {True: "yes", False: "NO", None: "—"}[figure.met],
        )
        for figure in figures
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {figure.benchmark} / {figure.case}: {figure.note}" for figure in figures if figure.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def write_json(path: Path, figures: Sequence[Figure], extra: dict[str, Any] | None = None) -> None:
    """The figures and the machine they were measured on, as JSON."""
    document = {"machine": machine(), "figures": [asdict(figure) for figure in figures], **(extra or {})}
    path.write_text(json.dumps(document, indent=2) + "\n")
