"""Databases: create an environment's databases and apply each service's versioned SQL migrations.

The local platform uses MariaDB on loopback; the gke platform CloudSQL through the Cloud SQL
connector. Migrations are `V<version>__<description>.sql` files, applied once, in version order;
an applied migration whose file changed afterwards is an error, never silently skipped, and one
that would break the version still serving is refused before anything is applied.

A service reaches its database through `DatabaseAccess`: the contract every platform keeps is the
environment variables DB_HOST, DB_PORT, DB_NAME, DB_USER and DB_PASSWORD_FILE, the path of a
read-only file holding only the password. The password itself is never an environment variable,
a label, a command line or metadata.
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


class DatabaseAccess(BaseModel, frozen=True):
    """How one service reaches its database: everything but the password, which stays in `password_file`."""

    host: str
    port: int
    name: str
    user: str
    password_file: str  # on the machine running the replicas; mounted read-only into each one
    revision: str  # random, changes with every new password: replicas holding an older one are replaced

    def variables(self, password_path: str) -> dict[str, str]:
        """The DB_* variables of a replica that reads the password from `password_path` (inside the replica)."""
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_NAME": self.name,
            "DB_USER": self.user,
            "DB_PASSWORD_FILE": password_path,
        }


class BackupRecord(BaseModel, frozen=True):
    """A backup taken before migrations: where it is and how to check it is whole."""

    location: str  # a file path (local) or the Cloud SQL backup run's name
    databases: tuple[str, ...]
    size_bytes: int | None = None
    sha256: str | None = None
    detail: str = ""


class DatabaseAdmin(ConfigurableResource):
    """Administers the databases of every environment on one server (or CloudSQL instance)."""

    # True when the server goes with the environment (gke: Terraform destroys the CloudSQL instance),
    # so a teardown has no databases to drop; False when it outlives the environment (local MariaDB).
    dropped_with_environment: ClassVar[bool] = False

    @abstractmethod
    def migrate(self, *, database: str, migrations_dir: Path | None) -> MigrationResult:
        """Create `database` if it does not exist and apply pending migrations from `migrations_dir`."""

    @abstractmethod
    def pending_migrations(self, *, database: str, migrations_dir: Path | None) -> tuple[str, ...]:
        """The migrations `migrate` would apply, after the same checks; nothing is applied."""

    @abstractmethod
    def backup(self, *, environment: str, databases: list[str]) -> BackupRecord:
        """A consistent backup of `databases` (of `environment`), taken now; raises when it cannot be taken."""

    def accounts(self, *, database: str) -> tuple[str, ...]:
        """The accounts the platform keeps for `database` (migration, application); none where another system
        (Terraform on gke) owns them."""
        return ()

    def service_access(self, *, database: str) -> DatabaseAccess | None:
        """How a service's replicas reach `database`, for a runtime that delivers it (None: the platform does)."""
        return None

    def rotate_application_password(self, *, database: str) -> str | None:
        """Give `database`'s application a new password under its standby account; return the account now
        active (None where the platform rotates credentials itself). The account used before keeps working
        until `retire_standby_account`, so replicas not yet replaced keep connecting."""
        return None

    def retire_standby_account(self, *, database: str) -> str | None:
        """Lock the application account no replica uses any more (after a rollout); return it, or None."""
        return None

    @abstractmethod
    def drop(self, *, database: str) -> bool:
        """Drop `database` if it exists; True when it did."""

    @abstractmethod
    def databases(self, *, prefix: str) -> list[str]:
        """The databases whose name starts with `prefix`."""
