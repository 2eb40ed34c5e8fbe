"""The gke platform's Terraform: the configuration under deploy/terraform and `TerraformRunner`.

Four kinds of test, labelled per section:

* static checks of the real .tf / .tfvars files, parsed with python-hcl2 (no provider, no cloud):
  one root (deploy/terraform/environment) with a partial gcs backend and one var file per environment
  (environments/<env>.tfvars) setting only declared variables, declarations documented and typed,
  no literal secrets, module calls matching the modules' variables, required outputs, production
  with backups and a failover replica and ci without; plus `terraform fmt -check` with the real
  terraform binary. `terraform validate` is not run: it needs the google/kubernetes/random
  providers, which cannot be downloaded here.
* contract tests of the plan parsing against plan documents written from Terraform's documented
  "JSON Output Format" (not produced by a real terraform run);
* unit tests of the runner's `terraform init` retry and of `outputs` with a stand-in terraform (a shell
  script, not terraform) that prints the kind of error text terraform prints: a registry that cannot be
  reached for a moment is retried, a configuration error and a timeout are not, and reading outputs needs
  no secret variables;
* the runner against a real terraform binary (>= 1.4) on throw-away root modules that use only the
  built-in `terraform_data` resource, so no provider download is needed; among them two environments
  converging at the same time from one root, each with its own state (local backend path per
  environment, as the real root's gcs prefix) and its own TF_DATA_DIR. Skipped, with the reason,
  when no such binary is found (scripts/install-terraform.sh provides one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hcl2
import pytest

from fintech_release.errors import (
    MissingEnvironmentVariableError,
    ReleaseConfigError,
    ToolFailedError,
    ToolNotFoundError,
)
from fintech_release.resources.terraform import SENSITIVE, ApplyResult, PlanSummary, TerraformRunner

REPO_ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_DIR = REPO_ROOT / "deploy" / "terraform"
MODULES_DIR = TERRAFORM_DIR / "modules"
ENVIRONMENT_ROOT = TERRAFORM_DIR / "environment"  # the one root of ci, staging and production
BOOTSTRAP = TERRAFORM_DIR / "bootstrap"
ENVIRONMENTS = ("ci", "staging", "production")
ROOTS = [ENVIRONMENT_ROOT, BOOTSTRAP]
MODULE_DIRS = sorted(path for path in MODULES_DIR.iterdir() if path.is_dir())
ALL_DIRS = MODULE_DIRS + ROOTS
# Every variables file with the root it sets variables of.
VAR_FILES = [(ENVIRONMENT_ROOT, TERRAFORM_DIR / "environments" / f"{name}.tfvars") for name in ENVIRONMENTS] + [
    (BOOTSTRAP, BOOTSTRAP / "terraform.tfvars")
]
REQUIRED_OUTPUTS = {
    "cluster_name",
    "cluster_endpoint",
    "cluster_location",
    "cloudsql_instance_connection_name",
    "redis_host",
    "pubsub_topics",
}
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}
SECRET_NAME = re.compile(r"password|secret|token|private_key|credential", re.IGNORECASE)
# Attributes that name a secret (a Secret Manager secret, a Kubernetes Secret) rather than hold one, or
# count the versions of a write-only one (password_wo_version, data_wo_revision).
SECRET_REFERENCE = re.compile(r"(_secret|_secret_name|_secret_id|_version|_wo_revision)$")


# ---------------------------------------------------------------------------------------------
# Helpers: python-hcl2 keeps quotes on labels and string literals, and wraps expressions in ${}.


def unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def is_string_literal(value: Any) -> bool:
    return isinstance(value, str) and value.startswith('"') and value.endswith('"') and "${" not in value


def load_dir(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every top-level block of the .tf files in `directory`, by block type."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for block_type, blocks in hcl2.load(handle).items():
                if not block_type.startswith("__"):
                    merged.setdefault(block_type, []).extend(blocks)
    return merged


def labelled(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{name: body} of single-label blocks (variable, output, module)."""
    return {unquote(label): body for block in blocks for label, body in block.items()}


