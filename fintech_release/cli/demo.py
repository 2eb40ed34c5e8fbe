"""The embedded demo: release the example services on the local platform, for real.

`make demo` calls `fintech-release demo`, which seeds one bare git repository per example service
(as a Bitbucket project would hold them), builds the JRE base image if the engine lacks it, records
the head commits, runs `build_and_push` for each service whose head is not pushed yet, then
deploys to every environment in release.yaml order: ci (torn down afterwards), staging and
production, each approved by a clearly labelled demo approver. Everything runs on the persistent
Dagster instance, so `make ui` shows the lineage afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from fintech_release.cli import launch, report
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BUILD_BASE_IMAGE, REGISTRY_IMAGE, release_key
from fintech_release.assets.source import report_head_commits
from fintech_release.config import ReleaseConfig
from fintech_release.errors import FintechReleaseError
from fintech_release.records.approvals import Decision
from fintech_release.resources._process import run_tool
from fintech_release.resources.source import GIT_HINT

DEMO_AUTHOR = {"GIT_AUTHOR_NAME": "Demo Developer", "GIT_AUTHOR_EMAIL": "dev@fintech-release.example"}
DEMO_COMMITTER = {"GIT_COMMITTER_NAME": "fintech-release demo", "GIT_COMMITTER_EMAIL": "demo@fintech-release.example"}
SEED_EXCLUDES = ("build", ".gradle")
DEMO_APPROVER = "demo-approver@fintech-release.example"
DEMO_REASON = "demo: approved automatically by `make demo` (a person approves in the UI or the CLI)"
# Where each example service lists what its table holds (through the environment's ingress).
DEMO_COLLECTIONS = {"contact-us": "/messages", "payments": "/payments", "accounts": "/accounts"}


class DemoFailedError(FintechReleaseError):
    """A demo service did not make it to the registry."""


def seed_repository(example_dir: Path, bare_repository: Path, *, branch: str) -> bool:
    """Create `bare_repository` holding `example_dir` as one commit on `branch`; False if it exists."""
    if bare_repository.exists():
        return False
    with tempfile.TemporaryDirectory(prefix="fintech-release-seed-") as scratch:
        worktree = Path(scratch) / example_dir.name
        shutil.copytree(example_dir, worktree, ignore=shutil.ignore_patterns(*SEED_EXCLUDES))
        _git(worktree, "init", "--quiet", f"--initial-branch={branch}")
        _git(worktree, "add", "--all")
        _git(worktree, "commit", "--quiet", "--message", f"Import {example_dir.name} from examples/")
        bare_repository.parent.mkdir(parents=True, exist_ok=True)
        _git(worktree, "clone", "--quiet", "--bare", str(worktree), str(bare_repository))
    return True


def build_and_push_all(
    config: ReleaseConfig,
    defs: Definitions,
    instance: DagsterInstance,
    examples_dir: Path,
    say: Callable[[str], None] = print,
) -> dict[str, str]:
    """Seed the repositories, observe their heads, build and push what changed; return service -> pushed image."""
    for service in config.services:
        example = examples_dir / service.name
        if not example.is_dir():
            raise DemoFailedError(f"no example service at {example} for {service.name} in {config.source}")
        if seed_repository(example, config.resolve_path(service.repository), branch=service.branch):
            say(f"seeded {config.resolve_path(service.repository)} from {example}")
    if latest_materialization_metadata(instance, BUILD_BASE_IMAGE) is None:
        say(f"building the base image {config.build.base_image} …")
        _require(launch.build_base_image(defs, instance), "the base image")
    heads = report_head_commits(instance, config, defs.resources["source"])
    pushed: dict[str, str] = {}
    for service, sha in heads.items():
        previous = latest_materialization_metadata(instance, REGISTRY_IMAGE, service)
        if previous and previous["commit"] == sha:
            say(f"{service}: {sha[:12]} is already pushed")
        else:
            say(f"{service}: building {sha[:12]} (analysis, tests, jar, image, push) …")
            _require(launch.build_and_push(defs, instance, service, sha), f"build_and_push of {service}")
        latest = latest_materialization_metadata(instance, REGISTRY_IMAGE, service)
        pushed[service] = f"{latest['reference']}  {latest['digest']}"
    return pushed


def release_everywhere(
    config: ReleaseConfig, defs: Definitions, instance: DagsterInstance, say: Callable[[str], None] = print
) -> dict[str, str]:
    """Deploy to every environment in order; ephemeral ones are torn down after. Return env -> ingress URL."""
    urls: dict[str, str] = {}
    for environment in config.environments:
        env = environment.name
        if environment.approval.required:
            say(f"{env}: approved by {DEMO_APPROVER} (the demo approves automatically; people approve in the UI)")
            _require(
                launch.approve(
                    config, defs, instance, env, decision=Decision.YES, approver=DEMO_APPROVER, reason=DEMO_REASON
                ),
                f"approval of {env}",
            )
        say(f"{env}: deploying …")
        try:
            _require(launch.deploy(config, defs, instance, env), f"deployment to {env}")
            for service in config.service_names:
                release = latest_materialization_metadata(instance, release_key(env, service))
                say(f"  {service:12} {release['version']:10} {release['status']:10} {release['ready_replicas']} ready")
        finally:
            if environment.ephemeral:
                _require(launch.teardown(config, defs, instance, env), f"teardown of {env}")
                say(f"{env}: torn down")
        if not environment.ephemeral:
            urls[env] = f"http://{config.environment_address(env)}:{environment.ingress_port}"
    return urls


def row_counts(config: ReleaseConfig, environment: str) -> dict[str, str]:
    """Per example service, how many rows its API lists in `environment` (read through the ingress)."""
    port = config.environment(environment).ingress_port
    counts: dict[str, str] = {}
    with requests.Session() as http:
        http.trust_env = False  # loopback: never through a proxy
        for service in config.service_names:
            path = DEMO_COLLECTIONS.get(service)
            if path is None:
                continue
            url = f"http://{config.environment_address(environment)}:{port}/{service}{path}"
            try:
                response = http.get(url, timeout=10)
                counts[service] = str(len(response.json())) if response.ok else f"HTTP {response.status_code}"
            except (requests.RequestException, ValueError) as error:
                counts[service] = f"no answer ({type(error).__name__})"
    return counts


def _require(result: ExecuteInProcessResult, what: str) -> None:
    if not result.success:
        raise DemoFailedError(f"{what} failed in run {result.run_id}: {report.failure_message(result)}")


def _git(worktree: Path, *args: str) -> None:
    run_tool(
        ["git", *args],
        tool="git",
        install_hint=GIT_HINT,
        cwd=worktree,
        env={**DEMO_AUTHOR, **DEMO_COMMITTER},
        timeout_seconds=60,
    )
