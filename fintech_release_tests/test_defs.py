"""The code location: it loads and validates, its partitions come from release.yaml, and every
promotion gate is a blocking check on the asset it judges."""

from __future__ import annotations

import warnings
from pathlib import Path

import yaml
from dagster import AssetKey, BetaWarning, Definitions

from fintech_release.config import load_release_config
from fintech_release.definitions import defs
from fintech_release.jobs import BUILD_AND_PUSH
from fintech_release.records.keys import (
    BUILD_ANALYSIS,
    BUILD_BASE_IMAGE,
    BUILD_IMAGE,
    BUILD_JAR,
    BUILD_TESTS,
    REGISTRY_IMAGE,
    SOURCE_COMMIT,
)
from fintech_release.release_graph import build_definitions

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_code_location_validates() -> None:
    Definitions.validate_loadable(defs)


def test_assets_form_the_commit_to_registry_lineage() -> None:
    graph = defs.resolve_asset_graph()
    parents = {key: set(graph.get(key).parent_keys) for key in graph.get_all_asset_keys()}
    assert parents[BUILD_ANALYSIS] == {SOURCE_COMMIT}
    assert parents[BUILD_TESTS] == {SOURCE_COMMIT}
    assert parents[BUILD_JAR] == {BUILD_TESTS, BUILD_ANALYSIS}
    assert parents[BUILD_IMAGE] == {BUILD_JAR, BUILD_BASE_IMAGE}
    assert parents[BUILD_BASE_IMAGE] == set()
    assert parents[REGISTRY_IMAGE] == {BUILD_IMAGE}
    assert not graph.get(SOURCE_COMMIT).is_materializable


def test_gates_are_blocking_checks() -> None:
    graph = defs.resolve_asset_graph()
    specs = {spec.key.name: spec for key in graph.asset_check_keys for spec in [graph.get_check_spec(key)]}
    assert specs["quality_gate"].asset_key == BUILD_ANALYSIS and specs["quality_gate"].blocking
    assert specs["tests_passed"].asset_key == BUILD_TESTS and specs["tests_passed"].blocking


def test_partitions_are_the_services_of_release_yaml(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    document["services"] = document["services"][:2] + [dict(document["services"][2], name="ledger", port=8090)]
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document))
    other = build_definitions(load_release_config(path))
    partitions = other.resolve_assets_def(AssetKey(["build", "jar"])).partitions_def
    assert partitions.get_partition_keys() == ["contact-us", "payments", "ledger"]
    job = other.resolve_job_def(BUILD_AND_PUSH)
    assert job.partitions_def.get_partition_keys() == ["contact-us", "payments", "ledger"]


def test_each_environment_uses_the_resources_of_its_platform() -> None:
    """examples/release.gke.yaml: a local ci in front of gke staging and production, Bitbucket, email."""
    gke_defs = build_definitions(load_release_config(REPO_ROOT / "examples" / "release.gke.yaml"))
    Definitions.validate_loadable(gke_defs)
    graph = gke_defs.resolve_asset_graph()

    def required(key: AssetKey) -> set[str]:
        return set(gke_defs.resolve_assets_def(key).required_resource_keys) - {"io_manager"}

    assert {"runtime"} <= required(AssetKey(["ci", "cluster"]))
    assert {"gke_runtime"} == required(AssetKey(["staging", "cluster"]))
    assert {"gke_runtime", "gke_cloudsql_admin"} == required(AssetKey(["production", "cluster"]))
    assert {"gke_database_staging", "source"} == required(AssetKey(["staging", "database"]))
    assert {"gke_database_production", "source"} == required(AssetKey(["production", "database"]))
    assert {"gke_runtime", "gke_ingress"} <= required(AssetKey(["production", "release", "payments"]))
    assert type(gke_defs.resources["source"]).__name__ == "BitbucketCloudSource"
    assert type(gke_defs.resources["notifier"]).__name__ == "EmailNotifier"
    assert gke_defs.resources["gke_runtime"].cluster.transient_grace_seconds == 45  # gke.transient_grace_seconds
    # On the cluster, so that an instance without backups or failover stops everything after it in the run.
    ready = [key for key in graph.asset_check_keys if key.name == "cloudsql_backups_and_failover"]
    assert [key.asset_key for key in ready] == [AssetKey(["production", "cluster"])]
    assert graph.get_check_spec(ready[0]).blocking
    for downstream in (["production", "database"], ["production", "ingress"], ["production", "release", "payments"]):
        assert AssetKey(["production", "cluster"]) in graph.get(AssetKey(downstream)).parent_keys


def test_a_bitbucket_cloud_base_url_reaches_the_source_resource(tmp_path: Path) -> None:
    """source_control.bitbucket.base_url also serves Bitbucket Cloud (a proxy or a stand-in in front of its API)."""
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    url = "https://bitbucket-proxy.bank.example/2.0"
    document["source_control"] = {
        "platform": "bitbucket", "bitbucket": {"flavor": "cloud", "owner": "acme", "base_url": url},
    }
    for service in document["services"]:
        service["repository"] = service["name"]
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document))
    source = build_definitions(load_release_config(path)).resources["source"]
    assert type(source).__name__ == "BitbucketCloudSource"
    assert source.base_url == url


def test_building_the_definitions_shows_no_beta_warning_about_sensor_owners() -> None:
    """Dagster warns that sensors' `owners` is in beta when it binds resources; only that warning is kept quiet,
    only while the definitions are built: the process's own warning filters are left as they were."""
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(load_release_config(REPO_ROOT / "examples" / "release.gke.yaml"))
        Definitions.validate_loadable(defs)
        defs.resolve_job_def("teardown_ci")
        warnings.warn("a beta feature", BetaWarning, stacklevel=1)  # any other BetaWarning still shows
    assert [str(warning.message) for warning in caught] == ["a beta feature"]
    assert warnings.filters == filters