def resources(config: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """{"type.name": body} of the resource blocks."""
    found = {}
    for block in config.get("resource", []):
        for resource_type, named in block.items():
            for name, body in named.items():
                found[f"{unquote(resource_type)}.{unquote(name)}"] = body
    return found


def env_tfvars(environment: str) -> Path:
    return TERRAFORM_DIR / "environments" / f"{environment}.tfvars"


def load_tfvars(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return {key: value for key, value in hcl2.load(handle).items() if not key.startswith("__")}


def walk(node: Any, path: str = ""):
    """Every (dotted path, key, value) of a parsed HCL document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not key.startswith("__"):
                yield f"{path}.{key}", key, value
                yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from walk(item, f"{path}[{index}]")


# ---------------------------------------------------------------------------------------------
# Static checks of deploy/terraform (python-hcl2 on the real files).


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda path: str(path.relative_to(TERRAFORM_DIR)))
def test_every_variable_has_a_type_and_description_and_every_output_a_description(directory: Path) -> None:
    config = load_dir(directory)
    for name, body in labelled(config.get("variable", [])).items():
        assert "type" in body, f"{directory}: variable {name} has no type"
        assert unquote(body.get("description", "")).strip(), f"{directory}: variable {name} has no description"
    for name, body in labelled(config.get("output", [])).items():
        assert unquote(body.get("description", "")).strip(), f"{directory}: output {name} has no description"


def test_no_literal_secret_anywhere() -> None:
    files = sorted(TERRAFORM_DIR.rglob("*.tf")) + sorted(TERRAFORM_DIR.rglob("*.tfvars"))
    assert files
    for path in files:
        with path.open() as handle:
            document = hcl2.load(handle)
        for where, key, value in walk(document):
            if SECRET_NAME.search(key) and not SECRET_REFERENCE.search(key):
                assert not is_string_literal(value), f"{path}: {where} is a literal {value}"
        for name, body in labelled(document.get("variable", [])).items():
            if SECRET_NAME.search(name) and not SECRET_REFERENCE.search(name):
                assert body.get("sensitive") is True, f"{path}: variable {name} holds a secret: mark it sensitive"
                assert body.get("default") is None, f"{path}: variable {name} holds a secret: no default"


def test_no_secret_variable_is_set_in_tfvars() -> None:
    for _, var_file in VAR_FILES:
        for key in load_tfvars(var_file):
            assert not SECRET_NAME.search(key) or SECRET_REFERENCE.search(key), f"{var_file} sets {key}"


def module_calls() -> list[tuple[Path, str, dict[str, Any]]]:
    return [
        (directory, name, body)
        for directory in ALL_DIRS
        for name, body in labelled(load_dir(directory).get("module", [])).items()
    ]


def test_every_module_call_matches_the_modules_variables() -> None:
    calls = module_calls()
    assert {name for _, name, _ in calls} >= {
        "k8s_secrets",
        "network",
        "gke",
        "cloudsql",
        "redis",
        "pubsub",
        "state_bucket",
    }
    for directory, name, body in calls:
        source = unquote(body["source"])
        assert source.startswith("../"), f"{directory}: module {name} is not a local module: {source}"
        module_dir = (directory / source).resolve()
        assert module_dir.is_dir(), f"{directory}: module {name}: {source} does not exist"
        declared = labelled(load_dir(module_dir).get("variable", []))
        required = {variable for variable, spec in declared.items() if "default" not in spec}
        given = set(body) - MODULE_META_ARGUMENTS - {"__is_block__", "__comments__"}
        assert not given - set(declared), f"{directory}: module {name} gets unknown arguments {given - set(declared)}"
        assert not required - given, f"{directory}: module {name} misses required arguments {required - given}"


@pytest.mark.parametrize(
    ("root", "var_file"), VAR_FILES, ids=[str(var_file.relative_to(TERRAFORM_DIR)) for _, var_file in VAR_FILES]
)
def test_tfvars_set_only_declared_variables_and_every_required_one_but_secrets(root: Path, var_file: Path) -> None:
    declared = labelled(load_dir(root).get("variable", []))
    tfvars = load_tfvars(var_file)
    assert not set(tfvars) - set(declared), f"{var_file}: sets undeclared {set(tfvars) - set(declared)}"
    required = {name for name, spec in declared.items() if "default" not in spec and not spec.get("sensitive")}
    assert not required - set(tfvars), f"{var_file}: misses {required - set(tfvars)}"


def test_one_root_serves_every_environment_and_each_environment_is_only_a_var_file() -> None:
    assert sorted(path.name for path in (TERRAFORM_DIR / "environments").iterdir()) == sorted(
        f"{name}.tfvars" for name in ENVIRONMENTS
    )
    # Nothing environment-specific may be loaded automatically from the shared root.
    assert not list(ENVIRONMENT_ROOT.glob("*.tfvars")) and not list(ENVIRONMENT_ROOT.glob("*.tfvars.json"))
    for environment in ENVIRONMENTS:
        assert load_tfvars(env_tfvars(environment))["environment"] == f'"{environment}"'
    # Same variables everywhere: no environment silently falls back to a default another one overrides.
    assert len({frozenset(load_tfvars(env_tfvars(name))) for name in ENVIRONMENTS}) == 1
    ranges = [load_tfvars(env_tfvars(name))[key] for name in ENVIRONMENTS for key in ("nodes_cidr", "master_cidr")]
    assert len(set(ranges)) == len(ranges), "environments must not share network ranges"


def test_the_root_declares_the_outputs_the_runtime_reads_and_a_partial_gcs_backend() -> None:
    config = load_dir(ENVIRONMENT_ROOT)
    outputs = labelled(config["output"])
    assert not REQUIRED_OUTPUTS - set(outputs), f"missing outputs {REQUIRED_OUTPUTS - set(outputs)}"
    assert outputs["cluster_endpoint"].get("sensitive") is True
    backends = [backend for block in config["terraform"] for backend in block.get("backend", [])]
    assert [unquote(next(iter(backend))) for backend in backends] == ["gcs"]
    # bucket and prefix come from `terraform init -backend-config=...` per environment (TerraformRunner).
    assert not set(next(iter(backends[0].values()))) - {"__is_block__", "__comments__"}


def test_the_root_calls_the_modules_directly_and_declares_each_variable_once() -> None:
    modules = labelled(load_dir(ENVIRONMENT_ROOT)["module"])
    assert set(modules) == {
        "network",
        "gke",
        "cloudsql",
        "redis",
        "pubsub",
        "k8s_secrets",
        "app_bucket",
        "workload_identity",
        "monitoring",
        "endpoints",
        "cloud_armor",
    }
    assert not (MODULES_DIR / "platform").exists()
    declared = [
        unquote(label)
        for block in load_dir(ENVIRONMENT_ROOT)["variable"]
        for label in block
    ]
    assert len(declared) == len(set(declared))


def test_kubernetes_provider_is_configured_from_the_cluster_outputs() -> None:
    kubernetes = labelled(load_dir(ENVIRONMENT_ROOT)["provider"])["kubernetes"]
    assert "module.gke.endpoint" in kubernetes["host"]
    assert "module.gke.ca_certificate" in kubernetes["cluster_ca_certificate"]


def test_production_has_backups_a_backup_window_and_a_failover_replica_and_ci_has_neither() -> None:
    production = load_tfvars(env_tfvars("production"))
    ci = load_tfvars(env_tfvars("ci"))
    assert production["cloudsql_backups_enabled"] is True
    assert production["cloudsql_failover_replica"] is True
    assert production["cloudsql_high_availability"] is True
    assert re.fullmatch(r'"\d\d:\d\d"', production["cloudsql_backup_start_time"])
    assert production["cloudsql_failover_replica_zone"] not in (None, "null")
    assert production["deletion_protection"] is True
    assert ci["cloudsql_backups_enabled"] is False
    assert ci["cloudsql_failover_replica"] is False
    assert ci["deletion_protection"] is False


def test_the_backup_and_failover_variables_reach_the_cloudsql_resources() -> None:
    call = labelled(load_dir(ENVIRONMENT_ROOT)["module"])["cloudsql"]
    assert call["backups_enabled"] == "${var.cloudsql_backups_enabled}"
    assert call["failover_replica"] == "${var.cloudsql_failover_replica}"
    assert call["failover_replica_zone"] == "${var.cloudsql_failover_replica_zone}"
    assert call["backup_start_time"] == "${var.cloudsql_backup_start_time}"
    cloudsql = resources(load_dir(MODULES_DIR / "cloudsql"))
    primary = cloudsql["google_sql_database_instance.primary"]
    assert primary["database_version"] == "${var.database_version}"
    settings = primary["settings"][0]
    assert settings["backup_configuration"][0]["enabled"] == "${var.backups_enabled}"
    assert settings["backup_configuration"][0]["start_time"] == "${var.backup_start_time}"
    assert settings["ip_configuration"][0]["ipv4_enabled"] is False
    assert settings["ip_configuration"][0]["private_network"] == "${var.network_id}"
    replica = cloudsql["google_sql_database_instance.failover_replica"]
    assert replica["count"] == "${var.failover_replica ? 1 : 0}"
    assert replica["master_instance_name"] == "${google_sql_database_instance.primary.name}"
    users = {key: body for key, body in cloudsql.items() if key.startswith("google_sql_user.")}
    assert set(users) == {"google_sql_user.admin", "google_sql_user.service"}


def test_gke_node_pool_autoscales_and_the_cluster_has_workload_identity() -> None:
    gke = resources(load_dir(MODULES_DIR / "gke"))
    autoscaling = gke["google_container_node_pool.default"]["autoscaling"][0]
    assert autoscaling["total_min_node_count"] == "${var.min_nodes}"
    assert autoscaling["total_max_node_count"] == "${var.max_nodes}"
    cluster = gke["google_container_cluster.this"]
    assert cluster["workload_identity_config"][0]["workload_pool"] == '"${var.project_id}.svc.id.goog"'
    node_config = gke["google_container_node_pool.default"]["node_config"][0]
    assert node_config["workload_metadata_config"][0]["mode"] == '"GKE_METADATA"'
    for environment in ENVIRONMENTS:
        tfvars = load_tfvars(env_tfvars(environment))
        assert 0 < tfvars["gke_min_nodes"] < tfvars["gke_max_nodes"], environment


def test_network_has_secondary_ranges_and_private_service_access() -> None:
    network = resources(load_dir(MODULES_DIR / "network"))
    assert len(network["google_compute_subnetwork.nodes"]["secondary_ip_range"]) == 2
    assert network["google_compute_global_address.private_services"]["purpose"] == '"VPC_PEERING"'
    connection = network["google_service_networking_connection.private_services"]
    assert connection["service"] == '"servicenetworking.googleapis.com"'


def test_kubernetes_namespace_is_restricted_and_denies_by_default_and_holds_password_files_only() -> None:
    k8s = resources(load_dir(MODULES_DIR / "k8s_secrets"))
    labels = k8s["kubernetes_namespace_v1.this"]["metadata"][0]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert f'"pod-security.kubernetes.io/{mode}" = "restricted"' in labels
    deny = k8s["kubernetes_network_policy_v1.default_deny"]["spec"][0]
    assert deny["policy_types"] == ['"Ingress"', '"Egress"'] and "ingress" not in deny and "egress" not in deny
    for name in ("database", "migration"):
        secret = k8s[f"kubernetes_secret_v1.{name}"]
        assert "data" not in secret, f"{name}: a password in `data` would be kept in Terraform state"
        assert list(secret["data_wo"]) == ["password"]  # the file holds the password and nothing else
        assert secret["data_wo_revision"] == "${var.database_password_version}"
    assert set(k8s["kubernetes_secret_v1.pubsub"]["data"]) >= {"project_id", "topics", "subscriptions"}
    variables = labelled(load_dir(MODULES_DIR / "k8s_secrets")["variable"])
    assert variables["database_passwords"]["sensitive"] is True and variables["database_passwords"]["ephemeral"] is True


# ---------------------------------------------------------------------------------------------
# The real terraform binary.


def terraform_binary() -> tuple[str | None, tuple[int, ...]]:
    """The terraform the suite uses (.tools/bin first, then PATH) and its version."""
    candidates = [REPO_ROOT / ".tools" / "bin" / "terraform", shutil.which("terraform")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            completed = subprocess.run(
                [str(candidate), "version", "-json"], capture_output=True, text=True, timeout=60, check=False
            )
            if completed.returncode == 0:
                version = json.loads(completed.stdout)["terraform_version"]
                return str(candidate), tuple(int(part) for part in version.split("-")[0].split("."))
    return None, ()


TERRAFORM, TERRAFORM_VERSION = terraform_binary()
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary (run scripts/install-terraform.sh)")
needs_terraform_data = pytest.mark.skipif(
    TERRAFORM is None or TERRAFORM_VERSION < (1, 4),
    reason=f"needs terraform >= 1.4 for the built-in terraform_data resource; found "
    f"{'.'.join(map(str, TERRAFORM_VERSION)) or 'none'} (scripts/install-terraform.sh)",
)


@needs_terraform
def test_terraform_fmt_check_passes_on_the_whole_tree() -> None:
    completed = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ---------------------------------------------------------------------------------------------
# Contract tests: plan documents written from Terraform's documented JSON Output Format
# (https://developer.hashicorp.com/terraform/internals/json-format), not produced by terraform.


def resource_change(address: str, *actions: str, mode: str = "managed", **change: Any) -> dict[str, Any]:
    """One documented `resource_changes[]` (or `resource_drift[]`) entry."""
    *_, resource_type, name = address.split("[")[0].split(".")
    return {
        "address": address,
        "mode": mode,
        "type": resource_type,
        "name": name,
        "change": {"actions": list(actions), "before": None, "after": {}, "after_unknown": {}, **change},
    }


DOCUMENTED_PLAN = {
    "format_version": "1.2",
    "terraform_version": "1.9.0",
    "variables": {"cloudsql_proxy_password": {"value": "do-not-show-me"}},
    "resource_drift": [
        resource_change("module.redis.google_redis_instance.this", "update"),
    ],
    "resource_changes": [
        resource_change("module.gke.google_container_cluster.this", "no-op"),
        resource_change("module.network.google_compute_network.this", "create"),
        resource_change("module.redis.google_redis_instance.this", "update"),
        resource_change("module.cloudsql.google_sql_user.proxy", "delete", "create"),
        resource_change("module.cloudsql.random_id.suffix", "create", "delete"),
        resource_change('module.pubsub.google_pubsub_topic.this["old"]', "delete"),
        resource_change("data.google_client_config.current", "read", mode="data"),
    ],
    "output_changes": {
        "cluster_name": {"actions": ["no-op"], "before": "a", "after": "a"},
        "redis_host": {"actions": ["update"], "before": "10.0.0.3", "after": "10.0.0.4"},
    },
}


def test_plan_summary_counts_like_terraform_does() -> None:
    summary = PlanSummary.from_plan_json(DOCUMENTED_PLAN, environment="staging")
    # Terraform's "Plan: 3 to add, 1 to change, 3 to destroy": a replace adds one and destroys one.
    assert (summary.add, summary.change, summary.destroy) == (3, 1, 3)
    assert summary.addresses["create"] == ("module.network.google_compute_network.this",)
    assert summary.addresses["update"] == ("module.redis.google_redis_instance.this",)
    assert summary.addresses["replace"] == (
        "module.cloudsql.google_sql_user.proxy",
        "module.cloudsql.random_id.suffix",
    )
    assert summary.addresses["delete"] == ('module.pubsub.google_pubsub_topic.this["old"]',)
    assert summary.changed_outputs == ("redis_host",)
    assert summary.drifted == ("module.redis.google_redis_instance.this",)
    assert summary.has_changes


def test_plan_summary_metadata_has_counts_and_addresses_but_no_values() -> None:
    metadata = PlanSummary.from_plan_json(DOCUMENTED_PLAN, environment="staging").as_metadata()
    assert metadata["terraform_add"] == 3
    assert metadata["terraform_replace"] == [
        "module.cloudsql.google_sql_user.proxy",
        "module.cloudsql.random_id.suffix",
    ]
    assert "do-not-show-me" not in json.dumps(metadata)
    assert "10.0.0.4" not in json.dumps(metadata)


def test_a_plan_of_no_ops_and_reads_has_no_changes() -> None:
    plan = {
        "format_version": "1.2",
        "resource_changes": [
            resource_change("google_compute_network.this", "no-op"),
            resource_change("data.google_client_config.current", "read", mode="data"),
        ],
        "output_changes": {"cluster_name": {"actions": ["no-op"]}},
    }
    summary = PlanSummary.from_plan_json(plan, environment="production")
    assert (summary.add, summary.change, summary.destroy, summary.has_changes) == (0, 0, 0, False)
    assert PlanSummary.from_plan_json({"format_version": "1.2"}, environment="ci").has_changes is False


def test_a_move_without_other_changes_is_a_change() -> None:
    moved = resource_change("module.network.google_compute_network.this", "no-op")
    moved["previous_address"] = "module.platform.module.network.google_compute_network.this"
    unmoved = resource_change("module.gke.google_container_cluster.this", "no-op")
    unmoved["previous_address"] = unmoved["address"]
    summary = PlanSummary.from_plan_json({"resource_changes": [moved, unmoved]}, environment="production")
    assert summary.addresses == {"move": ("module.network.google_compute_network.this",)}
    assert summary.has_changes and (summary.add, summary.change, summary.destroy) == (0, 0, 0)
    assert summary.as_metadata()["terraform_move"] == ["module.network.google_compute_network.this"]


def test_an_import_without_other_changes_is_a_change() -> None:
    plan = {"resource_changes": [resource_change("google_storage_bucket.state", "no-op", importing={"id": "b"})]}
    summary = PlanSummary.from_plan_json(plan, environment="staging")
    assert summary.addresses == {"import": ("google_storage_bucket.state",)}
    assert summary.has_changes and (summary.add, summary.change, summary.destroy) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Errors that need no terraform run.


def test_a_missing_binary_names_the_tool_and_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "ci.tfvars").write_text("")
    runner = TerraformRunner(executable=str(tmp_path / "no-terraform-here"))
    with pytest.raises(ToolNotFoundError, match=r"terraform not found .*install-terraform\.sh"):
        runner.plan(environment="ci", root=tmp_path, var_file=tmp_path / "ci.tfvars")


def test_a_missing_secret_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINTECH_RELEASE_TEST_TF_SECRET", raising=False)
    (tmp_path / "staging.tfvars").write_text("")
    runner = TerraformRunner(secret_variables={"token": "FINTECH_RELEASE_TEST_TF_SECRET"})
    missing = r"FINTECH_RELEASE_TEST_TF_SECRET is not set \(Terraform variable token of environment staging\)"
    with pytest.raises(MissingEnvironmentVariableError, match=missing):
        runner.plan(environment="staging", root=tmp_path, var_file=tmp_path / "staging.tfvars")


def test_a_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReleaseConfigError, match=r"production: Terraform root .*nowhere is not a directory"):
        TerraformRunner().apply(environment="production", root=tmp_path / "nowhere", var_file=tmp_path / "x.tfvars")


def test_a_missing_var_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReleaseConfigError, match=r"staging: Terraform variables file .*staging\.tfvars does not exist"):
        TerraformRunner().apply(environment="staging", root=tmp_path, var_file=tmp_path / "staging.tfvars")


def test_a_backend_config_that_does_not_name_the_environment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ci.tfvars").write_text("")
    runner = TerraformRunner(executable=str(tmp_path / "never-run"), backend_config={"bucket": "state-bucket"})
    with pytest.raises(ReleaseConfigError, match=r"ci: .*names \{environment\} .*bucket.*share one state"):
        runner.apply(environment="ci", root=tmp_path, var_file=tmp_path / "ci.tfvars")


def test_an_environment_name_that_is_no_path_segment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ci.tfvars").write_text("")
    with pytest.raises(ReleaseConfigError, match=r"'\.\./ci': not a valid environment name"):
        TerraformRunner().outputs(environment="../ci", root=tmp_path)


# ---------------------------------------------------------------------------------------------
# Unit tests: init retry and outputs, with a stand-in terraform (a shell script, not terraform).

REGISTRY_UNREACHABLE = (
    "Error: Failed to query available provider packages\n\nCould not retrieve the list of available versions"
    " for provider hashicorp/google: could not connect to registry.terraform.io: failed to request discovery"
    ' document: Get "https://registry.terraform.io/.well-known/terraform.json": net/http: TLS handshake timeout'
)
STAND_IN_TERRAFORM = """#!/bin/sh
# Stand-in for terraform: `init` prints each line of init.answers in turn (the last one repeats);
# an answer "ok" succeeds, "sleep" hangs, anything else is printed as an error. Every call is logged.
here="$(dirname "$0")"
echo "$1" >> "$here/calls.log"
case "$1" in
  init)
    n=$(grep -c '^init$' "$here/calls.log")
    answer=$(sed -n "${n}p" "$here/init.answers"); [ -n "$answer" ] || answer=$(tail -n 1 "$here/init.answers")
    case "$answer" in
      ok) echo "Terraform has been successfully initialized!" ;;
      sleep) exec sleep 30 ;;  # exec: the timeout kills the sleep itself, nothing lingers
      *) printf '%b\\n' "$answer" >&2; exit 1 ;;
    esac ;;
  output) echo '{"cluster_name": {"sensitive": false, "value": "fr-ci"}, "proxy": {"sensitive": true}}' ;;
  *) echo "stand-in terraform: unexpected $*" >&2; exit 2 ;;
