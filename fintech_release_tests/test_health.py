"""The health model: `assess` names every problem, and only a full set of ready, stable replicas of the
expected image is healthy. Pure unit tests: the replica statuses are written here, no platform runs."""

from __future__ import annotations

from typing import Any

from fintech_release.health.model import ReplicaStatus, ServiceHealth, assess

IMAGE = "127.0.0.1:5000/contact-us@sha256:" + "1" * 64
OTHER_IMAGE = "127.0.0.1:5000/contact-us@sha256:" + "2" * 64


def replica(name: str = "r1", **changes: Any) -> ReplicaStatus:
    """A running, ready replica of IMAGE, with `changes` applied."""
    fields: dict[str, Any] = {"name": name, "image": IMAGE, "state": "running", "readiness": "ready"}
    return ReplicaStatus(**{**fields, **changes})


def judge(*replicas: ReplicaStatus, desired: int | None = None, expected: str | None = IMAGE) -> ServiceHealth:
    return assess(
        environment="staging",
        service="contact-us",
        replicas=list(replicas),
        desired_replicas=len(replicas) if desired is None else desired,
        expected_image=expected,
    )


def test_ready_replicas_of_the_expected_image_are_healthy() -> None:
    health = judge(replica("r1"), replica("r2"))

    assert health.healthy
    assert health.problems == ()
    assert (health.ready_replicas, health.desired_replicas) == (2, 2)
    assert (health.environment, health.service) == ("staging", "contact-us")


def test_restarting_replica_is_crash_looping() -> None:
    health = judge(replica("r1"), replica("r2", state="restarting", restart_count=3, exit_code=1))

    assert not health.healthy
    assert "r2 is crash-looping: 3 restarts" in health.problems
    assert health.ready_replicas == 1


def test_running_replica_that_restarted_is_crash_looping_with_the_platform_reason() -> None:
    health = judge(replica("r1", restart_count=2, reason="CrashLoopBackOff"))

    assert not health.healthy
    assert health.problems == ("r1 is crash-looping: 2 restarts (CrashLoopBackOff)",)


def test_exited_replica_names_its_exit_code() -> None:
    health = judge(replica("r1", state="exited", readiness="unknown", exit_code=137, reason="OOMKilled"))

    assert not health.healthy
    assert health.problems == ("r1 exited with code 137 (OOMKilled) after 0 restarts", "0 of 1 replicas ready")


def test_missing_replica() -> None:
    health = judge(replica("r1", state="missing", readiness="unknown"))

    assert health.problems == ("r1 is missing", "0 of 1 replicas ready")


def test_running_replica_that_is_not_ready() -> None:
    health = judge(replica("r1", readiness="not_ready", reason="GET /health timed out"))

    assert health.problems == ("r1 is not ready (GET /health timed out)", "0 of 1 replicas ready")


def test_replica_running_another_image() -> None:
    health = judge(replica("r1", image=OTHER_IMAGE))

    assert not health.healthy
    assert health.problems == (f"r1 runs {OTHER_IMAGE}, expected {IMAGE}",)
    assert health.ready_replicas == 1


def test_any_image_is_accepted_when_none_is_expected() -> None:
    assert judge(replica("r1", image=OTHER_IMAGE), expected=None).healthy


def test_fewer_ready_replicas_than_desired() -> None:
    health = judge(replica("r1"), replica("r2", state="starting", readiness="unknown"), desired=3)

    assert not health.healthy
    assert health.problems == ("1 of 3 replicas ready",)


def test_no_replicas_at_all() -> None:
    health = judge(desired=2)

    assert health.problems == ("0 of 2 replicas ready",)
    assert health.replicas == ()
