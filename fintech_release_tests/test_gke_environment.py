"""A gke environment's teardown op and its CloudSQL readiness gate, run by Dagster in-process.

What each test runs, honestly:

* Teardown order - the real teardown job (`teardown_job`, Dagster in-process) with the real `GkeRuntime`
  and the real terraform binary on a provider-free root (a `terraform_data` resource stands in for the
  GKE cluster and the CloudSQL instance; no cloud involved), a stand-in `Ingress` that records when it is
  removed and whether the "cluster" (the Terraform state's resource) still existed then, and the real
  `CloudSqlDatabase`, which would fail if it were asked to drop anything (no Google credentials here).
  Shown: the ingress goes while the cluster exists, then `terraform destroy`, and no database is dropped.
  Skipped when terraform is missing. A permanent gke environment is refused before the ingress is
  touched. On a local environment (stand-in runtime, ingress and database that record their calls) the
  ingress goes first, then the runtime, then each service's database.
* Readiness gate - the environment's cluster, database and ingress assets materialized in-process
  with a stand-in runtime, ingress and database (recording their calls) and the real `CloudSqlAdmin`
  against the loopback contract server of the Cloud SQL Admin API (not the real service): an instance
  without backups fails the blocking check on <env>/cluster, so neither a migration nor the ingress runs.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey, AssetsDefinition, materialize

from fintech_release.assets.environments import CLOUDSQL_READY, environment_assets
from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.health.model import ServiceHealth
from fintech_release.jobs import teardown_job
from fintech_release.platforms import CLOUDSQL_ADMIN_KEY, gke_database_key
from fintech_release.resources.cloudsql import CloudSqlDatabase
from fintech_release.resources.cloudsql_admin import CloudSqlAdmin
from fintech_release.resources.database import BackupRecord, DatabaseAdmin, MigrationResult
from fintech_release.resources.gke_runtime import GkeRuntime, GkeTarget
from fintech_release.resources.helm import HelmRunner
from fintech_release.resources.ingress import Ingress, IngressInfo
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.runtime import BackendsChanged, DeployOutcome, DeploySpec, ServiceRuntime
from fintech_release.resources.source import LocalGitSource
from fintech_release.resources.terraform import TerraformRunner
from fintech_release_tests.fixtures_google_apis import (  # noqa: F401
    CloudSqlAdminApi,
    cloudsql_admin_api,
    instance_document,
)
from fintech_release_tests.release_setup import REPO_ROOT

TERRAFORM = shutil.which("terraform") or next(
    (str(path) for path in [REPO_ROOT / ".tools" / "bin" / "terraform"] if path.is_file()), None
)
ROOT_MODULE = """
terraform {
  backend "local" {}
}

resource "terraform_data" "cluster" {
  input = "stand-in for the GKE cluster and its CloudSQL instance"
}
"""


class Journal:
    """Lines appended to a file by the stand-in resources, read back in order."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []


def _note(journal: str, line: str) -> None:
    with open(journal, "a") as file:
        file.write(line + "\n")


class RecordingIngress(Ingress):
    """A stand-in ingress; `remove` notes whether the Terraform state at `state_file` still held a resource."""

    journal: str
    state_file: str = ""

    def ensure(self, *, environment: str, address: str, port: int, services: list[str]) -> IngressInfo:
        _note(self.journal, f"ingress.ensure {environment}")
        return IngressInfo(environment=environment, url="http://ingress.invalid", routes={})

    def set_backends(self, *, environment: str, service: str, backends: list[str]) -> IngressInfo:
        raise AssertionError("not used here")

    def remove(self, *, environment: str) -> list[str]:
        state = Path(self.state_file) if self.state_file else None
        cluster = "cluster present" if state and json.loads(state.read_text())["resources"] else "no cluster"
        _note(self.journal, f"ingress.remove {environment} ({cluster})" if state else f"ingress.remove {environment}")
        return ["helm release fintech-routes", "helm release ingress-nginx"]


class RecordingRuntime(ServiceRuntime):
    """A stand-in runtime that only notes `ensure_environment` and `teardown`."""

    journal: str

    def ensure_environment(self, *, environment: str, address: str) -> dict[str, str]:
        _note(self.journal, f"runtime.ensure_environment {environment}")
        return {}

    def running_image(self, *, environment: str, service: str) -> str | None:
        raise AssertionError("not used here")

    def deploy(self, *, spec: DeploySpec, on_backends_changed: BackendsChanged) -> DeployOutcome:
        raise AssertionError("not used here")

    def health(
        self, *, environment: str, service: str, desired_replicas: int, expected_image: str | None,
        window_seconds: float, since: datetime | None = None,
    ) -> ServiceHealth:
        raise AssertionError("not used here")

    def teardown(self, *, environment: str) -> list[str]:
        _note(self.journal, f"runtime.teardown {environment}")
        return [f"{environment} replicas"]


