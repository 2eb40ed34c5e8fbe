"""Commit to pushed image, for real: git, Checkstyle, Gradle, the Docker engine and a registry on
loopback. One service goes through the whole chain twice (two commits); the gates stop a commit
with failing tests or a failed quality gate before anything is packaged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import AssetKey, DagsterEventType, DagsterInstance

from fintech_release.assets.source import report_head_commits
from fintech_release.cli.launch import build_and_push
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import BUILD_ANALYSIS, BUILD_IMAGE, BUILD_JAR, BUILD_TESTS, REGISTRY_IMAGE
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import GitBareRepo, free_port
from fintech_release_tests.conftest import EXAMPLES_DIR
from fintech_release_tests.release_setup import quiet_instance, write_release_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]

SERVICE = "contact-us"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"

FAILING_TEST = """
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class DeliberatelyBrokenTest {
    @Test
    public void totalsMatch() {
        assertEquals("ledger totals", 100, 99);
    }
}
"""

SLOPPY_CODE = """
public final class Sloppy {
    private Sloppy() {
    }

    public static int parse(final String text) {
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
        }
        return 0;
    }
}
"""


def _materialized(instance: DagsterInstance, run_id: str) -> set[AssetKey]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {record.dagster_event.asset_key for record in records}


def _check(result, name: str):  # noqa: ANN001, ANN202 - ExecuteInProcessResult -> AssetCheckEvaluation
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[dict]:  # noqa: ANN001
    """contact-us released twice: its first commit, then a second commit on master."""
    root = tmp_path_factory.mktemp("chain")
    repo = GitBareRepo.create(
        root / "git", EXAMPLES_DIR / SERVICE, author_name="Ada Lovelace", author_email="ada@bank.example",
        message="Import contact-us", name=SERVICE,
    )
    config = write_release_config(root, {SERVICE: repo.bare_path}, registry_host=registry.host)
    defs = build_definitions(config)
    with quiet_instance(tmp_path_factory.mktemp("dagster-home")) as instance:
        first_sha = report_head_commits(instance, config, defs.resources["source"])[SERVICE]
        first = build_and_push(defs, instance, SERVICE, first_sha)
        first_push = latest_materialization_metadata(instance, REGISTRY_IMAGE, SERVICE)
        second_sha = repo.commit({"NOTES.md": "second release\n"}, "Add notes", author_email="ada@bank.example")
        second = build_and_push(defs, instance, SERVICE, second_sha)
        yield {
            "config": config, "defs": defs, "instance": instance, "repo": repo,
            "first": first, "first_sha": first_sha, "first_push": first_push,
            "second": second, "second_sha": second_sha,
            "name": f"{config.registry.path_prefix}/{SERVICE}",  # the repository's name in the registry
        }


def test_whole_chain_materializes_with_its_gates_passed(chain: dict) -> None:
    for result in (chain["first"], chain["second"]):
        assert result.success
        assert _materialized(chain["instance"], result.run_id) == {
            BUILD_ANALYSIS, BUILD_TESTS, BUILD_JAR, BUILD_IMAGE, REGISTRY_IMAGE
        }
        assert _check(result, "quality_gate").passed
        assert _check(result, "tests_passed").passed


def test_pushed_digest_is_the_one_the_registry_serves(chain: dict, registry) -> None:  # noqa: ANN001
    pushed = latest_materialization_metadata(chain["instance"], REGISTRY_IMAGE, SERVICE)
    response = requests.head(
        f"{registry.url}/v2/{chain['name']}/manifests/{pushed['version']}", headers={"Accept": MANIFEST_V2}, timeout=10
    )
    assert response.status_code == 200
    assert pushed["digest"] == response.headers["Docker-Content-Digest"]
    assert pushed["reference"] == f"{registry.host}/{chain['name']}:1.0.0-2"
    assert pushed["pinned_reference"] == f"{registry.host}/{chain['name']}@{pushed['digest']}"
    first = chain["first_push"]
    assert first["reference"].endswith(":1.0.0-1") and first["digest"] != pushed["digest"]


def test_every_artifact_records_the_commit_it_came_from(chain: dict) -> None:
    instance, sha = chain["instance"], chain["second_sha"]
    for key in (BUILD_ANALYSIS, BUILD_TESTS, BUILD_JAR, BUILD_IMAGE, REGISTRY_IMAGE):
        assert latest_materialization_metadata(instance, key, SERVICE)["commit"] == sha, key
    tests = latest_materialization_metadata(instance, BUILD_TESTS, SERVICE)
    assert tests["tests"] > 0 and tests["failures"] == 0
    jar = latest_materialization_metadata(instance, BUILD_JAR, SERVICE)
    assert jar["build_number"] == 2 and jar["version"] == "1.0.0-2"
    assert Path(jar["path"]).name == "contact-us-1.0.0-2.jar" and len(jar["sha256"]) == 64


def test_image_carries_oci_labels_and_no_baked_runtime_environment(chain: dict, docker_client) -> None:  # noqa: ANN001
    built = latest_materialization_metadata(chain["instance"], BUILD_IMAGE, SERVICE)
    image = docker_client.images.get(built["reference"])
    assert image.id == built["image_id"]
    assert image.labels["org.opencontainers.image.revision"] == chain["second_sha"]
    assert image.labels["org.opencontainers.image.version"] == "1.0.0-2"
    baked = {entry.split("=", 1)[0] for entry in image.attrs["Config"]["Env"] or []}
    assert "APP_ENV" not in baked


def test_image_runs_the_service_with_environment_given_at_run_time(chain: dict, docker_client) -> None:  # noqa: ANN001
    built = latest_materialization_metadata(chain["instance"], BUILD_IMAGE, SERVICE)
    port = free_port()
    container = docker_client.containers.run(
        built["reference"], detach=True, network_mode="host",
        # ci may run without a database (in memory); staging and production refuse to start without DB_*.
        environment={"PORT": str(port), "BIND_ADDRESS": "127.0.0.1", "APP_ENV": "ci"},
    )
    try:
        health = _wait_for_health(f"http://127.0.0.1:{port}/health")
        assert (health["status"], health["service"], health["version"], health["env"]) == (
            "UP", SERVICE, "1.0.0-2", "ci"
        )
    finally:
        container.remove(force=True)


def _wait_for_health(url: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            return requests.get(url, timeout=2).json()
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_failing_tests_stop_the_chain_before_the_jar(chain: dict) -> None:
    repo, instance = chain["repo"], chain["instance"]
    sha = repo.commit(
        {"src/test/java/DeliberatelyBrokenTest.java": FAILING_TEST}, "Break a test", author_email="bob@bank.example"
    )
    result = build_and_push(chain["defs"], instance, SERVICE, sha)
    assert not result.success
    gate = _check(result, "tests_passed")
    assert not gate.passed
    assert "DeliberatelyBrokenTest.totalsMatch" in gate.description
    assert _materialized(instance, result.run_id) == {BUILD_ANALYSIS, BUILD_TESTS}
    assert latest_materialization_metadata(instance, BUILD_JAR, SERVICE)["commit"] != sha


def test_failed_quality_gate_blocks_downstream_and_names_the_condition(chain: dict) -> None:
    repo, instance = chain["repo"], chain["instance"]
    (repo.work_path / "src/test/java/DeliberatelyBrokenTest.java").unlink(missing_ok=True)
    sha = repo.commit({"src/main/java/Sloppy.java": SLOPPY_CODE}, "Swallow an exception", "bob@bank.example")
    result = build_and_push(chain["defs"], instance, SERVICE, sha)
    assert not result.success
    gate = _check(result, "quality_gate")
    assert not gate.passed
    assert gate.description == "critical issues: 1 (allowed 0)"
    analysis = latest_materialization_metadata(instance, BUILD_ANALYSIS, SERVICE)
    assert analysis["commit"] == sha and analysis["critical_issues"] == 1
    assert "Sloppy.java" in analysis["issues"]
    assert BUILD_JAR not in _materialized(instance, result.run_id)


def test_unreachable_registry_fails_the_push_naming_it_and_keeps_the_last_push(
    chain: dict, unreachable_registry: str, tmp_path: Path
) -> None:
    instance = chain["instance"]
    before = latest_materialization_metadata(instance, REGISTRY_IMAGE, SERVICE)
    config = write_release_config(
        tmp_path, {SERVICE: chain["repo"].bare_path}, registry_host=unreachable_registry, registry_retry_seconds=2
    )
    result = build_definitions(config).resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, partition_key=SERVICE, asset_selection=[REGISTRY_IMAGE], raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert f"registry {unreachable_registry} did not answer on /v2/ within 2 s" in str(failure.step_failure_data.error)
    assert latest_materialization_metadata(instance, REGISTRY_IMAGE, SERVICE) == before
