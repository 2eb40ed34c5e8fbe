"""A contract stand-in for SonarQube's Web API on loopback (not the real server), in its documented shapes.

* ``GET /api/v2/analysis/engine``: with ``Accept: application/json`` ``{"filename", "sha256"}``, with
  ``Accept: application/octet-stream`` the engine jar itself (the scanner-engine bootstrap API);
* ``GET /api/ce/task?id=``: ``{"task": {"id", "type": "REPORT", "componentKey", "status", "analysisId",
  "errorMessage"?}}``; a task's answers are served in order (PENDING, IN_PROGRESS, …), the last one repeating;
* ``GET /api/qualitygates/project_status?analysisId=``: ``{"projectStatus": {"status", "conditions":
  [{"status", "metricKey", "comparator", "errorThreshold", "actualValue"}], "ignoredConditions": false}}``;
* errors as ``{"errors": [{"msg"}]}``: 401 for a token it does not know (``Authorization: Bearer``), 404 for an
  unknown task or analysis; ``fail_next(status, times)`` answers the next requests with an error (e.g. 503).

``sonarqube`` starts one per test; ``.requests`` lists (path, query, Accept). ``fake_engine_jar`` is a real jar,
compiled here, that behaves as the engine does at its edges: it reads the JSON properties on its standard input
and writes ``report-task.txt`` with a ``ceTaskId`` into ``sonar.working.directory`` (it analyses nothing).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fintech_release_tests.components import LOCALHOST

TOKEN = "squ_stand-in-analysis-token"
TASK_ID = "AYx-task-1"
ENGINE_SOURCE = r"""
import java.nio.file.*;
import java.util.regex.*;

public class Engine {
    static String property(String settings, String key) {
        Matcher m = Pattern.compile("\"key\":\\s*\"" + Pattern.quote(key) + "\",\\s*\"value\":\\s*\"([^\"]*)\"")
            .matcher(settings);
        if (!m.find()) throw new IllegalArgumentException("no " + key);
        return m.group(1);
    }

    public static void main(String[] args) throws Exception {
        String settings = new String(System.in.readAllBytes(), "UTF-8");
        Path work = Paths.get(property(settings, "sonar.working.directory"));
        Files.createDirectories(work);
        Files.writeString(work.resolve("received.json"), settings);
        Files.writeString(work.resolve("report-task.txt"),
            "projectKey=" + property(settings, "sonar.projectKey") + "\nceTaskId=AYx-task-1\n");
        System.out.println("{\"level\":\"INFO\",\"message\":\"ANALYSIS SUCCESSFUL\"}");
    }
}
"""


@dataclass
class SonarQubeStandIn:
    """What the stand-in serves, and what it was asked."""

    engine: bytes = b""
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{LOCALHOST}:{self.server.server_address[1]}"

    def task(self, *statuses: str, analysis_id: str = "AN-1", error: str | None = None) -> None:
        """Serve TASK_ID as going through `statuses` (the last one repeating)."""
        self.tasks[TASK_ID] = [
            {"id": TASK_ID, "type": "REPORT", "componentKey": "payments", "status": status,
             **({"analysisId": analysis_id} if status == "SUCCESS" else {}),
             **({"errorMessage": error} if status == "FAILED" and error else {})}
            for status in statuses
        ]

    def gate(self, status: str, *conditions: tuple[str, str, str, str, str], analysis_id: str = "AN-1") -> None:
        """Serve the gate of `analysis_id`; conditions as (status, metricKey, comparator, errorThreshold, actual)."""
        self.gates[analysis_id] = {
            "status": status, "ignoredConditions": False,
            "conditions": [
                {"status": s, "metricKey": m, "comparator": c, "errorThreshold": t, "actualValue": a}
                for s, m, c, t, a in conditions
            ],
        }

    def fail_next(self, status: int, times: int = 1) -> None:
        self.failures.extend([status] * times)


def _handler(sonar: SonarQubeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            accept = self.headers.get("Accept", "")
            sonar.requests.append((split.path, query, accept))
            if sonar.failures:
                self._json(sonar.failures.pop(0), {"errors": [{"msg": "Service Unavailable"}]})
            elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json(401, {"errors": [{"msg": "Authentication is required"}]})
            elif split.path == "/api/v2/analysis/engine":
                if accept == "application/octet-stream":
                    self._send(200, sonar.engine, "application/octet-stream")
                else:
                    digest = hashlib.sha256(sonar.engine).hexdigest()
                    self._json(200, {"filename": "sonarqube-scanner-engine-stand-in.jar", "sha256": digest})
            elif split.path == "/api/ce/task" and query.get("id", [""])[0] in sonar.tasks:
                answers = sonar.tasks[query["id"][0]]
                self._json(200, {"task": answers.pop(0) if len(answers) > 1 else answers[0]})
            elif split.path == "/api/qualitygates/project_status" and query.get("analysisId", [""])[0] in sonar.gates:
                self._json(200, {"projectStatus": sonar.gates[query["analysisId"][0]]})
            else:
                self._json(404, {"errors": [{"msg": f"No {split.path} found for {split.query}"}]})

        def _json(self, status: int, body: Any) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the tests read `requests` instead."""

    return Handler


@pytest.fixture(scope="module")
def fake_engine_jar(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The stand-in scanner engine: a real jar compiled with the JDK's javac."""
    folder = tmp_path_factory.mktemp("engine")
    (folder / "Engine.java").write_text(ENGINE_SOURCE)
    subprocess.run(["javac", "-d", str(folder), str(folder / "Engine.java")], check=True, timeout=120)
    jar = folder / "engine.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "--main-class", "Engine", "-C", str(folder), "Engine.class"],
                   check=True, timeout=120)
    return jar.read_bytes()


@pytest.fixture
def sonarqube(fake_engine_jar: bytes) -> Iterator[SonarQubeStandIn]:
    """The SonarQube Web API stand-in on a free 127.0.0.1 port, serving the stand-in engine."""
    sonar = SonarQubeStandIn(engine=fake_engine_jar)
    sonar.server = ThreadingHTTPServer((LOCALHOST, 0), _handler(sonar))
    sonar.server.daemon_threads = True
    thread = threading.Thread(target=sonar.server.serve_forever, name="sonarqube-stand-in", daemon=True)
    thread.start()
    try:
        yield sonar
    finally:
        sonar.server.shutdown()
        sonar.server.server_close()
        thread.join(timeout=10)


def received_settings(report_dir: Path) -> dict[str, str]:
    """The properties the stand-in engine received on its standard input."""
    settings = json.loads((report_dir / "scannerwork" / "received.json").read_text())
    return {entry["key"]: entry["value"] for entry in settings["scannerProperties"]}
