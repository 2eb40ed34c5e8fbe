"""Production readiness of a Cloud SQL instance, read through the Cloud SQL Admin API.

`CloudSqlAdmin.production_readiness` GETs the instance (``instances.get``) with the official
client of the installed ``google-cloud-sql`` package (`google.cloud.sqladmin_v1`) and judges what
the design asks of production: automated backups on, a backup window, binary logging (MySQL) or
point-in-time recovery (other engines), and high availability (availability type REGIONAL, or a
legacy failover replica that is in sync). It returns a `CloudSqlReadiness` (passed + findings)
that the environment asset attaches as an asset check.

`CloudSqlAdmin.backup` takes an on-demand backup before production migrations (``backupRuns.insert``)
and waits for its operation (``operations.get``) to be DONE; an operation that ends with errors, or
does not end within `backup_timeout_seconds`, raises, so nothing migrates without a backup.

google-cloud-sql 0.1.2 ships only gRPC transports (no REST transport), so the API is reached over
gRPC at ``sqladmin.googleapis.com`` (the same host and service the Cloud SQL connector's gRPC
clients use). `api_endpoint` may instead be ``http://<loopback>:<port>``: a plaintext channel
without credentials, for the contract tests' loopback server, refused for any other host.
"""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

import google.auth
import grpc
from dagster import ConfigurableResource
from google.api_core import exceptions as api_exceptions, retry as api_retry
from google.auth.exceptions import DefaultCredentialsError, RefreshError
from google.cloud import sqladmin_v1
from google.cloud.sqladmin_v1.services.sql_backup_runs_service.transports import SqlBackupRunsServiceGrpcTransport
from google.cloud.sqladmin_v1.services.sql_instances_service.transports import SqlInstancesServiceGrpcTransport
from google.cloud.sqladmin_v1.services.sql_operations_service.transports import SqlOperationsServiceGrpcTransport
from pydantic import BaseModel, Field

from fintech_release.errors import ExternalSystemError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
OPERATION_POLL_SECONDS = 2.0
CREDENTIALS_HINT = (
    "run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
    "key file, or run where a service account is attached (GKE Workload Identity)"
)
TRANSIENT = (api_exceptions.ServiceUnavailable, api_exceptions.InternalServerError, api_exceptions.TooManyRequests)


class CloudSqlReadiness(BaseModel, frozen=True):
    """What the production readiness check saw on one instance; `passed` when there are no findings."""

    instance: str  # project:region:instance
    passed: bool
    findings: tuple[str, ...]  # each names the API field, what is wrong and what to set
    state: str
    database_version: str
    availability_type: str
    backups_enabled: bool
    backup_start_time: str | None
    binary_log_enabled: bool
    point_in_time_recovery_enabled: bool
    failover_replica: str | None
    replica_names: tuple[str, ...]


