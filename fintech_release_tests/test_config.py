"""release.yaml contract: a good file loads into typed models; a bad one fails with one line naming
the file, the field and the value, before any definitions exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, Definitions

from fintech_release.assets.environments import database_name
from fintech_release.cli import main as cli_main
from fintech_release.config import load_release_config
from fintech_release.errors import ReleaseConfigError
from fintech_release.jobs import approve_job_name, deploy_job_name, rollback_job_name, teardown_job_name
from fintech_release.release_graph import build_definitions

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "release.yaml"


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _on_bitbucket_with_a_path(document: dict) -> None:
    """Bitbucket Cloud as the source, every repository a slug but services[1]'s, which is a path."""
    document["source_control"] = {"platform": "bitbucket", "bitbucket": {"flavor": "cloud", "owner": "acme"}}
    for service in document["services"]:
        service["repository"] = service["name"]
    document["services"][1]["repository"] = "../git/payments.git"


def _hyphenated(document: dict) -> dict:
    """The demo with environments qa-eu (ephemeral, was ci), pre-prod (was staging) and production."""
    document["environments"][0]["name"] = "qa-eu"
    document["environments"][1]["name"] = "pre-prod"
    document["environments"][2]["promotes_from"] = "pre-prod"
    return document


@pytest.fixture
def demo_document() -> dict:
    return yaml.safe_load(DEMO_CONFIG.read_text())


def test_demo_config_loads_services_and_environments_in_file_order() -> None:
    config = load_release_config(DEMO_CONFIG)
    assert config.service_names == ["contact-us", "payments", "accounts"]
    assert [e.name for e in config.environments] == ["ci", "staging", "production"]
    assert config.service("payments").port == 8082
    production = config.environments[2]
    assert production.approval.required and production.approval.four_eyes
    assert production.promotes_from == "staging"


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path, demo_document: dict) -> None:
    config = load_release_config(_write(tmp_path, demo_document))
    assert config.resolve_path("x/repo.git") == (tmp_path / "x" / "repo.git").resolve()
    assert config.resolve_path("/abs/repo.git") == Path("/abs/repo.git")


