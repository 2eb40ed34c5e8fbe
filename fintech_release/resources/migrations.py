"""Versioned SQL migrations on a MySQL-compatible server, shared by every platform's `DatabaseAdmin`.

`MySqlDatabaseAdmin` holds the whole of migrate / drop / databases; a platform only says how a
PyMySQL connection is opened (`LocalMariaDB`: straight to loopback; `CloudSqlDatabase`: through
the Cloud SQL connector) and how its own failures are explained. Migrations are applied with
**yoyo-migrations** (Apache-2.0, PyMySQL), plus a Flyway-style checksum check that yoyo itself lacks.

Why yoyo, and what we add
-------------------------
Two libraries were evaluated by reading the released wheels:

* ``pyway`` 0.3.33 (Flyway-inspired, GPL-3) records a CRC32 of every applied file, but it
  rejects our file names: its pattern wants a minor version (``V1_0__x.sql``), so
  ``V1__create_accounts.sql`` fails with "invalid format name". It also drives MySQL through
  mysql-connector-python (not PyMySQL), installs psycopg2-binary and duckdb for every user, pins
  ``tabulate==0.9.0`` (Dagster's is newer), lets ``PYWAY_*`` environment variables override the
  values passed in code, and only checks checksums in a separate ``validate`` step.
* ``yoyo-migrations`` 9.0 speaks to MariaDB through PyMySQL, applies plain ``.sql`` files
  statement by statement, keeps its own history (``_yoyo_migration``) and audit log
  (``_yoyo_log``), takes a database-level lock against concurrent runs, undoes the executed
  steps of a failing migration when a ``<name>.rollback.sql`` exists, and has a Python API (no
  CLI, no config file, so the password never reaches a command line). But its "hash" is a
  hash of the file *name*: an edited file goes unnoticed, and it orders files by name
  (``V10`` before ``V2``).

So yoyo does the applying and the record keeping, and this module adds only what Flyway
semantics need on top:

* the files are ``V<version>__<description>.sql`` and are ordered by the numeric version;
* before anything is applied, every pending file is checked against the schema the serving
  version uses (`migration_safety`): a destructive statement is refused unless the file is marked
  as the contract step of an expand/contract change;
* when yoyo logs an ``apply`` (after the file's statements succeeded, just before it marks the
  migration applied) it writes the file's SHA-256 into the ``comment`` column of its own
  ``_yoyo_log`` row; no table of ours. Every later ``migrate`` compares each applied file with
  that checksum before applying anything: an edited, deleted or out-of-order migration stops
  the run with `MigrationError`, under yoyo's lock so two runs cannot interleave.

Connections we open ourselves
-----------------------------
yoyo normally connects from a URL (``get_backend("mysql://user:pw@host/db")``), which can neither
carry a Cloud SQL connector nor keep the password out of an object yoyo may print. Its backends
open every connection through one method, ``DatabaseBackend.connect(dburi)`` (also for the copies
``apply_one`` makes), so `_ChecksumLoggingBackend` is subclassed per call with a ``connect`` that
asks the resource's opener. The ``DatabaseURI`` yoyo keeps names the server and holds no password.

The password comes from the environment variable named by `password_env` (fintech_release/env_secrets.py),
read when a connection opens; tests may give it as `password`. It is never logged, never part of a message
or result, and is hidden from the resource's ``repr``; every message is also scrubbed of it as a last line
of defence.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pymysql
from dagster import get_dagster_logger
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from yoyo import exceptions as yoyo_exceptions
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import Migration

from fintech_release.env_secrets import ReadsSecrets, secret
from fintech_release.errors import ExternalSystemError, FintechReleaseError, MigrationError
from fintech_release.resources.database import DatabaseAdmin, MigrationResult

T = TypeVar("T")

DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MIGRATION_FILE = re.compile(r"^V(?P<version>\d+(?:[._]\d+)*)__(?P<description>\w+)\.sql$")
ROLLBACK_SUFFIX = ".rollback.sql"  # yoyo's undo steps for a migration that fails half-way
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
CHECKSUM_PREFIX = "sha256:"
MIGRATION_TABLE = "_yoyo_migration"  # yoyo's default name for its history table
# Client errors that mean "no connection" (worth retrying), as opposed to e.g. 1045 access denied.
CONNECTION_ERRORS = frozenset({1040, 2002, 2003, 2006, 2013})


class OpenConnection(Protocol):
    """Opens one PyMySQL connection to `database` (None: no default database)."""

    def __call__(self, database: str | None, *, autocommit: bool) -> pymysql.connections.Connection: ...


@dataclass(frozen=True)
class MigrationFile:
    """One `V<version>__<description>.sql` file."""

    path: Path
    version: tuple[int, ...]
    checksum: str  # "sha256:<hex>" of the text with line endings normalised

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def id(self) -> str:
        """yoyo's migration id: the file name without `.sql`."""
        return self.path.stem


