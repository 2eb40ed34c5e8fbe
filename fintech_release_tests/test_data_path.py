"""The data path on the local platform, for real: payments (built by Gradle, run by the Docker engine) keep
their payments in the session's MariaDB, behind nginx, with the credentials the release gives them.

One story under one write load through the ingress (every payment POSTed with its own Idempotency-Key and
retried with it until acknowledged): v1 deploys on new databases; v2 brings a migration, so a backup is
taken first and recorded; v2 rolls out, is rolled back, the database restarts (readiness goes down,
liveness does not) and the application password is rotated with a rolling restart. Then the rows are
counted against the acknowledgements: none lost, none twice. After one more restart without traffic,
the first requests on every worker thread of every replica succeed: none fails finding its connection
broken. The application password is found nowhere but in its file: not in Dagster's storage, the
containers' logs, `docker inspect` or their environment.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pymysql
import pytest
import requests

from fintech_release.assets.source import report_head_commits
from fintech_release.cli import launch, report
from fintech_release.records.event_log import latest_materialization_metadata
from fintech_release.records.keys import database_key, release_key
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import GitBareRepo, log_tail, wait_until
from fintech_release_tests.conftest import EXAMPLES_DIR
from fintech_release_tests.fixtures_servers import MariaDBServer
from fintech_release_tests.release_setup import quiet_instance, write_release_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("gradle_user_home", "base_image", "pushed_image_cleanup"),
]

SERVICE = "payments"
ENV = "production"  # APP_ENV must be one the services know; no other test deploys payments there
ADDRESS = "127.0.45.1"
SCOPE = "fintech-release-test"
DATABASE = f"{ENV}_payments"
V2_MIGRATION = {
    "migrations/V3__add_payment_note.sql": "-- expand: a nullable column the serving version ignores\n"
    "ALTER TABLE payments ADD COLUMN note VARCHAR(140) NULL;\n"
}


class Writer:
    """POSTs payments through the ingress, each retried with its Idempotency-Key until acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.unanswered: list[str] = []  # each try that got no 2xx (then retried with the same key)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            http.trust_env = False
            while not self.stop.is_set():
                key = f"k-{uuid.uuid4().hex[:16]}"
                while not self.stop.is_set() or key not in self.acknowledged:
                    try:
                        response = http.post(
                            self.url, json={"amount": "1.25", "currency": "EUR", "reference": key},
                            headers={"Idempotency-Key": key, "Connection": "close"}, timeout=10,
                        )
                        if response.status_code in (200, 201):
                            self.acknowledged.append(key)
                            break
                        self.unanswered.append(f"HTTP {response.status_code}")
                    except requests.RequestException as error:
                        self.unanswered.append(type(error).__name__)
                    if self.stop.is_set() and len(self.unanswered) > 10_000:
                        return
                    time.sleep(0.05)

    def failures_during(self, action):  # noqa: ANN001, ANN201 - returns what `action` returns
        """Run `action`; return its result and the tries that got no 2xx meanwhile."""
        before = len(self.unanswered)
        result = action()
        return result, self.unanswered[before:]


class DataPath:
    def __init__(self, root: Path, registry_host: str, mariadb: MariaDBServer) -> None:
        self.root, self.mariadb = root, mariadb
        self.repo = GitBareRepo.create(
            root / "git", EXAMPLES_DIR / SERVICE, author_name="Ada", author_email="ada@bank.example",
            message="Import", name=SERVICE,
        )
        self.config = write_release_config(
            root, {SERVICE: self.repo.bare_path}, registry_host=registry_host,
            environments=[{
                "name": ENV, "address": ADDRESS, "health_window_seconds": 2, "backup_before_migrations": True,
            }],
            local={
                "scope": SCOPE, "state_dir": str(root / "state"),
                "database": {"host": "127.0.0.1", "port": mariadb.port, "user": mariadb.user},
            },
        )
        self.defs = build_definitions(self.config)
        self.home = root / "dagster-home"
        self.home.mkdir()

    def push(self, files: dict[str, str], message: str) -> None:
        if files or message != "v1":
            self.repo.commit(files, message, author_email="ada@bank.example")
        sha = report_head_commits(self.instance, self.config, self.defs.resources["source"])[SERVICE]
        result = launch.build_and_push(self.defs, self.instance, SERVICE, sha)
        assert result.success, report.failure_message(result)

    def deploy(self) -> None:
        result = launch.deploy(self.config, self.defs, self.instance, ENV)
        release = latest_materialization_metadata(self.instance, release_key(ENV, SERVICE)) or {}
        assert result.success, (
            report.failure_message(result), release.get("problems"), log_tail(self.mariadb.error_log)
        )

    def url(self, path: str = "/payments") -> str:
        return f"http://{ADDRESS}:8000/{SERVICE}{path}"

    def rows(self) -> list[tuple[str, int]]:
        with pymysql.connect(
            host=self.mariadb.host, port=self.mariadb.port, user=self.mariadb.user, password=self.mariadb.password,
            database=DATABASE,
        ) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT reference, COUNT(*) FROM payments GROUP BY reference")
            return list(cursor.fetchall())


