"""Cloud SQL's service users on the gke path: limited to their own database, migrations as `<database>_mig`.

What runs, honestly:

* The SQL - every GRANT, REVOKE and read of `account_privileges` runs for real on the session's
  MariaDB, through the real `CloudSqlDatabase` whose Cloud SQL connector is replaced by a direct
  connection (`DirectCloudSqlDatabase`). The users are made as Cloud SQL's API leaves them
  (`cloudsql_users`: the role `cloudsqlsuperuser` as default role on 8.0, global privileges on 5.7),
  emulated with MariaDB's statements. No MySQL server runs here: MySQL 8.0's role tables
  (`mysql.role_edges`) and `partial_revokes` (Cloud SQL turns it on; database names are then literal)
  are only covered by `Server.schema_name`'s check below.
* Kubernetes - contract tests against the documented Secret shape, not a cluster: the real
  `kubernetes` client reads the migration user's password from a stand-in API on loopback
  (`SecretApi`), which also answers 404, 403 and 503 as the real API does.
"""

# ruff: noqa: F811 - pytest fixtures imported from fixtures_cloudsql are test parameters

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest

from fintech_release.config import ReleaseConfig
from fintech_release.errors import ExternalSystemError, MigrationError
from fintech_release.platforms import gke_database_key
from fintech_release.resources import platform_resources
from fintech_release.resources.account_privileges import DATA_PRIVILEGES, Account, Server, converge_account
from fintech_release.resources.cloudsql import ServiceAccounts
from fintech_release_tests.fixtures_cloudsql import (  # noqa: F401
    CONTEXT,
    INSTANCE,
    NAMESPACE,
    TOKEN,
    DirectCloudSqlDatabase,
    SecretApi,
    Style,
    cloudsql_users,
    cluster_for,
    drop_users,
    secret_api,
    service_accounts,
)
from fintech_release_tests.fixtures_kube_tools import gke_release_config  # noqa: F401
from fintech_release_tests.fixtures_servers import MariaDBServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLANTED_PASSWORD = "Planted-Migrator-Secret-91d2e7-do-not-print"
SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/payments-db-migration"