def read_migration_files(directory: Path, database: str) -> list[MigrationFile]:
    """The migration files in `directory`, in version order; `MigrationError` for a misnamed or duplicate one."""
    if not directory.is_dir():
        raise MigrationError(f"database {database!r}: migrations directory {directory} does not exist")
    files: list[MigrationFile] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not path.name.endswith(".sql") or path.name.endswith(ROLLBACK_SUFFIX):
            continue
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(
                f"database {database!r}: {path.name} in {directory} is not named V<version>__<description>.sql"
            )
        version = tuple(int(part) for part in re.split(r"[._]", match["version"]))
        files.append(MigrationFile(path=path, version=version, checksum=file_checksum(path)))
    files.sort(key=lambda f: f.version)
    for earlier, later in itertools.pairwise(files):
        if _normalised(earlier.version) == _normalised(later.version):
            raise MigrationError(
                f"database {database!r}: {earlier.name} and {later.name} have the same version"
            )
    return files


def file_checksum(path: Path) -> str:
    """SHA-256 of a migration file, insensitive to CRLF/LF (a checkout may convert them)."""
    text = path.read_bytes().replace(b"\r\n", b"\n")
    return CHECKSUM_PREFIX + hashlib.sha256(text).hexdigest()


def describe_mysql_error(error: BaseException) -> str:
    """`message (MariaDB error N)` for a driver error; the exception text otherwise."""
    if isinstance(error, pymysql.MySQLError) and len(error.args) >= 2 and isinstance(error.args[0], int):
        return f"{error.args[1]} (MariaDB error {error.args[0]})"
    return f"{type(error).__name__}: {error}"


def is_connection_error(error: BaseException) -> bool:
    """True for a driver error that means the server could not be reached (worth retrying)."""
    return isinstance(error, pymysql.OperationalError) and bool(error.args) and error.args[0] in CONNECTION_ERRORS


class _ChecksumLoggingBackend(MySQLBackend):
    """yoyo's MySQL backend that writes each applied file's checksum into its own `_yoyo_log.comment`.

    `connect` is supplied by `MySqlDatabaseAdmin._backend` (a subclass per call), so the password
    lives in the resource only: the `DatabaseURI` yoyo keeps and may print carries none.
    """

    log_migration_sql = (
        "INSERT INTO {0.log_table_quoted} "
        "({quoted.id}, {quoted.migration_hash}, {quoted.migration_id}, "
        "{quoted.operation}, {quoted.username}, {quoted.hostname}, "
        "{quoted.comment}, {quoted.created_at_utc}) "
        "VALUES (:id, :migration_hash, :migration_id, "
        ":operation, :username, :hostname, :comment, :created_at_utc)"
    )

    def get_log_data(self, migration: Migration | None = None, operation: str = "apply") -> dict[str, Any]:
        data = super().get_log_data(migration, operation)
        data["comment"] = getattr(migration, "checksum", None)
        return data


