"""`LocalMariaDB`: the local platform's databases on a MariaDB/MySQL server on loopback.

All of migrate / drop / databases (yoyo-migrations plus SHA-256 checksums of the applied files, and
the backward-compatibility check) lives in `fintech_release.resources.migrations`, shared with
CloudSQL on the gke platform; this module says how a connection to the loopback server is opened,
and keeps the local platform's accounts, password files and backups.

Accounts (with `credentials_dir` set, as the definitions do), per database `<env>_<db>`:

* a **migration** account `<database>_mig` with every privilege on that database and nothing else:
  migrations run as it, not as the admin;
* two **application** accounts `<database>_app_a` and `<database>_app_b` with SELECT, INSERT, UPDATE
  and DELETE on that database only (no DDL, no other database). One is active; the other is locked.
  MariaDB has one password per account, so a rotation gives the *standby* account a new password and
  makes it active: replicas not yet replaced keep connecting with the old account, and it is locked
  (with a random password no one keeps) only once every replica uses the new one. Changing the one
  account's password in place would break every connection an old replica opens during the rollout.

Every account is converged by `account_privileges.converge_account`, shared with Cloud SQL: exactly
its privileges on its own database (the name escaped where `_` would be a wildcard), nothing else.

The admin password comes from the environment variable `password_env` names (FINTECH_RELEASE_DB_PASSWORD in
the demo), read when a connection opens; the accounts' passwords from `CredentialStore` (see local_credentials.py). None
of them is ever logged, put in a message, a command line or an environment variable.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pymysql

from fintech_release.errors import MigrationError
from fintech_release.resources._process import run_tool
from fintech_release.resources.account_privileges import (
    ALL_PRIVILEGES,
    DATA_PRIVILEGES,
    Account,
    Server,
    converge_account,
)
from fintech_release.resources.database import BackupRecord, DatabaseAccess
from fintech_release.resources.jre_base import APP_UID
from fintech_release.resources.local_credentials import CredentialStore, Slot, new_password, other
from fintech_release.resources.migrations import MySqlDatabaseAdmin, OpenConnection, require_database_name

MYSQL_USER_MAX = 32  # MySQL 5.7's limit; MariaDB allows more, but a name that fits both works on both
MYSQLDUMP_HINT = "Install it with `apt-get install mariadb-client` (scripts/install-system-deps.sh does it)."
BACKUP_TIMEOUT_SECONDS = 1800
ROLES = ("mig", "app_a", "app_b")


def account_name(database: str, role: str) -> str:
    """`<database>_<role>`, shortened with a hash of the database name when it would exceed 32 characters."""
    name = f"{database}_{role}"
    if len(name) <= MYSQL_USER_MAX:
        return name
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"{database[: MYSQL_USER_MAX - len(role) - len(digest) - 2]}_{digest}_{role}"


class LocalMariaDB(MySqlDatabaseAdmin):
    """Creates, migrates, backs up and drops databases and their accounts on a MariaDB/MySQL server on loopback."""

    host: str = "127.0.0.1"
    port: int = 3306
    connect_timeout_seconds: float = 5
    credentials_dir: str | None = None  # None: no accounts of its own, migrations run as the admin (tests only)
    backups_dir: str | None = None
    service_uid: int = APP_UID  # the services' user in their images, who must read the password file
    mysqldump_executable: str = "mysqldump"

    def _server(self) -> str:
        return f"MariaDB {self.host}:{self.port}"

    def _password_purpose(self) -> str:
        return f"{super()._password_purpose()}; the demo keeps it in .demo/db-password"

    def _connections(self) -> AbstractContextManager[OpenConnection]:
        return nullcontext(self._connect)

    def _connect(
        self, database: str | None, *, autocommit: bool, user: str | None = None, password: str | None = None
    ) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=user or self.user,
            password=password if password is not None else self._password(),
            database=database,
            connect_timeout=self.connect_timeout_seconds,
            charset="utf8mb4",
            autocommit=autocommit,
            # PyMySQL otherwise tries TLS on every connection ("preferred") and builds a new SSL context with the
            # system's CA bundle for it each time: about 50 ms per connection, a second per deployment. On loopback
            # TLS protects nothing (the traffic never leaves the machine); elsewhere the preferred mode stays.
            ssl_disabled=True if self._on_loopback() else None,
        )

    def _on_loopback(self) -> bool:
        try:
            return self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    # ------------------------------------------------------------------ accounts

    def _store(self) -> CredentialStore | None:
        return CredentialStore(Path(self.credentials_dir), self.service_uid) if self.credentials_dir else None

    def _account_host(self) -> str:
        """Where the accounts may connect from: loopback when the server is on loopback, else anywhere."""
        return "127.0.0.1" if self._on_loopback() else "%"

    def _account(self, database: str, role: str) -> Account:
        return Account(account_name(database, role), self._account_host())

    def _prepare(self, connect: OpenConnection, database: str) -> None:
        """Converge the database's three accounts: the passwords on disk, their grants, the standby locked."""
        store = self._store()
        if store is None:
            return
        active = store.active(database)
        slot: Slot = active.slot if active else "a"
        app_password = store.application_password(database, slot)
        if active is None or app_password is None:
            app_password = store.new_application_password(database, slot)
            store.set_active(database, slot)
        standby = other(slot)
        with self._connection(connect) as connection, connection.cursor() as cursor:
            server = Server.inspect(cursor)
            self._set_account(cursor, server, database, "mig", store.migrator_password(database), ALL_PRIVILEGES)
            self._set_account(cursor, server, database, f"app_{slot}", app_password, DATA_PRIVILEGES)
            # A standby that still has a password on disk may serve replicas not yet replaced: leave it working.
            standby_password = store.application_password(database, standby)
            self._set_account(
                cursor, server, database, f"app_{standby}", standby_password or new_password(),
                DATA_PRIVILEGES, locked=standby_password is None,
            )

    def _set_account(
        self, cursor: pymysql.cursors.Cursor, server: Server, database: str, role: str, password: str,
        privileges: tuple[str, ...], *, locked: bool = False,
    ) -> None:
        account = self._account(database, role)
        # The password is a parameter, never part of the statement's text.
        cursor.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (password,))
        cursor.execute(f"ALTER USER {account} IDENTIFIED BY %s ACCOUNT {'LOCK' if locked else 'UNLOCK'}", (password,))
        converge_account(cursor, server, account, database, privileges)

    def _migration_connections(self, database: str) -> AbstractContextManager[OpenConnection]:
        store = self._store()
        if store is None:
            return self._connections()
        user, password = account_name(database, "mig"), store.migrator_password(database)

        def connect(name: str | None, *, autocommit: bool) -> pymysql.connections.Connection:
            return self._connect(name, autocommit=autocommit, user=user, password=password)

        return nullcontext(connect)

    def accounts(self, *, database: str) -> tuple[str, ...]:
        return tuple(account_name(database, role) for role in ROLES) if self._store() else ()

    def service_access(self, *, database: str) -> DatabaseAccess | None:
        store = self._store()
        active = store.active(database) if store else None
        if store is None or active is None:
            return None
        return DatabaseAccess(
            host=self.host, port=self.port, name=database, user=account_name(database, f"app_{active.slot}"),
            password_file=str(store.application_file(database, active.slot)), revision=active.revision,
        )

    def rotate_application_password(self, *, database: str) -> str | None:
        require_database_name(database)
        store = self._store()
        active = store.active(database) if store else None
        if store is None or active is None:
            raise MigrationError(f"database {database!r} has no application account yet: deploy the environment first")
        standby = other(active.slot)
        with self._errors(f"rotating the application password of {database!r}"), self._connections() as connect:
            password = store.new_application_password(database, standby)
            with self._connection(connect) as connection, connection.cursor() as cursor:
                self._set_account(
                    cursor, Server.inspect(cursor), database, f"app_{standby}", password, DATA_PRIVILEGES
                )
        store.set_active(database, standby)
        return account_name(database, f"app_{standby}")

    def retire_standby_account(self, *, database: str) -> str | None:
        store = self._store()
        active = store.active(database) if store else None
        if store is None or active is None:
            return None
        standby = other(active.slot)
        if store.application_password(database, standby) is None:
            return None
        with self._errors(f"retiring the standby account of {database!r}"), self._connections() as connect:
            with self._connection(connect) as connection, connection.cursor() as cursor:
                cursor.execute(
                    f"ALTER USER {self._account(database, f'app_{standby}')} IDENTIFIED BY %s ACCOUNT LOCK",
                    (new_password(),),
                )
        store.forget_application_password(database, standby)
        return account_name(database, f"app_{standby}")

    def drop(self, *, database: str) -> bool:
        """Drop the database, then its accounts and password files."""
        existed = super().drop(database=database)
        store = self._store()
        if store is not None:
            with self._errors(f"dropping the accounts of {database!r}"), self._connections() as connect:
                with self._connection(connect) as connection, connection.cursor() as cursor:
                    for role in ROLES:
                        cursor.execute(f"DROP USER IF EXISTS {self._account(database, role)}")
            store.remove(database)
        return existed

    # ------------------------------------------------------------------ backups

    def backup(self, *, environment: str, databases: list[str]) -> BackupRecord:
        """One consistent `mysqldump --single-transaction` of `databases` into `backups_dir/<environment>/`."""
        for database in databases:
            require_database_name(database)
        if not self.backups_dir:
            raise MigrationError("no backups_dir configured for the local databases: cannot back up before migrating")
        folder = Path(self.backups_dir) / environment
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        target = folder / f"{environment}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.sql"
        with self._option_file(folder) as options:
            run_tool(
                [
                    self.mysqldump_executable, f"--defaults-extra-file={options}", "--single-transaction",
                    "--routines", "--triggers", "--protocol=TCP", f"--host={self.host}", f"--port={self.port}",
                    *(f"--ignore-table={name}.yoyo_lock" for name in databases),
                    f"--result-file={target}", "--databases", *databases,
                ],
                tool="mysqldump",
                install_hint=MYSQLDUMP_HINT,
                timeout_seconds=BACKUP_TIMEOUT_SECONDS,
            )
        os.chmod(target, 0o600)
        with target.open("rb") as dump:
            digest = hashlib.file_digest(dump, "sha256").hexdigest()
        return BackupRecord(
            location=str(target), databases=tuple(databases), size_bytes=target.stat().st_size, sha256=digest,
            detail=f"mysqldump --single-transaction of {len(databases)} databases on {self._server()}",
        )

    @contextmanager
    def _option_file(self, folder: Path) -> Iterator[Path]:
        """A 0600 client option file with the admin's user and password (never on the command line), removed after."""
        descriptor, name = tempfile.mkstemp(prefix=".mysqldump-", suffix=".cnf", dir=folder)
        path = Path(name)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(f'[client]\nuser="{self.user}"\npassword="{_option_value(self._password())}"\n')
            yield path
        finally:
            path.unlink(missing_ok=True)


def _option_value(value: str) -> str:
    """A value for a double-quoted MySQL option file string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


__all__ = ["LocalMariaDB", "account_name"]
