"""CloudSQL on the gke platform: `CloudSqlDatabase` (schema) and `CloudSqlAdmin` (production readiness).

What each test runs, honestly:

* Migrations - the real local MariaDB (the session's ``mariadb`` fixture). The connector is replaced
  by a direct connection; what is tested is our migration code on a real server, driven through
  `CloudSqlDatabase` (its error wording and password scrubbing included), not the Cloud SQL connector.
  The service's users are made as Cloud SQL makes them and the migration user's password is read from
  a stand-in Kubernetes API (fixtures_cloudsql; their own tests are in test_cloudsql_accounts.py).
* Missing credentials - the real `CloudSqlDatabase` path up to the connector's Application Default
  Credentials lookup, which fails at once because GOOGLE_APPLICATION_CREDENTIALS names a missing
  file. No network is involved.
* Connector errors - contract tests against the documented Admin API error shapes (not the real
  service): the real Cloud SQL connector, on our event loop, asks a plain HTTP server on loopback
  (``connector_admin_api``) with a fixed fake access token instead of Application Default Credentials.
* Admin API - contract tests against the documented ``instances.get`` response shapes (not the real
  service): the real google-cloud-sql client talks gRPC to a real server on loopback
  (``fixtures_google_apis``) that serves JSON documents shaped like the documented response.
"""

from __future__ import annotations

import shutil
import threading
import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.auth import _helpers as google_auth_helpers
from google.auth.credentials import Credentials
from google.oauth2.credentials import Credentials as AccessTokenCredentials

from fintech_release.errors import ExternalSystemError, MigrationError
from fintech_release.resources.cloudsql import CloudSqlDatabase
from fintech_release.resources.cloudsql_admin import CloudSqlAdmin
from fintech_release_tests.components import free_port
from fintech_release_tests.fixtures_cloudsql import (  # noqa: F401
    CONTEXT,
    INSTANCE,
    NAMESPACE,
    DirectCloudSqlDatabase,
    SecretApi,
    cloudsql_users,
    cluster_for,
    drop_users,
    secret_api,
    service_accounts,
)
from fintech_release_tests.fixtures_google_apis import (  # noqa: F401
    BackupApi,
    CloudSqlAdminApi,
    ConnectorAdminApi,
    backup_api,
    cloudsql_admin_api,
    connector_admin_api,
    instance_document,
)
from fintech_release_tests.fixtures_servers import MariaDBServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLANTED_PASSWORD = "Planted-Secret-3c9e55aa-do-not-print"


def _everything_shown(error: BaseException) -> str:
    """Message, repr and the full formatted traceback (with causes): whatever a log or the UI could show."""
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


# ---------------------------------------------------------------------- migrations (real MariaDB)


@pytest.fixture
def service_database(mariadb: MariaDBServer, secret_api: SecretApi) -> Iterator[str]:
    """A service's database name; its users made as Cloud SQL makes them, the migration password in its Secret."""
    name = f"c{uuid.uuid4().hex[:10]}"
    passwords = cloudsql_users(mariadb, name, "mysql-8.0")
    secret_api.secrets["accounts-db-migration"] = {"password": passwords[f"{name}_mig"]}
    yield name
    drop_users(mariadb, list(passwords))


@pytest.fixture
def database(service_database: str) -> str:
    return f"ci_{service_database}"


@pytest.fixture
def cloudsql(
    mariadb: MariaDBServer, secret_api: SecretApi, database: str, service_database: str, tmp_path: Path
) -> Iterator[DirectCloudSqlDatabase]:
    resource = DirectCloudSqlDatabase(
        instance_connection_name=INSTANCE,
        user=mariadb.user,
        password=mariadb.password,
        host=mariadb.host,
        port=mariadb.port,
        account_host="%",
        namespace=NAMESPACE,
        kube_context=CONTEXT,
        service_accounts={database: service_accounts(database, "accounts", service_database)},
        cluster=cluster_for(secret_api, tmp_path),
    )
    yield resource
    resource.drop(database=database)


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(EXAMPLES / "accounts" / "migrations", target, ignore=shutil.ignore_patterns("V3__*"))
    return target