class MySqlDatabaseAdmin(ReadsSecrets, DatabaseAdmin):
    """Creates, migrates and drops databases on a MySQL-compatible server; subclasses open the connections."""

    user: str
    password: str | None = Field(
        default=None, repr=False, description="The admin user's password given directly (tests); else password_env."
    )
    password_env: str | None = Field(default=None, description="The environment variable holding the password.")
    connect_attempts: int = 4
    retry_wait_seconds: float = 0.5
    lock_timeout_seconds: float = 60

    # ------------------------------------------------------------------ what a platform provides

    @abstractmethod
    def _server(self) -> str:
        """The server as error messages name it, e.g. `MariaDB 127.0.0.1:3306`."""

    @abstractmethod
    def _connections(self) -> AbstractContextManager[OpenConnection]:
        """A connection opener for one operation; leaving the context releases what the opener needed."""

    def _is_transient(self, error: BaseException) -> bool:
        """True when opening a connection is worth another attempt after `error`."""
        return is_connection_error(error)

    def _explain(self, what: str, error: Exception) -> ExternalSystemError | None:
        """An error saying what to do about a platform failure that is not a driver error; None: not ours."""
        return None

    def _prepare(self, connect: OpenConnection, database: str) -> None:
        """After the database exists, before migrating: what the platform sets up for it (by default nothing)."""

    def _migration_connections(self, database: str) -> AbstractContextManager[OpenConnection]:
        """The opener migrations of `database` run with (by default the admin's, `_connections`)."""
        return self._connections()

    # ------------------------------------------------------------------ interface

    def migrate(self, *, database: str, migrations_dir: Path | None) -> MigrationResult:
        require_database_name(database)
        directory = Path(migrations_dir) if migrations_dir is not None else None
        files = read_migration_files(directory, database) if directory is not None else []
        with self._errors(f"database {database!r}"):
            with self._connections() as connect:
                created = self._create_database(connect, database)
                self._prepare(connect, database)
            with self._migration_connections(database) as connect:
                if directory is None or not files:
                    already = self._recorded_migrations(connect, database)
                    return MigrationResult(database=database, created=created, applied=(), already_applied=already)
                applied, already = self._apply(connect, database, directory, files)
        log = get_dagster_logger()
        if applied:
            log.info(f"{database}: applied {', '.join(applied)} ({len(already)} already applied)")
        else:
            log.info(f"{database}: nothing to apply ({len(already)} migrations already applied)")
        return MigrationResult(database=database, created=created, applied=applied, already_applied=already)

    def pending_migrations(self, *, database: str, migrations_dir: Path | None) -> tuple[str, ...]:
        """The files `migrate` would apply, checked (checksums, order, backward compatibility) but not applied.

        `MigrationError` names the file and statement that `migrate` would refuse. A database that does not
        exist yet has every file pending and nothing served to break.
        """
        require_database_name(database)
        if migrations_dir is None:
            return ()
        directory = Path(migrations_dir)
        files = read_migration_files(directory, database)
        if not files:
            return ()
        with self._errors(f"checking the migrations of database {database!r}"), self._connections() as connect:
            with self._connection(connect) as connection, connection.cursor() as cursor:
                if not _schema_exists(cursor, database):
                    from fintech_release.resources.migration_safety import Schema, check_pending

                    check_pending(database, [(f.name, f.path.read_text()) for f in files], Schema())
                    return tuple(f.name for f in files)
            backend = self._backend(connect, database)
            try:
                with backend.lock(timeout=self.lock_timeout_seconds):
                    backend.ensure_internal_schema_updated()
                    pending = _pending(database, directory, files, _applied_checksums(backend))
                    _check_compatible(backend, database, pending)
                    return tuple(f.name for f in pending)
            except yoyo_exceptions.LockTimeout as error:
                raise _locked(database, error) from None
            finally:
                backend.connection.close()

    def drop(self, *, database: str) -> bool:
        require_database_name(database)
        if database.lower() in SYSTEM_SCHEMAS:
            raise MigrationError(f"refusing to drop the system schema {database!r}")
        with (
            self._errors(f"dropping database {database!r}"),
            self._connections() as connect,
            self._connection(connect) as connection,
            connection.cursor() as cursor,
        ):
            existed = _schema_exists(cursor, database)
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        if existed:
            get_dagster_logger().info(f"dropped database {database}")
        return existed

    def databases(self, *, prefix: str) -> list[str]:
        with (
            self._errors(f"listing databases starting with {prefix!r}"),
            self._connections() as connect,
            self._connection(connect) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            names = [row[0] for row in cursor.fetchall()]
        # Filtered here rather than with LIKE, where "_" in a prefix such as "ci_" is a wildcard.
        return sorted(n for n in names if n.startswith(prefix) and n.lower() not in SYSTEM_SCHEMAS)

    # ------------------------------------------------------------------ migrations

    def _apply(
        self, connect: OpenConnection, database: str, directory: Path, files: list[MigrationFile]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Check applied files against their checksums, then apply the pending ones in version order."""
        backend = self._backend(connect, database)
        try:
            with backend.lock(timeout=self.lock_timeout_seconds):
                backend.ensure_internal_schema_updated()
                recorded = _applied_checksums(backend)
                pending = _pending(database, directory, files, recorded)
                _check_compatible(backend, database, pending)
                already = tuple(f.name for f in files if f.id in recorded)
                applied: list[str] = []
                for migration_file in pending:
                    _apply_one(backend, database, migration_file, applied)
                    applied.append(migration_file.name)
                return tuple(applied), already
        except yoyo_exceptions.LockTimeout as error:
            raise _locked(database, error) from None
        finally:
            backend.connection.close()

    def _recorded_migrations(self, connect: OpenConnection, database: str) -> tuple[str, ...]:
        """File names of the migrations yoyo has recorded in `database` (none if it never ran there)."""
        with self._connection(connect, database) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (database, MIGRATION_TABLE),
            )
            if cursor.fetchone()[0] == 0:
                return ()
            cursor.execute(f"SELECT migration_id FROM `{MIGRATION_TABLE}` ORDER BY applied_at_utc, migration_id")
            return tuple(f"{row[0]}.sql" for row in cursor.fetchall())

    def _create_database(self, connect: OpenConnection, database: str) -> bool:
        """`CREATE DATABASE IF NOT EXISTS`; True when it did not exist before."""
        with self._connection(connect) as connection, connection.cursor() as cursor:
            existed = _schema_exists(cursor, database)
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        if not existed:
            get_dagster_logger().info(f"created database {database}")
        return not existed

    # ------------------------------------------------------------------ connections and errors

    @contextmanager
    def _connection(
        self, connect: OpenConnection, database: str | None = None
    ) -> Iterator[pymysql.connections.Connection]:
        """An autocommit connection (retried), closed afterwards."""
        with closing(self._retrying(lambda: connect(database, autocommit=True))) as connection:
            yield connection

    def _backend(self, connect: OpenConnection, database: str) -> MySQLBackend:
        """A yoyo backend for `database` whose connections come from `connect` (retried)."""
        retrying = self._retrying

        class Backend(_ChecksumLoggingBackend):
            def connect(self, dburi: DatabaseURI) -> pymysql.connections.Connection:
                return retrying(lambda: connect(dburi.database, autocommit=False))

        uri = DatabaseURI("mysql", self.user, None, self._server(), None, database, {})
        backend = Backend(uri, MIGRATION_TABLE)
        backend.init_database()
        return backend

    def _retrying(self, action: Callable[[], T]) -> T:
        """Run `action`, retrying transient errors with exponential back-off (the last error is re-raised)."""
        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.connect_attempts)),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=5),
            retry=retry_if_exception(self._is_transient),
            reraise=True,
        )
        return retrying(action)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn driver and platform errors into our errors, and scrub the password from every message that leaves."""
        try:
            yield
        except ExternalSystemError as error:
            raise type(error)(self._redact(str(error))) from None
        except pymysql.MySQLError as error:
            attempts = f" after {self.connect_attempts} attempts" if self._is_transient(error) else ""
            raise MigrationError(
                self._redact(
                    f"{what} on {self._server()} as {self.user!r} failed{attempts}: {describe_mysql_error(error)}"
                )
            ) from None
        except Exception as error:
            explained = self._explain(what, error)
            if explained is None:
                raise
            raise type(explained)(self._redact(str(explained))) from None

    def secret_variables(self) -> dict[str, str]:
        return {self.password_env: self._password_purpose()} if self.password is None and self.password_env else {}

    def _password_purpose(self) -> str:
        return f"the password of {self.user} on {self._server()}"

    def _password(self) -> str:
        """The password: given, or read from its environment variable (also outside a run, with an `EnvVar`)."""
        value = secret(self.password, self.password_env, self._password_purpose())
        if value is None:
            raise MigrationError(f"no password for {self.user} on {self._server()}: set password_env")
        return value

    def _redact(self, text: str) -> str:
        try:
            password = self._password()
        except FintechReleaseError:
            return text
        return text.replace(password, "***") if len(password) >= 4 else text


# ---------------------------------------------------------------------- helpers


def require_database_name(database: str) -> None:
    """`MigrationError` unless `database` is a plain identifier (it is interpolated into DDL)."""
    if not DATABASE_NAME.match(database):
        raise MigrationError(
            f"invalid database name {database!r}: use letters, digits and _ (not first a digit), at most 64"
        )


def _apply_one(backend: MySQLBackend, database: str, migration_file: MigrationFile, applied: list[str]) -> None:
    migration = Migration(migration_file.id, str(migration_file.path), str(migration_file.path.parent))
    migration.checksum = migration_file.checksum  # read by _ChecksumLoggingBackend.get_log_data
    try:
        backend.apply_one(migration)
    except (pymysql.MySQLError, yoyo_exceptions.BadMigration) as error:
        before = f" Applied before it in this run: {', '.join(applied)}." if applied else ""
        raise MigrationError(
            f"database {database!r}: {migration_file.name} failed: {describe_mysql_error(error)}. "
            "It was not recorded as applied; MariaDB cannot roll back DDL, so statements before the "
            f"failing one stay applied unless {migration_file.id}{ROLLBACK_SUFFIX} undoes them.{before}"
        ) from None


def _locked(database: str, error: Exception) -> MigrationError:
    return MigrationError(
        f"database {database!r} is locked by another migration run ({error}); "
        "if no run is active, delete the row in its yoyo_lock table"
    )


def _check_compatible(backend: MySQLBackend, database: str, pending: list[MigrationFile]) -> None:
    """`MigrationError` when a pending file would break the version serving on the database's current schema."""
    if not pending:
        return
    # sqlglot takes a tenth of a second to import: only when there is something to check.
    from fintech_release.resources.migration_safety import Column, Schema, check_pending

    schema = Schema()
    for table, column, column_type, nullable in backend.execute(
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = :schema",
        {"schema": database},
    ).fetchall():
        schema.tables.setdefault(table.lower(), {})[column.lower()] = Column(column_type, nullable == "YES")
    check_pending(database, [(f.name, f.path.read_text()) for f in pending], schema)


def _schema_exists(cursor: pymysql.cursors.Cursor, database: str) -> bool:
    cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,))
    return cursor.fetchone() is not None