class Estate:
    """One service's database on the stand-in instance: its users as Cloud SQL made them, and a neighbour."""

    def __init__(self, mariadb: MariaDBServer, style: Style) -> None:
        self.mariadb = mariadb
        self.service_database = f"p{uuid.uuid4().hex[:8]}"
        self.database = f"staging_{self.service_database}"
        self.neighbour = f"staging_n{uuid.uuid4().hex[:8]}"
        self.passwords = cloudsql_users(mariadb, self.service_database, style)
        self.migrator, self.application = f"{self.service_database}_mig", f"{self.service_database}_app"
        # A neighbour's table the application was given by hand: least privilege takes it back.
        mariadb.root_sql(
            f"CREATE DATABASE `{self.neighbour}`; CREATE TABLE `{self.neighbour}`.t (a INT);"
            f"GRANT SELECT ON `{self.neighbour}`.* TO '{self.application}'@'%';\n"
        )

    def resource(self, api: SecretApi, tmp_path: Path, **overrides: object) -> DirectCloudSqlDatabase:
        settings: dict[str, object] = {
            "service_accounts": {self.database: service_accounts(self.database, "payments", self.service_database)},
            **overrides,
        }
        return DirectCloudSqlDatabase(
            instance_connection_name=INSTANCE, user=self.mariadb.user, password=self.mariadb.password,
            host=self.mariadb.host, port=self.mariadb.port, connect_attempts=1,
            environment="staging", kube_context=CONTEXT, namespace=NAMESPACE, account_host="%",
            cluster=cluster_for(api, tmp_path), **settings,
        )

    def connect(self, user: str, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(host=self.mariadb.host, port=self.mariadb.port, user=user,
                               password=self.passwords[user], database=database)

    def remove(self) -> None:
        self.mariadb.root_sql(f"DROP DATABASE IF EXISTS `{self.database}`; DROP DATABASE `{self.neighbour}`;\n")
        drop_users(self.mariadb, [self.migrator, self.application])


@pytest.fixture(params=["mysql-8.0", "mysql-5.7"])
def estate(request: pytest.FixtureRequest, mariadb: MariaDBServer) -> Iterator[Estate]:
    created = Estate(mariadb, request.param)
    yield created
    created.remove()


@pytest.fixture
def estate_with_roles(mariadb: MariaDBServer) -> Iterator[Estate]:
    created = Estate(mariadb, "mysql-8.0")
    yield created
    created.remove()


def error_code(action: Callable[[], object]) -> int:
    with pytest.raises(pymysql.MySQLError) as caught:
        action()
    return caught.value.args[0]


@pytest.mark.integration
def test_service_users_keep_only_their_database_and_migrations_run_as_the_migration_user(
    estate: Estate, secret_api: SecretApi, tmp_path: Path
) -> None:
    secret_api.secrets["payments-db-migration"] = {"password": estate.passwords[estate.migrator]}
    cloudsql = estate.resource(secret_api, tmp_path)

    result = cloudsql.migrate(database=estate.database, migrations_dir=EXAMPLES / "payments" / "migrations")

    assert result.applied == ("V1__create_payments.sql", "V2__add_payment_idempotency_key.sql")
    assert cloudsql.accounts(database=estate.database) == (estate.migrator, estate.application)
    # Every connection to the service's database was the migration user's; the admin only created it and granted.
    into_database = {opened.split()[0] for opened in cloudsql.opened_as if opened.split()[1] == estate.database}
    assert into_database == {estate.migrator}
    assert secret_api.requests == [(SECRET_PATH, f"Bearer {TOKEN}")]

    with estate.connect(estate.application, estate.database) as app, app.cursor() as cursor:
        cursor.execute("INSERT INTO payments (amount, currency, reference, status) VALUES (1, 'EUR', 'r', 'ACCEPTED')")
        cursor.execute("SELECT COUNT(*) FROM payments")
        assert cursor.fetchone() == (1,)
        assert error_code(lambda: cursor.execute("ALTER TABLE payments ADD COLUMN x INT")) == 1142
        assert error_code(lambda: cursor.execute(f"SELECT * FROM `{estate.neighbour}`.t")) == 1142
        assert error_code(lambda: cursor.execute("CREATE DATABASE elsewhere")) == 1044
        assert error_code(lambda: cursor.execute("SET ROLE cloudsqlsuperuser")) == 1959  # no role left to use
    with estate.connect(estate.migrator, estate.database) as mig, mig.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (a INT)")
        assert error_code(lambda: cursor.execute(f"CREATE TABLE `{estate.neighbour}`.s (a INT)")) == 1142

    # Converged: a second look finds nothing to change.
    with pymysql.connect(host=estate.mariadb.host, port=estate.mariadb.port, user=estate.mariadb.user,
                         password=estate.mariadb.password) as admin, admin.cursor() as cursor:
        account = Account(estate.application, "%")
        assert converge_account(cursor, Server.inspect(cursor), account, estate.database, DATA_PRIVILEGES) == ()
        cursor.execute(f"SHOW GRANTS FOR {account}")
        grants = sorted(row[0].split(" IDENTIFIED BY")[0] for row in cursor.fetchall())
    escaped = estate.database.replace("_", "\\_")
    assert grants == [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{escaped}`.* TO `{estate.application}`@`%`",
        f"GRANT USAGE ON *.* TO `{estate.application}`@`%`",
    ]


@pytest.mark.integration
def test_the_migration_password_comes_from_its_secret_and_is_shown_nowhere(
    estate: Estate, secret_api: SecretApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_api.secrets["payments-db-migration"] = {"password": PLANTED_PASSWORD}  # not the user's password
    cloudsql = estate.resource(secret_api, tmp_path)

    with pytest.raises(MigrationError) as caught:
        cloudsql.migrate(database=estate.database, migrations_dir=EXAMPLES / "payments" / "migrations")

    assert f"Access denied for user '{estate.migrator}'" in str(caught.value)
    shown = "\n".join([str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))])
    assert PLANTED_PASSWORD not in shown
    assert PLANTED_PASSWORD not in caplog.text and PLANTED_PASSWORD not in repr(cloudsql)


@pytest.mark.integration
def test_a_role_the_admin_may_not_revoke_stops_the_step_naming_the_statement(
    estate_with_roles: Estate, secret_api: SecretApi, tmp_path: Path
) -> None:
    estate = estate_with_roles
    admins = [f"'{estate.mariadb.user}'@'{host}'" for host in ("127.0.0.1", "localhost")]
    estate.mariadb.root_sql("".join(f"REVOKE ADMIN OPTION FOR cloudsqlsuperuser FROM {a};\n" for a in admins))
    try:
        with pytest.raises(MigrationError) as caught:
            estate.resource(secret_api, tmp_path).migrate(database=estate.database, migrations_dir=None)
    finally:
        estate.mariadb.root_sql("".join(f"GRANT cloudsqlsuperuser TO {a} WITH ADMIN OPTION;\n" for a in admins))
    assert str(caught.value).startswith(
        f"limiting account '{estate.migrator}'@'%': `REVOKE `cloudsqlsuperuser` FROM '{estate.migrator}'@'%'` failed: "
    )
    assert str(caught.value).endswith("the admin user needs ROLE_ADMIN (MySQL 8.0) or the role WITH ADMIN OPTION")
    assert secret_api.requests == []  # nothing migrated


@pytest.mark.integration
def test_a_database_no_service_owns_is_refused_rather_than_migrated_as_the_admin(
    estate: Estate, secret_api: SecretApi, tmp_path: Path
) -> None:
    cloudsql = estate.resource(secret_api, tmp_path, service_accounts={})

    with pytest.raises(MigrationError, match=r"no service of release.yaml has it, so its users are unknown"):
        cloudsql.migrate(database=estate.database, migrations_dir=EXAMPLES / "payments" / "migrations")
    assert secret_api.requests == []


# ---------------------------------------------------------------------- the Secret (stand-in Kubernetes API)


def read(api: SecretApi, tmp_path: Path, name: str = "payments-db-migration") -> str:
    return cluster_for(api, tmp_path).read_secret_value(
        environment="staging", kube_context=CONTEXT, namespace=NAMESPACE, name=name, key="password"
    )


def test_contract_a_missing_secret_says_terraform_creates_it(secret_api: SecretApi, tmp_path: Path) -> None:
    with pytest.raises(ExternalSystemError) as caught:
        read(secret_api, tmp_path)
    assert str(caught.value) == (
        f"environment 'staging' (context {CONTEXT}, namespace '{NAMESPACE}'): Secret 'payments-db-migration' does "
        "not exist; Terraform's k8s_secrets module creates it: apply the environment's Terraform"
    )


def test_contract_a_refused_read_names_the_permission(secret_api: SecretApi, tmp_path: Path) -> None:
    secret_api.statuses = [403]
    with pytest.raises(ExternalSystemError, match=r"HTTP 403 .* needs get on the Secret 'payments-db-migration'"):
        read(secret_api, tmp_path)


def test_contract_a_secret_without_its_key_is_named(secret_api: SecretApi, tmp_path: Path) -> None:
    secret_api.secrets["payments-db-migration"] = {"username": "payments_mig"}
    with pytest.raises(ExternalSystemError, match=r"Secret 'payments-db-migration' .* has no key 'password'"):
        read(secret_api, tmp_path)


def test_contract_a_passing_server_error_is_retried(secret_api: SecretApi, tmp_path: Path) -> None:
    secret_api.secrets["payments-db-migration"] = {"password": "s3cret\n"}
    secret_api.statuses = [503]
    assert read(secret_api, tmp_path) == "s3cret"
    assert len(secret_api.requests) == 2


# ---------------------------------------------------------------------- names and wiring


def test_database_names_are_literal_where_the_server_reads_them_literally() -> None:
    assert Server("mysql", 8, partial_revokes=True).schema_name("staging_payments") == "staging_payments"
    assert Server("mysql", 8, partial_revokes=False).schema_name("staging_payments") == "staging\\_payments"
    assert Server("mariadb", 10, partial_revokes=False).schema_name("a%b_c") == "a\\%b\\_c"


def test_each_gke_database_knows_its_services_users_and_secret(gke_release_config: ReleaseConfig) -> None:
    cloudsql = platform_resources(gke_release_config)[gke_database_key("staging")]
    assert (cloudsql.environment, cloudsql.namespace, cloudsql.account_host) == (
        "staging", "fintech-staging", "cloudsqlproxy~%"
    )
    assert cloudsql.service_accounts["staging_payments"] == ServiceAccounts(
        service="payments", migration_user="payments_mig", application_user="payments_app",
        migration_secret="payments-db-migration",
    )
