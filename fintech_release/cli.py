"""`fintech-release`: the few things Dagster's own CLI does not do for this project.

    fintech-release check        validate release.yaml and print what it declares
    fintech-release base-image   build the JRE base image locally (jlink) and import it into Docker
    fintech-release observe      record every service's head commit as an observation of source/commit
    fintech-release demo         release the example services on the local platform (`make demo`)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dagster import DagsterInstance

from fintech_release.base_image import DEFAULT_JAVA_HOME
from fintech_release.config import CONFIG_ENV_VAR, ReleaseConfig, load_release_config
from fintech_release.errors import FintechReleaseError

DEMO_DAGSTER_HOME = Path(".dagster_home")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for a user error, with one line on stderr)."""
    parser = argparse.ArgumentParser(prog="fintech-release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help=f"release.yaml to use (default: ${CONFIG_ENV_VAR} or ./release.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate release.yaml")
    base = commands.add_parser("base-image", help="build the JRE base image and import it into Docker")
    commands.add_parser("observe", help="record the head commit of every service")
    demo = commands.add_parser("demo", help="release the example services on the local platform")
    demo.add_argument("--examples", type=Path, default=Path("examples"), help="folder of example services")
    for command in (base, demo):
        command.add_argument("--java-home", type=Path, default=Path(os.environ.get("JAVA_HOME") or DEFAULT_JAVA_HOME))
    args = parser.parse_args(argv)
    try:
        config = load_release_config(args.config)
        return {"check": _check, "base-image": _base_image, "observe": _observe, "demo": _demo}[args.command](
            config, args
        )
    except FintechReleaseError as exc:
        print(f"fintech-release: {exc}", file=sys.stderr)
        return 2


def _check(config: ReleaseConfig, _args: argparse.Namespace) -> int:
    print(f"{config.source}: OK")
    print(f"  services: {', '.join(config.service_names)}")
    print(f"  environments: {', '.join(f'{e.name} ({e.platform})' for e in config.environments)}")
    return 0


def _base_image(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.base_image import build_base_image

    image_id, rootfs_sha = build_base_image(config.build.base_image, java_home=args.java_home, docker_host=_docker_host())
    print(f"{config.build.base_image}: {image_id} (root filesystem sha256:{rootfs_sha})")
    return 0


def _observe(config: ReleaseConfig, _args: argparse.Namespace) -> int:
    from fintech_release.assets.source import report_head_commits
    from fintech_release.resources import platform_resources

    with _instance() as instance:
        heads = report_head_commits(instance, config, platform_resources(config)["source"])
    for service, sha in heads.items():
        print(f"{service}: {sha}")
    return 0


def _demo(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.base_image import ensure_base_image
    from fintech_release.demo import run_demo
    from fintech_release.release_graph import build_definitions

    defs = build_definitions(config)
    if ensure_base_image(config.build.base_image, java_home=args.java_home, docker_host=_docker_host()):
        print(f"built the base image {config.build.base_image}")
    with _instance() as instance:
        pushed = run_demo(config, defs, instance, args.examples.resolve())
    print("\nPushed images:")
    for service, reference in pushed.items():
        print(f"  {service:12} {reference}")
    print(f"\nSee the lineage in the Dagster UI: make ui, then open http://127.0.0.1:3000 (DAGSTER_HOME={_dagster_home()})")
    return 0


def _dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or DEMO_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():  # default SQLite storage; no telemetry leaves a regulated shop
        settings.write_text("telemetry:\n  enabled: false\n")
    return home


def _docker_host() -> str:
    from fintech_release.resources._docker import DEFAULT_DOCKER_HOST

    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _instance() -> DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(_dagster_home())
    return DagsterInstance.get()


if __name__ == "__main__":
    sys.exit(main())
