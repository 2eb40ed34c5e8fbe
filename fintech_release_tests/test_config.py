"""release.yaml contract: what `fintech-release check` accepts, the code location loads and the platform can
deploy; what it refuses, `check` and the code location both refuse with the same one line naming the file,
the line, the field and the value.

Runs against the real loader, the real CLI entry point (`main([... "check"])`), the real code-location module
(fintech_release/definitions.py, executed as Dagster imports it) and, for a handful of files, the real
`dagster definitions validate` in a subprocess.
"""

from __future__ import annotations

import re
import resource
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInvalidDefinitionError, Definitions

from fintech_release import release_graph
from fintech_release.assets.environments import database_name
from fintech_release.cli import main as cli_main
from fintech_release.config import CONFIG_ENV_VAR, load_release_config, yaml_reader
from fintech_release.errors import ReleaseConfigError
from fintech_release.jobs import approve_job_name, deploy_job_name, rollback_job_name, teardown_job_name
from fintech_release.release_graph import build_definitions

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "release.yaml"
DEFINITIONS_MODULE = REPO_ROOT / "fintech_release" / "definitions.py"
# 9 references at each of 9 levels: 9**9 (387 million) strings from a 371-byte file, were aliases expanded.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "services: *i",
        "environments: *i",
    ]
)
Mutation = Callable[[dict], object]


# --- helpers ---------------------------------------------------------------------------------------------------


@pytest.fixture
def demo_document() -> dict:
    return yaml.safe_load(DEMO_CONFIG.read_text())


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _write_text(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "release.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _refused_everywhere(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """`check` exits 2 with one stderr line; the code location fails with the same line. Returns that line."""
    assert cli_main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("fintech-release: "), err[:500]
    message = err.removeprefix("fintech-release: ").rstrip("\n")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    with pytest.raises(ReleaseConfigError) as raised:
        runpy.run_path(str(DEFINITIONS_MODULE))  # what Dagster imports to load the code location
    assert str(raised.value) == message
    assert raised.value.__cause__ is None and (raised.value.__suppress_context__ or raised.value.__context__ is None)
    assert message.startswith(str(path)) and len(message) < 1000
    return message


def _set(*path_and_value: object) -> Mutation:
    """A mutation setting document[path...] = value, creating mappings on the way."""
    *path, value = path_and_value

    def mutate(document: dict) -> None:
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
        node[path[-1]] = value

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    return lambda document: [mutate(document) for mutate in mutations]


def _on_bitbucket(repository_of_payments: str) -> Mutation:
    """Bitbucket Cloud as the source, every repository a slug but payments', which is `repository_of_payments`."""

    def mutate(document: dict) -> None:
        document["source_control"] = {"platform": "bitbucket", "bitbucket": {"flavor": "cloud", "owner": "acme"}}
        for service in document["services"]:
            service["repository"] = service["name"]
        document["services"][1]["repository"] = repository_of_payments

    return mutate


def _mutated(document: dict, mutate: Mutation) -> dict:
    mutate(document)
    return document


def _hyphenated(document: dict) -> dict:
    """The demo with environments qa-eu (ephemeral, was ci), pre-prod (was staging) and production."""
    document["environments"][0]["name"] = "qa-eu"
    document["environments"][1]["name"] = "pre-prod"
    document["environments"][2]["promotes_from"] = "pre-prod"
    return document


# --- what loads ------------------------------------------------------------------------------------------------


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
            "rollback_pre_prod", "restore_pre_prod", "deploy_production"} <= jobs
    assert "pre_prod_releases" in repository.get_job("deploy_pre_prod").graph.node_dict
    assert "record_pre_prod_approval" in repository.get_job("approve_pre_prod").graph.node_dict
    assert "remove_qa_eu" in repository.get_job("teardown_qa_eu").graph.node_dict
    sensors = {s.name for s in repository.sensor_defs}
    assert {"deploy_qa_eu_after_build", "teardown_qa_eu_after_failure", "watch_pre_prod_health"} <= sensors

    graph = repository.asset_graph
    release = AssetKey(["pre-prod", "release", "payments"])
    assert release.to_user_string() == "pre-prod/release/payments"
    assert graph.get(release).group_name == "env_pre_prod"
    assert release in graph.get(AssetKey(["production", "release", "payments"])).parent_keys
    assert database_name("pre-prod", config.service("payments")) == "pre_prod_payments"