esac
"""


def stand_in_terraform(folder: Path, *answers: str, **settings: Any) -> tuple[TerraformRunner, Path]:
    """A runner of the stand-in script whose init gives `answers` in turn; and the script's call log."""
    folder.mkdir()
    script = folder / "terraform"
    script.write_text(STAND_IN_TERRAFORM)
    script.chmod(0o755)
    (folder / "init.answers").write_text("".join(answer.replace("\n", "\\n") + "\n" for answer in answers))
    runner = TerraformRunner(executable=str(script), init_attempts=3, init_retry_wait_seconds=0, **settings)
    return runner, folder / "calls.log"


def test_unit_outputs_retry_an_unreachable_registry_and_need_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINTECH_RELEASE_TEST_TF_SECRET", raising=False)
    runner, calls = stand_in_terraform(
        tmp_path / "bin", REGISTRY_UNREACHABLE, "ok", secret_variables={"token": "FINTECH_RELEASE_TEST_TF_SECRET"}
    )
    assert runner.outputs(environment="ci", root=tmp_path) == {"cluster_name": "fr-ci", "proxy": SENSITIVE}
    assert calls.read_text().split() == ["init", "init", "output"]


def test_unit_init_gives_up_after_its_attempts_with_terraforms_words(tmp_path: Path) -> None:
    runner, calls = stand_in_terraform(tmp_path / "bin", REGISTRY_UNREACHABLE)
    with pytest.raises(ToolFailedError, match=r"(?s)terraform init failed for environment ci .*could not connect to"):
        runner.outputs(environment="ci", root=tmp_path)
    assert calls.read_text().split() == ["init", "init", "init"]


