"""The health model, in one place: what makes a running service healthy, for every platform.

A platform reports each replica (a container locally, a pod on GKE) as a `ReplicaStatus`;
`assess` turns them into a `ServiceHealth` with every problem spelled out. A crash loop is a
failure at once: nobody waits for a timeout to learn that a process keeps dying. (Errors a
platform retries by itself, such as an image pull after a registry 5xx, get a grace period
there: see `fintech_release.health.kubernetes`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

ReplicaState = Literal["starting", "running", "restarting", "exited", "missing"]
Readiness = Literal["ready", "not_ready", "unknown"]


class ReplicaStatus(BaseModel, frozen=True):
    """One replica as the platform sees it."""

    name: str
    image: str
    state: ReplicaState
    readiness: Readiness
    restart_count: int = 0
    exit_code: int | None = None
    endpoint: str | None = None  # address:port the replica serves on
    started_at: datetime | None = None
    reason: str | None = None  # the platform's own words, e.g. "CrashLoopBackOff", "OOMKilled"
    last_output: str | None = None  # the last lines a failing or never-ready replica wrote, shortened


class ServiceHealth(BaseModel, frozen=True):
    """The verdict on one service in one environment."""

    environment: str
    service: str
    healthy: bool
    ready_replicas: int
    desired_replicas: int
    problems: tuple[str, ...]
    replicas: tuple[ReplicaStatus, ...]


def assess(
    *,
    environment: str,
    service: str,
    replicas: list[ReplicaStatus],
    desired_replicas: int,
    expected_image: str | None = None,
) -> ServiceHealth:
    """Judge `replicas`: healthy when `desired_replicas` run the expected image, ready, with no restarts."""
    problems: list[str] = []
    for replica in replicas:
        problems += _replica_problems(replica, expected_image)
    ready = sum(1 for r in replicas if r.state == "running" and r.readiness == "ready")
    if ready < desired_replicas:
        problems.append(f"{ready} of {desired_replicas} replicas ready")
    return ServiceHealth(
        environment=environment,
        service=service,
        healthy=not problems,
        ready_replicas=ready,
        desired_replicas=desired_replicas,
        problems=tuple(problems),
        replicas=tuple(replicas),
    )


def _replica_problems(replica: ReplicaStatus, expected_image: str | None) -> list[str]:
    name = replica.name
    because = f" ({replica.reason})" if replica.reason else ""
    output = f"; last output: {replica.last_output}" if replica.last_output else ""
    if replica.state == "restarting" or (replica.restart_count > 0 and replica.state != "exited"):
        return [f"{name} is crash-looping: {replica.restart_count} restarts{because}{output}"]
    if replica.state == "exited":
        return [f"{name} exited with code {replica.exit_code}{because} after {replica.restart_count} restarts{output}"]
    if replica.state == "missing":
        return [f"{name} is missing{because}"]
    problems = []
    if expected_image is not None and replica.image != expected_image:
        problems.append(f"{name} runs {replica.image}, expected {expected_image}")
    if replica.state == "running" and replica.readiness == "not_ready":
        problems.append(f"{name} is not ready{because}{output}")
    return problems