@pytest.mark.parametrize(
    "mutate",
    [
        _set("services", 0, "branch", "feature/JIRA-12_login"),
        _set("services", 0, "deployment", "env", {"java_opts": "-Xmx256m", "_PRIVATE": "1"}),
        _set("services", 0, "deployment", "cpu", "0.5"),
        _set("services", 0, "deployment", "memory", "1.5Gi"),
        _set("services", 1, "deployment", "environments", "production", {"replicas": 4,
                                                                          "autoscaling": {"max_replicas": 4}}),
        _set("build", "base_image", "localhost:5000/team/jre:17.0.9_9-slim"),
        _set("registry", "host", "localhost:5000"),
        _set("registry", "host", "registry.bank.example"),
        _set("notifications", "email", {"sender": "Releases <releases@bank.example>",
                                        "master_recipients": ["a@b.example"]}),
        _set("notifications", "dagster_url", "https://[::1]:3000/dagster"),
        _set("environments", 2, "address", "127.0.9.1"),
        _set("services", 0, "database", "c" * (64 - len("production_"))),
        _set("build", "jre_modules", ["java.base", "java.sql", "jdk.crypto.ec"]),
        _set("registry", {"platform": "artifact_registry", "project": "acme-prod", "location": "europe-west2",
                          "repository": "releases"}),
        _set("registry", {"platform": "gcr", "project": "acme-prod", "location": "eu"}),
        _set("registry", {"host": "127.0.0.1:5443", "namespace": "team/releases", "tls": True, "ca_file": "ca.pem",
                          "username_env": "REGISTRY_USER", "password_env": "REGISTRY_PASSWORD"}),
        _set("analysis", {"platform": "sonarqube", "sonarqube": {"url": "https://sonar.bank.example",
                                                                 "project_key_prefix": "bank:"}}),
        _all(_set("registry", {"platform": "artifact_registry", "project": "acme-prod", "location": "europe-west2",
                               "repository": "releases"}),
             _set("build", {"builder": "cloud_build",
                            "base_image": "europe-west2-docker.pkg.dev/acme-prod/releases/jre:17",
                            "cloud_build": {"project": "acme-prod", "staging_bucket": "acme-prod-builds"}})),
    ],
    ids=[
        "branch-with-slash", "lowercase-env-name", "cpu-cores", "memory-fraction", "max-replicas-equal",
        "base-image-with-registry", "registry-localhost", "registry-domain", "sender-with-display-name",
        "url-ipv6-with-path", "explicit-address", "database-exactly-64", "jre-modules",
        "artifact-registry", "container-registry-eu", "local-registry-tls-htpasswd", "sonarqube", "cloud-build",
    ],
)
def test_values_at_the_edge_of_each_rule_load(tmp_path: Path, demo_document: dict, mutate: Mutation) -> None:
    mutate(demo_document)
    load_release_config(_write(tmp_path, demo_document))


# --- what is refused, everywhere, in one line ------------------------------------------------------------------