class RecordingDatabase(DatabaseAdmin):
    """A stand-in database server that outlives environments (as local MariaDB does); notes every call."""

    journal: str

    def migrate(self, *, database: str, migrations_dir: Path | None) -> MigrationResult:
        _note(self.journal, f"database.migrate {database}")
        return MigrationResult(database=database, created=True, applied=(), already_applied=())

    def pending_migrations(self, *, database: str, migrations_dir: Path | None) -> tuple[str, ...]:
        return ()

    def backup(self, *, environment: str, databases: list[str]) -> BackupRecord:
        _note(self.journal, f"database.backup {environment}")
        raise AssertionError("no production migration is pending here: nothing to back up")

    def drop(self, *, database: str) -> bool:
        _note(self.journal, f"database.drop {database}")
        return True

    def databases(self, *, prefix: str) -> list[str]:
        raise AssertionError("not used here")


@pytest.fixture
def release_config(tmp_path: Path) -> ReleaseConfig:
    """examples/release.gke.yaml with ci on gke too (ephemeral); production requires backups and failover."""
    document = yaml.safe_load((REPO_ROOT / "examples" / "release.gke.yaml").read_text())
    document["gke"].update(terraform_dir=str(REPO_ROOT / "deploy" / "terraform"),
                           charts_dir=str(REPO_ROOT / "deploy" / "charts"))
    ci = next(environment for environment in document["environments"] if environment["name"] == "ci")
    ci.update(platform="gke", gke={"project": "acme-ci", "region": "europe-west2",
                                   "cloudsql_instance": "acme-ci:europe-west2:ci-mysql"})
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_release_config(path)


def gke_runtime(root: Path, state_dir: Path, *, ephemeral: bool, environment: str) -> GkeRuntime:
    """A GkeRuntime whose Terraform root is `root` (local state under `state_dir`); helm and kube never used."""
    var_file = root / f"{environment}.tfvars"
    var_file.write_text("")
    return GkeRuntime(
        release_config=str(REPO_ROOT / "examples" / "release.gke.yaml"),
        charts_dir=str(REPO_ROOT / "deploy" / "charts"),
        environments={environment: GkeTarget(project="acme-ci", region="europe-west2", namespace="fintech",
                                             terraform_root=str(root), terraform_var_file=str(var_file),
                                             ephemeral=ephemeral)},
        cluster=KubernetesCluster(kubeconfig="/nonexistent/kubeconfig"),
        helm=HelmRunner(executable="/nonexistent/helm"),
        terraform=TerraformRunner(executable=TERRAFORM or "terraform", timeout_seconds=120, init_attempts=1,
                                  backend_config={"path": f"{state_dir}/{{environment}}.tfstate"}),
    )


def cloudsql_database(instance: str) -> CloudSqlDatabase:
    """The real CloudSQL resource; any connection attempt fails here (no Google credentials, no instance)."""
    return CloudSqlDatabase(instance_connection_name=instance, user="proxy", password="unused", timeout=1)