def _applied_checksums(backend: MySQLBackend) -> dict[str, str | None]:
    """Applied migration id -> checksum recorded with its latest `apply` (None if it has none)."""
    applied = [row[0] for row in backend.execute(
        f"SELECT migration_id FROM {backend.migration_table_quoted} ORDER BY applied_at_utc"
    ).fetchall()]
    checksums: dict[str, str | None] = {}
    for migration_id, comment in backend.execute(
        f"SELECT migration_id, comment FROM {backend.log_table_quoted} "
        "WHERE operation = 'apply' ORDER BY created_at_utc"
    ).fetchall():
        checksums[migration_id] = comment
    return {migration_id: checksums.get(migration_id) for migration_id in applied}


def _pending(
    database: str, directory: Path, files: list[MigrationFile], recorded: dict[str, str | None]
) -> list[MigrationFile]:
    """The files still to apply; `MigrationError` if an applied one changed, vanished or a new one is out of order."""
    local = {f.id: f for f in files}
    for migration_id, checksum in recorded.items():
        migration_file = local.get(migration_id)
        if migration_file is None:
            raise MigrationError(
                f"database {database!r}: {migration_id}.sql was applied but is missing from {directory}"
            )
        if checksum is None or not checksum.startswith(CHECKSUM_PREFIX):
            raise MigrationError(
                f"database {database!r}: {migration_file.name} was applied without a recorded checksum "
                f"(outside fintech-release?); check it matches the file, whose checksum is {migration_file.checksum}"
            )
        if checksum != migration_file.checksum:
            raise MigrationError(
                f"database {database!r}: {migration_file.name} was changed after it was applied "
                f"(checksum {_short(checksum)} when applied, {_short(migration_file.checksum)} now); "
                "restore the file and put the change in a new migration"
            )
    pending = [f for f in files if f.id not in recorded]
    applied_files = [f for f in files if f.id in recorded]
    if pending and applied_files:
        newest = max(applied_files, key=lambda f: f.version)
        for migration_file in pending:
            if migration_file.version < newest.version:
                raise MigrationError(
                    f"database {database!r}: {migration_file.name} is older than the applied {newest.name}; "
                    "give it a version above the newest applied one"
                )
    return pending


def _normalised(version: tuple[int, ...]) -> tuple[int, ...]:
    """1.0 and 1 are the same version."""
    trimmed = list(version)
    while len(trimmed) > 1 and trimmed[-1] == 0:
        trimmed.pop()
    return tuple(trimmed)


def _short(checksum: str | None) -> str:
    return "none" if not checksum else checksum[: len(CHECKSUM_PREFIX) + 12] + "…"


__all__ = [
    "MigrationFile",
    "MySqlDatabaseAdmin",
    "OpenConnection",
    "describe_mysql_error",
    "file_checksum",
    "is_connection_error",
    "read_migration_files",
    "require_database_name",
]
