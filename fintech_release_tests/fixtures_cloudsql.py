"""Stand-ins for the gke database path, on loopback: no Cloud SQL instance and no cluster are involved.

* `DirectCloudSqlDatabase` - the real `CloudSqlDatabase` with its Cloud SQL connector replaced by a
  direct PyMySQL connection to the session's MariaDB; it notes as whom and to which database each
  connection was opened. Everything else (grants, revokes, migrations, errors) is the product's code.
* `cloudsql_users` - what the Cloud SQL Admin API leaves when Terraform creates `<database>_mig` and
  `<database>_app`, made with MariaDB's statements: `mysql-8.0` grants the role `cloudsqlsuperuser`
  (every privilege on *.*, WITH GRANT OPTION) and makes it the default role; `mysql-5.7` grants those
  privileges directly on *.*. MariaDB has roles and default roles as MySQL 8.0 has, with its own
  syntax; `partial_revokes`, which Cloud SQL for MySQL 8.0 turns on, it does not have.
* `SecretApi` - a plain HTTP server on loopback answering `GET /api/v1/namespaces/<ns>/secrets/<name>`
  with a Secret document shaped like the Kubernetes API's (`data` base64-encoded), or with a given
  status; `kubeconfig` points the real `kubernetes` client at it with a bearer token.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pymysql
import pytest
import yaml
from pydantic import Field

from fintech_release.config.models import cloudsql_secret, cloudsql_user
from fintech_release.resources.cloudsql import CloudSqlDatabase, ServiceAccounts
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.migrations import OpenConnection
from fintech_release_tests.components import answer_json
from fintech_release_tests.fixtures_servers import MariaDBServer

INSTANCE = "fintech-prod:europe-west1:fintech-db"
NAMESPACE = "fintech-staging"
CONTEXT = "gke_fintech-prod_europe-west1_staging"
TOKEN = "stand-in-token-4b1e"
Style = Literal["mysql-8.0", "mysql-5.7"]


class DirectCloudSqlDatabase(CloudSqlDatabase):
    """`CloudSqlDatabase` whose connector is replaced by a direct PyMySQL connection to a local server."""

    host: str
    port: int
    opened_as: list[str] = Field(default_factory=list)  # "<user> <database>" per connection opened

    @contextmanager
    def _opener(self, user: str, password: Callable[[], str]) -> Iterator[OpenConnection]:
        def connect(database: str | None, *, autocommit: bool) -> pymysql.connections.Connection:
            self.opened_as.append(f"{user} {database}")
            return pymysql.connect(
                host=self.host, port=self.port, user=user, password=password(), database=database,
                connect_timeout=self.timeout, charset="utf8mb4", autocommit=autocommit,
            )

        yield connect


def service_accounts(database: str, service: str, service_database: str) -> ServiceAccounts:
    """What `platform_resources` gives `CloudSqlDatabase` for one service (the names Terraform uses)."""
    return ServiceAccounts(
        service=service,
        migration_user=cloudsql_user(service_database, "migration"),
        application_user=cloudsql_user(service_database, "application"),
        migration_secret=cloudsql_secret(service, "migration"),
    )


def cloudsql_users(mariadb: MariaDBServer, service_database: str, style: Style) -> dict[str, str]:
    """Create `<db>_mig` and `<db>_app` as the Cloud SQL API would (`style`); return user -> password."""
    passwords = {cloudsql_user(service_database, role): "pw-" + secrets.token_urlsafe(18)
                 for role in ("migration", "application")}
    # The admin may hand the role on and take it back, as ROLE_ADMIN lets Cloud SQL's admin user do on 8.0.
    statements = ["CREATE ROLE IF NOT EXISTS cloudsqlsuperuser;",
                  "GRANT ALL PRIVILEGES ON *.* TO cloudsqlsuperuser WITH GRANT OPTION;",
                  *(f"GRANT cloudsqlsuperuser TO '{mariadb.user}'@'{host}' WITH ADMIN OPTION;"
                    for host in ("127.0.0.1", "localhost"))]
    for user, password in passwords.items():
        account = f"'{user}'@'%'"
        statements.append(f"CREATE OR REPLACE USER {account} IDENTIFIED BY '{password}';")
        if style == "mysql-8.0":
            statements += [f"GRANT cloudsqlsuperuser TO {account};",
                           f"SET DEFAULT ROLE cloudsqlsuperuser FOR {account};"]
        else:
            statements.append(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;")
    mariadb.root_sql("\n".join(statements) + "\n")
    return passwords


def drop_users(mariadb: MariaDBServer, users: list[str]) -> None:
    mariadb.root_sql("".join(f"DROP USER IF EXISTS '{user}'@'%';\n" for user in users))


class SecretApi:
    """A stand-in Kubernetes API serving Secrets by name; records each request (path, Authorization header)."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, str]] = {}  # name -> key -> value (plain text, encoded when served)
        self.statuses: list[int] = []  # answered first, one per request
        self.requests: list[tuple[str, str | None]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": "staging", "cluster": {"server": self.url}}],
            "users": [{"name": "deployer", "user": {"token": TOKEN}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": "staging", "user": "deployer"}}],
        }))
        return path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self
        prefix = f"/api/v1/namespaces/{NAMESPACE}/secrets/"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server naming
                api.requests.append((self.path, self.headers.get("Authorization")))
                name = self.path.removeprefix(prefix) if self.path.startswith(prefix) else None
                if api.statuses:
                    status = api.statuses.pop(0)
                    self._answer(status, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                                          "message": "stand-in failure"})
                elif name in api.secrets:
                    data = {key: base64.b64encode(value.encode()).decode() for key, value in api.secrets[name].items()}
                    self._answer(200, {"kind": "Secret", "apiVersion": "v1", "type": "Opaque", "data": data,
                                       "metadata": {"name": name, "namespace": NAMESPACE}})
                else:
                    self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                       "reason": "NotFound", "message": f'secrets "{name}" not found'})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                answer_json(self, status, body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def secret_api() -> Iterator[SecretApi]:
    api = SecretApi()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def cluster_for(api: SecretApi, tmp_path: Path) -> KubernetesCluster:
    """The real `KubernetesCluster`, reading through the stand-in API."""
    return KubernetesCluster(kubeconfig=str(api.kubeconfig(tmp_path / "kubeconfig")), request_timeout_seconds=2)
