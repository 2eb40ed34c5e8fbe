"""`fintech-release`: the release from the command line, on the instance in $DAGSTER_HOME (default ./.dagster_home).

    fintech-release check                      validate release.yaml, build its definitions, print what it declares
    fintech-release base-image                 rebuild the JRE base image (build/base_image)
    fintech-release observe                    record every service's head commit (source/commit)
    fintech-release approve ENV --decision yes|no --approver EMAIL --reason TEXT
    fintech-release approvals ENV              the environment's approval audit trail
    fintech-release deploy ENV [SERVICE ...]   prepare ENV and deploy its candidate
    fintech-release rollback ENV [--run RUN | --to TIME]   undo the last deployment to ENV that changed it
    fintech-release releases ENV               what each run did to ENV's releases, newest first
    fintech-release metrics [ENV] [--since DATE] [--json]   DORA's four keys per environment and service
    fintech-release rotate-db-passwords ENV    new application database passwords, replicas restarted one by one
    fintech-release teardown ENV... | --all     remove everything the environments hold
    fintech-release backfill --select KEYS [SERVICE ...] [--wait]   a real Dagster backfill on the running instance
    fintech-release rebuild-images [SERVICE ...] [--wait]           backfill build/image + registry/image
    fintech-release reanalyze [SERVICE ...] [--wait]                backfill build/analysis + build/tests
    fintech-release webhook [--location NAME]  receive Bitbucket push events and launch CI runs (next to dagster dev)
    fintech-release demo                       release the example services everywhere (`make demo`)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import BetaWarning, DagsterInstance, Definitions, PreviewWarning, SupersessionWarning

from fintech_release.cli.instance import dagster_home, open_instance
from fintech_release.config import CONFIG_ENV_VAR, ReleaseConfig, load_release_config
from fintech_release.errors import FintechReleaseError, ReleaseConfigError
from fintech_release.records.approvals import Decision

if TYPE_CHECKING:
    from fintech_release.cli.launch import RunPlan
    from fintech_release.cli.report import Events

DAGSTER_URL_ENV_VAR = "FINTECH_RELEASE_DAGSTER_URL"
BACKFILL_PRESETS = {
    "rebuild-images": ("build/image", "registry/image"),
    "reanalyze": ("build/analysis", "build/tests"),
}
Command = Callable[[ReleaseConfig, argparse.Namespace], int]
# What a command asks to run, planned (and refused, if it must be) against the instance.
PlanFor = Callable[[DagsterInstance], "RunPlan"]
INTERRUPTED_EXIT = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point; the exit code says what happened, with one line on stderr for anything but success.

    0 done; 1 a run failed (its reason, run id and where to read more are printed); 2 refused before
    anything ran (bad release.yaml, unknown name, no approval, nothing to roll back); 130 stopped by
    Ctrl-C or SIGTERM (what the run had started is removed). Tracebacks only with --verbose.
    """
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops a command as Ctrl-C does
    if not args.verbose:
        warnings.filterwarnings("ignore", category=BetaWarning)
        warnings.filterwarnings("ignore", category=PreviewWarning)
        warnings.filterwarnings("ignore", category=SupersessionWarning)
    try:
        config = load_release_config(args.config)
        return COMMANDS[args.command](config, args)
    except FintechReleaseError as exc:
        print(f"fintech-release: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fintech-release: stopped (Ctrl-C or SIGTERM) before a run started; nothing was changed", file=sys.stderr)
        return INTERRUPTED_EXIT
    except Exception as exc:  # noqa: BLE001 - one line for the unexpected too; the traceback is --verbose's
        if args.verbose:
            raise
        print(
            f"fintech-release: unexpected {type(exc).__name__}: {exc} (--verbose shows the traceback)", file=sys.stderr
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fintech-release", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, help=f"release.yaml to use (default: ${CONFIG_ENV_VAR} or ./release.yaml)"
    )
    parser.add_argument("--verbose", action="store_true", help="print Dagster's log of the run and tracebacks")
    _launch_options(parser, defaults=True)
    # The same options after the command name (`deploy staging --url …`), where they override the ones before it.
    after = argparse.ArgumentParser(add_help=False)
    _launch_options(after, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_parser_with(after))
    commands.add_parser("check", help="validate release.yaml")
    commands.add_parser("base-image", help="rebuild the JRE base image (build/base_image)")
    commands.add_parser("observe", help="record the head commit of every service")
    approve = commands.add_parser("approve", help="approve or reject an environment's candidate")
    approve.add_argument("environment")
    approve.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    approve.add_argument("--approver", required=True, help="who decides (an email address)")
    approve.add_argument("--reason", required=True)
    approve.add_argument(
        "--expect", default="", help="what you reviewed, e.g. payments=1.0.0-7,accounts=1.0.0-3: refused if it changed"
    )
    approvals = commands.add_parser("approvals", help="list an environment's approval decisions")
    approvals.add_argument("environment")
    deploy = commands.add_parser("deploy", help="prepare an environment and deploy its candidate")
    deploy.add_argument("environment")
    deploy.add_argument("services", nargs="*", help="only these services (default: all)")
    rollback = commands.add_parser(
        "rollback", help="undo the last deployment that changed an environment (or a named run, or after a time)"
    )
    rollback.add_argument("environment")
    target = rollback.add_mutually_exclusive_group()
    target.add_argument("--run", dest="undo_run", help="the deployment run to undo (see `releases ENV`)")
    target.add_argument("--to", dest="restore_to", help="an ISO 8601 time: restore what ran then (UTC unless given)")
    commands.add_parser("releases", help="what each run did to an environment's releases").add_argument("environment")
    metrics = commands.add_parser("metrics", help="DORA's four keys per environment and service")
    metrics.add_argument("environment", nargs="?", help="one environment (default: every one that is not ephemeral)")
    metrics.add_argument("--since", help="ISO 8601 date or time (default: 30 days ago)")
    metrics.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands.add_parser(
        "rotate-db-passwords", help="rotate an environment's application database passwords (rolling restart)"
    ).add_argument("environment")
    teardown = commands.add_parser("teardown", help="remove environments (runtime, ingress, databases)")
    teardown.add_argument("environments", nargs="*")
    teardown.add_argument("--all", action="store_true", help="every environment in release.yaml")
    backfill = commands.add_parser("backfill", help="launch a Dagster backfill on the running webserver")
    backfill.add_argument("--select", required=True, help="comma-separated asset keys, e.g. build/image,registry/image")
    presets = [
        commands.add_parser("rebuild-images", help="rebuild and push the images of these services (default: all)"),
        commands.add_parser("reanalyze", help="re-run analysis and tests of these services (default: all)"),
    ]
    for command in (backfill, *presets):
        command.add_argument("services", nargs="*", help="service partitions (default: all)")
        command.add_argument("--wait", action="store_true", help="print progress until the backfill ends")
    webhook = commands.add_parser("webhook", help="serve the Bitbucket push webhook (next to dagster dev)")
    webhook.add_argument("--location", default="fintech_release", help="code location name (workspace.yaml)")
    demo = commands.add_parser("demo", help="release the example services everywhere")
    demo.add_argument("--examples", type=Path, default=Path("examples"), help="folder of example services")
    return parser