def test_unit_a_configuration_error_is_not_retried(tmp_path: Path) -> None:
    runner, calls = stand_in_terraform(
        tmp_path / "bin", 'Error: Unsupported argument\n\n  on main.tf line 502, in module "gke":\n'
    )
    with pytest.raises(ToolFailedError, match=r"(?s)terraform init failed .*Unsupported argument"):
        runner.outputs(environment="ci", root=tmp_path)
    assert calls.read_text().split() == ["init"]


def test_unit_an_init_that_times_out_is_not_retried(tmp_path: Path) -> None:
    runner, calls = stand_in_terraform(tmp_path / "bin", "sleep", timeout_seconds=1)
    with pytest.raises(ToolFailedError, match=r"terraform did not finish within 1 s"):
        runner.outputs(environment="ci", root=tmp_path)
    assert calls.read_text().split() == ["init"]


# ---------------------------------------------------------------------------------------------
# The runner against the real terraform binary, on roots of built-in terraform_data resources.
# The root declares `backend "local" {}` and the runner gives it path=<state dir>/{environment}.tfstate at init:
# the same per-environment partial backend configuration as the real root's gcs prefix. (Without a backend
# block the local state would be <root>/terraform.tfstate whatever TF_DATA_DIR says, shared by every environment.)

ROOT_MODULE = """
terraform {
  backend "local" {}
}

variable "label" {
  type = string
}

variable "generation" {
  type    = string
  default = "1"
}

variable "token" {
  type      = string
  sensitive = true
  default   = "unset"
}

resource "terraform_data" "static" {
  input = "static"
}

resource "terraform_data" "labelled" {
  input = var.label
}

resource "terraform_data" "generation" {
  triggers_replace = [var.generation]
}

output "label" {
  value = terraform_data.labelled.output
}

output "token" {
  value     = var.token
  sensitive = true
}
"""


