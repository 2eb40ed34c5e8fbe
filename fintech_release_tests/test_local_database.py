"""`LocalMariaDB` against a real MariaDB server (the session's `mariadb` fixture): migrations, drift, secrets."""

from __future__ import annotations

import logging
import shutil
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest
from dagster import EnvVar, build_resources

from fintech_release.errors import MigrationError
from fintech_release.resources.local_database import LocalMariaDB
from fintech_release_tests.components import free_port
from fintech_release_tests.fixtures_servers import MariaDBServer

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLANTED_PASSWORD = "Planted-Secret-7f3a91c0-do-not-print"


@pytest.fixture
def admin(mariadb: MariaDBServer) -> LocalMariaDB:
    return LocalMariaDB(host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password)


@pytest.fixture
def database(admin: LocalMariaDB) -> Iterator[str]:
    """A database name of this test's own (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    admin.drop(database=name)


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the accounts service's migrations (V1, V2) that a test may edit."""
    target = tmp_path / "migrations"
    shutil.copytree(EXAMPLES / "accounts" / "migrations", target)
    return target


def query(server: MariaDBServer, sql: str, database: str | None = None) -> list[tuple]:
    with pymysql.connect(
        host=server.host, port=server.port, user=server.user, password=server.password, database=database
    ) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def tables(server: MariaDBServer, database: str) -> set[str]:
    return {row[0] for row in query(server, "SHOW TABLES", database)}


def recorded(server: MariaDBServer, database: str) -> list[str]:
    return [row[0] for row in query(server, "SELECT migration_id FROM _yoyo_migration ORDER BY migration_id", database)]


def test_fresh_database_gets_every_migration_in_version_order(
    admin: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path
) -> None:
    # V10 needs V2's column: it only works if versions sort as numbers (yoyo alone would run V10 before V2).
    (migrations / "V10__index_account_status.sql").write_text("CREATE INDEX idx_status ON accounts (status);\n")

    result = admin.migrate(database=database, migrations_dir=migrations)

    assert result.database == database
    assert result.created is True
    assert result.applied == ("V1__create_accounts.sql", "V2__add_account_status.sql", "V10__index_account_status.sql")
    assert result.already_applied == ()
    assert "accounts" in tables(mariadb, database)
    columns = {row[0] for row in query(mariadb, "SHOW COLUMNS FROM accounts", database)}
    assert {"iban", "owner_name", "balance", "status"} <= columns


def test_second_run_applies_nothing_and_says_so(admin: LocalMariaDB, database: str, migrations: Path) -> None:
    first = admin.migrate(database=database, migrations_dir=migrations)

    second = admin.migrate(database=database, migrations_dir=migrations)

    assert second.created is False
    assert second.applied == ()
    assert second.already_applied == first.applied
    # Without a migrations directory the database is left alone, and what it has is still reported.
    third = admin.migrate(database=database, migrations_dir=None)
    assert (third.created, third.applied, third.already_applied) == (False, (), first.applied)


def test_new_migration_is_applied_on_top(
    admin: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path
) -> None:
    admin.migrate(database=database, migrations_dir=migrations)
    (migrations / "V3__create_audit.sql").write_text("CREATE TABLE audit (id BIGINT PRIMARY KEY);\n")

    result = admin.migrate(database=database, migrations_dir=migrations)

    assert result.applied == ("V3__create_audit.sql",)
    assert result.already_applied == ("V1__create_accounts.sql", "V2__add_account_status.sql")
    assert "audit" in tables(mariadb, database)


def test_edited_migration_is_refused_before_anything_runs(
    admin: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path
) -> None:
    admin.migrate(database=database, migrations_dir=migrations)
    v1 = migrations / "V1__create_accounts.sql"
    v1.write_text(v1.read_text().replace("VARCHAR(140)", "VARCHAR(200)"))
    (migrations / "V3__create_audit.sql").write_text("CREATE TABLE audit (id BIGINT PRIMARY KEY);\n")

    with pytest.raises(MigrationError) as caught:
        admin.migrate(database=database, migrations_dir=migrations)

    message = str(caught.value)
    assert database in message
    assert "V1__create_accounts.sql was changed after it was applied (checksum sha256:" in message
    assert "audit" not in tables(mariadb, database)  # the pending V3 did not run


