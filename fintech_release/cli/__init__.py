"""`fintech-release`, the command line (`commands`), and what it runs: in-process launches, backfills, the demo."""

from fintech_release.cli.commands import main

__all__ = ["main"]
