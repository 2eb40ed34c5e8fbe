"""Check the Dagster UI as release engineers use it, in a real headless Chromium (`make ui-check`).

After `make demo`, against the webserver `make ui` serves (http://127.0.0.1:3000): the lineage of
production/release/payments is one lane (staging's payments, not every staging release); every
source/commit partition is current; a release shows its image, digest and approver; production's
DORA metrics are visible; a torn-down ci warns on environment_up; and a deployment the CLI launched
on the webserver re-executes from the run page's "Re-execute all" button. Screenshots of each page go
to .demo/ui-check/. Exits 1 naming every check that failed.

Run by scripts/ui-check.sh with the playwright of .tools/ui-venv and Debian's chromium.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from playwright.sync_api import Page, sync_playwright

URL = os.environ.get("FINTECH_RELEASE_DAGSTER_URL", "http://127.0.0.1:3000")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / ".demo" / "ui-check"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
STATUS = 'query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }'
failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}{'' if ok else f': {detail}'}")
    if not ok:
        failures.append(name)


def visit(page: Page, path: str, shot: str) -> str:
    """Open `path`, close Dagster's community dialog if it shows, screenshot; return the page's text."""
    page.goto(f"{URL}{path}", wait_until="networkidle", timeout=60_000)
    page.wait_for_timeout(2000)
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()
    page.screenshot(path=str(SHOTS / f"{shot}.png"))
    return page.inner_text("body")


def run_status(run_id: str) -> str:
    answer = requests.post(f"{URL}/graphql", json={"query": STATUS, "variables": {"id": run_id}}, timeout=10).json()
    return str(answer["data"]["runOrError"].get("status", "?"))


def wait_for(page: Page, condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` every second for up to `seconds`, letting the browser run meanwhile (not time.sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        page.wait_for_timeout(1000)
    return False


def main() -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        lineage = visit(page, "/assets/production/release/payments?view=lineage&lineageScope=upstream"
                              "&lineageDepth=1", "lineage-production-payments")
        check("production/release/payments depends on staging's payments only",
              "env_staging" in lineage and "payments" in lineage
              and "contact-us" not in lineage and "accounts" not in lineage, lineage[:300])

        commits = visit(page, "/assets/source/commit?view=partitions", "source-commit")
        check("every source/commit partition is current", "Missing (0)" in commits and "Materialized (3)" in commits,
              re.sub(r"\s+", " ", commits)[:300])

        release = visit(page, "/assets/production/release/payments", "release-production-payments")
        check("a release shows its image, digest and approver",
              all(word in release for word in ("image", "digest", "approved_by", "sha256:")), release[:300])

        metrics = visit(page, "/assets/production/delivery", "delivery-production")
        check("production's DORA metrics are visible",
              all(word in metrics for word in ("deployments_per_day", "change_failure_rate", "weekly_trend")),
              metrics[:300])

        ci = visit(page, "/assets/ci/cluster?view=checks", "ci-torn-down")
        check("a torn-down ci warns instead of showing green", "environment_up" in ci and "torn down" in ci, ci[:300])

        launched = subprocess.run(
            [str(ROOT / ".venv/bin/fintech-release"), "--url", URL, "deploy", "staging", "contact-us"],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
        )
        found = re.search(r"\(run ([0-9a-f-]{36})\)", launched.stdout)
        check("the CLI launched the deployment on the webserver",
              launched.returncode == 0 and "launched on" in launched.stderr and found is not None,
              launched.stderr[-500:])
        if found:
            visit(page, f"/runs/{found.group(1)}", "run-launched-by-cli")
            page.get_by_role("button", name=re.compile("Re-execute all")).first.click()
            moved = wait_for(page, lambda: found.group(1) not in page.url and "/runs/" in page.url, 60)
            rerun = page.url.rsplit("/runs/", 1)[-1].split("?")[0].split("#")[0]
            ended = moved and wait_for(page, lambda: run_status(rerun) in ("SUCCESS", "FAILURE", "CANCELED"), 600)
            page.screenshot(path=str(SHOTS / "run-re-executed.png"))
            status = run_status(rerun) if moved else "no new run page"
            check("'Re-execute all' re-runs the CLI-launched deployment", ended and status == "SUCCESS",
                  f"run {rerun}: {status}")
        browser.close()
    print(f"screenshots in {SHOTS}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