REFUSED: list[tuple[str, Mutation, str]] = [
    # Shape and cross-references.
    ("unknown-key", _set("services", 0, "portt", 9000), r":\d+: services\[0\]\.portt: unknown key$"),
    ("source-key", _set("source", "elsewhere.yaml"), r":\d+: source: unknown key$"),
    ("duplicate-service", _set("services", 2, "name", "payments"),
     r":\d+: services\[2\]\.name: duplicate value 'payments' \(also services\[1\]\)$"),
    ("missing-repository", lambda d: d["services"][1].pop("repository"),
     r":\d+: services\[1\]\.repository: required field is missing$"),
    ("port-out-of-range", _set("services", 1, "port", 70000), r":\d+: services\[1\]\.port: .*65535 \(got 70000\)$"),
    ("port-not-a-number", _set("services", 0, "port", "http"),
     r":\d+: services\[0\]\.port: .*integer.*\(got 'http'\)$"),
    ("unknown-environment-override", _set("services", 0, "deployment", "environments", {"prod": {"replicas": 1}}),
     r":\d+: services\[0\]\.deployment\.environments\.prod: unknown environment 'prod' "
     r"\(declared: ci, production, staging\)$"),
    ("unknown-promotion-source", _set("environments", 2, "promotes_from", "qa"),
     r":\d+: environments\[2\]\.promotes_from: unknown environment 'qa'"),
    ("bad-service-name", _set("services", 0, "name", "Contact_Us"),
     r":\d+: services\[0\]\.name: .*\(got 'Contact_Us'\)$"),
    ("negative-gate-limit", _set("analysis", "quality_gate", "critical", -1),
     r":\d+: analysis\.quality_gate\.critical: .*\(got -1\)$"),
    ("gke-without-settings", _set("environments", 1, "platform", "gke"),
     r":\d+: environments\[1\]\.gke: required when platform is gke"),
    ("bad-cloudsql-instance", _set("environments", 1, {"name": "staging", "platform": "gke", "gke": {
        "project": "acme-prod", "region": "europe-west2", "cloudsql_instance": "db"}}),
     r":\d+: environments\[1\]\.gke\.cloudsql_instance: .*\(got 'db'\)$"),
    ("tls-without-host", _set("environments", 1, {"name": "staging", "platform": "gke", "gke": {
        "project": "acme-prod", "region": "europe-west2", "cloudsql_instance": "acme-prod:europe-west2:db",
        "tls_secret": "api-tls"}}),
     r":\d+: environments\[1\]\.gke\.tls_secret: needs gke\.ingress_host"),
    ("database-cidr-with-host-bits", _set("environments", 1, {"name": "staging", "platform": "gke", "gke": {
        "project": "acme-prod", "region": "europe-west2", "cloudsql_instance": "acme-prod:europe-west2:db",
        "database_cidr": "10.1.2.3/8"}}),
     r":\d+: environments\[1\]\.gke\.database_cidr: .*did you mean 10\.0\.0\.0/8"),
    ("bitbucket-without-settings", _set("source_control", {"platform": "bitbucket"}),
     r":\d+: source_control\.bitbucket: required when platform is bitbucket"),
    ("bitbucket-server-without-url", _set("source_control", {"platform": "bitbucket", "bitbucket": {
        "flavor": "server", "owner": "PAY"}}),
     r":\d+: source_control\.bitbucket\.base_url: required for Bitbucket Server"),
    ("secret-env-not-a-variable-name", _set("notifications", {"email": {"password_env": "smtp-password"}}),
     r":\d+: notifications\.email\.password_env: .*\(got 'smtp-password'\)$"),
    ("deploy-after-build-with-approval", _set("environments", 1, "deploy_after_build", True),
     r":\d+: environments\[1\]\.deploy_after_build: only for environments that deploy the newest pushed images"),
    ("two-services-one-repository", lambda d: d["services"][2].update(repository="./" + d["services"][0]["repository"]),
     r":\d+: services\[2\]\.repository: '.*' is also services\[0\]\.repository; each service"),
    ("bitbucket-repository-not-a-slug", _on_bitbucket("../git/payments.git"),
     r":\d+: services\[1\]\.repository: '\.\./git/payments\.git' is not a Bitbucket repository slug"),
    ("services-not-a-list", _set("services", {"name": "contact-us"}),
     r":\d+: services: Input should be a valid tuple \(got \{'name': 'contact-us'\}\)$"),
    # Environment names go into Dagster names, labels, Terraform prefixes and database names.
    ("environment-ends-with-dash", _set("environments", 0, "name", "qa-"),
     r":\d+: environments\[0\]\.name: must be 1-21 lowercase letters, digits and '-'.*\(got 'qa-'\)$"),
    ("environment-with-underscore", _set("environments", 0, "name", "qa_eu"),
     r":\d+: environments\[0\]\.name: .*\(got 'qa_eu'\)$"),
    ("environment-uppercase", _set("environments", 0, "name", "QA"), r":\d+: environments\[0\]\.name: .*\(got 'QA'\)$"),
    ("environment-with-line-break", _set("environments", 0, "name", "ci\n"),
     r":\d+: environments\[0\]\.name: .*\(got 'ci\\n'\)$"),
    ("environment-too-long", _set("environments", 0, "name", "e" * 22),
     r":\d+: environments\[0\]\.name: .*\(got 'e{22}'\)$"),
    ("override-key-not-an-environment-name", _set("services", 0, "deployment", "environments", {"Prod": {}}),
     r":\d+: services\[0\]\.deployment\.environments\.Prod: must be 1-21 lowercase .*\(got 'Prod'\)$"),
    # Promotion chains.
    ("promotes-from-itself", _set("environments", 1, "promotes_from", "staging"),
     r":\d+: environments\[1\]\.promotes_from: 'staging' cannot promote from itself$"),
    ("promotion-cycle", _set("environments", 1, "promotes_from", "production"),
     r":\d+: environments\[1\]\.promotes_from: 'production' makes a promotion cycle "
     r"\(staging → production → staging\)"),
    ("longer-promotion-cycle", _all(_set("environments", 0, "deploy_after_build", False),
                                    _set("environments", 0, "promotes_from", "production"),
                                    _set("environments", 1, "promotes_from", "ci")),
     r":\d+: environments\[0\]\.promotes_from: 'production' makes a promotion cycle "
     r"\(ci → production → staging → ci\)"),
    # Addresses: set, or the default 127.0.<position + 1>.1.
    ("address-is-anothers-default", _set("environments", 2, "address", "127.0.2.1"),
     r":\d+: environments\[2\]\.address: 127\.0\.2\.1 is also the address of environments\[1\] 'staging' "
     r"\(its default 127\.0\.<position \+ 1>\.1\)"),
    ("default-address-is-anothers", _set("environments", 0, "address", "127.0.3.1"),
     r":\d+: environments\[2\]: 127\.0\.3\.1 \(this environment's default address\) is also the address of "
     r"environments\[0\] 'ci' \(set\)"),
    ("two-environments-one-address", _all(_set("environments", 0, "address", "127.0.9.1"),
                                          _set("environments", 1, "address", "127.0.9.1")),
     r":\d+: environments\[1\]\.address: 127\.0\.9\.1 is also the address of environments\[0\] 'ci' \(set\)"),
    # Autoscaling after merging overrides.
    ("max-replicas-below-replicas",
     _set("services", 0, "deployment", {"replicas": 4, "autoscaling": {"max_replicas": 3}}),
     r":\d+: services\[0\]\.deployment\.autoscaling\.max_replicas: max_replicas 3 is below replicas 4 "
     r"in environment 'ci'"),
    ("override-max-replicas-below-replicas", _set("services", 1, "deployment", "environments", "production", {
        "replicas": 9, "autoscaling": {"max_replicas": 5}}),
     r":\d+: services\[1\]\.deployment\.environments\.production\.autoscaling\.max_replicas: max_replicas 5 is "
     r"below replicas 9 in environment 'production'"),
    ("override-replicas-above-service-max", _set("services", 1, "deployment", "autoscaling", {"max_replicas": 2}),
     r":\d+: services\[1\]\.deployment\.environments\.production\.replicas: max_replicas 2 is below replicas 3 "
     r"in environment 'production'"),
    # MySQL database names: <env>_<database>, at most 64 characters, one service each.
    ("database-too-long-with-longest-environment", _set("services", 0, "database", "c" * (65 - len("production_"))),
     r":\d+: services\[0\]\.database: 'c{54}' becomes database 'production_c{54}' in environment 'production': "
     r"65 characters, MySQL allows 64$"),
    ("database-shared-by-two-services", _set("services", 2, "database", "payments"),
     r":\d+: services\[2\]\.database: 'payments' becomes database 'ci_payments' in environment 'ci', which "
     r"services\[1\] \(payments\) uses in 'ci'; each service needs its own database$"),
    ("database-names-collide-across-environments", _all(
        _set("environments", 0, "name", "qa"), _set("environments", 1, "name", "qa-eu"),
        _set("environments", 2, "promotes_from", "qa-eu"), _set("services", 0, "database", "eu_payments"),
        _set("services", 1, "database", "payments")),
     r":\d+: services\[1\]\.database: 'payments' becomes database 'qa_eu_payments' in environment 'qa-eu', which "
     r"services\[0\] \(contact-us\) uses in 'qa'"),
    # The registry: host[:port], a form Docker reads as a registry.
    ("registry-port-zero", _set("registry", "host", "127.0.0.1:0"),
     r":\d+: registry\.host: port 0 is out of range \(1-65535\) \(got '127\.0\.0\.1:0'\)$"),
    ("registry-port-too-large", _set("registry", "host", "127.0.0.1:65536"),
     r":\d+: registry\.host: port 65536 is out of range"),
    ("registry-empty-host", _set("registry", "host", ""), r":\d+: registry\.host: must be host\[:port\] .*\(got ''\)$"),
    ("registry-host-with-space", _set("registry", "host", "my registry:5000"),
     r":\d+: registry\.host: must be host\[:port\]"),
    ("registry-host-with-scheme", _set("registry", "host", "http://127.0.0.1:5000"),
     r":\d+: registry\.host: must be host"),
    ("registry-host-with-path", _set("registry", "host", "127.0.0.1:5000/team"), r":\d+: registry\.host: must be host"),
    ("registry-read-as-docker-hub", _set("registry", "host", "registry"),
     r":\d+: registry\.host: Docker would read this as a Docker Hub namespace"),
    ("artifact-registry-without-repository", _set("registry", {"platform": "artifact_registry", "project": "acme-prod",
                                                               "location": "europe-west2"}),
     r":\d+: registry\.repository: required for platform artifact_registry$"),
    ("gcr-in-a-region", _set("registry", {"platform": "gcr", "project": "acme-prod", "location": "europe-west2"}),
     r":\d+: registry\.location: Container Registry is gcr\.io, "),
    ("google-registry-with-a-host", _set("registry", {"platform": "gcr", "project": "acme-prod", "host": "gcr.io"}),
     r":\d+: registry\.host: only for platform local .*Application Default Credentials"),
    ("local-registry-with-a-project", _set("registry", "project", "acme-prod"),
     r":\d+: registry\.project: only for platform artifact_registry or gcr"),
    ("registry-user-without-password", _set("registry", "username_env", "REGISTRY_USER"),
     r":\d+: registry\.password_env: username_env and password_env go together$"),
    ("registry-ca-without-tls", _set("registry", "ca_file", "ca.pem"), r":\d+: registry\.ca_file: needs tls: true"),
    ("cloud-build-without-settings", _set("build", "builder", "cloud_build"),
     r":\d+: build\.cloud_build: required when builder is cloud_build"),
    ("buildkit-is-not-offered", _set("build", "builder", "buildkit"),
     r":\d+: build\.builder: Input should be 'docker' or"),
    ("cloud-build-to-a-local-registry", _set("build", {"builder": "cloud_build", "cloud_build": {
        "project": "acme-prod", "staging_bucket": "acme-prod-builds"}}),
     r":\d+: build\.builder: cloud_build pushes to the registry: it needs registry\.platform artifact_registry"),
    ("cloud-build-base-image-elsewhere", _all(
        _set("registry", {"platform": "gcr", "project": "acme-prod"}),
        _set("build", {"builder": "cloud_build",
                       "cloud_build": {"project": "acme-prod", "staging_bucket": "b-builds"}})),
     r":\d+: build\.base_image: Cloud Build pulls the base image: it must be in the registry, e\.g\. "
     r"gcr\.io/acme-prod/jre"),
    ("sonarqube-without-server", _set("analysis", "platform", "sonarqube"),
     r":\d+: analysis\.sonarqube: required when platform is sonarqube"),
    ("sonarqube-url-with-token", _set("analysis", {"platform": "sonarqube",
                                                   "sonarqube": {"url": "https://squ_x:@sonar.bank.example"}}),
     r":\d+: analysis\.sonarqube\.url: must not hold credentials"),
    # The base image: Docker's reference grammar, with a tag and no digest (it is built and tagged here).
    ("base-image-uppercase", _set("build", "base_image", "fintech-release/JRE:17"),
     r":\d+: build\.base_image: the repository 'fintech-release/JRE' must be lowercase"),
    ("base-image-non-ascii-tag", _set("build", "base_image", "fintech-release/jre:17é"),
     r":\d+: build\.base_image: not an image reference"),
    ("base-image-bad-tag", _set("build", "base_image", "fintech-release/jre:.17"),
     r":\d+: build\.base_image: not an image reference"),
    ("base-image-tag-too-long", _set("build", "base_image", "fintech-release/jre:" + "t" * 129),
     r":\d+: build\.base_image: not an image reference"),
    ("base-image-double-separator", _set("build", "base_image", "fintech-release/jre..x:17"),
     r":\d+: build\.base_image: not an image reference"),
    ("base-image-short-digest", _set("build", "base_image", "fintech-release/jre:17@sha256:" + "a" * 63),
     r":\d+: build\.base_image: digest 'sha256:a{63}' is not sha256:<64 lowercase hex digits>"),
    ("base-image-without-tag", _set("build", "base_image", "fintech-release/jre"),
     r":\d+: build\.base_image: must be name:tag"),
    ("base-image-with-digest", _set("build", "base_image", "fintech-release/jre:17@sha256:" + "a" * 64),
     r":\d+: build\.base_image: must be name:tag"),
    ("image-namespace", _set("build", "image_namespace", "team//releases"),
     r":\d+: build\.image_namespace: must be lowercase"),
    # Environment variables of a service.
    ("env-name-starts-with-digit", _set("services", 0, "deployment", "env", {"1BAD": "x"}),
     r":\d+: services\[0\]\.deployment\.env\.1BAD: '1BAD' is not an environment variable name"),
    ("env-name-with-dash", _set("services", 0, "deployment", "env", {"MY-VAR": "x"}),
     r":\d+: services\[0\]\.deployment\.env\.MY-VAR: 'MY-VAR' is not an environment variable name"),
    ("env-port-set-by-runtime", _set("services", 0, "deployment", "env", {"PORT": "9000"}),
     r":\d+: services\[0\]\.deployment\.env\.PORT: PORT is set by the runtime itself"),
    ("env-app-env-in-override",
     _set("services", 1, "deployment", "environments", "production", "env", {"APP_ENV": "x"}),
     r":\d+: services\[1\]\.deployment\.environments\.production\.env\.APP_ENV: APP_ENV is set by the runtime itself"),
    ("env-bind-address", _set("services", 2, "deployment", {"env": {"BIND_ADDRESS": "0.0.0.0"}}),
     r":\d+: services\[2\]\.deployment\.env\.BIND_ADDRESS: BIND_ADDRESS is set by the runtime itself"),
    # Branches, as `git check-ref-format --branch` takes them; repositories never start with '-'.
    ("branch-starts-with-dash", _set("services", 0, "branch", "--upload-pack=touch x"),
     r":\d+: services\[0\]\.branch: not a git branch name: it starts with '-'"),
    ("branch-with-two-dots", _set("services", 0, "branch", "a..b"), r":\d+: services\[0\]\.branch: .*contains '\.\.'"),
    ("branch-with-at-brace", _set("services", 0, "branch", "a@{1}"), r":\d+: services\[0\]\.branch: .*contains '@\{'"),
    ("branch-with-space", _set("services", 0, "branch", "feature x"), r":\d+: services\[0\]\.branch: .*contains ' '"),
    ("branch-with-tilde", _set("services", 0, "branch", "a~1"), r":\d+: services\[0\]\.branch: .*contains '~'"),
    ("branch-with-control-character", _set("services", 0, "branch", "a\x07b"),
     r":\d+: services\[0\]\.branch: .*contains '\\x07'"),
    ("branch-ends-with-lock", _set("services", 0, "branch", "feature/x.lock"),
     r":\d+: services\[0\]\.branch: .*'\.lock'"),
    ("branch-ends-with-slash", _set("services", 0, "branch", "feature/"),
     r":\d+: services\[0\]\.branch: .*ends with '/'"),
    ("branch-double-slash", _set("services", 0, "branch", "a//b"), r":\d+: services\[0\]\.branch: .*contains '//'"),
    ("branch-head", _set("services", 0, "branch", "HEAD"), r":\d+: services\[0\]\.branch: .*'HEAD' is reserved"),
    ("local-repository-starts-with-dash", _set("services", 0, "repository", "--upload-pack=touch x"),
     r":\d+: services\[0\]\.repository: must not be empty or start with '-'"),
    ("bitbucket-repository-starts-with-dash", _on_bitbucket("-payments"),
     r":\d+: services\[1\]\.repository: must not be empty or start with '-'"),
    ("bitbucket-repository-dot-dot", _on_bitbucket(".."),
     r":\d+: services\[1\]\.repository: '\.\.' is not a Bitbucket repository slug"),
    # Everything else that would pass and fail later.
    ("cpu-not-an-amount", _set("services", 0, "deployment", "cpu", "lots"),
     r":\d+: services\[0\]\.deployment\.cpu: must be"),
    ("cpu-zero", _set("services", 0, "deployment", "cpu", "0m"),
     r":\d+: services\[0\]\.deployment\.cpu: must be a CPU"),
    ("memory-zero", _set("services", 0, "deployment", "memory", "0Gi"), r":\d+: services\[0\]\.deployment\.memory: "),
    ("memory-unit", _set("services", 0, "deployment", "memory", "256MB"),
     r":\d+: services\[0\]\.deployment\.memory: must"),
    ("health-path-with-space", _set("services", 0, "health_path", "/he alth"),
     r":\d+: services\[0\]\.health_path: must"),
    ("relative-liveness-path", _set("services", 0, "liveness_path", "live"),
     r":\d+: services\[0\]\.liveness_path: must"),
    ("dockerfile-outside-repository", _set("services", 0, "dockerfile", "../Dockerfile"),
     r":\d+: services\[0\]\.dockerfile: must be a path inside the repository"),
    ("migrations-absolute", _set("services", 0, "migrations", "/etc"),
     r":\d+: services\[0\]\.migrations: must be a path"),
    ("url-with-credentials", _set("notifications", {"dagster_url": "http://admin:hunter2@dagster:3000"}),
     r":\d+: notifications\.dagster_url: must not hold credentials"),
    ("url-port-out-of-range", _set("notifications", {"dagster_url": "http://dagster:99999"}),
     r":\d+: notifications\.dagster_url: must be an http\(s\) URL"),
    ("url-without-host", _set("webhook", {"dagster_graphql_url": "http://:3000/graphql"}),
     r":\d+: webhook\.dagster_graphql_url: must be an http\(s\) URL with a host"),
    ("url-not-http", _set("gke", {"ingress_nginx_repo": "ftp://charts.example"}),
     r":\d+: gke\.ingress_nginx_repo: must be"),
    ("email-sender", _set("notifications", {"email": {"sender": "releases at bank"}}),
     r":\d+: notifications\.email\.sender: must be one mail address"),
    ("email-header-injection", _set("notifications", {"email": {"sender": "a@bank.example\r\nBcc: x@evil.example"}}),
     r":\d+: notifications\.email\.sender: must be one mail address.* \(got 'a@bank\.example\\r\\nBcc"),
    ("email-two-recipients-in-one",
     _set("notifications", {"email": {"master_recipients": ["a@b.example, c@d.example"]}}),
     r":\d+: notifications\.email\.master_recipients\[0\]: must be one mail address"),
    ("smtp-host-empty", _set("notifications", {"email": {"host": ""}}),
     r":\d+: notifications\.email\.host: must be a host"),
    ("webhook-host", _set("webhook", {"host": "local host"}), r":\d+: webhook\.host: must be a host name"),
    ("database-host-bad-address", _set("local", "database", "host", "999.1.1.1"),
     r":\d+: local\.database\.host: must be"),
    ("database-user-too-long", _set("local", "database", "user", "u" * 33), r":\d+: local\.database\.user: "),
    ("build-timeout-beyond-a-day", _set("build", "timeout_seconds", 10**30),
     r":\d+: build\.timeout_seconds: Input should be less than or equal to 86400 \(got 10{30}\)$"),
    ("jre-module", _set("build", "jre_modules", ["java.base", "java sql"]), r":\d+: build\.jre_modules\[1\]: must be"),
    ("jre-modules-empty", _set("build", "jre_modules", []), r":\d+: build\.jre_modules: .*at least 1 item"),
    ("executable-as-option", _set("build", "gradle_executable", "--init-script=x"),
     r":\d+: build\.gradle_executable: must not be empty or start with '-'"),
    ("helm-chart-as-option", _set("gke", {"ingress_nginx_chart": "--post-renderer=x"}),
     r":\d+: gke\.ingress_nginx_chart: "),
    ("helm-chart-version-range", _set("gke", {"ingress_nginx_version": ">=4"}), r":\d+: gke\.ingress_nginx_version: "),
    ("terraform-state-bucket", _set("gke", {"terraform_state_bucket": "My Bucket"}),
     r":\d+: gke\.terraform_state_bucket: "),
    ("bitbucket-owner",
     _set("source_control", {"platform": "bitbucket", "bitbucket": {"flavor": "cloud", "owner": "a/b"}}),
     r":\d+: source_control\.bitbucket\.owner: "),
    ("long-value-is-shortened", _set("services", 0, "name", "x" * 5000),
     r":\d+: services\[0\]\.name: .*\(got 'x{199}…\)$"),
    ("key-with-line-break", _set("services", 0, "a\nb", 1), r":\d+: services\[0\]\.'a\\nb': unknown key$"),
]


