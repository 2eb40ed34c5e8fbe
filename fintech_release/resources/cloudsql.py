"""`CloudSqlDatabase`: the gke platform's databases on a Cloud SQL for MySQL instance.

Connections go through the Cloud SQL Python Connector (``cloud-sql-python-connector``, driver
``pymysql``): it fetches the instance's address and an ephemeral client certificate from the
Cloud SQL Admin API with the application's Google credentials and opens TLS to the instance, so
no Cloud SQL Auth Proxy sidecar is needed. Everything else (yoyo, checksums, drop, list) is the
shared code in `fintech_release.resources.migrations`, the same the local platform runs.

One `Connector` serves one operation (a migrate opens several connections) and is closed after
it. It runs on an event loop of ours so that every connection attempt has a deadline: the
connector's own synchronous `connect` waits without one, and its TCP connect to port 3307 has
no timeout either, so an unreachable private IP would otherwise hang for minutes.

Failures of the connector become `ExternalSystemError`s that name the instance and say what to do
(missing Google credentials, access refused, no such instance, no IP of the requested type,
timeouts); the database password never appears in them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import ClassVar, Literal

import aiohttp
import google.auth
import pymysql
from google.auth.credentials import Credentials
from google.auth.exceptions import DefaultCredentialsError, RefreshError
from google.cloud.sql.connector import Connector
from google.cloud.sql.connector import exceptions as connector_exceptions
from pydantic import Field

from fintech_release.config.models import CLOUDSQL_INSTANCE_PATTERN
from fintech_release.errors import ExternalSystemError
from fintech_release.resources.cloudsql_admin import CREDENTIALS_HINT, CloudSqlAdmin
from fintech_release.resources.database import BackupRecord
from fintech_release.resources.migrations import MySqlDatabaseAdmin, OpenConnection, is_connection_error

SQLADMIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.admin"
CLOSE_TIMEOUT_SECONDS = 5


class CloudSqlDatabase(MySqlDatabaseAdmin):
    """Creates, migrates and drops databases on a Cloud SQL for MySQL instance (Cloud SQL connector, yoyo)."""

    # One instance per environment, destroyed with it by `terraform destroy` (GkeRuntime.teardown).
    dropped_with_environment: ClassVar[bool] = True

    instance_connection_name: str = Field(
        pattern=CLOUDSQL_INSTANCE_PATTERN, description='The instance as "project:region:instance".'
    )
    ip_type: Literal["PRIVATE", "PUBLIC", "PSC"] = "PRIVATE"
    timeout: int = Field(default=30, ge=1, description="Seconds one connection may take, Admin API calls included.")
    sqladmin_api_endpoint: str | None = Field(
        default=None, description="Base URL of the Admin API the connector asks; None: https://sqladmin.googleapis.com."
    )

    admin: CloudSqlAdmin = Field(default_factory=CloudSqlAdmin, description="The Admin API, for backups.")

    def _server(self) -> str:
        return f"CloudSQL instance {self.instance_connection_name}"

    def backup(self, *, environment: str, databases: list[str]) -> BackupRecord:
        """An on-demand backup of the whole instance (Cloud SQL backs up instances, not databases)."""
        operation, backup_id = self.admin.backup(
            self.instance_connection_name,
            description=f"fintech-release: before migrating {', '.join(databases)} in {environment}",
        )
        return BackupRecord(
            location=f"{self.instance_connection_name} backup {backup_id}", databases=tuple(databases),
            detail=f"on-demand Cloud SQL backup, operation {operation}",
        )

    @contextmanager
    def _connections(self) -> Iterator[OpenConnection]:
        credentials = self._credentials()
        loop = asyncio.new_event_loop()
        try:
            # Lazy refresh: nothing runs in the background, fitting a connector that lives for one operation.
            connector = Connector(
                ip_type=self.ip_type,
                timeout=self.timeout,
                credentials=credentials,
                sqladmin_api_endpoint=self.sqladmin_api_endpoint,
                loop=loop,
                refresh_strategy="lazy",
            )
        except BaseException:
            loop.close()
            raise
        thread = threading.Thread(target=loop.run_forever, name="cloudsql-connector", daemon=True)
        thread.start()

        def connect(database: str | None, *, autocommit: bool) -> pymysql.connections.Connection:
            future = asyncio.run_coroutine_threadsafe(
                connector.connect_async(
                    self.instance_connection_name,
                    "pymysql",
                    user=self.user,
                    password=self._password(),
                    database=database,
                    charset="utf8mb4",
                    autocommit=autocommit,
                ),
                loop,
            )
            try:
                return future.result(timeout=self.timeout)
            except TimeoutError:
                future.cancel()
                raise

        try:
            yield connect
        finally:
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(connector.close_async(), loop).result(timeout=CLOSE_TIMEOUT_SECONDS)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=CLOSE_TIMEOUT_SECONDS)
            if not thread.is_alive():
                loop.close()

    def _credentials(self) -> Credentials:
        """Application Default Credentials, looked up here so that missing ones fail before anything starts."""
        credentials, _ = google.auth.default(scopes=[SQLADMIN_SCOPE])
        return credentials

    def _is_transient(self, error: BaseException) -> bool:
        return is_connection_error(error) or isinstance(error, ConnectionError)

    def _explain(self, what: str, error: Exception) -> ExternalSystemError | None:
        instance = self._server()
        if isinstance(error, DefaultCredentialsError):
            return ExternalSystemError(
                f"{what} on {instance}: no usable Google credentials ({error}); {CREDENTIALS_HINT}"
            )
        if isinstance(error, RefreshError):
            return ExternalSystemError(
                f"{what} on {instance}: the Google credentials could not be refreshed ({error}); {CREDENTIALS_HINT}"
            )
        if isinstance(error, aiohttp.ClientResponseError):
            return ExternalSystemError(f"{what} on {instance}: {_admin_api_advice(error)}")
        if isinstance(error, connector_exceptions.CloudSQLIPTypeError):
            return ExternalSystemError(
                f"{what} on {instance}: the instance has no {self.ip_type} IP address ({error}); "
                "set ip_type to an address type the instance has (PRIVATE, PUBLIC or PSC)"
            )
        if isinstance(error, TimeoutError):
            return ExternalSystemError(
                f"{what} on {instance}: no connection within {self.timeout}s over its {self.ip_type} IP; "
                f"check that this host can reach the instance ({self._reachability_advice()}) or raise timeout"
            )
        if isinstance(error, OSError):
            attempts = f" after {self.connect_attempts} attempts" if self._is_transient(error) else ""
            return ExternalSystemError(
                f"{what} on {instance} failed{attempts}: {type(error).__name__}: {error}; "
                f"check that this host can reach the instance ({self._reachability_advice()})"
            )
        if isinstance(error, aiohttp.ClientError | connector_exceptions.CloudSQLConnectionError):
            return ExternalSystemError(f"{what} on {instance} failed: {type(error).__name__}: {error}")
        return None

    def _reachability_advice(self) -> str:
        if self.ip_type == "PRIVATE":
            return "a private IP is reachable only from the instance's VPC, e.g. from a pod in the GKE cluster"
        if self.ip_type == "PSC":
            return "a Private Service Connect endpoint must exist in this host's VPC"
        return "the instance must have a public IP; the connector needs outbound port 3307"


def _admin_api_advice(error: aiohttp.ClientResponseError) -> str:
    """What an HTTP error of the Cloud SQL Admin API (met while the connector looked up the instance) means."""
    said = f"the Cloud SQL Admin API answered {error.status} ({error.message})"
    if error.status in (401, 403):
        return (
            f"{said}; the credentials' account needs the Cloud SQL Client role (roles/cloudsql.client) in the "
            "instance's project, and the Cloud SQL Admin API (sqladmin.googleapis.com) must be enabled there"
        )
    if error.status == 404:
        return f"{said}; check instance_connection_name (project:region:instance)"
    return said


__all__ = ["CloudSqlDatabase"]
