"""README.md works when pasted: every ```sh block, in order, as a newcomer pastes it into a shell at the repository
root after `make demo`, with `make ui` running.

Runs against the session's demo checkout (fixtures_demo.py: the repositories, base image and pushes `make demo`
makes) with staging approved and deployed as `make demo` leaves it (ci and production are not deployed: no block
needs them), and a real `dagster dev` on that event log started as `make ui` starts it (the Makefile's warning
filter, the database password in its environment). Each block runs in bash with `set -eo pipefail`, from the
checkout, with what earlier blocks exported and nothing else of the suite's (no database password, no
DAGSTER_HOME): it must exit 0, print no Python warning or traceback, leave the shell where it was, and print
what the README says of it (base-image: unchanged; approve, deploy, rollback: versions and digests). A block
right after `<!-- needs: REASON -->` (a cloud account, a cluster, a terminal of its own) is skipped with that
reason; the `sh` blocks of deploy/*/README.md, none of which can run here, must all be so marked.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from fintech_release.cli import launch, report
from fintech_release.cli.demo import DEMO_APPROVER, DEMO_REASON
from fintech_release.records.approvals import Decision
from fintech_release.release_graph import build_definitions
from fintech_release_tests.fixtures_dagster import DagsterDev, start_dagster_dev
from fintech_release_tests.fixtures_demo import DemoCheckout
from fintech_release_tests.release_setup import REPO_ROOT

pytestmark = pytest.mark.integration

FENCE, END = "```sh", "```"
NEEDS = re.compile(r"^<!-- needs: (?P<reason>.+) -->$")
BLOCK_TIMEOUT_SECONDS = 600
# What `make ui` sets for `dagster dev` (read from the Makefile, so the test starts it as `make ui` does).
UI_WARNINGS = re.search(r"PYTHONWARNINGS='([^']*)'", (REPO_ROOT / "Makefile").read_text())
# Dagster's own CLI says that `dg` supersedes it: documented next to the block that calls it.
DAGSTER_CLI_NOTICE = "is superseded and its usage is discouraged. Use 'dg"
# What the README says a command prints there, the command prints (a block calling it must show this).
SAID = {
    "fintech-release base-image": r"jre:17: unchanged \(content sha256:[0-9a-f]{64}\)",
    "fintech-release approve staging": r"\n  contact-us +1\.0\.0-2 +sha256:[0-9a-f]{64}\n",
    # rebuild-images on the unchanged base kept payments' image and version: nothing to deploy for it
    "fintech-release deploy staging": r"\n  contact-us +deployed +1\.0\.0-1 → 1\.0\.0-2 +sha256:[0-9a-f]{64}[\s\S]*"
    r"\n  payments +unchanged +1\.0\.0-1 \(unchanged\)",
    "fintech-release rollback staging": r"\n  contact-us +rolled_back +1\.0\.0-2 → 1\.0\.0-1 +sha256:[0-9a-f]{64}",
}
# What the suite's environment has that a newcomer's shell after `make demo` does not.
NOT_IN_A_NEWCOMERS_SHELL = ("DAGSTER_HOME", "FINTECH_RELEASE_CONFIG", "FINTECH_RELEASE_DB_PASSWORD", "PYTHONWARNINGS")


@dataclass(frozen=True)
class ShellBlock:
    """One ```sh block of a Markdown file: where it starts, its text, and why it cannot run here (if marked)."""

    path: Path
    line: int
    text: str
    needs: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


def shell_blocks(path: Path) -> list[ShellBlock]:
    """The ```sh blocks of `path`, in order, each with the reason of a `<!-- needs: … -->` line right before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines, start=1):
        if start is None and line.strip() == FENCE:
            start = number
        elif start is not None and line.strip() == END:
            marker = NEEDS.match(lines[start - 2].strip()) if start > 1 else None
            body = "\n".join(lines[start:number - 1])
            blocks.append(ShellBlock(path, start, body, marker.group("reason") if marker else None))
            start = None
    return blocks


README_BLOCKS = shell_blocks(REPO_ROOT / "README.md")


