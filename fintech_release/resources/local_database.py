"""`LocalMariaDB`: the local platform's databases on a MariaDB/MySQL server on loopback.

All of migrate / drop / databases (yoyo-migrations plus SHA-256 checksums of the applied files)
lives in `fintech_release.resources.migrations`, shared with CloudSQL on the gke platform; this
module only says how a connection to the loopback server is opened.

The password comes from the resource's `password` field (``EnvVar("FINTECH_RELEASE_DB_PASSWORD")``
in the definitions); see the migrations module for how it is kept out of logs and messages.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import pymysql

from fintech_release.resources.migrations import MySqlDatabaseAdmin, OpenConnection


class LocalMariaDB(MySqlDatabaseAdmin):
    """Creates, migrates and drops databases on a MariaDB/MySQL server on loopback (PyMySQL, yoyo)."""

    host: str = "127.0.0.1"
    port: int = 3306
    connect_timeout_seconds: float = 5

    def _server(self) -> str:
        return f"MariaDB {self.host}:{self.port}"

    def _connections(self) -> AbstractContextManager[OpenConnection]:
        return nullcontext(self._connect)

    def _connect(self, database: str | None, *, autocommit: bool) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self._password(),
            database=database,
            connect_timeout=self.connect_timeout_seconds,
            charset="utf8mb4",
            autocommit=autocommit,
        )


__all__ = ["LocalMariaDB"]
