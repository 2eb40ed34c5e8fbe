"""`LocalMariaDB` against a real MariaDB server (the session's `mariadb` fixture): migrations, drift, secrets,
the migration and application accounts (least privilege, rotation), backward-compatibility refusals, backups."""

from __future__ import annotations

import hashlib
import logging
import shutil
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest
from dagster import DagsterResourceFunctionError, build_resources

from fintech_release.errors import MigrationError, MissingEnvironmentVariableError
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
    """A copy of the accounts service's migrations V1 and V2 (not its demo data) that a test may edit."""
    target = tmp_path / "migrations"
    shutil.copytree(EXAMPLES / "accounts" / "migrations", target, ignore=shutil.ignore_patterns("V3__*"))
    return target


def query(server: MariaDBServer, sql: str, database: str | None = None, args: tuple = ()) -> list[tuple]:
    with pymysql.connect(
        host=server.host, port=server.port, user=server.user, password=server.password, database=database,
        autocommit=True,
    ) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args or None)
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
    # Valid SQL (the backward-compatibility check reads it) that the server refuses.
    bad.write_text("INSERT INTO audit_typo (id) VALUES (1);\nCREATE TABLE audit (id BIGINT PRIMARY KEY);\n")

    with pytest.raises(MigrationError) as caught:
        admin.migrate(database=database, migrations_dir=migrations)

    message = str(caught.value)
    assert database in message
    assert "V3__create_audit.sql failed" in message
    assert "audit_typo' doesn't exist" in message and "MariaDB error 1146" in message
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
    """The definitions name the variable (password_env); the resource reads it when it connects."""
    monkeypatch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)
    resource = LocalMariaDB(
        host=mariadb.host, port=mariadb.port, user=mariadb.user, password_env="FINTECH_RELEASE_DB_PASSWORD"
    )
    assert mariadb.password not in repr(resource)
    with build_resources({"database": resource}) as resources:
        result = resources.database.migrate(database=database, migrations_dir=migrations)
    assert result.applied == ("V1__create_accounts.sql", "V2__add_account_status.sql")