def test_line_endings_do_not_count_as_an_edit(admin: LocalMariaDB, database: str, migrations: Path) -> None:
    admin.migrate(database=database, migrations_dir=migrations)
    v2 = migrations / "V2__add_account_status.sql"
    v2.write_bytes(v2.read_bytes().replace(b"\n", b"\r\n"))  # e.g. a checkout with autocrlf

    assert admin.migrate(database=database, migrations_dir=migrations).applied == ()


def test_failing_migration_is_named_and_not_recorded(
    admin: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path
) -> None:
    bad = migrations / "V3__create_audit.sql"
    bad.write_text("CREAT TABLE audit (id BIGINT PRIMARY KEY);\n")

    with pytest.raises(MigrationError) as caught:
        admin.migrate(database=database, migrations_dir=migrations)

    message = str(caught.value)
    assert database in message
    assert "V3__create_audit.sql failed" in message
    assert "You have an error in your SQL syntax" in message and "MariaDB error 1064" in message
    assert "V1__create_accounts.sql, V2__add_account_status.sql" in message  # what did get applied
    assert recorded(mariadb, database) == ["V1__create_accounts", "V2__add_account_status"]

    # Not recorded, so fixing the file is allowed, and the next run applies exactly it.
    bad.write_text("CREATE TABLE audit (id BIGINT PRIMARY KEY);\n")
    result = admin.migrate(database=database, migrations_dir=migrations)
    assert result.applied == ("V3__create_audit.sql",)
    assert "audit" in tables(mariadb, database)


def test_migration_missing_or_out_of_order_is_refused(admin: LocalMariaDB, database: str, migrations: Path) -> None:
    admin.migrate(database=database, migrations_dir=migrations)
    (migrations / "V1_5__late.sql").write_text("CREATE TABLE late (id INT);\n")
    with pytest.raises(MigrationError, match=r"V1_5__late\.sql is older than the applied V2__add_account_status\.sql"):
        admin.migrate(database=database, migrations_dir=migrations)

    (migrations / "V1_5__late.sql").unlink()
    (migrations / "V2__add_account_status.sql").unlink()
    with pytest.raises(MigrationError, match=r"V2__add_account_status\.sql was applied but is missing"):
        admin.migrate(database=database, migrations_dir=migrations)


