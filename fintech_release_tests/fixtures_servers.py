"""Fixtures for MariaDB and nginx: real servers on loopback, started and stopped by the suite.

* ``mariadb`` - a private MariaDB server for the session: a fresh data directory, a free
  127.0.0.1 port, root reachable only through the server's unix socket, and an admin user
  with a random password (``.host``, ``.port``, ``.user``, ``.password``); stopped and
  deleted at the end,
* ``nginx_binary`` - the path of the nginx the ingress tests run (the setup scripts install
  it, so a missing nginx fails the tests instead of skipping them).

Process management for MariaDB lives here in small functions; the generic helpers
(``ManagedProcess``, ``on_a_free_port``, ``wait_until``, ``log_tail``) come from ``components.py``.
Nothing here is a mock, and all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fintech_release_tests.components import (
    LOCALHOST,
    ComponentError,
    ManagedProcess,
    log_tail,
    on_a_free_port,
    wait_until,
)

MARIADB_HINT = "Install it with `apt-get install mariadb-server` (make test does it)."
NGINX_HINT = "Install it with `apt-get install nginx-light` (make test does it)."
# A unix socket path must fit in sockaddr_un (108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 107


def find_program(name: str, hint: str) -> str:
    """The absolute path of `name`, looked up in PATH and in /usr/sbin (not on a normal user's PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise ComponentError(f"{name} is not installed. {hint}")
    return found


def os_user() -> str:
    """The name of the user the suite runs as (MariaDB's socket authentication maps to it)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def sql_string(value: str) -> str:
    """`value` as a single-quoted MariaDB string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# --------------------------------------------------------------------------- #
# MariaDB
# --------------------------------------------------------------------------- #


def install_datadir(datadir: Path, log_path: Path) -> None:
    """Create a fresh MariaDB data directory whose root logs in only through the unix socket.

    `mariadb-install-db` also creates an account for the OS user running it
    (`--auth-root-socket-user`), so this works as root and as a normal user.
    """
    datadir.mkdir(parents=True)
    command = [
        find_program("mariadb-install-db", MARIADB_HINT),
        "--no-defaults",  # must come first: ignore /etc/mysql/my.cnf (system datadir, socket)
        f"--datadir={datadir}",
        f"--user={os_user()}",
        f"--auth-root-socket-user={os_user()}",
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
    ]
    with open(log_path, "ab") as log:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=120)
    if completed.returncode != 0:
        raise ComponentError(
            f"mariadb-install-db failed with exit code {completed.returncode}.\n"
            f"Last lines of {log_path}:\n{log_tail(log_path)}"
        )


def mariadbd_command(datadir: Path, socket_path: Path, port: int, pid_file: Path, error_log: Path) -> list[str]:
    """The command line of a private `mariadbd` on 127.0.0.1:`port`, small and fast for tests."""
    return [
        find_program("mariadbd", MARIADB_HINT),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={socket_path}",
        f"--port={port}",
        f"--bind-address={LOCALHOST}",
        f"--pid-file={pid_file}",
        f"--log-error={error_log}",
        f"--user={os_user()}",  # as root mariadbd insists on being told explicitly
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=0",  # a throw-away server: speed over durability
        "--skip-innodb-doublewrite",
    ]


def server_answers(host: str, port: int) -> bool:
    """True if something accepts TCP connections on `host`:`port` and sends MariaDB's greeting."""
    try:
        with socket.create_connection((host, port), timeout=1) as connection:
            connection.settimeout(2)
            return len(connection.recv(64)) > 4
    except OSError:
        return False


def run_sql_as_root(socket_path: Path, sql: str, timeout: float = 30) -> str:
    """Run `sql` through the `mariadb` client over the unix socket, as the OS user; return its output.

    The SQL goes in on stdin, so nothing in it (passwords) shows up in `ps`.
    """
    completed = subprocess.run(
        [find_program("mariadb", MARIADB_HINT), "--no-defaults", f"--socket={socket_path}", f"--user={os_user()}"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise ComponentError(f"mariadb client failed (exit code {completed.returncode}): {completed.stderr.strip()}")
    return completed.stdout


def create_admin_user(socket_path: Path, user: str, password: str) -> None:
    """An account that may do everything (and grant it) from 127.0.0.1 and localhost."""
    statements = []
    for host in (LOCALHOST, "localhost"):
        account = f"{sql_string(user)}@{sql_string(host)}"
        statements += [
            f"CREATE OR REPLACE USER {account} IDENTIFIED BY {sql_string(password)};",
            f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;",
        ]
    run_sql_as_root(socket_path, "\n".join(statements) + "\n")


@dataclass
class MariaDBServer:
    """A private `mariadbd` on 127.0.0.1 with its own data directory and an admin account."""

    workdir: Path
    port: int
    user: str = "fintech_release_admin"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(18), repr=False)
    host: str = LOCALHOST
    process: ManagedProcess | None = None

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "mariadbd.sock"

    @property
    def error_log(self) -> Path:
        return self.workdir / "mariadbd.err"

    @classmethod
    def start(cls, workdir: Path, timeout: float = 60.0, attempts: int = 3) -> MariaDBServer:
        """Install a data directory once, then start the server on a free port (retried if the port was taken)."""
        if len(str(workdir / "mariadbd.sock")) > MAX_SOCKET_PATH:
            raise ComponentError(f"{workdir} is too deep for a unix socket path; use a shorter temporary directory")
        install_datadir(workdir / "data", workdir / "install-db.log")

        def launch(port: int) -> MariaDBServer:
            server = cls(workdir=workdir, port=port)
            try:
                server._launch(timeout)
                create_admin_user(server.socket_path, server.user, server.password)
            except ComponentError:
                server.stop()
                raise
            return server

        return on_a_free_port(launch, attempts)

    def _launch(self, timeout: float) -> None:
        pid_file = self.workdir / "mariadbd.pid"
        argv = mariadbd_command(self.datadir, self.socket_path, self.port, pid_file, self.error_log)
        self.process = ManagedProcess("mariadbd", argv, self.workdir / "mariadbd.out").start()
        if wait_until(
            lambda: self.socket_path.exists() and server_answers(self.host, self.port),
            timeout=timeout,
            abort=self.process.exited,
        ):
            return
        failure = self.process.failure(f"mariadbd did not answer on {self.host}:{self.port} within {timeout:.0f}s")
        raise ComponentError(f"{failure}\nLast lines of {self.error_log}:\n{log_tail(self.error_log)}")

    def restart(self, down_seconds: float = 0, timeout: float = 60.0) -> None:
        """Stop the server cleanly, stay down `down_seconds`, and start it again on the same port and data."""
        self.stop()
        time.sleep(down_seconds)
        self._launch(timeout)

    def root_sql(self, sql: str) -> str:
        """Run `sql` as the server's root (through the unix socket) and return the client's tab-separated output."""
        return run_sql_as_root(self.socket_path, sql)

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM; SIGKILL after a bound)."""
        if self.process is not None:
            self.process.stop(timeout=30)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A private MariaDB server on a free 127.0.0.1 port; its data directory is deleted at the end."""
    workdir = tmp_path_factory.mktemp("mariadb")
    server = MariaDBServer.start(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- #
# nginx
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """The nginx the ingress tests run; fails (does not skip) when it is missing."""
    try:
        return find_program("nginx", NGINX_HINT)
    except ComponentError as error:
        pytest.fail(str(error), pytrace=False)