@pytest.mark.integration
def test_migrations_apply_once_and_an_edited_one_is_refused(
    cloudsql: DirectCloudSqlDatabase, database: str, migrations: Path
) -> None:
    first = cloudsql.migrate(database=database, migrations_dir=migrations)
    assert (first.created, first.applied) == (True, ("V1__create_accounts.sql", "V2__add_account_status.sql"))

    (migrations / "V3__create_audit.sql").write_text("CREATE TABLE audit (id BIGINT PRIMARY KEY);\n")
    second = cloudsql.migrate(database=database, migrations_dir=migrations)
    assert (second.created, second.applied, second.already_applied) == (False, ("V3__create_audit.sql",), first.applied)
    assert database in cloudsql.databases(prefix=database)

    v1 = migrations / "V1__create_accounts.sql"
    v1.write_text(v1.read_text().replace("VARCHAR(140)", "VARCHAR(200)"))
    with pytest.raises(MigrationError, match=r"V1__create_accounts\.sql was changed after it was applied"):
        cloudsql.migrate(database=database, migrations_dir=migrations)

    assert cloudsql.drop(database=database) is True
    assert cloudsql.databases(prefix=database) == []


@pytest.mark.integration
def test_server_errors_name_the_instance_and_never_the_password(
    mariadb: MariaDBServer, caplog: pytest.LogCaptureFixture
) -> None:
    resource = DirectCloudSqlDatabase(
        instance_connection_name=INSTANCE,
        user=mariadb.user,
        password=PLANTED_PASSWORD,
        host=mariadb.host,
        port=mariadb.port,
        connect_attempts=1,
    )
    with pytest.raises(MigrationError) as caught:
        resource.migrate(database="ci_accounts", migrations_dir=EXAMPLES / "accounts" / "migrations")

    message = str(caught.value)
    assert f"database 'ci_accounts' on CloudSQL instance {INSTANCE} as {mariadb.user!r} failed" in message
    assert "Access denied" in message
    assert PLANTED_PASSWORD not in _everything_shown(caught.value)
    assert PLANTED_PASSWORD not in caplog.text
    assert PLANTED_PASSWORD not in repr(resource)


# ---------------------------------------------------------------------- connector without credentials


def test_missing_google_credentials_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    resource = CloudSqlDatabase(instance_connection_name=INSTANCE, user="proxy", password=PLANTED_PASSWORD)
    threads_before = set(threading.enumerate())

    for call in (
        lambda: resource.migrate(database="ci_accounts", migrations_dir=None),
        lambda: resource.drop(database="ci_accounts"),
        lambda: resource.databases(prefix="ci_"),
    ):
        with pytest.raises(ExternalSystemError) as caught:
            call()
        message = str(caught.value)
        assert f"CloudSQL instance {INSTANCE}" in message
        assert "no usable Google credentials" in message and "missing-key.json" in message
        assert "gcloud auth application-default login" in message
        assert PLANTED_PASSWORD not in _everything_shown(caught.value)

    assert set(threading.enumerate()) <= threads_before  # no connector event loop left running


def test_connection_name_and_ip_type_are_validated() -> None:
    with pytest.raises(ValueError, match="instance_connection_name"):
        CloudSqlDatabase(instance_connection_name="fintech-db", user="proxy", password="x")
    with pytest.raises(ValueError, match="ip_type"):
        CloudSqlDatabase(
            instance_connection_name=INSTANCE, user="proxy", password="x", ip_type="PRIMARY"  # type: ignore[arg-type]
        )
    assert CloudSqlDatabase(instance_connection_name=INSTANCE, user="proxy", password="x").ip_type == "PRIVATE"
    domain_scoped = "example.com:fintech-prod:europe-west1:fintech-db"  # the pattern release.yaml validates with
    assert CloudSqlDatabase(instance_connection_name=domain_scoped, user="proxy", password="x")


# ---------------------------------------------------------------------- connector errors (contract tests)


class FakeTokenCloudSqlDatabase(CloudSqlDatabase):
    """The real connector path, with a fixed fake access token instead of Application Default Credentials."""

    def _credentials(self) -> Credentials:
        expiry: datetime = google_auth_helpers.utcnow() + timedelta(hours=1)
        return AccessTokenCredentials(token="contract-test-token", expiry=expiry)