def test_an_unset_password_variable_is_one_line_naming_it_in_a_run_and_outside(
    mariadb: MariaDBServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's step fails when it sets the resource up; a script calling the resource directly, when it connects."""
    resource = LocalMariaDB(host=mariadb.host, port=mariadb.port, user=mariadb.user, password_env="TEST_DB_PW")
    monkeypatch.delenv("TEST_DB_PW", raising=False)
    with pytest.raises(MissingEnvironmentVariableError) as outside:
        resource.migrate(database=database, migrations_dir=None)
    message = str(outside.value)
    assert "\n" not in message and message.startswith("the environment variable TEST_DB_PW is not set")
    assert f"MariaDB {mariadb.host}:{mariadb.port}" in message and "export TEST_DB_PW=" in message
    with pytest.raises(DagsterResourceFunctionError) as in_setup, build_resources({"database": resource}):
        pass
    assert str(in_setup.value.__cause__) == message  # what a run's step reports (cli/report.py unwraps it)

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


# --------------------------------------------------------------------------- accounts, safety, backups


@pytest.fixture
def with_accounts(mariadb: MariaDBServer, tmp_path: Path) -> LocalMariaDB:
    """The resource as the definitions build it: its own accounts, password files and backups under tmp_path."""
    return LocalMariaDB(
        host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password,
        credentials_dir=str(tmp_path / "db-credentials"), backups_dir=str(tmp_path / "backups"),
    )


def connect_as(server: MariaDBServer, user: str, password: str, database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host=server.host, port=server.port, user=user, password=password, database=database)


def mariadb_error(action: Callable[[], object]) -> int:
    with pytest.raises(pymysql.MySQLError) as caught:
        action()
    return caught.value.args[0]


def test_application_account_reads_and_writes_its_database_only(
    with_accounts: LocalMariaDB, mariadb: MariaDBServer, migrations: Path, tmp_path: Path
) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}"
    mine, other_db, lookalike = f"{prefix}_pay", f"{prefix}_acc", f"{prefix}Xpay"  # "_" must not be a wildcard
    try:
        for name in (mine, other_db):
            with_accounts.migrate(database=name, migrations_dir=migrations)
        with_accounts.migrate(database=lookalike, migrations_dir=None)
        access = with_accounts.service_access(database=mine)
        assert access is not None and access.user == f"{mine}_app_a" and access.name == mine
        secret_file = Path(access.password_file)
        assert secret_file.stat().st_mode & 0o777 == 0o400 and secret_file.stat().st_uid == 10001
        assert (tmp_path / "db-credentials" / mine).stat().st_mode & 0o777 == 0o700
        password = secret_file.read_text()
        assert password not in repr(access) and len(password) >= 32

        with connect_as(mariadb, access.user, password, mine) as app, app.cursor() as cursor:
            cursor.execute("INSERT INTO accounts (iban, owner_name, currency) VALUES ('DE1', 'A', 'EUR')")
            cursor.execute("SELECT COUNT(*) FROM accounts")
            assert cursor.fetchone() == (1,)
            # no DDL, no other database, not even one whose name matches with "_" as a wildcard
            assert mariadb_error(lambda: cursor.execute("ALTER TABLE accounts ADD COLUMN x INT")) == 1142
            assert mariadb_error(lambda: cursor.execute("DROP TABLE accounts")) == 1142
            assert mariadb_error(lambda: cursor.execute(f"SELECT * FROM `{other_db}`.accounts")) == 1142
            assert mariadb_error(lambda: cursor.execute(f"CREATE TABLE `{lookalike}`.t (a INT)")) == 1142
        # The migration account changes its own schema and nothing else.
        migrator = with_accounts.accounts(database=mine)[0]
        migrator_password = (tmp_path / "db-credentials" / mine / "migrator.password").read_text()
        with connect_as(mariadb, migrator, migrator_password, mine) as mig, mig.cursor() as cursor:
            cursor.execute("CREATE TABLE scratch (a INT)")
            assert mariadb_error(lambda: cursor.execute(f"SELECT * FROM `{other_db}`.accounts")) == 1142
        assert recorded(mariadb, mine) == ["V1__create_accounts", "V2__add_account_status"]
    finally:
        for name in (mine, other_db, lookalike):
            with_accounts.drop(database=name)
    users = query(mariadb, "SELECT User FROM mysql.user WHERE User LIKE %s", None, (f"{prefix}%",))
    assert users == [] and not (tmp_path / "db-credentials" / mine).exists()  # teardown took accounts and files


