"""Service runtime: run a service's image as replicas in an environment, roll it, judge its health.

`ServiceRuntime` is the interface the environment assets use. The local platform implements it on
the Docker engine (containers with host networking, bound to the environment's loopback address);
the gke platform implements it with Helm and the Kubernetes API.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from dagster import ConfigurableResource
from pydantic import BaseModel, Field

from fintech_release.health.model import ServiceHealth
from fintech_release.resources.database import DatabaseAccess

# Called with the endpoints ("address:port") that should receive traffic, whenever they change; what it returns
# (the ingress's IngressInfo) is not used.
BackendsChanged = Callable[[list[str]], object]


class DeploySpec(BaseModel, frozen=True):
    """What to run: one service's image in one environment."""

    environment: str
    service: str
    image: str  # pinned reference, registry/repository@sha256:…
    replicas: int = Field(ge=1)
    address: str  # the environment's loopback address replicas bind to
    health_path: str
    env: dict[str, str] = Field(default_factory=dict)  # runtime settings (APP_ENV, …); never secrets in clear
    # The service's database (DB_* variables + the password file mounted read-only); None: it has none here.
    database: DatabaseAccess | None = None


class DeployOutcome(BaseModel, frozen=True):
    """What a deployment did. `failed` means the new image never served: the previous one still does."""

    status: Literal["deployed", "unchanged", "failed"]
    image: str | None  # the image serving after the deployment
    previous_image: str | None
    health: ServiceHealth
    detail: str


class ServiceRuntime(ConfigurableResource):
    """Runs service replicas in environments."""

    @abstractmethod
    def ensure_environment(self, *, environment: str, address: str) -> dict[str, str]:
        """Make the environment's runtime exist (idempotent); return facts about it for metadata."""

    @abstractmethod
    def running_image(self, *, environment: str, service: str) -> str | None:
        """The image the service's replicas run now, or None when it is not deployed."""

    @abstractmethod
    def deploy(self, *, spec: DeploySpec, on_backends_changed: BackendsChanged) -> DeployOutcome:
        """Roll `spec.image` out: new replicas must be ready before old ones go.

        Unchanged when every replica already runs `spec.image` and the count matches. When a new
        replica crashes or never gets ready, the new replicas are removed, the old ones keep
        serving and the outcome is `failed` (it does not raise for that).
        """

    @abstractmethod
    def health(
        self, *, environment: str, service: str, desired_replicas: int, expected_image: str | None,
        window_seconds: float, since: datetime | None = None,
    ) -> ServiceHealth:
        """Watch the service for up to `window_seconds`; return early on the first back-off state.

        Restarts count from `since` (the deployment's start; None: the start of the watch) where the
        platform keeps replicas across deployments.
        """

    def refuse_teardown(self, *, environment: str) -> None:
        """Raise `DeploymentRefusedError` when `environment` must not be torn down (by default any may be).

        Asked before anything of the environment is removed, so a refusal leaves it whole.
        """

    @abstractmethod
    def teardown(self, *, environment: str) -> list[str]:
        """Remove everything the runtime holds for the environment; return what was removed."""