class Newcomer:
    """A shell at the demo checkout: each block runs in bash with the variables the earlier blocks exported."""

    def __init__(self, root: Path, env: dict[str, str], state: Path, ui: DagsterDev) -> None:
        self.root, self.env, self.state, self.ui = root, env, state, ui

    def paste(self, block: ShellBlock) -> tuple[subprocess.CompletedProcess[str], Path]:
        """Run `block`; its result and the directory the shell is in afterwards."""
        where = self.state.with_suffix(".cwd")
        script = (
            f"set -eo pipefail\ncd {self.root}\n[ ! -f {self.state} ] || . {self.state}\n{block.text}\n"
            f"export -p > {self.state}\npwd > {where}\n"
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.root, env=self.env, capture_output=True, text=True,
            timeout=BLOCK_TIMEOUT_SECONDS, check=False,
        )
        return done, Path(where.read_text().strip()) if where.exists() else self.root


@pytest.fixture(scope="module")
def newcomer(
    demo_checkout: DemoCheckout, mariadb, tmp_path_factory: pytest.TempPathFactory  # noqa: ANN001
) -> Iterator[Newcomer]:
    """Staging approved and deployed as `make demo` leaves it, `make ui` running, and a shell at the checkout."""
    demo, config = demo_checkout, demo_checkout.config
    defs = build_definitions(config)
    assert UI_WARNINGS is not None, "the Makefile's ui target sets no PYTHONWARNINGS"
    with pytest.MonkeyPatch.context() as patch, demo.instance() as instance:
        patch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)  # as `make demo` and `make ui` do
        try:
            _release_staging(demo, defs, instance)
            patch.setenv("PYTHONWARNINGS", UI_WARNINGS.group(1))
            dev = start_dagster_dev(config.source, demo.home, tmp_path_factory.mktemp("make-ui") / "dagster-dev.log")
            patch.delenv("PYTHONWARNINGS")
            env = {name: value for name, value in os.environ.items() if name not in NOT_IN_A_NEWCOMERS_SHELL}
            env["FINTECH_RELEASE_DAGSTER_URL"] = dev.url  # where `make ui` serves, on a port of the suite's own
            try:
                yield Newcomer(demo.root, env, tmp_path_factory.mktemp("shell") / "exported.sh", dev)
            finally:
                dev.stop()
        finally:
            for environment in config.environments:
                launch.teardown(config, defs, instance, environment.name)


def _release_staging(demo: DemoCheckout, defs, instance: DagsterInstance) -> None:  # noqa: ANN001
    """What `make demo` does for staging: approve its candidate (the demo approver), then deploy it."""
    approved = launch.approve(
        demo.config, defs, instance, "staging", decision=Decision.YES, approver=DEMO_APPROVER, reason=DEMO_REASON
    )
    assert approved.success, report.failure_message(approved)
    deployed = launch.deploy(demo.config, defs, instance, "staging")
    assert deployed.success, report.failure_message(deployed)


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(block, marks=pytest.mark.skip(reason=f"needs {block.needs}")) if block.needs else block
        for block in README_BLOCKS
    ],
    ids=[block.name for block in README_BLOCKS],
)
def test_readme_block_works_when_pasted(block: ShellBlock, newcomer: Newcomer) -> None:
    done, where = newcomer.paste(block)
    said = done.stdout + done.stderr
    assert done.returncode == 0, f"{block.name} exited {done.returncode}:\n{said[-4000:]}"
    noise = [line for line in said.splitlines() if re.search(r"Warning\b|Traceback", line)]
    assert [line for line in noise if DAGSTER_CLI_NOTICE not in line] == [], f"{block.name}:\n{said[-4000:]}"
    assert where == newcomer.root, f"{block.name} left the shell in {where}"
    for command, expected in SAID.items():
        assert command not in block.text or re.search(expected, said), f"{block.name}: {command}:\n{said[-4000:]}"


def test_the_ci_loop_block_can_be_pasted_again(newcomer: Newcomer) -> None:
    """It commits something new each time, in a clone of its own."""
    [block] = [block for block in README_BLOCKS if "git push" in block.text]
    for _ in range(2):
        done, where = newcomer.paste(block)
        assert done.returncode == 0 and where == newcomer.root, done.stdout + done.stderr


def test_make_ui_showed_no_dagster_warning_while_the_blocks_ran(newcomer: Newcomer) -> None:
    """Neither Dagster's BetaWarning about sensors' owners nor its "superseded" notice for `dagster dev`."""
    log = newcomer.ui.log_path.read_text(errors="replace")
    assert "BetaWarning" not in log and "superseded" not in log, log[-3000:]


@pytest.mark.parametrize("readme", ["deploy/dagster/README.md", "deploy/terraform/README.md"])
def test_every_block_that_cannot_run_here_says_what_it_needs(readme: str) -> None:
    blocks = shell_blocks(REPO_ROOT / readme)
    assert blocks and [block.name for block in blocks if block.needs is None] == []