def test_hyphenated_environment_names_work_end_to_end(
    tmp_path: Path, demo_document: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """pre-prod and qa-eu keep their names in asset keys and become pre_prod / qa_eu in every Dagster name."""
    path = _write(tmp_path, _hyphenated(demo_document))
    assert cli_main(["--config", str(path), "check"]) == 0
    assert "environments: qa-eu (local), pre-prod (local), production (local)" in capsys.readouterr().out
    config = load_release_config(path)
    defs = build_definitions(config)
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()

    assert (deploy_job_name("pre-prod"), approve_job_name("pre-prod")) == ("deploy_pre_prod", "approve_pre_prod")
    assert (rollback_job_name("qa-eu"), teardown_job_name("qa-eu")) == ("rollback_qa_eu", "teardown_qa_eu")
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"deploy_qa_eu", "rollback_qa_eu", "teardown_qa_eu", "deploy_pre_prod", "approve_pre_prod",
            "rollback_pre_prod", "deploy_production"} <= jobs
    assert "pre_prod_releases" in repository.get_job("deploy_pre_prod").graph.node_dict
    assert "remove_qa_eu" in repository.get_job("teardown_qa_eu").graph.node_dict
    assert {"deploy_qa_eu_after_build", "teardown_qa_eu_after_failure"} <= {s.name for s in repository.sensor_defs}

    graph = repository.asset_graph
    release = AssetKey(["pre-prod", "release", "payments"])
    assert release.to_user_string() == "pre-prod/release/payments"
    assert graph.get(release).group_name == "env_pre_prod"
    assert release in graph.get(AssetKey(["production", "release", "payments"])).parent_keys
    assert database_name("pre-prod", config.service("payments")) == "pre_prod_payments"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["services"][0].update(portt=9000), r"release\.yaml:\d+: services\[0\]\.portt: unknown key"),
        (lambda d: d["services"][2].update(name="payments"), r"services\[2\]\.name: duplicate value 'payments'"),
        (lambda d: d["services"][1].pop("repository"), r"release\.yaml:\d+: services\[1\]\.repository: required field"),
        (lambda d: d["services"][1].update(port=70000), r"services\[1\]\.port: .*65535 \(got 70000\)"),
        (lambda d: d["services"][0].update(port="http"), r"services\[0\]\.port: .*integer.*\(got 'http'\)"),
        (
            lambda d: d["services"][0]["deployment"].update(environments={"prod": {"replicas": 1}}),
            r"services\[0\]\.deployment\.environments: unknown environment 'prod' \(declared: ci, production, staging\)",
        ),
        (
            lambda d: d["environments"][2].update(promotes_from="qa"),
            r"environments\[2\]\.promotes_from: unknown environment 'qa'",
        ),
        (lambda d: d["services"][0].update(name="Contact_Us"), r"services\[0\]\.name: .*\(got 'Contact_Us'\)"),
        (lambda d: d["analysis"]["quality_gate"].update(critical=-1), r"analysis\.quality_gate\.critical"),
        (
            lambda d: d["environments"][1].update(platform="gke"),
            r"environments\[1\]: .*gke: required when platform is gke",
        ),
        (
            lambda d: d["environments"][1].update(
                platform="gke", gke={"project": "acme-prod", "region": "europe-west2", "cloudsql_instance": "db"}
            ),
            r"environments\[1\]\.gke\.cloudsql_instance: .*\(got 'db'\)",
        ),
        (
            lambda d: d.update(source_control={"platform": "bitbucket"}),
            r"source_control: .*bitbucket: required when platform is bitbucket",
        ),
        (
            lambda d: d.update(
                source_control={"platform": "bitbucket", "bitbucket": {"flavor": "server", "owner": "PAY"}}
            ),
            r"source_control\.bitbucket: .*base_url: required for Bitbucket Server",
        ),
        (
            lambda d: d.update(notifications={"email": {"password_env": "smtp-password"}}),
            r"notifications\.email\.password_env: .*\(got 'smtp-password'\)",
        ),
        (
            lambda d: d["environments"][1].update(deploy_after_build=True),
            r"environments\[1\]: .*deploy_after_build: only for environments that deploy the newest pushed images",
        ),
        (
            lambda d: d["services"][2].update(repository="./" + d["services"][0]["repository"]),
            r"release\.yaml: services\[2\]\.repository: '.*' is also services\[0\]\.repository; each service",
        ),
        (
            _on_bitbucket_with_a_path,
            r"release\.yaml: services\[1\]\.repository: '\.\./git/payments\.git' is not a Bitbucket repository slug",
        ),
    ],
    ids=[
        "unknown-key",
        "duplicate-service",
        "missing-repository",
        "port-out-of-range",
        "port-not-a-number",
        "unknown-environment-override",
        "unknown-promotion-source",
        "bad-service-name",
        "negative-gate-limit",
        "gke-without-settings",
        "bad-cloudsql-instance",
        "bitbucket-without-settings",
        "bitbucket-server-without-url",
        "secret-env-not-a-variable-name",
        "deploy-after-build-with-approval",
        "two-services-one-repository",
        "bitbucket-repository-not-a-slug",
    ],
)
def test_bad_file_fails_with_one_line_naming_file_field_and_value(
    tmp_path: Path, demo_document: dict, mutate, expected: str
) -> None:
    mutate(demo_document)
    path = _write(tmp_path, demo_document)
    with pytest.raises(ReleaseConfigError, match=expected) as raised:
        load_release_config(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert "\n" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_broken_yaml_and_missing_file_are_reported_with_their_path(tmp_path: Path) -> None:
    broken = tmp_path / "release.yaml"
    broken.write_text("services:\n  - name: a\n   port: [\n")
    with pytest.raises(ReleaseConfigError, match=rf"{broken}:\d+: not valid YAML"):
        load_release_config(broken)
    with pytest.raises(ReleaseConfigError, match=r"nowhere\.yaml: cannot read release config"):
        load_release_config(tmp_path / "nowhere.yaml")


def test_cli_check_prints_one_line_and_exits_2_on_a_bad_file(
    tmp_path: Path, demo_document: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_document["services"][0]["port"] = 1
    path = _write(tmp_path, demo_document)
    assert cli_main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fintech-release: {path}:") and "services[0].port" in err and "(got 1)" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_dagster_refuses_to_load_the_code_location_with_the_config_error(tmp_path: Path, demo_document: dict) -> None:
    """The real `dagster definitions validate` reports our message, not a pydantic trace, and builds nothing."""
    demo_document["services"][2]["name"] = "contact-us"
    path = _write(tmp_path, demo_document)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        env={"FINTECH_RELEASE_CONFIG": str(path), "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"ReleaseConfigError: {path}: services[2].name: duplicate value 'contact-us'" in output
    assert "pydantic" not in output and "ValidationError" not in output