@pytest.fixture
def root_module(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(ROOT_MODULE)
    return root


@pytest.fixture
def var_files(tmp_path: Path) -> dict[str, Path]:
    """environments/<env>.tfvars beside the root, each with its own label."""
    directory = tmp_path / "environments"
    directory.mkdir()
    files = {}
    for environment in ("ci", "staging", "production"):
        files[environment] = directory / f"{environment}.tfvars"
        files[environment].write_text(f'label = "{environment}-label"\n')
    return files


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def staging(root_module: Path, var_files: dict[str, Path]) -> dict[str, Any]:
    """The arguments of a runner call for staging."""
    return {"environment": "staging", "root": root_module, "var_file": var_files["staging"]}


def make_runner(state_dir: Path, executable: str | None = None, **settings: Any) -> TerraformRunner:
    return TerraformRunner(
        executable=executable or TERRAFORM or "terraform",
        init_attempts=1,
        backend_config={"path": f"{state_dir}/{{environment}}.tfstate"},
        **settings,
    )


@pytest.fixture
def recording_terraform(tmp_path: Path) -> tuple[str, Path]:
    """A wrapper that records every command line and TF_DATA_DIR, then runs the real terraform."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "terraform-wrapper"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s | %s\\n" "$*" "$TF_DATA_DIR" >> "{log}"\nexec "{TERRAFORM}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), log


@needs_terraform_data
def test_converge_applies_what_is_missing_then_nothing(
    root_module: Path, var_files: dict[str, Path], state_dir: Path, recording_terraform: tuple[str, Path]
) -> None:
    executable, argv_log = recording_terraform
    runner = make_runner(state_dir, executable)
    variables = {"label": "blue-label", "token": "s3cr3t-t0ken-value"}
    ci = {"environment": "ci", "root": root_module, "var_file": var_files["ci"]}

    planned = runner.plan(**ci, variables=variables)
    assert (planned.add, planned.change, planned.destroy) == (3, 0, 0)
    assert not (state_dir / "ci.tfstate").exists(), "plan must not change anything"

    applied = runner.apply(**ci, variables=variables)
    assert applied.applied
    assert applied.plan.addresses["create"] == (
        "terraform_data.generation",
        "terraform_data.labelled",
        "terraform_data.static",
    )
    assert applied.outputs == {"label": "blue-label", "token": SENSITIVE}
    assert (state_dir / "ci.tfstate").is_file() and not (root_module / "terraform.tfstate").exists()

    again = runner.apply(**ci, variables=variables)
    assert not again.applied and not again.plan.has_changes
    assert (again.plan.add, again.plan.change, again.plan.destroy) == (0, 0, 0)
    assert runner.outputs(environment="ci", root=root_module) == {"label": "blue-label", "token": SENSITIVE}

    recorded = argv_log.read_text().splitlines()
    assert not any("s3cr3t-t0ken-value" in line or "blue-label" in line for line in recorded)
    assert all("-input=false" in line for line in recorded if line.split()[0] in ("plan", "apply"))
    assert all(f"-var-file={var_files['ci']}" in line for line in recorded if line.startswith("plan "))
    inits = [line for line in recorded if line.startswith("init ")]
    assert inits and all(f"-backend-config=path={state_dir}/ci.tfstate " in line for line in inits)
    assert {line.rsplit(" | ", 1)[1] for line in recorded} == {str(root_module / ".terraform-ci")}
    assert not (root_module / ".terraform").exists()


@needs_terraform_data
def test_two_environments_converge_concurrently_from_one_root_with_separate_state(
    root_module: Path, var_files: dict[str, Path], state_dir: Path
) -> None:
    runner = make_runner(state_dir)

    def converge(environment: str) -> ApplyResult:
        return runner.apply(environment=environment, root=root_module, var_file=var_files[environment])

    with ThreadPoolExecutor(max_workers=2) as pool:
        ci, staging = pool.map(converge, ["ci", "staging"])

    assert ci.applied and staging.applied
    assert (ci.outputs["label"], staging.outputs["label"]) == ("ci-label", "staging-label")
    assert sorted(path.name for path in state_dir.iterdir()) == ["ci.tfstate", "staging.tfstate"]
    assert {path.name for path in root_module.iterdir() if path.name.startswith(".terraform")} >= {
        ".terraform-ci",
        ".terraform-staging",
    }
    assert not (root_module / ".terraform").exists() and not (root_module / "terraform.tfstate").exists()

    destroyed = runner.destroy(environment="ci", root=root_module, var_file=var_files["ci"])
    assert destroyed.destroy == 3
    assert runner.outputs(environment="ci", root=root_module) == {}
    assert runner.outputs(environment="staging", root=root_module)["label"] == "staging-label"
    assert not runner.plan(environment="staging", root=root_module, var_file=var_files["staging"]).has_changes
    assert runner.plan(environment="production", root=root_module, var_file=var_files["production"]).add == 3


@needs_terraform_data
def test_a_data_dir_holds_one_terraform_data_directory_per_environment(
    root_module: Path, var_files: dict[str, Path], state_dir: Path, tmp_path: Path
) -> None:
    runner = make_runner(state_dir, data_dir=str(tmp_path / "data"))
    runner.apply(environment="production", root=root_module, var_file=var_files["production"])
    assert (tmp_path / "data" / "production" / "terraform.tfstate").is_file()  # the backend settings, not the state
    assert not any(path.name.startswith(".terraform") for path in root_module.iterdir())


@needs_terraform_data
def test_converge_repairs_only_the_resource_that_went_missing(staging: dict[str, Any], state_dir: Path) -> None:
    runner = make_runner(state_dir)
    runner.apply(**staging)
    subprocess.run(
        [TERRAFORM, "state", "rm", "terraform_data.static"],
        cwd=staging["root"],
        env={**os.environ, "TF_DATA_DIR": str(staging["root"] / ".terraform-staging")},
        capture_output=True,
        check=True,
        timeout=60,
    )
    repaired = runner.apply(**staging)
    assert repaired.applied
    assert repaired.plan.addresses == {"create": ("terraform_data.static",)}
    assert runner.plan(**staging).has_changes is False


@needs_terraform_data
def test_changed_inputs_plan_an_update_and_a_replace_then_destroy_removes_everything(
    staging: dict[str, Any], state_dir: Path
) -> None:
    runner = make_runner(state_dir)
    runner.apply(**staging)

    changed = runner.plan(**staging, variables={"label": "b", "generation": "2"})
    assert changed.addresses == {
        "update": ("terraform_data.labelled",),
        "replace": ("terraform_data.generation",),
    }
    assert (changed.add, changed.change, changed.destroy) == (1, 1, 1)
    assert changed.changed_outputs == ("label",)

    destroyed = runner.destroy(**staging)
    assert (destroyed.add, destroyed.change, destroyed.destroy) == (0, 0, 3)
    assert runner.outputs(environment="staging", root=staging["root"]) == {}
    assert runner.destroy(**staging).has_changes is False


@needs_terraform_data
def test_a_failed_plan_names_the_environment_and_hides_variable_values(
    root_module: Path, var_files: dict[str, Path], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-sensitive variable whose validation fails: terraform itself prints the value.
    (root_module / "checked.tf").write_text(
        'variable "api_key" {\n  type = string\n  validation {\n    condition     = length(var.api_key) < 5\n'
        '    error_message = "too long"\n  }\n}\n'
    )
    monkeypatch.setenv("FINTECH_RELEASE_TEST_TF_SECRET", "very-secret-api-key-42")
    runner = make_runner(state_dir, secret_variables={"api_key": "FINTECH_RELEASE_TEST_TF_SECRET"})
    with pytest.raises(ToolFailedError, match=r"terraform plan failed for environment production") as raised:
        runner.plan(
            environment="production",
            root=root_module,
            var_file=var_files["production"],
            variables={"label": "plain-label-value"},
        )
    message = str(raised.value)
    assert "too long" in message
    assert "very-secret-api-key-42" not in message
    assert "plain-label-value" not in message


@needs_terraform_data
def test_the_callers_variables_override_the_environments_var_file(
    root_module: Path, var_files: dict[str, Path], state_dir: Path
) -> None:
    runner = make_runner(state_dir)
    ci = {"environment": "ci", "root": root_module, "var_file": var_files["ci"]}
    assert runner.apply(**ci).outputs["label"] == "ci-label"
    overridden = runner.apply(**ci, variables={"label": "from-caller"})
    assert overridden.plan.addresses == {"update": ("terraform_data.labelled",)}
    assert overridden.outputs["label"] == "from-caller"


@needs_terraform_data
def test_a_plan_that_only_moves_state_is_applied_without_replacing_anything(
    tmp_path: Path, var_files: dict[str, Path], state_dir: Path
) -> None:
    """A module unwrapped with a `moved` block: the converge records the new address and recreates nothing."""
    (tmp_path / "modules" / "network").mkdir(parents=True)
    (tmp_path / "modules" / "network" / "main.tf").write_text(
        'variable "label" {\n  type = string\n}\n\nresource "terraform_data" "vpc" {\n  input = var.label\n}\n'
    )
    (tmp_path / "modules" / "platform").mkdir()
    (tmp_path / "modules" / "platform" / "main.tf").write_text(
        'variable "label" {\n  type = string\n}\n\n'
        'module "network" {\n  source = "../network"\n  label  = var.label\n}\n'
    )
    root = tmp_path / "environment"
    root.mkdir()
    head = 'terraform {\n  backend "local" {}\n}\n\nvariable "label" {\n  type = string\n}\n\n'
    call = 'module "{name}" {{\n  source = "../modules/{name}"\n  label  = var.label\n}}\n'
    (root / "main.tf").write_text(head + call.format(name="platform"))
    runner = make_runner(state_dir)
    production = {"environment": "production", "root": root, "var_file": var_files["production"]}
    created = runner.apply(**production)
    assert created.plan.addresses == {"create": ("module.platform.module.network.terraform_data.vpc",)}

    (root / "main.tf").write_text(head + call.format(name="network"))
    (root / "moved.tf").write_text("moved {\n  from = module.platform.module.network\n  to   = module.network\n}\n")
    moved = runner.apply(**production)
    assert moved.applied and moved.plan.addresses == {"move": ("module.network.terraform_data.vpc",)}
    assert (moved.plan.add, moved.plan.destroy) == (0, 0)
    assert runner.plan(**production).has_changes is False


OFFICE_NETWORK = '{vpn="198.51.100.0/24"}'


@pytest.mark.skipif(TERRAFORM_VERSION < (1, 11), reason="ephemeral variables need terraform >= 1.11")
@pytest.mark.parametrize(
    ("environment", "overrides", "refused"),
    [
        ("production", {}, False),  # private endpoint
        ("production", {"gke_private_endpoint": "false"}, True),  # public and open to everyone
        ("production", {"gke_private_endpoint": "false", "master_authorized_networks": OFFICE_NETWORK}, False),
        ("staging", {}, False),
    ],
)
def test_production_refuses_to_plan_with_a_control_plane_open_to_everyone(
    tmp_path: Path, environment: str, overrides: dict[str, str], refused: bool
) -> None:
    """The root's own variable declarations, planned by the real terraform with the environment's var file.

    Only variables.tf is copied (no provider, nothing to download): `terraform plan` evaluates the
    variables' validations exactly as it does before planning the real root.
    """
    shutil.copy(ENVIRONMENT_ROOT / "variables.tf", tmp_path / "variables.tf")
    env = {**os.environ, "TF_VAR_cloudsql_proxy_password": "not-a-real-password", "TF_IN_AUTOMATION": "1"}
    args = [f"-var={name}={value}" for name, value in overrides.items()]
    init = [str(TERRAFORM), "init", "-input=false", "-no-color"]
    subprocess.run(init, cwd=tmp_path, env=env, capture_output=True, check=True, timeout=120)
    plan = [str(TERRAFORM), "plan", "-input=false", "-no-color", f"-var-file={env_tfvars(environment)}", *args]
    completed = subprocess.run(plan, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    if refused:
        assert completed.returncode != 0
        assert "production needs gke_private_endpoint = true or at least one master_authorized_networks" in (
            " ".join(completed.stderr.split())
        )
    else:
        assert completed.returncode == 0, completed.stderr