def test_badly_named_migration_files_are_refused(admin: LocalMariaDB, database: str, tmp_path: Path) -> None:
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    (misnamed / "V1_create.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"V1_create\.sql .* is not named V<version>__<description>\.sql"):
        admin.migrate(database=database, migrations_dir=misnamed)

    duplicate = tmp_path / "duplicate"
    duplicate.mkdir()
    (duplicate / "V1__a.sql").write_text("SELECT 1;\n")
    (duplicate / "V1__b.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"V1__a\.sql and V1__b\.sql have the same version"):
        admin.migrate(database=database, migrations_dir=duplicate)

    with pytest.raises(MigrationError, match="does not exist"):
        admin.migrate(database=database, migrations_dir=tmp_path / "nowhere")


def test_without_migrations_the_database_is_just_created(
    admin: LocalMariaDB, database: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    first = admin.migrate(database=database, migrations_dir=None)
    second = admin.migrate(database=database, migrations_dir=empty)

    assert (first.created, first.applied, first.already_applied) == (True, (), ())
    assert (second.created, second.applied, second.already_applied) == (False, (), ())
    assert database in admin.databases(prefix=database[:6])


@pytest.mark.parametrize("name", ["ci-accounts", "1accounts", "x" * 65, "a`; DROP DATABASE mysql; --", ""])
def test_invalid_database_names_are_refused(admin: LocalMariaDB, name: str) -> None:
    with pytest.raises(MigrationError, match="invalid database name"):
        admin.migrate(database=name, migrations_dir=None)
    with pytest.raises(MigrationError, match="invalid database name"):
        admin.drop(database=name)


def test_drop_and_list(admin: LocalMariaDB, mariadb: MariaDBServer) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}_"  # "_" must not act as a LIKE wildcard
    for suffix in ("contact_us", "payments"):
        admin.migrate(database=prefix + suffix, migrations_dir=None)
    admin.migrate(database=prefix.rstrip("_") + "X_other", migrations_dir=None)

    assert admin.databases(prefix=prefix) == [prefix + "contact_us", prefix + "payments"]
    assert admin.drop(database=prefix + "payments") is True
    assert admin.drop(database=prefix + "payments") is False
    assert admin.databases(prefix=prefix) == [prefix + "contact_us"]
    for name in (prefix + "contact_us", prefix.rstrip("_") + "X_other"):
        admin.drop(database=name)
    with pytest.raises(MigrationError, match="system schema"):
        admin.drop(database="mysql")


def test_password_from_env_var_works(
    mariadb: MariaDBServer, database: str, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The definitions pass EnvVar("FINTECH_RELEASE_DB_PASSWORD"): Dagster resolves it when the resource starts."""
    monkeypatch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)
    resource = LocalMariaDB(
        host=mariadb.host, port=mariadb.port, user=mariadb.user, password=EnvVar("FINTECH_RELEASE_DB_PASSWORD")
    )
    assert mariadb.password not in repr(resource)
    with build_resources({"database": resource}) as resources:
        result = resources.database.migrate(database=database, migrations_dir=migrations)
    assert result.applied == ("V1__create_accounts.sql", "V2__add_account_status.sql")


def test_env_var_password_also_works_outside_a_run(
    mariadb: MariaDBServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripts and tests may call the resource directly, with the EnvVar not resolved by Dagster."""
    resource = LocalMariaDB(host=mariadb.host, port=mariadb.port, user=mariadb.user, password=EnvVar("TEST_DB_PW"))
    monkeypatch.delenv("TEST_DB_PW", raising=False)
    with pytest.raises(MigrationError, match="environment variable TEST_DB_PW .* is not set"):
        resource.migrate(database=database, migrations_dir=None)

    monkeypatch.setenv("TEST_DB_PW", mariadb.password)
    assert resource.migrate(database=database, migrations_dir=None).created is True
    assert database in resource.databases(prefix=database)


def _everything_shown(error: BaseException) -> str:
    """Message, repr and the full formatted traceback (with causes): whatever a log or the UI could show."""
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


@pytest.mark.parametrize("situation", ["wrong password", "server unreachable"])
def test_password_never_appears_in_errors_or_logs(
    mariadb: MariaDBServer, situation: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    port = mariadb.port if situation == "wrong password" else free_port()
    resource = LocalMariaDB(
        host=mariadb.host,
        port=port,
        user=mariadb.user,
        password=PLANTED_PASSWORD,
        connect_attempts=2,
        retry_wait_seconds=0.05,
    )
    calls: list[Callable[[], object]] = [
        lambda: resource.migrate(database="ci_secret_check", migrations_dir=None),
        lambda: resource.migrate(database="ci_secret_check", migrations_dir=EXAMPLES / "accounts" / "migrations"),
        lambda: resource.drop(database="ci_secret_check"),
        lambda: resource.databases(prefix="ci_"),
    ]
    caplog.set_level(logging.DEBUG)
    for call in calls:
        with pytest.raises(MigrationError) as caught:
            call()
        shown = _everything_shown(caught.value)
        assert PLANTED_PASSWORD not in shown
        assert f"{mariadb.host}:{port}" in str(caught.value)
        expected = "Access denied" if situation == "wrong password" else "Can't connect"
        assert expected in str(caught.value)
    assert PLANTED_PASSWORD not in caplog.text
    assert PLANTED_PASSWORD not in repr(resource)