def api_error(code: int, status: str, message: str) -> dict:
    """A Google API error body as documented (https://cloud.google.com/apis/design/errors#http_mapping)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "forbidden" if code == 403 else "notFound"}],
            "status": status,
        }
    }


def connector_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cloudsql-connector"]


def test_contract_connector_refused_by_the_admin_api(connector_admin_api: ConnectorAdminApi) -> None:
    connector_admin_api.answer(
        403, api_error(403, "PERMISSION_DENIED", "The client is not authorized to make this request.")
    )
    resource = FakeTokenCloudSqlDatabase(
        instance_connection_name=INSTANCE,
        user="proxy",
        password=PLANTED_PASSWORD,
        sqladmin_api_endpoint=connector_admin_api.endpoint,
    )

    with pytest.raises(ExternalSystemError) as caught:
        resource.databases(prefix="ci_")

    message = str(caught.value)
    assert message.startswith(f"listing databases starting with 'ci_' on CloudSQL instance {INSTANCE}: ")
    assert "the Cloud SQL Admin API answered 403 (The client is not authorized to make this request.)" in message
    assert "roles/cloudsql.client" in message
    assert PLANTED_PASSWORD not in _everything_shown(caught.value)
    assert (
        "GET", "/sql/v1beta4/projects/fintech-prod/instances/fintech-db/connectSettings", True
    ) in connector_admin_api.requests
    assert connector_threads() == []


def test_contract_connector_unknown_instance(connector_admin_api: ConnectorAdminApi) -> None:
    connector_admin_api.answer(404, api_error(404, "NOT_FOUND", "The Cloud SQL instance does not exist."))
    resource = FakeTokenCloudSqlDatabase(
        instance_connection_name="fintech-prod:europe-west1:no-such-db",
        user="proxy",
        password=PLANTED_PASSWORD,
        sqladmin_api_endpoint=connector_admin_api.endpoint,
    )

    with pytest.raises(ExternalSystemError) as caught:
        resource.migrate(database="ci_accounts", migrations_dir=None)

    message = str(caught.value)
    assert "CloudSQL instance fintech-prod:europe-west1:no-such-db" in message
    assert "answered 404 (The Cloud SQL instance does not exist.); check instance_connection_name" in message


def test_connector_that_gets_no_answer_stops_at_the_timeout(connector_admin_api: ConnectorAdminApi) -> None:
    connector_admin_api.hang()
    resource = FakeTokenCloudSqlDatabase(
        instance_connection_name=INSTANCE,
        user="proxy",
        password=PLANTED_PASSWORD,
        sqladmin_api_endpoint=connector_admin_api.endpoint,
        timeout=1,
    )

    with pytest.raises(ExternalSystemError) as caught:
        resource.drop(database="ci_accounts")

    message = str(caught.value)
    assert f"dropping database 'ci_accounts' on CloudSQL instance {INSTANCE}: no connection within 1s" in message
    assert "a private IP is reachable only from the instance's VPC" in message
    assert connector_threads() == []


# ---------------------------------------------------------------------- Admin API (contract tests)


def admin_for(api: CloudSqlAdminApi) -> CloudSqlAdmin:
    return CloudSqlAdmin(api_endpoint=api.endpoint, timeout_seconds=10)


def test_contract_production_ready_instance_passes(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", instance_document())

    readiness = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    assert cloudsql_admin_api.requests == [("fintech-prod", "fintech-db")]
    assert readiness.passed is True and readiness.findings == ()
    assert readiness.instance == INSTANCE
    assert (readiness.state, readiness.database_version, readiness.availability_type) == (
        "RUNNABLE",
        "MYSQL_8_0",
        "REGIONAL",
    )
    assert (readiness.backups_enabled, readiness.backup_start_time, readiness.binary_log_enabled) == (
        True,
        "03:00",
        True,
    )


def test_contract_legacy_failover_replica_counts_as_high_availability(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    document = instance_document()
    document["settings"]["availabilityType"] = "ZONAL"
    document["failoverReplica"] = {"name": "fintech-db-failover", "available": True}
    document["replicaNames"] = ["fintech-db-failover"]
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", document)

    readiness = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    assert readiness.passed is True, readiness.findings
    assert readiness.failover_replica == "fintech-db-failover"
    assert readiness.replica_names == ("fintech-db-failover",)

    document["failoverReplica"]["available"] = False
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", document)
    out_of_sync = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)
    assert out_of_sync.passed is False
    assert out_of_sync.findings == (
        (
            "the failover replica fintech-db-failover is out of sync (failoverReplica.available is false); "
            "the instance cannot fail over to it"
        ),
    )


def test_contract_backups_off_is_reported(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    document = instance_document()
    backups = document["settings"]["backupConfiguration"]
    backups.update(enabled=False, binaryLogEnabled=False)
    del backups["startTime"]
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", document)

    readiness = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    assert readiness.passed is False
    assert (readiness.backups_enabled, readiness.backup_start_time, readiness.binary_log_enabled) == (
        False,
        None,
        False,
    )
    assert len(readiness.findings) == 3
    assert "automated backups are off (settings.backupConfiguration.enabled)" in readiness.findings[0]
    assert "no backup window (settings.backupConfiguration.startTime is empty)" in readiness.findings[1]
    assert "binary logging is off (settings.backupConfiguration.binaryLogEnabled)" in readiness.findings[2]


def test_contract_no_failover_replica_is_reported(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    document = instance_document()
    document["settings"]["availabilityType"] = "ZONAL"
    del document["secondaryGceZone"]
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", document)

    readiness = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    assert readiness.passed is False
    assert readiness.failover_replica is None and readiness.replica_names == ()
    assert readiness.findings == (
        (
            "no high availability: availability type is ZONAL (settings.availabilityType) and there is no "
            "failover replica (failoverReplica.name); set the availability type to REGIONAL"
        ),
    )


def test_contract_postgres_needs_point_in_time_recovery(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    document = instance_document()
    document["databaseVersion"] = "POSTGRES_16"
    backups = document["settings"]["backupConfiguration"]
    del backups["binaryLogEnabled"]
    backups["pointInTimeRecoveryEnabled"] = False
    cloudsql_admin_api.serve("fintech-prod", "fintech-db", document)

    readiness = admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    assert readiness.findings == (
        "point-in-time recovery is off (settings.backupConfiguration.pointInTimeRecoveryEnabled); turn it on",
    )


def test_contract_permission_denied_names_the_role(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    cloudsql_admin_api.fail(
        "fintech-prod",
        "fintech-db",
        grpc.StatusCode.PERMISSION_DENIED,
        "The client is not authorized to make this request.",
    )

    with pytest.raises(ExternalSystemError) as caught:
        admin_for(cloudsql_admin_api).production_readiness(INSTANCE)

    message = str(caught.value)
    assert f"reading CloudSQL instance {INSTANCE} through the Cloud SQL Admin API was refused" in message
    assert "403 permission denied: The client is not authorized to make this request." in message
    assert "roles/cloudsql.viewer) in project fintech-prod" in message
    assert cloudsql_admin_api.requests == [("fintech-prod", "fintech-db")]  # refused, not retried


def test_contract_unknown_instance_says_check_the_config(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    with pytest.raises(ExternalSystemError) as caught:
        admin_for(cloudsql_admin_api).production_readiness("fintech-prod:europe-west1:no-such-db")

    message = str(caught.value)
    assert "no such instance in project fintech-prod" in message
    assert "404 not found: The Cloud SQL instance does not exist." in message
    assert "check gke.cloudsql_instance in release.yaml" in message
    assert cloudsql_admin_api.requests == [("fintech-prod", "no-such-db")]


def test_contract_a_domain_scoped_project_keeps_its_domain(cloudsql_admin_api: CloudSqlAdminApi) -> None:
    cloudsql_admin_api.serve("example.com:fintech-prod", "fintech-db", instance_document())

    readiness = admin_for(cloudsql_admin_api).production_readiness("example.com:fintech-prod:europe-west1:fintech-db")

    assert cloudsql_admin_api.requests == [("example.com:fintech-prod", "fintech-db")]
    assert readiness.passed, readiness.findings


def test_contract_unavailable_api_fails_within_the_deadline() -> None:
    admin = CloudSqlAdmin(api_endpoint=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)

    with pytest.raises(ExternalSystemError, match=r"no answer within 1s .* check network access to the Admin API"):
        admin.production_readiness(INSTANCE)


def test_admin_check_without_google_credentials_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))

    with pytest.raises(ExternalSystemError) as caught:
        CloudSqlAdmin().production_readiness(INSTANCE)

    assert f"reading CloudSQL instance {INSTANCE} through the Cloud SQL Admin API" in str(caught.value)
    assert "gcloud auth application-default login" in str(caught.value)


def test_plaintext_endpoint_must_be_loopback() -> None:
    admin = CloudSqlAdmin(api_endpoint="http://sqladmin.example.com:80")

    with pytest.raises(ExternalSystemError, match="plaintext but not on loopback"):
        admin.production_readiness(INSTANCE)


def test_contract_backup_before_migrations_waits_for_the_operation(backup_api: BackupApi) -> None:
    admin = CloudSqlAdmin(api_endpoint=backup_api.endpoint, poll_seconds=0.05)
    operation, backup_id = admin.backup("acme-prod:europe-west2:prod-mysql", description="before V3")
    assert (operation, backup_id) == ("operation-1", "1764460800000")
    assert backup_api.inserts == [{"project": "acme-prod", "instance": "prod-mysql", "description": "before V3"}]
    assert backup_api.polls == ["operation-1"]


def test_contract_failed_backup_stops_the_migration(backup_api: BackupApi) -> None:
    backup_api.fail_with("BACKUP_FAILED", "The instance is being maintained.")
    admin = CloudSqlAdmin(api_endpoint=backup_api.endpoint, poll_seconds=0.05)
    with pytest.raises(ExternalSystemError, match=r"on-demand backup of CloudSQL instance acme-prod:europe-west2:"
                       r"prod-mysql failed \(operation operation-1\): BACKUP_FAILED: The instance is being maintained"
                       r"\.; nothing was migrated"):
        admin.backup("acme-prod:europe-west2:prod-mysql", description="before V3")
