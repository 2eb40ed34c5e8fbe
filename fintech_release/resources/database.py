"""Databases: create an environment's databases and apply each service's versioned SQL migrations.

The local platform uses MariaDB on loopback; the gke platform CloudSQL through the Cloud SQL
connector. Migrations are `V<version>__<description>.sql` files, applied once, in version order;
an applied migration whose file changed afterwards is an error, never silently skipped.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import BaseModel


class MigrationResult(BaseModel, frozen=True):
    """What one migrate call did to one database."""

    database: str
    created: bool  # the database did not exist before
    applied: tuple[str, ...]  # migration files applied now, in order
    already_applied: tuple[str, ...]


class DatabaseAdmin(ConfigurableResource):
    """Administers the databases of every environment on one server (or CloudSQL instance)."""

    # True when the server goes with the environment (gke: Terraform destroys the CloudSQL instance),
    # so a teardown has no databases to drop; False when it outlives the environment (local MariaDB).
    dropped_with_environment: ClassVar[bool] = False

    @abstractmethod
    def migrate(self, *, database: str, migrations_dir: Path | None) -> MigrationResult:
        """Create `database` if it does not exist and apply pending migrations from `migrations_dir`."""

    @abstractmethod
    def drop(self, *, database: str) -> bool:
        """Drop `database` if it exists; True when it did."""

    @abstractmethod
    def databases(self, *, prefix: str) -> list[str]:
        """The databases whose name starts with `prefix`."""
