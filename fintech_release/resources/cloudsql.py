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

Accounts. Terraform creates, per service with a database, the users `<database>_mig` and
`<database>_app` (deploy/terraform/modules/cloudsql) and cannot run SQL, so Cloud SQL leaves them
with what its API gives every user it creates: the role `cloudsqlsuperuser` on MySQL 8.0 (the
superuser's privileges on `*.*` on 5.7). Before migrating, `_prepare` converges both, as the admin,
with the code the local platform uses (`account_privileges`): `<database>_app` keeps SELECT, INSERT,
UPDATE and DELETE on `<env>_<database>`, `<database>_mig` every privilege there, and nothing else.
The migrations then run as `<database>_mig`, never as the admin. Its password is read, when the
migration connects, from the Secret `<service>-db-migration` that Terraform wrote into the
environment's namespace (key `password`), through the Kubernetes API; it stays in memory: never
logged, never in metadata or an error.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import ClassVar, Literal

import aiohttp
import google.auth
import pymysql
from dagster import Config, get_dagster_logger
from google.auth.credentials import Credentials
from google.auth.exceptions import DefaultCredentialsError, RefreshError
from google.cloud.sql.connector import Connector, exceptions as connector_exceptions
from pydantic import Field

from fintech_release.config.models import CLOUDSQL_INSTANCE_PATTERN
from fintech_release.errors import ExternalSystemError, MigrationError
from fintech_release.resources.account_privileges import (
    ALL_PRIVILEGES,
    DATA_PRIVILEGES,
    Account,
    Server,
    converge_account,
)
from fintech_release.resources.cloudsql_admin import CREDENTIALS_HINT, CloudSqlAdmin
from fintech_release.resources.database import BackupRecord
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.migrations import MySqlDatabaseAdmin, OpenConnection, is_connection_error

SQLADMIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.admin"
CLOSE_TIMEOUT_SECONDS = 5
PROXY_USER_HOST = "cloudsqlproxy~%"  # Terraform's user_host: users reachable only through the proxy/connectors
SECRET_KEY = "password"  # the only key of the Secrets Terraform writes


class ServiceAccounts(Config):
    """The Terraform-made users of one service's database, and the Secret holding the migration user's password."""

    service: str
    migration_user: str
    application_user: str
    migration_secret: str


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

    environment: str = Field(default="", description="The gke environment this instance serves (for messages).")
    kube_context: str | None = Field(default=None, description="The environment's cluster; None: current context.")
    namespace: str = Field(default="fintech", description="Where Terraform wrote the services' Secrets.")
    account_host: str = Field(default=PROXY_USER_HOST, description="Host part of the services' users.")
    service_accounts: dict[str, ServiceAccounts] = Field(
        default_factory=dict, description="Per database (<env>_<database>): its users and the migration Secret."
    )
    cluster: KubernetesCluster = Field(
        default_factory=KubernetesCluster, description="The Kubernetes API, to read the migration password."
    )

    def _server(self) -> str:
        return f"CloudSQL instance {self.instance_connection_name}"

    def accounts(self, *, database: str) -> tuple[str, ...]:
        known = self.service_accounts.get(database)
        return (known.migration_user, known.application_user) if known else ()

    def _known(self, database: str) -> ServiceAccounts:
        known = self.service_accounts.get(database)
        if known is None:
            raise MigrationError(
                f"database {database!r} on {self._server()}: no service of release.yaml has it, so its users "
                "are unknown and its migrations would run as the admin; give the service `database:`"
            )
        return known

    def _prepare(self, connect: OpenConnection, database: str) -> None:
        """Limit the service's two users to their database: revoke what Cloud SQL gave them, grant what they need."""
        known = self._known(database)
        with self._connection(connect) as connection, connection.cursor() as cursor:
            server = Server.inspect(cursor)
            for user, privileges in (
                (known.migration_user, ALL_PRIVILEGES), (known.application_user, DATA_PRIVILEGES)
            ):
                changes = converge_account(cursor, server, Account(user, self.account_host), database, privileges)
                if changes:
                    get_dagster_logger().info(f"{database}: {user}: {'; '.join(changes)}")

    def _migration_connections(self, database: str) -> AbstractContextManager[OpenConnection]:
        """Connections as the migration user, with the password Terraform put into its Secret."""
        known = self._known(database)
        password = self.cluster.read_secret_value(
            environment=self.environment, kube_context=self.kube_context, namespace=self.namespace,
            name=known.migration_secret, key=SECRET_KEY,
        )
        return self._opener(known.migration_user, lambda: password)

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

    def _connections(self) -> AbstractContextManager[OpenConnection]:
        return self._opener(self.user, self._password)

    @contextmanager
    def _opener(self, user: str, password: Callable[[], str]) -> Iterator[OpenConnection]:
        """A connector for one operation, opening connections as `user`."""
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
                    user=user,
                    password=password(),
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