def _launch_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    url = os.environ.get(DAGSTER_URL_ENV_VAR, "http://127.0.0.1:3000")
    parser.add_argument(
        "--url", default=url if defaults else argparse.SUPPRESS,
        help=f"a Dagster webserver serving this instance: runs are launched there, backfills too (default: "
        f"${DAGSTER_URL_ENV_VAR} or http://127.0.0.1:3000, as `make ui`); without one runs go in this process",
    )
    parser.add_argument(
        "--in-process", action="store_true", default=False if defaults else argparse.SUPPRESS,
        help="run here even when a webserver serves the instance",
    )


def _parser_with(parent: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """An ArgumentParser class whose instances (the subcommands) also take `parent`'s options."""

    class Subcommand(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["parents"] = [*kwargs.get("parents", ()), parent]
            super().__init__(*args, **kwargs)

    return Subcommand


def _check(config: ReleaseConfig, _args: argparse.Namespace) -> int:
    from fintech_release.release_graph import build_definitions

    # The code location builds these same definitions: a file check accepts must load there too. The rules in
    # fintech_release.config refuse bad values first; this catches any gap, still as one line and exit code 2.
    try:
        Definitions.validate_loadable(build_definitions(config))
    except Exception as exc:  # noqa: BLE001 - whatever Dagster refuses, check refuses
        reason = " ".join(str(exc).split())
        raise ReleaseConfigError(
            f"{config.source}: Dagster cannot load the definitions built from it: {reason[:300]}"
        ) from None
    print(f"{config.source}: OK")
    print(f"  services: {', '.join(config.service_names)}")
    print(f"  environments: {', '.join(f'{e.name} ({e.platform})' for e in config.environments)}")
    return 0


def _base_image(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli import launch, report

    return _run(
        config, args, lambda _: launch.base_image_run(config),
        lambda events: f"{config.build.base_image}: {report.base_image_status(events)}",
    )


def _observe(config: ReleaseConfig, _args: argparse.Namespace) -> int:
    from fintech_release.assets.source import report_head_commits
    from fintech_release.resources import source_control

    with open_instance() as instance:
        heads = report_head_commits(instance, config, source_control(config))
    for service, sha in heads.items():
        print(f"{service}: {sha}")
    return 0


def _approve(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli import launch

    return _run(
        config, args,
        lambda _: launch.approve_run(
            config, args.environment, decision=Decision(args.decision), approver=args.approver, reason=args.reason,
            expect=args.expect,
        ),
        f"{args.environment}: {args.decision} by {args.approver} recorded",
    )


def _approvals(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli.launch import check_environment
    from fintech_release.cli.report import candidate_lines
    from fintech_release.records.approvals import approval_history

    check_environment(config, args.environment)
    with open_instance() as instance:
        history = approval_history(instance, args.environment)
    if not history:
        print(f"{args.environment}: no approval decisions yet")
    for record in history:
        when = f"{record.decided_at:%Y-%m-%d %H:%M:%S}"
        print(f"{when} {record.decision.value:3} {record.approver} — {record.reason} (run {record.run_id})")
        print("\n".join(candidate_lines(record.versions, record.candidate)))
    return 0


def _deploy(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli import launch

    return _run(
        config, args, lambda instance: launch.deploy_run(config, instance, args.environment, args.services or None),
        f"{args.environment}: deployed",
    )


def _rollback(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.assets.releases import parse_moment
    from fintech_release.cli import launch

    at = parse_moment(args.restore_to)
    return _run(
        config, args,
        lambda instance: launch.rollback_run(config, instance, args.environment, undo_run=args.undo_run, at=at),
        f"{args.environment}: rolled back",
    )


def _releases(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli.launch import check_environment
    from fintech_release.records.releases import release_history

    check_environment(config, args.environment)
    with open_instance() as instance:
        records = [
            (record, service)
            for service in config.service_names
            for record in release_history(instance, args.environment, service)
        ]
    if not records:
        print(f"{args.environment}: nothing released yet")
    for record, service in sorted(records, key=lambda pair: pair[0].recorded_at, reverse=True):
        values = record.metadata
        print(
            f"{record.recorded_at:%Y-%m-%d %H:%M:%S} run {record.run_id} {service:16} {values.get('status', '?'):20} "
            f"{values.get('previous_version', '?')} → {values.get('version', '?')} {values.get('digest', '')}"
            f"{'' if values.get('healthy') else ' (unhealthy)'}"
        )
    return 0


def _metrics(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.assets.delivery import summary
    from fintech_release.assets.releases import parse_moment
    from fintech_release.cli.launch import check_environment
    from fintech_release.records.delivery import default_window, delivery_metrics

    if args.environment:
        check_environment(config, args.environment)
    environments = [args.environment] if args.environment else [e.name for e in config.environments if not e.ephemeral]
    since, until = default_window()
    since = parse_moment(args.since) or since
    with open_instance() as instance:
        results = [delivery_metrics(instance, config, env, since=since, until=until) for env in environments]
    if args.json:
        print(json.dumps([result.model_dump(mode="json") for result in results], indent=2))
        return 0
    for result in results:
        print(f"{result.environment} ({result.since:%Y-%m-%d} → {result.until:%Y-%m-%d}): {summary(result.overall)}")
        for service, figures in result.per_service.items():
            print(f"  {service:16} {summary(figures)}")
        for deployment in result.deployments:
            if deployment.failed:
                restored = deployment.restored_after_minutes
                print(f"  failed {deployment.started_at:%Y-%m-%d %H:%M} run {deployment.run_id}: "
                      + "; ".join(f"{s}: {why}" for s, why in deployment.broken.items())
                      + (f" (restored after {restored:.1f} min)" if restored is not None else " (not restored)"))
    return 0


def _rotate_db_passwords(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli import launch

    return _run(
        config, args, lambda _: launch.rotate_db_passwords_run(config, args.environment),
        f"{args.environment}: application database passwords rotated, every replica replaced",
    )


def _teardown(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli import launch

    environments = [e.name for e in config.environments] if args.all else args.environments
    if not environments:
        raise launch.SelectionError("name the environments to tear down, or pass --all")
    for environment in environments:
        launch.check_environment(config, environment)
    for environment in environments:
        plan = launch.teardown_run(config, environment)
        if code := _run(config, args, _planned(plan), f"{environment}: torn down"):
            return code
    return 0


def _backfill(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli.backfill import failed_runs, launch_backfill, wait_for_backfill
    from fintech_release.cli.launch import check_services, partitioned_asset_keys

    keys = BACKFILL_PRESETS.get(args.command) or tuple(key for key in args.select.split(",") if key)
    check_services(config, args.services)
    asset_keys = partitioned_asset_keys(config, list(keys))
    services = args.services or config.service_names
    backfill_id = launch_backfill(
        args.url, asset_keys=asset_keys, partitions=services, title=f"{args.command}: {', '.join(keys)}"
    )
    print(f"backfill {backfill_id}: {', '.join(keys)} for {', '.join(services)}")
    print(f"  {args.url}/overview/backfills/{backfill_id}")
    if not args.wait:
        return 0
    final = wait_for_backfill(args.url, backfill_id, on_progress=lambda progress: print(f"  {progress.summary()}"))
    if final.succeeded:
        return 0
    print(f"fintech-release: backfill {backfill_id} ended {final.status}", file=sys.stderr)
    with open_instance() as instance:  # the runs are here when the webserver serves this instance
        for line in failed_runs(instance, backfill_id):
            print(f"  {line}", file=sys.stderr)
    return 1


def _webhook(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.triggers.webhook import serve

    serve(config, location_name=args.location)
    return 0


def _demo(config: ReleaseConfig, args: argparse.Namespace) -> int:
    from fintech_release.cli.demo import build_and_push_all, release_everywhere, row_counts
    from fintech_release.release_graph import build_definitions

    defs = build_definitions(config)
    with open_instance() as instance:
        pushed = build_and_push_all(config, defs, instance, args.examples.resolve())
        urls = release_everywhere(config, defs, instance)
    print("\nPushed images:")
    for service, reference in pushed.items():
        print(f"  {service:12} {reference}")
    print("\nWhere each service answers (through each environment's ingress):")
    for env, url in urls.items():
        for service in config.service_names:
            print(f"  {env:11} {service:12} {url}/{service}/health")
    print("\nRows each service keeps in its database (as its API lists them):")
    for env in urls:
        counts = ", ".join(f"{service} {count}" for service, count in row_counts(config, env).items())
        print(f"  {env:11} {counts}")
    print("\nSee the lineage in the Dagster UI: make ui, then open http://127.0.0.1:3000")
    print(f"(DAGSTER_HOME={dagster_home()})")
    return 0


def _planned(plan: RunPlan) -> PlanFor:
    """A plan made before the instance is opened (it does not depend on the instance)."""
    return lambda _instance: plan


def _run(
    config: ReleaseConfig, args: argparse.Namespace, plan_for: PlanFor, success: str | Callable[[Events], str]
) -> int:
    """Run one plan: on the webserver serving this instance, else here; print what changed or why it failed."""
    from fintech_release.cli import launch, report
    from fintech_release.cli.remote import Webserver
    from fintech_release.release_graph import build_definitions

    with open_instance() as instance:
        plan = plan_for(instance)  # refusals (no approval, nothing to roll back) end here, before any run
        server = None if args.in_process or plan.job is not None else Webserver.serving(args.url, instance)
        if server is not None:
            launched = server.run(plan, say=_say)
            run_id, success_now, interrupted = launched.run_id, launched.success, launched.interrupted
            events: Events = launched.events(instance)
        else:
            if not args.in_process:
                _say(f"no Dagster webserver serves this instance at {args.url}: running in this process")
            defs = build_definitions(config)
            launch.require_environment(plan, defs)  # a secret the run needs is missing: one line, before any run
            result = launch.execute(plan, config, defs, instance, verbose=args.verbose, say=_say)
            run_id, success_now, events = result.run_id, result.success, result.all_events
            interrupted = report.was_interrupted(result)
    changes = report.release_lines(events) + report.approval_lines(events)
    if success_now:
        print(f"{success if isinstance(success, str) else success(events)} (run {run_id})")
        if changes:
            print("\n".join(changes))
        return 0
    if interrupted:
        print(
            f"fintech-release: stopped (Ctrl-C or SIGTERM); run {run_id} ended as failed or canceled, the replicas "
            "it had started were removed and what served before serves on",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT
    more = f"run {run_id}: {args.url}/runs/{run_id} (make ui), or --verbose"
    reasons = report.failure_lines(events)
    print(f"fintech-release: {reasons[0]}", file=sys.stderr)
    for line in [*reasons[1:], *changes, more]:
        print(f"  {line.strip()}", file=sys.stderr)
    return 1


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


COMMANDS: dict[str, Command] = {
    "check": _check,
    "base-image": _base_image,
    "observe": _observe,
    "approve": _approve,
    "approvals": _approvals,
    "deploy": _deploy,
    "rollback": _rollback,
    "releases": _releases,
    "metrics": _metrics,
    "rotate-db-passwords": _rotate_db_passwords,
    "teardown": _teardown,
    "backfill": _backfill,
    "rebuild-images": _backfill,
    "reanalyze": _backfill,
    "webhook": _webhook,
    "demo": _demo,
}

if __name__ == "__main__":
    sys.exit(main())
