"""`make demo`'s main job: seed a repository per example service, observe the heads and take all
three services to the registry on the local platform (the base image first); a second run
rebuilds nothing. Runs against the session's demo checkout (fixtures_demo.py): real git, Checkstyle,
Gradle, Docker engine and registry."""

from __future__ import annotations

import pytest

from fintech_release.records.keys import REGISTRY_IMAGE
from fintech_release_tests.fixtures_demo import DemoCheckout
from fintech_release_tests.release_setup import registry_namespace

pytestmark = pytest.mark.integration


def test_demo_releases_every_example_service_once(demo_checkout: DemoCheckout, registry) -> None:  # noqa: ANN001
    demo = demo_checkout
    assert list(demo.pushed) == ["contact-us", "payments", "accounts"]
    for service, line in demo.pushed.items():
        reference, digest = line.split()
        name = f"{registry.host}/{registry_namespace(demo.root)}/{service}"
        assert reference == f"{name}:1.0.0-1" and digest.startswith("sha256:")
        assert (demo.root / ".demo" / "git" / f"{service}.git").is_dir()
    assert demo.pushed_again == demo.pushed
    assert demo.runs_after_second == demo.runs_after_first == 4  # the base image, then one build per service
    with demo.instance() as instance:
        assert instance.get_latest_materialization_event(REGISTRY_IMAGE) is not None
    assert [line.split(":")[0] for line in demo.said if line.endswith("is already pushed")] == list(demo.pushed)