@pytest.mark.parametrize(("mutate", "expected"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_bad_file_is_refused_by_check_and_the_code_location_in_one_line(
    tmp_path: Path,
    demo_document: dict,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mutate: Mutation,
    expected: str,
) -> None:
    mutate(demo_document)
    path = _write(tmp_path, demo_document)
    message = _refused_everywhere(path, capsys, monkeypatch)
    assert re.match(re.escape(str(path)) + expected, message), message


def test_the_line_named_is_the_line_of_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DEMO_CONFIG.read_text().replace("    branch: master\n", "")
    payments = "    repository: .demo/git/payments.git\n"
    text = text.replace(payments, f"{payments}    branch: a..b\n")
    path = _write_text(tmp_path, text)
    line = text.splitlines().index("    branch: a..b") + 1
    assert _refused_everywhere(path, capsys, monkeypatch).startswith(f"{path}:{line}: services[1].branch: ")


def test_check_refuses_whatever_dagster_refuses_even_past_these_rules(
    tmp_path: Path, demo_document: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` builds the definitions the code location builds: a gap in the rules still fails check, in one line."""

    def refused_by_dagster(config: object) -> Definitions:
        raise DagsterInvalidDefinitionError('"env_qa-eu" is not a valid asset group name.\nGroup names must ...')

    monkeypatch.setattr(release_graph, "build_definitions", refused_by_dagster)
    path = _write(tmp_path, demo_document)
    assert cli_main(["--config", str(path), "check"]) == 2
    assert capsys.readouterr().err == (
        f"fintech-release: {path}: Dagster cannot load the definitions built from it: "
        '"env_qa-eu" is not a valid asset group name. Group names must ...\n'
    )


# --- YAML itself -----------------------------------------------------------------------------------------------


def test_duplicate_keys_are_refused_naming_both_lines_at_any_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = DEMO_CONFIG.read_text()
    lines = demo.splitlines()
    # A second `services:` at the end would replace the first: every service above it silently dropped.
    path = _write_text(tmp_path, demo + "services:\n  - {name: other, repository: other.git, port: 9000}\n")
    first, again = lines.index("services:") + 1, len(lines) + 1
    assert _refused_everywhere(path, capsys, monkeypatch) == (
        f"{path}:{again}: services: duplicate key (first on line {first}, again on line {again}); "
        "the last one would silently win"
    )
    # Deep inside: a second override of production for payments.
    override = "        production: {replicas: 3}\n"
    nested = demo.replace(override, f"{override}        production: {{}}\n")
    path = _write_text(tmp_path, nested)
    first = lines.index("        production: {replicas: 3}") + 1
    assert _refused_everywhere(path, capsys, monkeypatch) == (
        f"{path}:{first + 1}: services[1].deployment.environments.production: duplicate key "
        f"(first on line {first}, again on line {first + 1}); the last one would silently win"
    )
    # Approvals too: a second `approval:` would decide whether production needs four eyes.
    flow = demo.replace("approval: {required: true, four_eyes: true}", "approval: {required: true, four_eyes: true, "
                                                                        "four_eyes: false}")
    path = _write_text(tmp_path, flow)
    line = flow.splitlines().index("    approval: {required: true, four_eyes: true, four_eyes: false}") + 1
    message = _refused_everywhere(path, capsys, monkeypatch)
    assert f":{line}: environments[2].approval.four_eyes: duplicate key" in message


YAML_REFUSED: list[tuple[str, bytes, str]] = [
    ("billion-laughs", BILLION_LAUGHS.encode(), r":1: anchors \(&a\) are not allowed: write each value out$"),
    ("alias", b"environments: []\nservices: *nothing\n", r":2: aliases \(\*nothing\) are not allowed"),
    ("merge-key", b"services:\n  - <<: {name: a}\n", r":2: services\[0\]: merge keys \('<<'\) are not allowed"),
    ("deep-nesting", b"[" * 100_000,
     r":1: (nested deeper than 32 levels|not valid YAML: exceeded maximum nesting depth)"),
    ("deep-block-nesting", "".join(f"{'  ' * depth}k:\n" for depth in range(40)).encode() + b"  " * 40 + b"k: 1\n",
     r":33: (k\.){31}k: nested deeper than 32 levels$"),
    ("not-utf-8", b"services:\n  - name: caf\xe9\n", r":2: not UTF-8: byte 0xe9 at offset 23; save the file as UTF-8$"),
    ("control-character", b"services:\n  - name: a\x01b\n",
     r":2: not valid YAML: control character U\+0001 in the text$"),
    ("nul-escape", b'services:\n  - name: "a\\0b"\n',
     r":2: services\[0\]\.name: a NUL character \(\\0\) is not allowed"),
    ("python-tag", b"services: !!python/object/apply:os.system [id]\n",
     r":1: services: the tag tag:yaml.org,2002:python/object/apply:os.system is not supported$"),
    ("set-tag", b"services: !!set {a}\n", r":1: services: the tag tag:yaml.org,2002:set is not supported$"),
    ("impossible-date", b"services:\n  - name: a\n    branch: 2024-13-45\n",
     r":3: services\[0\]\.branch: cannot read '2024-13-45' as timestamp: month must be in 1\.\.12$"),
    ("huge-integer", b"services:\n  - port: " + b"9" * 5000 + b"\n",
     r":2: services\[0\]\.port: cannot read '9{60}…' as int"),
    ("two-documents", b"services: []\n---\nenvironments: []\n", r":2: more than one YAML document"),
    ("list-as-key", b"? [a, b]\n: 1\n", r":1: a mapping key must be a plain value$"),
    ("broken-yaml", b"services:\n  - name: a\n   port: [\n", r":3: not valid YAML: "),
    ("tab-indentation", b"services:\n\t- name: a\n", r":2: not valid YAML: found character"),
    ("empty-file", b"", r": the top level must be a mapping with 'services' and 'environments' \(got None\)$"),
    ("top-level-list", b"- name: contact-us\n",
     r": the top level must be a mapping .*\(got \[\{'name': 'contact-us'\}\]\)$"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in YAML_REFUSED], ids=[c[0] for c in YAML_REFUSED])
def test_yaml_a_config_should_not_hold_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: bytes, expected: str
) -> None:
    path = _write_text(tmp_path, text)
    message = _refused_everywhere(path, capsys, monkeypatch)
    assert re.match(re.escape(str(path)) + expected, message), message


def test_a_missing_file_or_a_directory_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = _refused_everywhere(tmp_path / "nowhere.yaml", capsys, monkeypatch)
    assert missing == (
        f"{tmp_path / 'nowhere.yaml'}: cannot read release config (No such file or directory); "
        f"pass its path or set {CONFIG_ENV_VAR}"
    )
    assert _refused_everywhere(tmp_path, capsys, monkeypatch).startswith(
        f"{tmp_path}: cannot read release config (it is a directory)"
    )


def test_billion_laughs_fails_fast_in_a_process_with_little_memory(tmp_path: Path) -> None:
    """Under a 512 MiB address-space limit (the expansion would need gigabytes) the loader refuses the file."""
    assert len(BILLION_LAUGHS.encode()) < 1024
    path = _write_text(tmp_path, BILLION_LAUGHS)
    program = (
        "import sys\n"
        "from fintech_release.config import load_release_config\n"
        "from fintech_release.errors import ReleaseConfigError\n"
        "try:\n    load_release_config(sys.argv[1])\n"
        "except ReleaseConfigError as exc:\n    print(exc, file=sys.stderr)\n    sys.exit(2)\n"
    )

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))

    completed = subprocess.run(
        [sys.executable, "-c", program, str(path)], cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT)},
        preexec_fn=limit_memory, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert completed.stderr == f"{path}:1: anchors (&a) are not allowed: write each value out\n"


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The C parser where PyYAML has libyaml, and the pure-Python one it falls back to."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_reader, "_Parser", yaml.SafeLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML is built without libyaml here")
    return request.param


def test_the_reader_reads_what_safe_load_reads_in_one_pass(
    tmp_path: Path, yaml_parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5,000-service file (500 on the slower pure-Python parser) gives safe_load's data, from one parse, with the
    line of every value."""
    count = 5000 if yaml_parser == "libyaml" else 500
    document = yaml.safe_load(DEMO_CONFIG.read_text())
    document["services"] = [
        {"name": f"svc-{i}", "repository": f"git/svc-{i}.git", "port": 10000 + i, "database": f"svc_{i}",
         "deployment": {"replicas": 2, "env": {"A": "1"}, "environments": {"production": {"replicas": 3}}}}
        for i in range(count)
    ]
    fast = yaml.__with_libyaml__  # libyaml's own dumper and loader, to keep this test quick
    dumper = yaml.CSafeDumper if fast else yaml.SafeDumper
    path = _write_text(tmp_path, yaml.dump(document, Dumper=dumper, sort_keys=False))
    raw = path.read_bytes()
    parsers = []
    original = yaml_reader._Parser
    monkeypatch.setattr(yaml_reader, "_Parser", lambda text: parsers.append(text) or original(text))
    read = yaml_reader.read_yaml(raw)
    assert read.data == yaml.load(raw, Loader=yaml.CSafeLoader if fast else yaml.SafeLoader)
    assert len(parsers) == 1
    last = count - 1
    assert read.line_of(("services", last, "port")) == raw.decode().splitlines().index(f"  port: {10000 + last}") + 1
    assert len(load_release_config(path).services) == count


# --- the real `dagster definitions validate` -------------------------------------------------------------------

CODE_LOCATION_FILES: list[tuple[str, Callable[[Path, dict], Path]]] = [
    ("hyphenated-environments", lambda tmp, doc: _write(tmp, _hyphenated(doc))),
    ("duplicate-key", lambda tmp, doc: _write_text(tmp, DEMO_CONFIG.read_text() + "services: []\n")),
    ("billion-laughs", lambda tmp, doc: _write_text(tmp, BILLION_LAUGHS)),
    ("promotion-cycle",
     lambda tmp, doc: _write(tmp, _mutated(doc, _set("environments", 1, "promotes_from", "production")))),
]


@pytest.mark.parametrize("make_file", [c[1] for c in CODE_LOCATION_FILES], ids=[c[0] for c in CODE_LOCATION_FILES])
def test_dagster_definitions_validate_agrees_with_check(
    tmp_path: Path,
    demo_document: dict,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_file: Callable[[Path, dict], Path],
) -> None:
    """The real CLI loads what check accepts and reports check's own line, not a trace, for what it refuses."""
    path = make_file(tmp_path, demo_document)
    accepted = cli_main(["--config", str(path), "check"]) == 0
    capsys.readouterr()
    message = None if accepted else _refused_everywhere(path, capsys, monkeypatch)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        # PYTHONPATH: this checkout's fintech_release, whatever the virtualenv has installed.
        env={
            CONFIG_ENV_VAR: str(path), "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path),
            "PYTHONPATH": str(REPO_ROOT),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = completed.stdout + completed.stderr
    if accepted:
        assert completed.returncode == 0 and "Validation successful for code location fintech_release" in output
    else:
        assert completed.returncode != 0
        assert f"ReleaseConfigError: {message}" in output
        assert "pydantic" not in output and "ValidationError" not in output
