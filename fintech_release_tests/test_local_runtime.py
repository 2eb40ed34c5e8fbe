"""The local service runtime on a real Docker engine, with real contact-us images pulled from the
suite's registry: replicas start on the environment's loopback address, a rolling update announces the
new replicas before the old ones go, a crashing image fails fast and leaves the previous one serving,
health notices a dying replica at once, and teardown removes the whole environment."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import docker
import pytest
import requests
from docker.errors import ImageNotFound, NotFound
from docker.models.containers import Container

from fintech_release.errors import RegistryUnavailableError
from fintech_release.health.model import ServiceHealth
from fintech_release.resources.local_runtime import ENVIRONMENT_LABEL, LocalDockerRuntime
from fintech_release.resources.runtime import DeploySpec
from fintech_release_tests.conftest import DOCKER_HOST
from fintech_release_tests.fixtures_runtime import SERVICE, V1, V2, ServiceImages

pytestmark = pytest.mark.integration

ADDRESS = "127.0.42.1"
SECRET = "not-for-metadata-7f3a"
MakeEnvironment = Callable[[], str]


def spec(environment: str, image: str, replicas: int = 2, service: str = SERVICE, **env: str) -> DeploySpec:
    return DeploySpec(
        environment=environment, service=service, image=image, replicas=replicas, address=ADDRESS,
        health_path="/health", env={"APP_ENV": "ci", **env},
    )


def get_health(endpoint: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        return http.get(f"http://{endpoint}/health", timeout=5)


def answers(endpoint: str) -> bool:
    try:
        return get_health(endpoint).status_code == 200
    except requests.RequestException:
        return False


def containers_of(client: docker.DockerClient, environment: str) -> list[Container]:
    return client.containers.list(all=True, filters={"label": f"{ENVIRONMENT_LABEL}={environment}"})


def endpoints_of(health: ServiceHealth) -> list[str | None]:
    return [replica.endpoint for replica in health.replicas]


def test_deploy_starts_ready_replicas_on_the_environment_address(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    assert local_runtime.ensure_environment(environment=env, address=ADDRESS)["running_replicas"] == "0"
    with contextlib.suppress(ImageNotFound):
        docker_client.images.remove(contact_us_images.v1, force=True)  # so the deployment has to pull it
    announced: list[list[str]] = []

    outcome = local_runtime.deploy(
        spec=spec(env, contact_us_images.v1, API_TOKEN=SECRET), on_backends_changed=announced.append
    )

    assert outcome.status == "deployed", outcome.detail
    assert docker_client.images.get(contact_us_images.v1)  # pulled by digest from the suite's registry
    assert (outcome.image, outcome.previous_image) == (contact_us_images.v1, None)
    assert outcome.health.healthy and outcome.health.ready_replicas == 2, outcome.health.problems
    endpoints = endpoints_of(outcome.health)
    assert announced == [endpoints]
    for endpoint in endpoints:
        assert endpoint.startswith(f"{ADDRESS}:")
        response = get_health(endpoint)
        assert response.status_code == 200
        assert (response.json()["version"], response.json()["env"]) == (V1, "ci")
    for container in containers_of(docker_client, env):
        assert container.name.startswith(f"fr-{env}-{SERVICE}-")
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
        assert container.labels["io.fintech-release.image"] == contact_us_images.v1
        assert container.labels["io.fintech-release.health-path"] == "/health"
    assert local_runtime.running_image(environment=env, service=SERVICE) == contact_us_images.v1
    facts = local_runtime.ensure_environment(environment=env, address=ADDRESS)
    assert facts["running_replicas"] == "2" and facts["address"] == ADDRESS
    assert SECRET not in outcome.model_dump_json() and SECRET not in str(facts)

    started = time.monotonic()
    health = local_runtime.health(
        environment=env, service=SERVICE, desired_replicas=2, expected_image=contact_us_images.v1, window_seconds=1.0
    )
    assert health.healthy, health.problems
    assert time.monotonic() - started >= 1.0  # a healthy service is watched for the whole window


def test_same_image_is_unchanged_and_a_new_count_scales_without_replacing(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    local_runtime.deploy(spec=spec(env, contact_us_images.v1), on_backends_changed=lambda _: None)
    original = sorted(container.id for container in containers_of(docker_client, env))
    announced: list[list[str]] = []

    again = local_runtime.deploy(spec=spec(env, contact_us_images.v1), on_backends_changed=announced.append)
    assert again.status == "unchanged" and again.health.healthy, again.detail
    assert announced == []
    assert sorted(container.id for container in containers_of(docker_client, env)) == original

    up = local_runtime.deploy(spec=spec(env, contact_us_images.v1, replicas=3), on_backends_changed=announced.append)
    assert up.status == "deployed" and up.health.ready_replicas == 3, up.detail
    after_up = {container.id for container in containers_of(docker_client, env)}
    assert len(after_up) == 3 and set(original) <= after_up
    assert announced == [endpoints_of(up.health)]

    down = local_runtime.deploy(spec=spec(env, contact_us_images.v1, replicas=1), on_backends_changed=announced.append)
    assert down.status == "deployed" and down.health.healthy, down.detail
    remaining = containers_of(docker_client, env)
    assert len(remaining) == 1 and remaining[0].id in original
    assert announced[-1] == [remaining[0].labels["io.fintech-release.endpoint"]]


def test_rolling_update_announces_new_with_old_then_new_before_removing_old(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    first = local_runtime.deploy(spec=spec(env, contact_us_images.v1), on_backends_changed=lambda _: None)
    old_endpoints = endpoints_of(first.health)
    old_containers = containers_of(docker_client, env)
    announced: list[list[str]] = []
    serving_when_announced: list[bool] = []

    def on_backends_changed(endpoints: list[str]) -> None:
        announced.append(endpoints)
        serving_when_announced.append(all(answers(endpoint) for endpoint in endpoints + old_endpoints))

    outcome = local_runtime.deploy(spec=spec(env, contact_us_images.v2), on_backends_changed=on_backends_changed)

    assert outcome.status == "deployed", outcome.detail
    assert (outcome.image, outcome.previous_image) == (contact_us_images.v2, contact_us_images.v1)
    new_endpoints = endpoints_of(outcome.health)
    assert announced == [new_endpoints + old_endpoints, new_endpoints]
    assert serving_when_announced == [True, True]  # new ones ready before, old ones still up during both
    for container in old_containers:
        with pytest.raises(NotFound):
            container.reload()
    assert [get_health(endpoint).json()["version"] for endpoint in new_endpoints] == [V2, V2]
    assert local_runtime.running_image(environment=env, service=SERVICE) == contact_us_images.v2


def test_crashing_image_fails_fast_and_the_previous_one_keeps_serving(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    first = local_runtime.deploy(spec=spec(env, contact_us_images.v1), on_backends_changed=lambda _: None)
    v1_ids = sorted(container.id for container in containers_of(docker_client, env))
    announced: list[list[str]] = []

    started = time.monotonic()
    outcome = local_runtime.deploy(
        spec=spec(env, contact_us_images.v2, CRASH_ON_START="true"), on_backends_changed=announced.append
    )
    elapsed = time.monotonic() - started

    print(f"crash detected and new replicas removed after {elapsed:.2f}s")
    assert outcome.status == "failed"
    assert elapsed < 30
    assert (outcome.image, outcome.previous_image) == (contact_us_images.v1, contact_us_images.v1)
    assert not outcome.health.healthy
    assert any("exited with code 1" in p or "crash-looping" in p for p in outcome.health.problems), outcome.health
    assert announced == []
    assert sorted(container.id for container in containers_of(docker_client, env)) == v1_ids
    for endpoint in endpoints_of(first.health):
        assert get_health(endpoint).json()["version"] == V1
    assert local_runtime.running_image(environment=env, service=SERVICE) == contact_us_images.v1


def test_replicas_that_never_get_ready_fail_after_the_ready_timeout(
    make_environment: MakeEnvironment, contact_us_images: ServiceImages, docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    impatient = LocalDockerRuntime(docker_host=DOCKER_HOST, ready_timeout_seconds=3)
    no_such_path = spec(env, contact_us_images.v1).model_copy(update={"health_path": "/no-such-path"})

    started = time.monotonic()
    outcome = impatient.deploy(spec=no_such_path, on_backends_changed=lambda _: None)

    assert outcome.status == "failed" and outcome.image is None
    assert 3 <= time.monotonic() - started < 10
    assert outcome.health.problems[-1] == "0 of 2 replicas ready"
    assert sum("is not ready" in problem for problem in outcome.health.problems) == 2
    assert containers_of(docker_client, env) == []


def test_an_image_the_registry_cannot_serve_raises_before_anything_starts(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, unreachable_registry: str,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    image = f"{unreachable_registry}/contact-us@sha256:{'0' * 64}"

    with pytest.raises(RegistryUnavailableError, match="pulling .*contact-us@sha256:0+ failed"):
        local_runtime.deploy(spec=spec(env, image), on_backends_changed=lambda _: None)

    assert containers_of(docker_client, env) == []


def test_health_returns_at_once_when_a_replica_dies(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env = make_environment()
    local_runtime.deploy(spec=spec(env, contact_us_images.v1), on_backends_changed=lambda _: None)
    victim = containers_of(docker_client, env)[0]
    victim.kill()

    started = time.monotonic()
    health = local_runtime.health(
        environment=env, service=SERVICE, desired_replicas=2, expected_image=contact_us_images.v1, window_seconds=30
    )

    assert time.monotonic() - started < 5
    assert not health.healthy
    assert any(
        problem.startswith(victim.name) and ("crash-looping" in problem or "exited" in problem)
        for problem in health.problems
    ), health.problems


def test_teardown_removes_every_container_of_the_environment_and_only_those(
    local_runtime: LocalDockerRuntime, make_environment: MakeEnvironment, contact_us_images: ServiceImages,
    docker_client: docker.DockerClient,
) -> None:
    env, other = make_environment(), make_environment()
    for deployed in (
        spec(env, contact_us_images.v1),
        spec(env, contact_us_images.v1, replicas=1, service="contact-us-2"),
        spec(other, contact_us_images.v1, replicas=1),
    ):
        local_runtime.deploy(spec=deployed, on_backends_changed=lambda _: None)
    names = sorted(container.name for container in containers_of(docker_client, env))

    removed = local_runtime.teardown(environment=env)

    assert len(names) == 3 and removed == names
    assert containers_of(docker_client, env) == []
    assert [container.status for container in containers_of(docker_client, other)] == ["running"]
    assert local_runtime.teardown(environment=env) == []
