"""A real PostgreSQL server for tests, started and stopped by the suite.

* ``postgres`` - a private PostgreSQL (Debian's ``postgresql`` package) for the session: a fresh
  cluster made by ``initdb`` in its own temporary directory, started with ``pg_ctl`` on a free
  127.0.0.1 port with its unix socket in that directory, one database and one password-protected
  user (``.host``, ``.port``, ``.user``, ``.password``, ``.database``; ``create_database(name)``
  gives a test a database of its own); stopped (fast shutdown) and deleted at the end.

PostgreSQL refuses to run as root, so when the suite runs as root the server runs as the
unprivileged ``postgres`` system user (or ``nobody``), which then owns the temporary directory.
The password reaches ``initdb`` through a file, never a command line. Nothing here is a mock, and
all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from fintech_release_tests.components import LOCALHOST, ComponentError, log_tail, on_a_free_port

POSTGRES_HINT = "Install it with `apt-get install postgresql`."
UNPRIVILEGED_USERS = ("postgres", "nobody")


def postgres_program(name: str) -> str:
    """The newest installed PostgreSQL's `name` (Debian keeps them in /usr/lib/postgresql/<version>/bin)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(Path(path).parts[-3]), reverse=True
    )
    found = candidates[0] if candidates else shutil.which(name)
    if found is None:
        raise ComponentError(f"{name} (PostgreSQL) is not installed. {POSTGRES_HINT}")
    return found


def server_account() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when the suite is root; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ComponentError(f"running as root and none of the users {UNPRIVILEGED_USERS} exists to run PostgreSQL")


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1 with one database owned by a password-protected user."""

    workdir: Path
    port: int
    account: pwd.struct_passwd | None
    user: str = "fintech_release"
    database: str = "dagster"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(18), repr=False)
    host: str = LOCALHOST
    running: bool = False

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        """Output of initdb and pg_ctl."""
        return self.workdir / "tools.log"

    @property
    def server_log(self) -> Path:
        """The server's own log (written by the server's account)."""
        return self.workdir / "server.log"

    @classmethod
    def start(cls, workdir: Path, attempts: int = 3) -> PostgresServer:
        """initdb once, then start on a free port (retried if another process took the port meanwhile)."""
        account = server_account()
        server = cls(workdir=workdir, port=0, account=account)
        server._initdb()

        def launch(port: int) -> PostgresServer:
            server.port = port
            try:
                server._pg_ctl_start()
                server.create_database(server.database)
            except ComponentError:
                server.stop()
                raise
            return server

        return on_a_free_port(launch, attempts)

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> None:
        """Run a PostgreSQL program as the server's account; output goes to the server log."""
        user = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []} if self.account else {}
        with open(self.log_path, "ab") as log:
            completed = subprocess.run(
                argv, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                cwd=self.workdir, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"}, **user,
            )
        if completed.returncode != 0:
            raise ComponentError(
                f"{what} failed with exit code {completed.returncode}.\n"
                f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}\n"
                f"Last lines of {self.server_log}:\n{log_tail(self.server_log)}"
            )

    def _initdb(self) -> None:
        password_file = self.workdir / "pwfile"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if self.account:
            os.chown(self.workdir, self.account.pw_uid, self.account.pw_gid)
            os.chown(password_file, self.account.pw_uid, self.account.pw_gid)
        try:
            self._run(
                [
                    postgres_program("initdb"), f"--pgdata={self.datadir}", f"--username={self.user}",
                    f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
                ],
                "initdb",
            )
        finally:
            password_file.unlink()

    def _pg_ctl_start(self) -> None:
        # A throw-away server: durability off for speed; socket only in our own directory.
        options = (
            f"-h {self.host} -p {self.port} -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB"
        )
        self._run(
            [postgres_program("pg_ctl"), "start", "-D", str(self.datadir), "-l", str(self.server_log),
             "-w", "-t", "60", "-o", options],
            f"pg_ctl start on {self.host}:{self.port}",
        )
        self.running = True

    def create_database(self, name: str) -> None:
        """A new, empty database `name` owned by the server's user."""
        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres",
            connect_timeout=10,
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def connect(self, database: str | None = None) -> psycopg2.extensions.connection:
        """A new psycopg2 connection to `database` (default: the server's own; the caller closes it)."""
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            dbname=database or self.database, connect_timeout=10,
        )

    def dagster_env(self, database: str | None = None) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster/dagster.yaml reads, pointing at `database` on this server."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": database or self.database,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def stop(self) -> None:
        """Fast shutdown (disconnects clients, then stops) and wait for it."""
        if self.running:
            self._run([postgres_program("pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60"],
                      "pg_ctl stop")
            self.running = False


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL on a free 127.0.0.1 port; its cluster is deleted at the end."""
    # Not pytest's tmp_path: its parent folder is private to the suite's user, and the server may run as another.
    workdir = Path(tempfile.mkdtemp(prefix="fintech-pg-"))
    try:
        server = PostgresServer.start(workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
