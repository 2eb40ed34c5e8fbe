"""Run a command-line tool with a timeout, turning 'not installed' and 'timed out' into clear errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fintech_release.errors import ToolFailedError, ToolNotFoundError

OUTPUT_TAIL_LINES = 40


def run_tool(
    args: Sequence[str],
    *,
    tool: str,
    install_hint: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_seconds: float,
    check: bool = True,
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `args`; raise `ToolNotFoundError` (with `install_hint`) or `ToolFailedError` (with output tail).

    With `check=False` a non-zero exit is returned to the caller, for tools whose exit code
    carries data (failing tests, analysis findings) rather than a failure of the tool itself.
    `stdin_text` is written to the tool's standard input (e.g. settings holding a token, kept out of argv).
    """
    try:
        completed = subprocess.run(
            list(args),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            input=stdin_text,
            timeout=timeout_seconds,
            check=False,
        )
    except FileNotFoundError:
        raise ToolNotFoundError(f"{tool} not found (tried {args[0]!r}). {install_hint}") from None
    except subprocess.TimeoutExpired:
        raise ToolFailedError(f"{tool} did not finish within {timeout_seconds:.0f} s: {' '.join(args)}") from None
    if check and completed.returncode != 0:
        raise ToolFailedError(
            f"{tool} failed with exit code {completed.returncode} in {cwd or Path.cwd()}: {' '.join(args)}\n"
            + output_tail(completed)
        )
    return completed


def output_tail(completed: subprocess.CompletedProcess[str], lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last `lines` lines of a finished command's stdout and stderr."""
    text = (completed.stdout or "") + (completed.stderr or "")
    return "\n".join(text.strip().splitlines()[-lines:])