def test_a_deployment_takes_back_privileges_granted_by_hand(
    with_accounts: LocalMariaDB, mariadb: MariaDBServer, migrations: Path
) -> None:
    prefix = f"h{uuid.uuid4().hex[:8]}"
    mine, other_db = f"{prefix}_pay", f"{prefix}_acc"
    try:
        for name in (mine, other_db):
            with_accounts.migrate(database=name, migrations_dir=migrations)
        app = with_accounts.service_access(database=mine)
        mariadb.root_sql(
            f"GRANT ALTER ON `{mine}`.* TO '{app.user}'@'127.0.0.1';"
            f"GRANT SELECT ON `{other_db}`.* TO '{app.user}'@'127.0.0.1';"
            f"GRANT PROCESS ON *.* TO '{app.user}'@'127.0.0.1' WITH GRANT OPTION;\n"
        )
        with_accounts.migrate(database=mine, migrations_dir=migrations)  # the next deployment converges

        with connect_as(mariadb, app.user, Path(app.password_file).read_text(), mine) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM accounts")
            assert mariadb_error(lambda: cursor.execute("ALTER TABLE accounts ADD COLUMN x INT")) == 1142
            assert mariadb_error(lambda: cursor.execute(f"SELECT * FROM `{other_db}`.accounts")) == 1142
            cursor.execute("SHOW GRANTS")
            grants = sorted(row[0].split(" IDENTIFIED BY")[0] for row in cursor.fetchall())
        escaped = mine.replace("_", "\\_")
        assert grants == [
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{escaped}`.* TO `{app.user}`@`127.0.0.1`",
            f"GRANT USAGE ON *.* TO `{app.user}`@`127.0.0.1`",
        ]
    finally:
        for name in (mine, other_db):
            with_accounts.drop(database=name)


def test_rotation_keeps_the_old_account_until_it_is_retired(
    with_accounts: LocalMariaDB, mariadb: MariaDBServer
) -> None:
    name = f"r{uuid.uuid4().hex[:8]}_pay"
    try:
        with_accounts.migrate(database=name, migrations_dir=None)
        before = with_accounts.service_access(database=name)
        old_password = Path(before.password_file).read_text()
        assert with_accounts.retire_standby_account(database=name) is None  # nothing to retire yet

        assert with_accounts.rotate_application_password(database=name) == f"{name}_app_b"
        after = with_accounts.service_access(database=name)
        assert (after.user, after.revision != before.revision) == (f"{name}_app_b", True)
        connect_as(mariadb, before.user, old_password, name).close()  # replicas not yet replaced still connect
        connect_as(mariadb, after.user, Path(after.password_file).read_text(), name).close()

        assert with_accounts.retire_standby_account(database=name) == before.user
        assert mariadb_error(lambda: connect_as(mariadb, before.user, old_password, name)) in (1045, 4151)
        assert not Path(before.password_file).exists()
        # A later deployment converges: the active account keeps its password, the retired one stays locked.
        with_accounts.migrate(database=name, migrations_dir=None)
        connect_as(mariadb, after.user, Path(after.password_file).read_text(), name).close()
        assert mariadb_error(lambda: connect_as(mariadb, before.user, old_password, name)) in (1045, 4151)
    finally:
        with_accounts.drop(database=name)


def test_destructive_migration_is_refused_unless_marked_as_the_contract_step(
    with_accounts: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path
) -> None:
    with_accounts.migrate(database=database, migrations_dir=migrations)
    (migrations / "V3__drop_owner.sql").write_text(
        "ALTER TABLE accounts ADD COLUMN holder VARCHAR(140) NULL;\nALTER TABLE accounts DROP COLUMN owner_name;\n"
    )
    refused = (
        r"database 't_\w+': V3__drop_owner\.sql refused: `ALTER TABLE accounts DROP COLUMN owner_name` drops column "
        r"accounts\.owner_name, which the serving version may read or write; .* `-- fintech-release: contract`"
    )
    with pytest.raises(MigrationError, match=refused):
        with_accounts.pending_migrations(database=database, migrations_dir=migrations)
    with pytest.raises(MigrationError, match=refused):
        with_accounts.migrate(database=database, migrations_dir=migrations)
    columns = {row[0] for row in query(mariadb, "SHOW COLUMNS FROM accounts", database)}
    assert "holder" not in columns and "owner_name" in columns  # nothing of V3 ran, not even its safe statement

    (migrations / "V3__drop_owner.sql").write_text(
        "-- fintech-release: contract\n-- v1.4 stopped reading owner_name (expand was V2)\n"
        "ALTER TABLE accounts DROP COLUMN owner_name;\n"
    )
    assert with_accounts.pending_migrations(database=database, migrations_dir=migrations) == ("V3__drop_owner.sql",)
    assert with_accounts.migrate(database=database, migrations_dir=migrations).applied == ("V3__drop_owner.sql",)


def test_backup_is_a_consistent_dump_with_its_checksum(
    with_accounts: LocalMariaDB, mariadb: MariaDBServer, database: str, migrations: Path, tmp_path: Path
) -> None:
    with_accounts.migrate(database=database, migrations_dir=migrations)
    query(mariadb, "INSERT INTO accounts (iban, owner_name, currency) VALUES ('GB82', 'Backed Up', 'GBP')", database)
    record = with_accounts.backup(environment="production", databases=[database])
    dump = Path(record.location)
    assert dump.parent == tmp_path / "backups" / "production" and dump.stat().st_mode & 0o777 == 0o600
    assert (record.size_bytes, record.databases) == (dump.stat().st_size, (database,))
    assert record.sha256 == hashlib.sha256(dump.read_bytes()).hexdigest()
    text = dump.read_text()
    assert "CREATE TABLE `accounts`" in text and "Backed Up" in text and "_yoyo_migration" in text
    assert mariadb.password not in text and not list(dump.parent.glob(".mysqldump-*"))  # option file removed
