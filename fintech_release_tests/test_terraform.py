"""The gke platform's Terraform: the configuration under deploy/terraform and `TerraformRunner`.

Three kinds of test, labelled per section:

* static checks of the real .tf / .tfvars files, parsed with python-hcl2 (no provider, no cloud):
  declarations documented and typed, no literal secrets, module calls matching the modules'
  variables, required outputs, production with backups and a failover replica and ci without;
  plus `terraform fmt -check` with the real terraform binary. `terraform validate` is not run: it
  needs the google/kubernetes/random providers, which cannot be downloaded here.
* contract tests of the plan parsing against plan documents written from Terraform's documented
  "JSON Output Format" (not produced by a real terraform run);
* the runner against a real terraform binary (>= 1.4) on throw-away root modules that use only the
  built-in `terraform_data` resource, so no provider download is needed. Skipped, with the reason,
  when no such binary is found (scripts/install-terraform.sh provides one).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from fintech_release.errors import ReleaseConfigError, ToolFailedError, ToolNotFoundError
from fintech_release.resources.terraform import SENSITIVE, PlanSummary, TerraformRunner

REPO_ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_DIR = REPO_ROOT / "deploy" / "terraform"
MODULES_DIR = TERRAFORM_DIR / "modules"
ENVIRONMENTS = ("ci", "staging", "production")
ROOTS = [TERRAFORM_DIR / "environments" / name for name in ENVIRONMENTS] + [TERRAFORM_DIR / "bootstrap"]
MODULE_DIRS = sorted(path for path in MODULES_DIR.iterdir() if path.is_dir())
ALL_DIRS = MODULE_DIRS + ROOTS
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
# Attributes that name a secret (a Secret Manager secret, a Kubernetes Secret) rather than hold one.
SECRET_REFERENCE = re.compile(r"(_secret|_secret_name|_secret_id)$")


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


def load_tfvars(root: Path) -> dict[str, Any]:
    with (root / "terraform.tfvars").open() as handle:
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
    for root in ROOTS:
        for key in load_tfvars(root):
            assert not SECRET_NAME.search(key) or SECRET_REFERENCE.search(key), f"{root}/terraform.tfvars sets {key}"


def module_calls() -> list[tuple[Path, str, dict[str, Any]]]:
    return [
        (directory, name, body)
        for directory in ALL_DIRS
        for name, body in labelled(load_dir(directory).get("module", [])).items()
    ]


def test_every_module_call_matches_the_modules_variables() -> None:
    calls = module_calls()
    assert {name for _, name, _ in calls} >= {
        "platform",
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


@pytest.mark.parametrize("root", ROOTS, ids=lambda path: path.name)
def test_tfvars_set_only_declared_variables_and_every_required_one_but_secrets(root: Path) -> None:
    declared = labelled(load_dir(root).get("variable", []))
    tfvars = load_tfvars(root)
    assert not set(tfvars) - set(declared), f"{root}: tfvars sets undeclared {set(tfvars) - set(declared)}"
    required = {name for name, spec in declared.items() if "default" not in spec and not spec.get("sensitive")}
    assert not required - set(tfvars), f"{root}: tfvars misses {required - set(tfvars)}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_root_declares_the_outputs_the_runtime_reads_and_a_gcs_backend(environment: str) -> None:
    root = TERRAFORM_DIR / "environments" / environment
    assert {path.name for path in root.iterdir()} >= {
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
        "terraform.tfvars",
    }
    config = load_dir(root)
    outputs = labelled(config["output"])
    assert not REQUIRED_OUTPUTS - set(outputs), f"{environment}: missing outputs {REQUIRED_OUTPUTS - set(outputs)}"
    assert outputs["cluster_endpoint"].get("sensitive") is True
    backends = [backend for block in config["terraform"] for backend in block.get("backend", [])]
    assert [unquote(next(iter(backend))) for backend in backends] == ["gcs"]
    assert unquote(next(iter(backends[0].values()))["prefix"]) == f"fintech-release/{environment}"
    assert load_tfvars(root)["environment"] == f'"{environment}"'


def test_kubernetes_provider_is_configured_from_the_cluster_outputs() -> None:
    for environment in ENVIRONMENTS:
        providers = labelled(load_dir(TERRAFORM_DIR / "environments" / environment)["provider"])
        kubernetes = providers["kubernetes"]
        assert "module.platform.cluster_endpoint" in kubernetes["host"]
        assert "module.platform.cluster_ca_certificate" in kubernetes["cluster_ca_certificate"]


def test_production_has_backups_a_backup_window_and_a_failover_replica_and_ci_has_neither() -> None:
    production = load_tfvars(TERRAFORM_DIR / "environments" / "production")
    ci = load_tfvars(TERRAFORM_DIR / "environments" / "ci")
    assert production["cloudsql_backups_enabled"] is True
    assert production["cloudsql_failover_replica"] is True
    assert re.fullmatch(r'"\d\d:\d\d"', production["cloudsql_backup_start_time"])
    assert production["cloudsql_failover_replica_zone"] not in (None, "null")
    assert production["deletion_protection"] is True
    assert ci["cloudsql_backups_enabled"] is False
    assert ci["cloudsql_failover_replica"] is False
    assert ci["deletion_protection"] is False


def test_the_backup_and_failover_variables_reach_the_cloudsql_resources() -> None:
    platform = labelled(load_dir(MODULES_DIR / "platform")["module"])["cloudsql"]
    assert platform["backups_enabled"] == "${var.cloudsql_backups_enabled}"
    assert platform["failover_replica"] == "${var.cloudsql_failover_replica}"
    assert platform["backup_start_time"] == "${var.cloudsql_backup_start_time}"
    cloudsql = resources(load_dir(MODULES_DIR / "cloudsql"))
    primary = cloudsql["google_sql_database_instance.primary"]
    assert primary["database_version"] == '"MYSQL_5_7"'
    settings = primary["settings"][0]
    assert settings["backup_configuration"][0]["enabled"] == "${var.backups_enabled}"
    assert settings["backup_configuration"][0]["start_time"] == "${var.backup_start_time}"
    assert settings["ip_configuration"][0]["ipv4_enabled"] is False
    assert settings["ip_configuration"][0]["private_network"] == "${var.network_id}"
    replica = cloudsql["google_sql_database_instance.failover_replica"]
    assert replica["count"] == "${var.failover_replica ? 1 : 0}"
    assert replica["master_instance_name"] == "${google_sql_database_instance.primary.name}"
    users = {unquote(body["name"]): body for key, body in cloudsql.items() if key.startswith("google_sql_user.")}
    assert users["root"]["password"] == "${var.root_password}"
    assert set(users) == {"root", "${var.proxy_user}"}


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
        tfvars = load_tfvars(TERRAFORM_DIR / "environments" / environment)
        assert 0 < tfvars["gke_min_nodes"] < tfvars["gke_max_nodes"], environment


def test_network_has_secondary_ranges_and_private_service_access() -> None:
    network = resources(load_dir(MODULES_DIR / "network"))
    assert len(network["google_compute_subnetwork.nodes"]["secondary_ip_range"]) == 2
    assert network["google_compute_global_address.private_services"]["purpose"] == '"VPC_PEERING"'
    connection = network["google_service_networking_connection.private_services"]
    assert connection["service"] == '"servicenetworking.googleapis.com"'


def test_kubernetes_secrets_for_the_sql_proxy_and_pubsub() -> None:
    k8s = resources(load_dir(MODULES_DIR / "k8s_secrets"))
    assert k8s["kubernetes_secret_v1.cloudsql_proxy"]["data"]["password"] == "${var.cloudsql_password}"
    assert set(k8s["kubernetes_secret_v1.pubsub"]["data"]) >= {"project_id", "topics", "subscriptions"}
    variables = labelled(load_dir(MODULES_DIR / "k8s_secrets")["variable"])
    assert variables["cloudsql_password"]["sensitive"] is True


def test_environment_roots_differ_only_in_backend_and_tfvars() -> None:
    ci = TERRAFORM_DIR / "environments" / "ci"
    for environment in ("staging", "production"):
        for name in ("main.tf", "variables.tf", "outputs.tf"):
            other = TERRAFORM_DIR / "environments" / environment / name
            assert other.read_text() == (ci / name).read_text(), f"{other} drifted from {ci / name}"


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
        resource_change("module.platform.module.redis.google_redis_instance.this", "update"),
    ],
    "resource_changes": [
        resource_change("module.platform.module.gke.google_container_cluster.this", "no-op"),
        resource_change("module.platform.module.network.google_compute_network.this", "create"),
        resource_change("module.platform.module.redis.google_redis_instance.this", "update"),
        resource_change("module.platform.module.cloudsql.google_sql_user.proxy", "delete", "create"),
        resource_change("module.platform.module.cloudsql.random_id.suffix", "create", "delete"),
        resource_change('module.platform.module.pubsub.google_pubsub_topic.this["old"]', "delete"),
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
    assert summary.addresses["create"] == ("module.platform.module.network.google_compute_network.this",)
    assert summary.addresses["update"] == ("module.platform.module.redis.google_redis_instance.this",)
    assert summary.addresses["replace"] == (
        "module.platform.module.cloudsql.google_sql_user.proxy",
        "module.platform.module.cloudsql.random_id.suffix",
    )
    assert summary.addresses["delete"] == ('module.platform.module.pubsub.google_pubsub_topic.this["old"]',)
    assert summary.changed_outputs == ("redis_host",)
    assert summary.drifted == ("module.platform.module.redis.google_redis_instance.this",)
    assert summary.has_changes


def test_plan_summary_metadata_has_counts_and_addresses_but_no_values() -> None:
    metadata = PlanSummary.from_plan_json(DOCUMENTED_PLAN, environment="staging").as_metadata()
    assert metadata["terraform_add"] == 3
    assert metadata["terraform_replace"] == [
        "module.platform.module.cloudsql.google_sql_user.proxy",
        "module.platform.module.cloudsql.random_id.suffix",
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


def test_an_import_without_other_changes_is_a_change() -> None:
    plan = {"resource_changes": [resource_change("google_storage_bucket.state", "no-op", importing={"id": "b"})]}
    summary = PlanSummary.from_plan_json(plan, environment="staging")
    assert summary.addresses == {"import": ("google_storage_bucket.state",)}
    assert summary.has_changes and (summary.add, summary.change, summary.destroy) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Errors that need no terraform run.


def test_a_missing_binary_names_the_tool_and_how_to_install_it(tmp_path: Path) -> None:
    runner = TerraformRunner(executable=str(tmp_path / "no-terraform-here"))
    with pytest.raises(ToolNotFoundError, match=r"terraform not found .*install-terraform\.sh"):
        runner.plan(environment="ci", root=tmp_path)


def test_a_missing_secret_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINTECH_RELEASE_TEST_TF_SECRET", raising=False)
    runner = TerraformRunner(secret_variables={"token": "FINTECH_RELEASE_TEST_TF_SECRET"})
    with pytest.raises(ReleaseConfigError, match=r"staging: .*token .*FINTECH_RELEASE_TEST_TF_SECRET.* not set"):
        runner.plan(environment="staging", root=tmp_path)


def test_a_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReleaseConfigError, match=r"production: Terraform root .*nowhere is not a directory"):
        TerraformRunner().apply(environment="production", root=tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# The runner against the real terraform binary, on roots of built-in terraform_data resources.

ROOT_MODULE = """
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
def recording_terraform(tmp_path: Path) -> tuple[str, Path]:
    """A wrapper that records every command line, then runs the real terraform."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "terraform-wrapper"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{TERRAFORM}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper), log


@needs_terraform_data
def test_converge_applies_what_is_missing_then_nothing(
    root_module: Path, recording_terraform: tuple[str, Path]
) -> None:
    executable, argv_log = recording_terraform
    runner = TerraformRunner(executable=executable, init_attempts=1)
    variables = {"label": "blue-label", "token": "s3cr3t-t0ken-value"}

    planned = runner.plan(environment="ci", root=root_module, variables=variables)
    assert (planned.add, planned.change, planned.destroy) == (3, 0, 0)
    assert not (root_module / "terraform.tfstate").exists(), "plan must not change anything"

    applied = runner.apply(environment="ci", root=root_module, variables=variables)
    assert applied.applied
    assert applied.plan.addresses["create"] == (
        "terraform_data.generation",
        "terraform_data.labelled",
        "terraform_data.static",
    )
    assert applied.outputs == {"label": "blue-label", "token": SENSITIVE}

    again = runner.apply(environment="ci", root=root_module, variables=variables)
    assert not again.applied and not again.plan.has_changes
    assert (again.plan.add, again.plan.change, again.plan.destroy) == (0, 0, 0)
    assert runner.outputs(environment="ci", root=root_module) == {"label": "blue-label", "token": SENSITIVE}

    recorded = argv_log.read_text()
    assert "s3cr3t-t0ken-value" not in recorded and "blue-label" not in recorded
    assert all("-input=false" in line for line in recorded.splitlines() if line.split()[0] in ("plan", "apply"))


@needs_terraform_data
def test_converge_repairs_only_the_resource_that_went_missing(root_module: Path) -> None:
    runner = TerraformRunner(executable=TERRAFORM, init_attempts=1)
    runner.apply(environment="staging", root=root_module, variables={"label": "a"})
    subprocess.run(
        [TERRAFORM, "state", "rm", "terraform_data.static"],
        cwd=root_module,
        capture_output=True,
        check=True,
        timeout=60,
    )
    repaired = runner.apply(environment="staging", root=root_module, variables={"label": "a"})
    assert repaired.applied
    assert repaired.plan.addresses == {"create": ("terraform_data.static",)}
    assert runner.plan(environment="staging", root=root_module, variables={"label": "a"}).has_changes is False


@needs_terraform_data
def test_changed_inputs_plan_an_update_and_a_replace_then_destroy_removes_everything(root_module: Path) -> None:
    runner = TerraformRunner(executable=TERRAFORM, init_attempts=1)
    runner.apply(environment="staging", root=root_module, variables={"label": "a"})

    changed = runner.plan(environment="staging", root=root_module, variables={"label": "b", "generation": "2"})
    assert changed.addresses == {
        "update": ("terraform_data.labelled",),
        "replace": ("terraform_data.generation",),
    }
    assert (changed.add, changed.change, changed.destroy) == (1, 1, 1)
    assert changed.changed_outputs == ("label",)

    destroyed = runner.destroy(environment="staging", root=root_module, variables={"label": "a"})
    assert (destroyed.add, destroyed.change, destroyed.destroy) == (0, 0, 3)
    assert runner.outputs(environment="staging", root=root_module) == {}
    assert runner.destroy(environment="staging", root=root_module, variables={"label": "a"}).has_changes is False


@needs_terraform_data
def test_a_failed_plan_names_the_environment_and_hides_variable_values(
    root_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-sensitive variable whose validation fails: terraform itself prints the value.
    (root_module / "checked.tf").write_text(
        'variable "api_key" {\n  type = string\n  validation {\n    condition     = length(var.api_key) < 5\n'
        '    error_message = "too long"\n  }\n}\n'
    )
    monkeypatch.setenv("FINTECH_RELEASE_TEST_TF_SECRET", "very-secret-api-key-42")
    runner = TerraformRunner(
        executable=TERRAFORM, init_attempts=1, secret_variables={"api_key": "FINTECH_RELEASE_TEST_TF_SECRET"}
    )
    with pytest.raises(ToolFailedError, match=r"terraform plan failed for environment production") as raised:
        runner.plan(environment="production", root=root_module, variables={"label": "plain-label-value"})
    message = str(raised.value)
    assert "too long" in message
    assert "very-secret-api-key-42" not in message
    assert "plain-label-value" not in message


@needs_terraform_data
def test_the_callers_variables_override_the_roots_tfvars(root_module: Path) -> None:
    (root_module / "terraform.tfvars").write_text('label = "from-tfvars"\n')
    runner = TerraformRunner(executable=TERRAFORM, init_attempts=1)
    assert runner.apply(environment="ci", root=root_module).outputs["label"] == "from-tfvars"
    overridden = runner.apply(environment="ci", root=root_module, variables={"label": "from-caller"})
    assert overridden.plan.addresses == {"update": ("terraform_data.labelled",)}
    assert overridden.outputs["label"] == "from-caller"
