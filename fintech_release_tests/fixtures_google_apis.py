"""A loopback contract server for the Cloud SQL Admin API's ``instances.get`` (not the real service).

google-cloud-sql 0.1.2, the client `CloudSqlAdmin` uses, speaks gRPC only (no REST transport), so
the server is a real gRPC server (HTTP/2) on 127.0.0.1 answering
``google.cloud.sql.v1.SqlInstancesService/Get``. The instances it serves are written as JSON
shaped like the documented REST response
(https://cloud.google.com/sql/docs/mysql/admin-api/rest/v1/instances#DatabaseInstance) and are
turned into the API's protobuf message by the proto3 JSON mapping, which rejects any field name
the API does not define: a misspelt field in a document fails the test instead of passing
silently. Errors are the gRPC statuses the API's HTTP 403 and 404 map to.

* ``cloudsql_admin_api`` - a started `CloudSqlAdminApi` (``.endpoint`` is ``http://127.0.0.1:<port>``);
  tests register documents with ``.serve`` and errors with ``.fail``, and read ``.requests``.
* `instance_document` - a production-ready MySQL instance document a test may change.

The Cloud SQL connector itself asks the Admin API over REST (aiohttp, ``/sql/v1beta4/...``), so
there is also a plain HTTP server on loopback for its two calls, ``connectSettings`` and
``generateEphemeralCert``:

* ``connector_admin_api`` - a started `ConnectorAdminApi` (``.endpoint`` is ``http://127.0.0.1:<port>``);
  ``.answer(status, body)`` sets the JSON answer of every call, ``.hang()`` makes calls wait until the
  server stops, ``.requests`` lists (method, path, has bearer token).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from google.cloud import sqladmin_v1

from fintech_release_tests.components import LOCALHOST

SERVICE = "google.cloud.sql.v1.SqlInstancesService"

# One instance as instances.get returns it: REGIONAL (high availability), automated backups with a
# window, binary logging, private IP only. Enum values are the documented names.
PRODUCTION_READY: dict[str, Any] = {
    "kind": "sql#instance",
    "state": "RUNNABLE",
    "databaseVersion": "MYSQL_8_0",
    "settings": {
        "settingsVersion": "14",
        "authorizedGaeApplications": [],
        "tier": "db-custom-2-7680",
        "kind": "sql#settings",
        "availabilityType": "REGIONAL",
        "pricingPlan": "PER_USE",
        "replicationType": "SYNCHRONOUS",
        "activationPolicy": "ALWAYS",
        "ipConfiguration": {
            "ipv4Enabled": False,
            "privateNetwork": "projects/fintech-prod/global/networks/fintech",
            "requireSsl": True,
        },
        "locationPreference": {
            "zone": "europe-west1-b",
            "secondaryZone": "europe-west1-c",
            "kind": "sql#locationPreference",
        },
        "dataDiskType": "PD_SSD",
        "maintenanceWindow": {"hour": 2, "day": 7, "kind": "sql#maintenanceWindow"},
        "backupConfiguration": {
            "startTime": "03:00",
            "kind": "sql#backupConfiguration",
            "enabled": True,
            "binaryLogEnabled": True,
            "location": "eu",
            "transactionLogRetentionDays": 7,
            "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": 14},
        },
        "storageAutoResize": True,
        "dataDiskSizeGb": "50",
        "deletionProtectionEnabled": True,
    },
    "etag": "5d3f0c1c6a5e0f6b9e2f0c9b2a7d4e1f8c3b6a9d0e2f4a6b8c0d2e4f6a8b0c2d",
    "ipAddresses": [{"type": "PRIVATE", "ipAddress": "10.20.0.3"}],
    "serverCaCert": {"kind": "sql#sslCert", "certSerialNumber": "0", "commonName": "C=US,O=Google\\, Inc"},
    "instanceType": "CLOUD_SQL_INSTANCE",
    "project": "fintech-prod",
    "serviceAccountEmailAddress": "p123456789-abcd@gcp-sa-cloud-sql.iam.gserviceaccount.com",
    "backendType": "SECOND_GEN",
    "selfLink": "https://sqladmin.googleapis.com/v1/projects/fintech-prod/instances/fintech-db",
    "connectionName": "fintech-prod:europe-west1:fintech-db",
    "name": "fintech-db",
    "region": "europe-west1",
    "gceZone": "europe-west1-b",
    "secondaryGceZone": "europe-west1-c",
    "databaseInstalledVersion": "MYSQL_8_0_37",
    "createTime": "2025-03-01T10:00:00.000Z",
}


def instance_document() -> dict[str, Any]:
    """A fresh copy of the production-ready instance document."""
    return copy.deepcopy(PRODUCTION_READY)


@dataclass
class CloudSqlAdminApi:
    """A gRPC server on loopback answering `SqlInstancesService.Get` from registered JSON documents."""

    server: grpc.Server
    port: int
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    errors: dict[tuple[str, str], tuple[grpc.StatusCode, str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def serve(self, project: str, instance: str, document: dict[str, Any]) -> None:
        """Answer `instances.get` for project/instance with `document` (checked against the API's fields now)."""
        _to_message(document)
        self.documents[(project, instance)] = document

    def fail(self, project: str, instance: str, code: grpc.StatusCode, message: str) -> None:
        """Answer `instances.get` for project/instance with an error status."""
        self.errors[(project, instance)] = (code, message)

    def get(self, request: sqladmin_v1.SqlInstancesGetRequest, context: grpc.ServicerContext) -> Any:
        key = (request.project, request.instance)
        with self.lock:
            self.requests.append(key)
        if key in self.errors:
            context.abort(*self.errors[key])
        if key not in self.documents:
            # What the API answers for an instance that does not exist (HTTP 404).
            context.abort(grpc.StatusCode.NOT_FOUND, "The Cloud SQL instance does not exist.")
        return _to_message(self.documents[key])

    @classmethod
    def start(cls) -> CloudSqlAdminApi:
        server = grpc.server(ThreadPoolExecutor(max_workers=2))
        port = server.add_insecure_port(f"{LOCALHOST}:0")
        api = cls(server=server, port=port)
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Get": grpc.unary_unary_rpc_method_handler(
                    api.get,
                    request_deserializer=sqladmin_v1.SqlInstancesGetRequest.deserialize,
                    response_serializer=sqladmin_v1.DatabaseInstance.serialize,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        server.start()
        return api

    def stop(self) -> None:
        self.server.stop(grace=None).wait(timeout=10)


def _to_message(document: dict[str, Any]) -> sqladmin_v1.DatabaseInstance:
    """The protobuf message for a REST-shaped JSON document; unknown field names are an error."""
    return sqladmin_v1.DatabaseInstance.from_json(json.dumps(document), ignore_unknown_fields=False)


@pytest.fixture
def cloudsql_admin_api() -> Iterator[CloudSqlAdminApi]:
    """A Cloud SQL Admin API contract server on a free 127.0.0.1 port, stopped afterwards."""
    api = CloudSqlAdminApi.start()
    try:
        yield api
    finally:
        api.stop()


class ConnectorAdminApi(ThreadingHTTPServer):
    """An HTTP server on loopback answering the connector's Admin API calls with one configured JSON answer."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOCALHOST, 0), _ConnectorAdminHandler)
        self.status = 200
        self.body: dict[str, Any] = {}
        self.hanging = False
        self.stopping = threading.Event()
        self.requests: list[tuple[str, str, bool]] = []

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.server_address[1]}"

    def answer(self, status: int, body: dict[str, Any]) -> None:
        """Answer every call with `status` and the JSON `body`."""
        self.status, self.body = status, body

    def hang(self) -> None:
        """Let every call wait without an answer until the server stops."""
        self.hanging = True


class _ConnectorAdminHandler(BaseHTTPRequestHandler):
    server: ConnectorAdminApi

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._respond()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._respond()

    def _respond(self) -> None:
        bearer = (self.headers.get("Authorization") or "").startswith("Bearer ")
        self.server.requests.append((self.command, self.path, bearer))
        if self.server.hanging:
            self.server.stopping.wait()
            return
        payload = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the tests read `requests` instead."""


@pytest.fixture
def connector_admin_api() -> Iterator[ConnectorAdminApi]:
    """The connector's Admin API endpoints on a free 127.0.0.1 port, stopped afterwards."""
    api = ConnectorAdminApi()
    thread = threading.Thread(target=api.serve_forever, name="connector-admin-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.stopping.set()
        api.shutdown()
        api.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- on-demand backups

BACKUP_RUNS_SERVICE = "google.cloud.sql.v1.SqlBackupRunsService"
OPERATIONS_SERVICE = "google.cloud.sql.v1.SqlOperationsService"


@dataclass
class BackupApi:
    """``backupRuns.insert`` and ``operations.get`` on loopback (gRPC), answering with documented Operation shapes.

    The operation is PENDING when inserted and DONE at the first ``operations.get``, with the
    ``backupContext`` of the backup or, after ``.fail_with(code, message)``, ``error.errors``.
    """

    server: grpc.Server
    port: int
    inserts: list[dict[str, Any]] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def fail_with(self, code: str, message: str) -> None:
        self.error = (code, message)

    def _operation(self, project: str, instance: str, status: str) -> sqladmin_v1.Operation:
        document: dict[str, Any] = {
            "kind": "sql#operation", "name": f"operation-{len(self.inserts)}", "status": status,
            "operationType": "BACKUP_VOLUME",
            "targetId": instance, "targetProject": project, "user": "release@acme-prod.iam.gserviceaccount.com",
        }
        if status == "DONE" and self.error:
            document["error"] = {"kind": "sql#operationErrors", "errors": [
                {"kind": "sql#operationError", "code": self.error[0], "message": self.error[1]}
            ]}
        elif status == "DONE":
            document["backupContext"] = {"kind": "sql#backupContext", "backupId": "1764460800000"}
        return sqladmin_v1.Operation.from_json(json.dumps(document), ignore_unknown_fields=False)

    def insert(self, request: sqladmin_v1.SqlBackupRunsInsertRequest, context: grpc.ServicerContext) -> Any:
        self.inserts.append({
            "project": request.project, "instance": request.instance, "description": request.body.description
        })
        return self._operation(request.project, request.instance, "PENDING")

    def get(self, request: sqladmin_v1.SqlOperationsGetRequest, context: grpc.ServicerContext) -> Any:
        self.polls.append(request.operation)
        return self._operation(request.project, self.inserts[-1]["instance"], "DONE")

    @classmethod
    def start(cls) -> BackupApi:
        server = grpc.server(ThreadPoolExecutor(max_workers=2))
        port = server.add_insecure_port(f"{LOCALHOST}:0")
        api = cls(server=server, port=port)
        server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(BACKUP_RUNS_SERVICE, {"Insert": grpc.unary_unary_rpc_method_handler(
                api.insert, request_deserializer=sqladmin_v1.SqlBackupRunsInsertRequest.deserialize,
                response_serializer=sqladmin_v1.Operation.serialize,
            )}),
            grpc.method_handlers_generic_handler(OPERATIONS_SERVICE, {"Get": grpc.unary_unary_rpc_method_handler(
                api.get, request_deserializer=sqladmin_v1.SqlOperationsGetRequest.deserialize,
                response_serializer=sqladmin_v1.Operation.serialize,
            )}),
        ))
        server.start()
        return api


@pytest.fixture
def backup_api() -> Iterator[BackupApi]:
    """A started `BackupApi` (a labelled contract stand-in, not the real service)."""
    api = BackupApi.start()
    try:
        yield api
    finally:
        api.server.stop(grace=None).wait(timeout=10)