@pytest.fixture(scope="module")
def data_path(
    tmp_path_factory: pytest.TempPathFactory, registry, mariadb: MariaDBServer  # noqa: ANN001
) -> Iterator[DataPath]:
    story = DataPath(tmp_path_factory.mktemp("data-path"), registry.host, mariadb)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FINTECH_RELEASE_DB_PASSWORD", mariadb.password)
        with quiet_instance(story.home) as instance:
            story.instance = instance
            try:
                yield story
            finally:
                launch.teardown(story.config, story.defs, instance, ENV)


def test_no_acknowledged_write_is_lost_or_doubled_across_upgrade_rollback_restart_and_rotation(
    data_path: DataPath, mariadb: MariaDBServer, docker_client: docker.DockerClient
) -> None:
    data_path.push({}, "v1")
    data_path.deploy()
    first = latest_materialization_metadata(data_path.instance, database_key(ENV))
    assert first["backup"] == "none: the databases are new"
    assert first["accounts"] == {DATABASE: [f"{DATABASE}_mig", f"{DATABASE}_app_a", f"{DATABASE}_app_b"]}

    writer = Writer(data_path.url())
    writer.thread.start()
    try:
        assert wait_until(lambda: len(writer.acknowledged) >= 5, timeout=30)
        data_path.push(V2_MIGRATION, "v2: a nullable note column (expand)")

        _, upgrade_failures = writer.failures_during(data_path.deploy)
        database = latest_materialization_metadata(data_path.instance, database_key(ENV))
        assert database["applied_now"] == {DATABASE: ["V3__add_payment_note.sql"]}
        dump = Path(database["backup"])  # taken before V3 ran, recorded with its size and checksum
        assert database["backup_sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
        assert database["backup_size_bytes"] == dump.stat().st_size and "`note`" not in dump.read_text()
        assert latest_materialization_metadata(data_path.instance, release_key(ENV, SERVICE))["version"] == "1.0.0-2"

        rolled, rollback_failures = writer.failures_during(
            lambda: launch.rollback(data_path.config, data_path.defs, data_path.instance, ENV)
        )
        assert rolled.success, report.failure_message(rolled)
        assert latest_materialization_metadata(data_path.instance, release_key(ENV, SERVICE))["version"] == "1.0.0-1"

        replica = _replicas(docker_client)[0].labels["io.fintech-release.endpoint"]
        seen_down: list[tuple[int, int]] = []

        def restart() -> None:
            mariadb.stop()
            wait_until(lambda: bool(seen_down.append(_probe(replica)) or seen_down[-1][0] == 503), timeout=10)
            mariadb.restart()
            assert wait_until(lambda: _probe(replica)[0] == 200, timeout=30), "readiness did not come back"

        writer.failures_during(restart)
        assert (503, 200) in seen_down  # readiness down, liveness up while the database was away

        old_user = _database_user(_replicas(docker_client)[0])
        rotated, rotation_failures = writer.failures_during(
            lambda: launch.rotate_db_passwords(data_path.config, data_path.defs, data_path.instance, ENV)
        )
        assert rotated.success, report.failure_message(rotated)
        assert {_database_user(c) for c in _replicas(docker_client)} == {f"{DATABASE}_app_b"} != {old_user}
        time.sleep(1)
    finally:
        writer.stop.set()
        writer.thread.join(60)

    assert (upgrade_failures, rollback_failures, rotation_failures) == ([], [], [])
    rows = dict(data_path.rows())
    assert len(writer.acknowledged) > 20
    assert sorted(rows) == sorted(writer.acknowledged)  # every acknowledged payment is there …
    assert set(rows.values()) == {1}  # … exactly once
    listed = {payment["reference"] for payment in requests.get(data_path.url(), timeout=10).json()}
    assert listed == set(writer.acknowledged)  # and read back through the ingress
    _old_account_is_locked(data_path, mariadb, old_user)


def test_the_first_requests_after_a_database_restart_find_no_broken_connection(
    data_path: DataPath, mariadb: MariaDBServer, docker_client: docker.DockerClient
) -> None:
    """Each worker thread of a replica keeps a connection, and a restart closes them all: the requests after
    it must get fresh ones, not fail finding out. Concurrent requests give every thread a connection first;
    the restart happens without traffic, so no request has dropped a broken connection before."""
    endpoints = [container.labels["io.fintech-release.endpoint"] for container in _replicas(docker_client)]
    assert len(endpoints) == 2

    def statuses() -> list[int]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            urls = [f"http://{endpoint}/payments" for endpoint in endpoints for _ in range(8)]
            return list(pool.map(_get_status, urls))

    assert set(statuses()) == {200}
    mariadb.restart(down_seconds=1)
    assert wait_until(lambda: all(_probe(endpoint)[0] == 200 for endpoint in endpoints), timeout=30)
    assert statuses() == [200] * 16


def test_the_application_password_is_nowhere_but_in_its_file(
    data_path: DataPath, docker_client: docker.DockerClient
) -> None:
    access = data_path.defs.resources["database"].service_access(database=DATABASE)
    secret_file = Path(access.password_file)
    password = secret_file.read_text().strip()
    assert secret_file.stat().st_mode & 0o777 == 0o400 and secret_file.stat().st_uid == 10001
    replicas = _replicas(docker_client)
    assert replicas
    for container in replicas:
        container.reload()
        inspected = str(container.attrs)
        assert password not in inspected and password not in str(container.labels)
        assert "DB_PASSWORD_FILE=/run/secrets/db-password" in container.attrs["Config"]["Env"]
        assert password not in container.logs().decode("utf-8", "replace")
        mount = next(m for m in container.attrs["Mounts"] if m["Destination"] == "/run/secrets/db-password")
        assert (mount["Source"], mount["RW"]) == (str(secret_file), False)
    for path in data_path.home.rglob("*"):  # Dagster's storage: event log, runs, compute logs
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    for run in data_path.instance.get_runs():
        assert password not in str(run.run_config)
        assert all(password not in str(entry) for entry in data_path.instance.all_logs(run.run_id))


def _replicas(client: docker.DockerClient) -> list:
    return client.containers.list(filters={"label": [
        f"io.fintech-release.scope={SCOPE}", f"io.fintech-release.environment={ENV}",
    ]})


def _probe(endpoint: str) -> tuple[int, int]:
    """(readiness, liveness) status codes of one replica."""
    with requests.Session() as http:
        http.trust_env = False
        try:
            return (
                http.get(f"http://{endpoint}/health", timeout=2).status_code,
                http.get(f"http://{endpoint}/live", timeout=2).status_code,
            )
        except requests.RequestException:
            return (0, 0)


def _get_status(url: str) -> int:
    with requests.Session() as http:
        http.trust_env = False
        return http.get(url, timeout=10).status_code


def _database_user(container) -> str:  # noqa: ANN001 - a docker Container
    return next(v.split("=", 1)[1] for v in container.attrs["Config"]["Env"] if v.startswith("DB_USER="))


def _old_account_is_locked(data_path: DataPath, mariadb: MariaDBServer, user: str) -> None:
    locked = mariadb.root_sql(
        f"SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv WHERE User = '{user}';"
    )
    assert locked.split()[-1] in ("1", "true"), locked
    assert not (data_path.root / "state" / "db-credentials" / DATABASE / "app_a.password").exists()
