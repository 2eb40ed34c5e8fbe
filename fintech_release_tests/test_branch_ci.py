"""The branch_ci job, for real: git, Checkstyle, Gradle and the Docker engine build a feature-branch
commit of contact-us; a real registry on loopback shows that nothing was pushed. One run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import AssetKey, DagsterEventType, DagsterInstance, ExecuteInProcessResult

from fintech_release.jobs import BRANCH_CI
from fintech_release.jobs.branch_ci import branch_version
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SERVICE_TAG
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import GitBareRepo
from fintech_release_tests.release_setup import (
    TEST_IMAGE_NAMESPACE,
    quiet_instance,
    write_release_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("gradle_user_home", "base_image")]

SERVICE = "contact-us"
BRANCH = "feature/Login-Form"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture(scope="module")
def branch_run(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[dict]:
    """One branch_ci run of a commit on feature/Login-Form of contact-us."""
    root = tmp_path_factory.mktemp("branch-ci")
    repo = GitBareRepo.create(
        root / "git", Path(__file__).resolve().parent.parent / "examples" / SERVICE,
        author_name="Ada Lovelace", author_email="ada@bank.example", message="Import contact-us", name=SERVICE,
    )
    repo.branch = BRANCH
    sha = repo.commit({"NOTES.md": "login form\n"}, "Login form", author_email="ada@bank.example")
    config = write_release_config(root, {SERVICE: repo.bare_path}, registry_host=registry.host)
    defs = build_definitions(config)
    with quiet_instance(tmp_path_factory.mktemp("dagster-home")) as instance:
        result = defs.resolve_job_def(BRANCH_CI).execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False,
            tags={SERVICE_TAG: SERVICE, BRANCH_TAG: BRANCH, COMMIT_TAG: sha},
        )
        yield {"instance": instance, "result": result, "sha": sha, "defs": defs}


def _outputs(result: ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.step_key: {name: entry.value for name, entry in event.step_output_data.metadata.items()}
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_OUTPUT
    }


def test_the_branch_commit_is_analysed_tested_packaged_and_imaged(branch_run: dict) -> None:
    result = branch_run["result"]
    assert result.success
    outputs = _outputs(result)
    assert set(outputs) == {"commit", "analysis", "tests", "jar", "image"}
    assert outputs["commit"]["commit"] == branch_run["sha"] and outputs["commit"]["branch"] == BRANCH
    assert outputs["tests"]["tests"] > 0 and outputs["tests"]["failures"] == 0
    assert outputs["analysis"]["critical_issues"] == 0
    assert Path(outputs["jar"]["path"]).name == f"{SERVICE}-{outputs['jar']['version']}.jar"


def test_the_image_carries_the_branch_tag_never_a_release_version(
    branch_run: dict, docker_client
) -> None:
    sha = branch_run["sha"]
    version = branch_version("1.0.0", BRANCH, sha)
    assert version == f"1.0.0-feature-login-form.{sha[:12]}"
    image = _outputs(branch_run["result"])["image"]
    assert image["reference"] == f"{TEST_IMAGE_NAMESPACE}/{SERVICE}:{version}"
    built = docker_client.images.get(image["reference"])
    assert built.id == image["image_id"]
    assert built.labels["org.opencontainers.image.revision"] == sha
    assert built.labels["org.opencontainers.image.version"] == version


def test_nothing_is_materialized_and_nothing_pushed(branch_run: dict, registry, docker_client) -> None:
    instance: DagsterInstance = branch_run["instance"]
    run_id = branch_run["result"].run_id
    assert instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION) == []
    graph = branch_run["defs"].resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert instance.get_latest_materialization_event(key) is None, key
    assert AssetKey(["registry", "image"]) in graph.get_all_asset_keys()
    tags = requests.get(f"{registry.url}/v2/{SERVICE}/tags/list", timeout=10)
    assert tags.status_code == 404 or not any("feature" in tag for tag in tags.json().get("tags") or [])
    assert not any(tag.startswith(f"{registry.host}/") and "feature" in tag
                   for image in docker_client.images.list() for tag in image.tags)