# ---------------------------------------------------------------------- teardown


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform on PATH nor in .tools/bin (scripts/install-terraform.sh)")
def test_gke_teardown_removes_the_ingress_before_the_cluster_and_drops_no_database(
    release_config: ReleaseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    root, state_dir = tmp_path / "environment", tmp_path / "state"
    root.mkdir()
    (root / "main.tf").write_text(ROOT_MODULE)
    runtime = gke_runtime(root, state_dir, ephemeral=True, environment="ci")
    runtime.ensure_environment(environment="ci", address="unused")
    journal = Journal(tmp_path / "journal.log")

    result = teardown_job(release_config, "ci").execute_in_process(resources={
        "gke_runtime": runtime,
        "gke_ingress": RecordingIngress(journal=str(journal.path), state_file=str(state_dir / "ci.tfstate")),
        gke_database_key("ci"): cloudsql_database("acme-ci:europe-west2:ci-mysql"),
    })

    assert result.success
    assert journal.lines() == ["ingress.remove ci (cluster present)"]
    assert json.loads((state_dir / "ci.tfstate").read_text())["resources"] == []  # destroyed after the ingress
    (recorded,) = result.asset_materializations_for_node("remove_ci")
    assert recorded.asset_key == AssetKey(["ci", "cluster"])
    metadata = {key: value.value for key, value in recorded.metadata.items()}
    assert metadata["removed_ingress"] == ["helm release fintech-routes", "helm release ingress-nginx"]
    assert metadata["removed_from_runtime"] == ["terraform_data.cluster"]
    assert metadata["dropped_databases"] == []  # they went with the instance


def test_gke_teardown_of_a_permanent_environment_is_refused_before_the_ingress_is_touched(
    release_config: ReleaseConfig, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.log")
    root = tmp_path / "environment"
    root.mkdir()

    result = teardown_job(release_config, "production").execute_in_process(
        resources={
            "gke_runtime": gke_runtime(root, tmp_path / "state", ephemeral=False, environment="production"),
            "gke_ingress": RecordingIngress(journal=str(journal.path)),
            gke_database_key("production"): cloudsql_database("acme-production:europe-west2:production-mysql"),
        },
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "environment 'production' is not ephemeral" in str(failure.step_failure_data.error)
    assert journal.lines() == []


def test_local_teardown_removes_the_ingress_then_the_runtime_then_the_databases(
    release_config: ReleaseConfig, tmp_path: Path
) -> None:
    document = yaml.safe_load(release_config.source.read_text())
    document["environments"][0] = {"name": "ci", "platform": "local", "ephemeral": True}
    release_config.source.write_text(yaml.safe_dump(document, sort_keys=False))
    local = load_release_config(release_config.source)
    journal = str(tmp_path / "journal.log")

    result = teardown_job(local, "ci").execute_in_process(resources={
        "runtime": RecordingRuntime(journal=journal),
        "ingress": RecordingIngress(journal=journal),
        "database": RecordingDatabase(journal=journal),
    })

    assert result.success
    assert Journal(Path(journal)).lines() == [
        "ingress.remove ci",
        "runtime.teardown ci",
        "database.drop ci_contact_us",
        "database.drop ci_payments",
        "database.drop ci_accounts",
    ]


# ---------------------------------------------------------------------- readiness gate


def production_instance() -> dict[str, Any]:
    """The contract server's production-ready instance, in the region release.yaml names."""
    return {**instance_document(), "region": "europe-west2"}


def _materialize_production(release_config: ReleaseConfig, api: CloudSqlAdminApi, journal: str) -> Any:
    wanted = {AssetKey(["production", name]) for name in ("cluster", "database", "ingress")}
    assets = [
        definition
        for definition in environment_assets(release_config, release_config.environment("production"))
        if isinstance(definition, AssetsDefinition) and definition.keys <= wanted
    ]
    assert {key for definition in assets for key in definition.keys} == wanted
    return materialize(
        assets,
        resources={
            "gke_runtime": RecordingRuntime(journal=journal),
            "gke_ingress": RecordingIngress(journal=journal),
            gke_database_key("production"): RecordingDatabase(journal=journal),
            CLOUDSQL_ADMIN_KEY: CloudSqlAdmin(api_endpoint=api.endpoint, timeout_seconds=10),
            "source": LocalGitSource(),
        },
        raise_on_error=False,
    )


def test_an_instance_without_backups_stops_the_run_before_any_migration(
    release_config: ReleaseConfig, cloudsql_admin_api: CloudSqlAdminApi, tmp_path: Path
) -> None:
    document = production_instance()
    document["settings"]["backupConfiguration"]["enabled"] = False
    cloudsql_admin_api.serve("acme-production", "production-mysql", document)
    journal = str(tmp_path / "journal.log")

    result = _materialize_production(release_config, cloudsql_admin_api, journal)

    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CLOUDSQL_READY]
    assert (check.asset_key, check.check_name, check.passed) == (
        AssetKey(["production", "cluster"]), "cloudsql_backups_and_failover", False
    )
    assert check.description == (
        "automated backups are off (settings.backupConfiguration.enabled); turn them on"
        " (Terraform: settings.backup_configuration.enabled = true)"
    )
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == {AssetKey(["production", "cluster"])}
    assert Journal(Path(journal)).lines() == ["runtime.ensure_environment production"]  # converged, then checked


def test_a_ready_instance_lets_migrations_and_the_ingress_run(
    release_config: ReleaseConfig, cloudsql_admin_api: CloudSqlAdminApi, tmp_path: Path
) -> None:
    cloudsql_admin_api.serve("acme-production", "production-mysql", production_instance())
    journal = str(tmp_path / "journal.log")

    result = _materialize_production(release_config, cloudsql_admin_api, journal)

    assert result.success
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CLOUDSQL_READY]
    assert check.passed
    lines = Journal(Path(journal)).lines()
    assert lines[0] == "runtime.ensure_environment production"
    assert {"database.migrate production_accounts", "ingress.ensure production"} <= set(lines[1:])