class CloudSqlAdmin(ConfigurableResource):
    """Reads Cloud SQL instances through the Cloud SQL Admin API (google-cloud-sql, gRPC)."""

    api_endpoint: str = Field(
        default="sqladmin.googleapis.com",
        description="host[:port] of the Admin API (TLS, application default credentials), "
        "or http://<loopback>:<port> for a plaintext test server.",
    )
    timeout_seconds: float = Field(default=30, gt=0, description="Deadline of one check, retries included.")
    backup_timeout_seconds: float = Field(default=1800, gt=0, description="How long an on-demand backup may take.")
    poll_seconds: float = Field(default=OPERATION_POLL_SECONDS, gt=0, description="How often a backup is looked at.")

    def backup(self, instance_connection_name: str, *, description: str) -> tuple[str, str]:
        """Take an on-demand backup of the instance and wait until it is done; return (operation, backup id).

        Raises `ExternalSystemError` naming the instance when the API refuses, the operation reports
        errors, or it does not finish within `backup_timeout_seconds`.
        """
        project, _, instance_id = instance_connection_name.rsplit(":", 2)
        what = f"an on-demand backup of CloudSQL instance {instance_connection_name}"
        channel = self._channel(instance_connection_name)
        runs = sqladmin_v1.SqlBackupRunsServiceClient(transport=SqlBackupRunsServiceGrpcTransport(**channel))
        operations = sqladmin_v1.SqlOperationsServiceClient(transport=SqlOperationsServiceGrpcTransport(**channel))
        try:
            operation = runs.insert(
                request=sqladmin_v1.SqlBackupRunsInsertRequest(
                    project=project, instance=instance_id, body=sqladmin_v1.BackupRun(description=description)
                ),
                timeout=self.timeout_seconds,
            )
            deadline = time.monotonic() + self.backup_timeout_seconds
            while operation.status != sqladmin_v1.Operation.SqlOperationStatus.DONE:
                if time.monotonic() >= deadline:
                    raise ExternalSystemError(
                        f"{what}: operation {operation.name} not done after {self.backup_timeout_seconds:g}s; "
                        "nothing was migrated"
                    )
                time.sleep(self.poll_seconds)
                operation = operations.get(
                    request=sqladmin_v1.SqlOperationsGetRequest(project=project, operation=operation.name),
                    timeout=self.timeout_seconds,
                )
        except (api_exceptions.GoogleAPIError, RefreshError) as error:
            message = _api_error_message(error, instance_connection_name, project, self.timeout_seconds)
            raise ExternalSystemError(f"{what} failed: {message}") from None
        finally:
            runs.transport.close()
            operations.transport.close()
        if operation.error.errors:
            said = "; ".join(f"{e.code}: {e.message}" for e in operation.error.errors)
            raise ExternalSystemError(f"{what} failed (operation {operation.name}): {said}; nothing was migrated")
        return operation.name, str(operation.backup_context.backup_id or operation.target_id)

    def _channel(self, instance_connection_name: str) -> dict:
        """Transport arguments: a plaintext loopback channel for a test server, else TLS with Google credentials."""
        if self.api_endpoint.startswith("http://"):
            url = urlsplit(self.api_endpoint)
            if not _is_loopback(url.hostname or ""):
                raise ExternalSystemError(
                    f"Cloud SQL Admin API endpoint {self.api_endpoint} is plaintext but not on loopback; "
                    "use host[:port] (TLS) for anything but a local test server"
                )
            return {"channel": grpc.insecure_channel(url.netloc)}
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except DefaultCredentialsError as error:
            raise ExternalSystemError(
                f"CloudSQL instance {instance_connection_name} through the Cloud SQL Admin API: "
                f"no usable Google credentials ({error}); {CREDENTIALS_HINT}"
            ) from None
        return {"host": self.api_endpoint.removeprefix("https://"), "credentials": credentials}

    def production_readiness(self, instance_connection_name: str) -> CloudSqlReadiness:
        """GET `project:region:instance` and judge backups, binary logging / PITR and high availability.

        `instance_connection_name` is release.yaml's `gke.cloudsql_instance`, which the config layer
        validated (CLOUDSQL_INSTANCE_PATTERN); a domain-scoped project keeps its colon.
        """
        project, region, instance_id = instance_connection_name.rsplit(":", 2)
        request = sqladmin_v1.SqlInstancesGetRequest(project=project, instance=instance_id)
        retry = api_retry.Retry(
            predicate=api_retry.if_exception_type(*TRANSIENT),
            initial=0.5,
            maximum=5,
            timeout=self.timeout_seconds,
        )
        client = self._client(instance_connection_name)
        try:
            instance = client.get(request=request, retry=retry, timeout=self.timeout_seconds)
        except (api_exceptions.GoogleAPIError, RefreshError) as error:
            message = _api_error_message(error, instance_connection_name, project, self.timeout_seconds)
            raise ExternalSystemError(message) from None
        finally:
            client.transport.close()
        return judge(instance_connection_name, region, instance)

    def _client(self, instance_connection_name: str) -> sqladmin_v1.SqlInstancesServiceClient:
        if self.api_endpoint.startswith("http://"):
            url = urlsplit(self.api_endpoint)
            if not _is_loopback(url.hostname or ""):
                raise ExternalSystemError(
                    f"Cloud SQL Admin API endpoint {self.api_endpoint} is plaintext but not on loopback; "
                    "use host[:port] (TLS) for anything but a local test server"
                )
            transport = SqlInstancesServiceGrpcTransport(channel=grpc.insecure_channel(url.netloc))
            return sqladmin_v1.SqlInstancesServiceClient(transport=transport)
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except DefaultCredentialsError as error:
            raise ExternalSystemError(
                f"reading CloudSQL instance {instance_connection_name} through the Cloud SQL Admin API: "
                f"no usable Google credentials ({error}); {CREDENTIALS_HINT}"
            ) from None
        return sqladmin_v1.SqlInstancesServiceClient(
            credentials=credentials, client_options={"api_endpoint": self.api_endpoint.removeprefix("https://")}
        )


