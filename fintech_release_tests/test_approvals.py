"""Approvals a bank can trust: a decision applies to exactly the digests the approver saw, once, by a named person
with a reason.

Against real Dagster runs of `approve_<env>` on a real instance (SQLite): the decisions are recorded by the job
itself; what was pushed and released is reported as materializations shaped like those the build and release
steps record, so no Docker engine is needed. Covered: only the newest decision counts; a candidate that changed
after the decision needs a new one; a "no" refuses; a decision is used by one deployment only; a service that
already runs its candidate needs none; re-executing an approval run (Dagster's "Re-execute") is refused; the
approver must be an email address and the reason non-empty; yes/no in any case (and the booleans a YAML 1.1
reader makes of YES/NO); `expect` binds a decision to what was reviewed; the job asks for no resource; what
`fintech-release approve` prints and `approvals` lists is each service's version and digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import AssetMaterialization, DagsterInstance, Definitions
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run

from fintech_release.cli import launch, main as cli_main, report
from fintech_release.config import ReleaseConfig
from fintech_release.errors import DeploymentRefusedError
from fintech_release.jobs import approval_op_name, approve_job_name
from fintech_release.records.approvals import Decision, approval_history, approved_candidate
from fintech_release.records.keys import REGISTRY_IMAGE, release_key
from fintech_release.release_graph import build_definitions
from fintech_release_tests.release_setup import write_release_config

ENV = "staging"
AUTHOR, APPROVER = "ada@bank.example", "carol@bank.example"


@pytest.fixture
def release(tmp_path: Path) -> tuple[ReleaseConfig, Definitions]:
    config = write_release_config(
        tmp_path, {"contact-us": tmp_path / "contact-us.git", "payments": tmp_path / "payments.git"},
        registry_host="127.0.0.1:5000", environments=[{"name": ENV, "approval": {"required": True}}],
    )
    return config, build_definitions(config)


def push(instance: DagsterInstance, service: str, version: str) -> str:
    """Record `service` `version` as pushed (what registry/image records); return its digest."""
    digest = "sha256:" + f"{service}{version}".encode().hex().ljust(64, "0")[:64]
    instance.report_runless_asset_event(
        AssetMaterialization(
            REGISTRY_IMAGE, partition=service,
            metadata={
                "pinned_reference": f"127.0.0.1:5000/{service}@{digest}", "digest": digest, "version": version,
                "commit": "c0ffee" * 6 + "abcd", "author_email": AUTHOR,
            },
        )
    )
    return digest


def released(instance: DagsterInstance, service: str, digest: str, status: str, approval_run: str = "") -> None:
    """Record a release of `service` in staging (what the release step records)."""
    reference = f"127.0.0.1:5000/{service}@{digest}"
    instance.report_runless_asset_event(
        AssetMaterialization(
            release_key(ENV, service),
            metadata={
                "status": status, "healthy": True, "pinned_reference": reference, "serving": reference,
                "digest": digest, "version": "?", "commit": "c0ffee", "author_email": AUTHOR,
                "desired_replicas": 2, "runtime_env": {"APP_ENV": ENV}, "approval_run": approval_run,
            },
        )
    )


def decide(release: tuple[ReleaseConfig, Definitions], instance: DagsterInstance, decision: Decision) -> str:
    config, defs = release
    result = launch.approve(config, defs, instance, ENV, decision=decision, approver=APPROVER, reason="CAB-7")
    assert result.success, report.failure_message(result)
    return result.run_id


def run_approve(defs: Definitions, instance: DagsterInstance, **config: Any) -> str:
    """Execute approve_staging with this op config as the launchpad would send it; the failure message or ''."""
    run_config = {"ops": {approval_op_name(ENV): {"config": {"approver": APPROVER, "reason": "CAB-7", **config}}}}
    result = defs.resolve_job_def(approve_job_name(ENV)).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )
    return "" if result.success else report.failure_message(result)


def test_only_the_newest_decision_counts_for_exactly_the_digest_it_names(release, instance: DagsterInstance) -> None:
    config, _ = release
    push(instance, "contact-us", "1.0.0-1")
    first = decide(release, instance, Decision.YES)
    assert approved_candidate(instance, config, ENV, ["contact-us"])[1]["contact-us"].run_id == first

    push(instance, "contact-us", "1.0.0-2")  # a new push after the decision
    with pytest.raises(DeploymentRefusedError, match=(
        r"staging: the candidate changed after the last decision: yes by carol@bank\.example at .* was for "
        r"contact-us 1\.0\.0-1 \(sha256:\w+\), the candidate is now contact-us 1\.0\.0-2 \(sha256:\w+\)"
    )):
        approved_candidate(instance, config, ENV, ["contact-us"])

    decide(release, instance, Decision.YES)
    decide(release, instance, Decision.NO)  # the newest decision wins over an older yes for the same digest
    with pytest.raises(DeploymentRefusedError, match=r"contact-us 1\.0\.0-2 .* was rejected by carol@bank\.example"):
        approved_candidate(instance, config, ENV, ["contact-us"])
    latest = approval_history(instance, ENV)[0]
    assert (latest.decision, latest.versions) == (Decision.NO, {"contact-us": "1.0.0-2"})


def test_a_decision_is_used_by_one_deployment(release, instance: DagsterInstance) -> None:
    config, _ = release
    old = push(instance, "contact-us", "1.0.0-1")
    released(instance, "contact-us", old, "deployed")
    new = push(instance, "contact-us", "1.0.0-2")
    decision = decide(release, instance, Decision.YES)
    released(instance, "contact-us", new, "deployed", approval_run=decision)  # deployed under it
    assert approved_candidate(instance, config, ENV, ["contact-us"])[1] == {}  # runs its candidate: nothing to do
    released(instance, "contact-us", old, "rolled_back")  # rolled back: putting 1.0.0-2 back needs a new decision
    with pytest.raises(DeploymentRefusedError, match=r"was used by deployment run .*an approval applies once"):
        approved_candidate(instance, config, ENV, ["contact-us"])
    decide(release, instance, Decision.YES)
    assert "contact-us" in approved_candidate(instance, config, ENV, ["contact-us"])[1]


def test_a_service_that_runs_its_candidate_needs_no_decision_so_one_service_can_be_repaired(
    release, instance: DagsterInstance
) -> None:
    config, _ = release
    digest = push(instance, "contact-us", "1.0.0-1")
    released(instance, "contact-us", digest, "deployed")
    push(instance, "payments", "1.0.0-1")  # no one approved it
    assert approved_candidate(instance, config, ENV, ["contact-us"])[1] == {}
    with pytest.raises(DeploymentRefusedError, match=r"staging: no one approved payments 1\.0\.0-1"):
        approved_candidate(instance, config, ENV, ["contact-us", "payments"])


def test_reexecuting_an_approval_run_is_refused(release, instance: DagsterInstance) -> None:
    _, defs = release
    push(instance, "contact-us", "1.0.0-1")
    original = decide(release, instance, Decision.YES)
    job = defs.resolve_job_def(approve_job_name(ENV))
    parent = instance.get_run_by_id(original)
    in_process = {**parent.run_config, "execution": {"config": {"in_process": {}}}}  # as the UI would, in this process
    rerun = instance.create_run_for_job(job, run_config=in_process, parent_run_id=original, root_run_id=original)
    result = execute_run(InMemoryJob(job), rerun, instance)
    assert not result.success
    assert f"re-executes approval run {original}; a decision is recorded once" in report.failure_message(result)
    assert len(approval_history(instance, ENV)) == 1


@pytest.mark.parametrize(
    ("config", "refusal"),
    [
        ({"decision": "yes", "approver": ""}, "approver: '' is not an email address"),
        ({"decision": "yes", "approver": "carol"}, "approver: 'carol' is not an email address"),
        ({"decision": "yes", "reason": "   "}, "reason: empty"),
        ({"decision": "maybe"}, "decision: 'maybe' is neither yes nor no"),
        ({"decision": "yes", "expect": "contact-us=1.0.0-9"}, "the candidate changed since it was reviewed: "
         "contact-us is now 1.0.0-1"),
        ({"decision": "yes", "expect": "ledger=1.0.0-1"}, "expect: 'ledger' has no candidate"),
    ],
)
def test_what_a_person_types_is_checked_before_it_is_recorded(
    release, instance: DagsterInstance, config: dict, refusal: str
) -> None:
    push(instance, "contact-us", "1.0.0-1")
    assert refusal in run_approve(release[1], instance, **config)
    assert approval_history(instance, ENV) == []


@pytest.mark.parametrize(("typed", "recorded"), [("YES", "yes"), ("No", "no"), (True, "yes"), (False, "no")])
def test_yes_and_no_in_any_case_and_as_yaml_booleans(
    release, instance: DagsterInstance, typed: object, recorded: str
) -> None:
    push(instance, "contact-us", "1.0.0-1")
    assert run_approve(release[1], instance, decision=typed, expect="contact-us=1.0.0-1") == ""
    assert approval_history(instance, ENV)[0].decision.value == recorded


def test_the_approve_job_asks_for_the_decision_and_nothing_else(release) -> None:
    job = release[1].resolve_job_def(approve_job_name(ENV))
    schema = job.run_config_schema.config_type
    assert set(schema.fields["resources"].config_type.fields) == {"io_manager"}
    fields = schema.fields["ops"].config_type.fields[approval_op_name(ENV)].config_type.fields["config"].config_type
    assert set(fields.fields) == {"decision", "approver", "reason", "expect"}
    assert all(field.description for field in fields.fields.values())


def test_the_approver_sees_each_version_and_digest_decided_on_and_the_trail_lists_them(
    release, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `fintech-release approve` prints is what was signed off; `approvals` lists the same per decision."""
    config, _ = release
    digests = {
        "contact-us": push(instance, "contact-us", "1.0.0-3"), "payments": push(instance, "payments", "1.0.0-7.r1")
    }
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    command = ["--config", str(config.source), "--in-process"]
    assert cli_main([*command, "approve", ENV, "--decision", "yes", "--approver", APPROVER, "--reason", "CAB-9"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"{ENV}: yes by {APPROVER} recorded (run ")
    assert [line.split() for line in said[1:]] == [
        ["contact-us", "1.0.0-3", digests["contact-us"]], ["payments", "1.0.0-7.r1", digests["payments"]]
    ]
    assert cli_main([*command, "approvals", ENV]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert f"yes {APPROVER} — CAB-9 (run " in listed[0] and listed[1:] == said[1:]
