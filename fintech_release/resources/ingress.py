"""Ingress: each environment's single entry point, routing /<service>/… to that service's replicas.

The local platform runs one nginx per environment on its loopback address; the gke platform
installs ingress-nginx with Helm. Every configuration change is validated before it replaces the
running one: a bad configuration never replaces a good one.
"""

from __future__ import annotations

from abc import abstractmethod

from dagster import ConfigurableResource
from pydantic import BaseModel


class IngressInfo(BaseModel, frozen=True):
    """Where an environment's ingress answers, and what it routes."""

    environment: str
    url: str  # e.g. http://127.0.2.1:8000
    routes: dict[str, list[str]]  # service -> backends (address:port); an empty list answers 503


class Ingress(ConfigurableResource):
    """An environment's HTTP entry point with path-rewriting routes per service."""

    @abstractmethod
    def ensure(self, *, environment: str, address: str, port: int, services: list[str]) -> IngressInfo:
        """Run the entry point with a route for each service (idempotent; existing backends are kept)."""

    @abstractmethod
    def set_backends(self, *, environment: str, service: str, backends: list[str]) -> IngressInfo:
        """Send /<service>/… to `backends` (path rewritten to /…); validated before it goes live."""

    @abstractmethod
    def remove(self, *, environment: str) -> list[str]:
        """Stop the entry point and delete its configuration; return what was removed."""