def _bool_value(field: object) -> bool | None:
    """A google.protobuf.BoolValue field as proto-plus hands it out (a bool, None when unset); typed as the message."""
    return field if isinstance(field, bool) else None


def judge(instance_connection_name: str, region: str, instance: sqladmin_v1.DatabaseInstance) -> CloudSqlReadiness:
    """The readiness of `instance` for production: every shortfall is one finding."""
    settings = instance.settings
    backups = settings.backup_configuration
    version = sqladmin_v1.SqlDatabaseVersion(instance.database_version).name
    availability = sqladmin_v1.SqlAvailabilityType(settings.availability_type).name
    state = sqladmin_v1.DatabaseInstance.SqlInstanceState(instance.state).name
    failover = instance.failover_replica.name or None
    backups_enabled = bool(backups.enabled)
    binary_log = bool(backups.binary_log_enabled)
    pitr = bool(backups.point_in_time_recovery_enabled)

    findings: list[str] = []
    if state != "RUNNABLE":
        findings.append(f"the instance is {state}, not RUNNABLE (state)")
    if instance.region and instance.region != region:
        findings.append(f"the instance is in region {instance.region}, not {region} as its connection name says")
    if not backups_enabled:
        findings.append(
            "automated backups are off (settings.backupConfiguration.enabled); turn them on "
            "(Terraform: settings.backup_configuration.enabled = true)"
        )
    if not backups.start_time:
        findings.append(
            "no backup window (settings.backupConfiguration.startTime is empty); set one, e.g. \"03:00\" UTC"
        )
    if version.startswith("MYSQL"):
        if not binary_log:
            findings.append(
                "binary logging is off (settings.backupConfiguration.binaryLogEnabled), so there is no "
                "point-in-time recovery and no legacy failover replica; turn it on"
            )
    elif not pitr:
        findings.append(
            "point-in-time recovery is off (settings.backupConfiguration.pointInTimeRecoveryEnabled); turn it on"
        )
    if availability != "REGIONAL":
        if failover is None:
            findings.append(
                f"no high availability: availability type is {availability} (settings.availabilityType) and there "
                "is no failover replica (failoverReplica.name); set the availability type to REGIONAL"
            )
        elif _bool_value(instance.failover_replica.available) is False:
            findings.append(
                f"the failover replica {failover} is out of sync (failoverReplica.available is false); "
                "the instance cannot fail over to it"
            )
    return CloudSqlReadiness(
        instance=instance_connection_name,
        passed=not findings,
        findings=tuple(findings),
        state=state,
        database_version=version,
        availability_type=availability,
        backups_enabled=backups_enabled,
        backup_start_time=backups.start_time or None,
        binary_log_enabled=binary_log,
        point_in_time_recovery_enabled=pitr,
        failover_replica=failover,
        replica_names=tuple(instance.replica_names),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_error_message(error: Exception, instance_connection_name: str, project: str, timeout: float) -> str:
    """Which instance, what the Admin API said, and what to do about it."""
    what = f"reading CloudSQL instance {instance_connection_name} through the Cloud SQL Admin API"
    if isinstance(error, api_exceptions.PermissionDenied):
        return (
            f"{what} was refused (403 permission denied: {error.message}); the credentials' account needs "
            f"cloudsql.instances.get (e.g. roles/cloudsql.viewer) in project {project}, and the Cloud SQL Admin "
            "API (sqladmin.googleapis.com) must be enabled there"
        )
    if isinstance(error, api_exceptions.NotFound):
        return (
            f"{what}: no such instance in project {project} (404 not found: {error.message}); "
            "check gke.cloudsql_instance in release.yaml"
        )
    if isinstance(error, api_exceptions.Unauthenticated | RefreshError):
        return f"{what}: the Google credentials were not accepted ({error}); {CREDENTIALS_HINT}"
    if isinstance(error, api_exceptions.RetryError | api_exceptions.DeadlineExceeded):
        return f"{what}: no answer within {timeout:g}s ({error}); check network access to the Admin API and try again"
    return f"{what} failed: {error}"


__all__ = ["CloudSqlAdmin", "CloudSqlReadiness", "judge"]
