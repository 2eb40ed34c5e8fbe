"""`make demo`'s main job: seed a repository per example service, observe the heads and take all
three services to the registry on the local platform (the base image first); a second run
rebuilds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from fintech_release.records.keys import REGISTRY_IMAGE
from fintech_release.config import load_release_config
from fintech_release.cli.demo import build_and_push_all
from fintech_release.release_graph import build_definitions
from fintech_release_tests.conftest import EXAMPLES_DIR, REPO_ROOT
from fintech_release_tests.release_setup import TEST_BASE_IMAGE, TEST_IMAGE_NAMESPACE, quiet_instance, registry_namespace

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]


def test_demo_releases_every_example_service_once(tmp_path: Path, registry) -> None:  # noqa: ANN001
    document = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
    document["build"].update(workspace="work", base_image=TEST_BASE_IMAGE, image_namespace=TEST_IMAGE_NAMESPACE)
    document["registry"].update(host=registry.host, namespace=registry_namespace(tmp_path))
    (tmp_path / "release.yaml").write_text(yaml.safe_dump(document))
    config = load_release_config(tmp_path / "release.yaml")
    defs = build_definitions(config)
    said: list[str] = []
    (tmp_path / "home").mkdir()
    with quiet_instance(tmp_path / "home") as instance:
        pushed = build_and_push_all(config, defs, instance, EXAMPLES_DIR, say=said.append)
        assert list(pushed) == ["contact-us", "payments", "accounts"]
        for service, line in pushed.items():
            reference, digest = line.split()
            name = f"{registry.host}/{registry_namespace(tmp_path)}/{service}"
            assert reference == f"{name}:1.0.0-1" and digest.startswith("sha256:")
            assert (tmp_path / ".demo" / "git" / f"{service}.git").is_dir()
        runs_before = len(instance.get_runs())
        again = build_and_push_all(config, defs, instance, EXAMPLES_DIR, say=said.append)
        assert again == pushed
        assert len(instance.get_runs()) == runs_before == 4  # the base image, then one build per service
        assert instance.get_latest_materialization_event(REGISTRY_IMAGE) is not None
    assert [line.split(":")[0] for line in said if line.endswith("is already pushed")] == list(pushed)
