"""`make bench`: run every benchmark (or those named), print one table, write benchmarks/results.json.

    .venv/bin/python -m benchmarks [NAME …] [--json PATH]

NAME is a module of this package with a `run() -> list[Figure]`: see BENCHMARKS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from benchmarks.harness import Figure, table, write_json

HERE = Path(__file__).resolve().parent
# In the order they run: the cheap ones first, so a failure late on still leaves figures.
BENCHMARKS = ("code_location", "commit_sensor", "webhook", "noop_deploy", "failure_detection", "orchestration")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where the figures are written")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    figures: list[Figure] = []
    failed: list[str] = []
    for name in args.names or BENCHMARKS:
        print(f"== {name}", flush=True)
        try:
            figures.extend(importlib.import_module(f"benchmarks.{name}").run())
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
    print()
    print(table(figures))
    write_json(args.json, figures, {"failed": failed})
    print(f"\nwritten to {args.json}")
    if failed:
        print(f"these benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
