"""SonarQube: submit a service's analysis, follow its Compute Engine task, and read the server's quality gate.

Submission without the scanner CLI (not packaged here) goes the way the CLI itself does since SonarScanner 6:
the **scanner-engine bootstrap API**. `GET /api/v2/analysis/engine` names the engine jar the server wants
(filename, sha256); the same URL with `Accept: application/octet-stream` serves it; the jar is cached by its
sha256 and checked against it, then run as `java -jar <engine>` with the analysis properties as JSON on its
standard input (`{"scannerProperties": [{"key", "value"}, …]}`) — so the token is in no command line, no
environment and no log. The engine writes `report-task.txt` (`ceTaskId=…`) into `sonar.working.directory`.
Gradle's sonar plugin would need the plugin portal, which an offline build cannot reach.

What decides the gate is read from the Web API: `api/ce/task?id=` until the task is SUCCESS (FAILED or
CANCELED fail with the server's errorMessage; PENDING / IN_PROGRESS are waited out up to
`task_timeout_seconds`), then `api/qualitygates/project_status?analysisId=` — its ERROR conditions are the
gate's verdict, in SonarQube's own terms. Every request has a timeout and bounded retries on connection errors
and 5xx; a rejected token (401) or missing permission (403) ends at once, naming the variable, never the token.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import requests
from pydantic import Field
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fintech_release.env_secrets import ReadsSecrets, secret
from fintech_release.errors import ExternalSystemError, ToolFailedError
from fintech_release.resources._process import output_tail, run_tool
from fintech_release.resources.analysis import AnalysisReport, CodeAnalyzer, GateCondition, ServerGate

JAVA_HINT = "Install a Java runtime (apt-get install openjdk-17-jre-headless) or set analysis.sonarqube.java_executable"
WAITING = ("PENDING", "IN_PROGRESS")


class SonarQubeError(ExternalSystemError):
    """SonarQube refused, failed or did not answer."""


class _Transient(Exception):
    """A connection error, a timeout or a 5xx: worth asking again."""


class SonarQubeAnalyzer(ReadsSecrets, CodeAnalyzer):
    """A SonarQube server: the analysis runs in its scanner engine here, the gate is the server's."""

    url: str
    token: str | None = Field(default=None, repr=False)  # given directly (tests); else read from token_env
    token_env: str = "SONAR_TOKEN"
    project_key_prefix: str = ""  # the service's project key is <prefix><service>
    sources: str = "src/main/java"
    java_executable: str = "java"
    engine_cache_dir: str = ".fintech-release/sonar-engine"
    request_timeout_seconds: float = 15
    attempts: int = Field(default=3, ge=1, le=10)
    retry_wait_seconds: float = 1.0
    task_timeout_seconds: float = 600
    poll_seconds: float = 2
    scanner_timeout_seconds: float = 1800

    def secret_variables(self) -> dict[str, str]:
        return {self.token_env: f"the token of SonarQube at {self.url}"} if self.token is None else {}

    def _token(self) -> str:
        return secret(self.token, self.token_env, f"the token of SonarQube at {self.url}") or ""

    def analyze(self, *, source_dir: Path, report_dir: Path, project: str | None = None) -> AnalysisReport:
        if project is None:
            raise ValueError("SonarQube needs the service the sources are of (its project key)")
        key = f"{self.project_key_prefix}{project}"
        task_id = self.submit(source_dir=source_dir, report_dir=report_dir, project_key=key)
        analysis_id = self.wait_for_task(task_id)
        return AnalysisReport(
            tool="sonarqube", files_analyzed=0, issues=(), report_path=f"{self.url.rstrip('/')}/dashboard?id={key}",
            server_gate=self.quality_gate(analysis_id),
        )

    def submit(self, *, source_dir: Path, report_dir: Path, project_key: str) -> str:
        """Run the server's scanner engine on `source_dir`; the id of the Compute Engine task it queued."""
        engine = self._engine()
        work = report_dir / "scannerwork"
        binaries = report_dir / "no-bytecode"  # the analysis runs before the build; rules needing bytecode skip
        binaries.mkdir(parents=True, exist_ok=True)
        properties = {
            "sonar.host.url": self.url, "sonar.token": self._token(), "sonar.projectKey": project_key,
            "sonar.projectBaseDir": str(source_dir), "sonar.sources": self.sources,
            "sonar.java.binaries": str(binaries), "sonar.working.directory": str(work),
            "sonar.scanner.app": "fintech-release",
        }
        settings = json.dumps({"scannerProperties": [{"key": k, "value": v} for k, v in properties.items()]})
        completed = run_tool(
            [self.java_executable, "-jar", str(engine)], tool="the SonarQube scanner engine", install_hint=JAVA_HINT,
            cwd=source_dir, timeout_seconds=self.scanner_timeout_seconds, check=False, stdin_text=settings,
        )
        report_task = work / "report-task.txt"
        if completed.returncode != 0 or not report_task.is_file():
            raise ToolFailedError(
                f"the SonarQube scanner engine failed for {project_key} (exit code {completed.returncode}):\n"
                + output_tail(completed).replace(self._token(), "***")
            )
        fields = dict(line.split("=", 1) for line in report_task.read_text().splitlines() if "=" in line)
        if "ceTaskId" not in fields:
            raise ToolFailedError(f"{report_task} names no ceTaskId: the engine queued no analysis for {project_key}")
        return fields["ceTaskId"]

    def wait_for_task(self, task_id: str) -> str:
        """Follow `api/ce/task` until the task ends; its analysisId when it succeeded."""
        deadline = time.monotonic() + self.task_timeout_seconds
        while True:
            task = self._get("api/ce/task", {"id": task_id}).get("task", {})
            status = task.get("status")
            if status == "SUCCESS":
                return str(task["analysisId"])
            if status not in WAITING:
                reason = task.get("errorMessage") or "no reason given"
                raise SonarQubeError(
                    f"SonarQube task {task_id} of {task.get('componentKey', '?')} ended {status}: {reason} "
                    f"({self._task_url(task_id)})"
                )
            if time.monotonic() >= deadline:
                raise SonarQubeError(
                    f"SonarQube task {task_id} was still {status} after {self.task_timeout_seconds:g} s: the server's "
                    f"Compute Engine is busy or stuck ({self._task_url(task_id)})"
                )
            time.sleep(self.poll_seconds)

    def quality_gate(self, analysis_id: str) -> ServerGate:
        """The quality gate of the analysis, as `api/qualitygates/project_status` reports it."""
        status = self._get("api/qualitygates/project_status", {"analysisId": analysis_id}).get("projectStatus", {})
        return ServerGate(
            status=str(status.get("status", "NONE")),
            conditions=tuple(
                GateCondition(
                    metric=str(c.get("metricKey")), status=str(c.get("status")),
                    comparator=str(c.get("comparator", "")), threshold=str(c.get("errorThreshold", "")),
                    actual=str(c.get("actualValue", "")),
                )
                for c in status.get("conditions", [])
            ),
        )

    def _engine(self) -> Path:
        """The engine jar the server names, downloaded once per sha256 and checked against it."""
        meta = self._get("api/v2/analysis/engine", {})
        sha256, filename = str(meta.get("sha256", "")), Path(str(meta.get("filename", "scanner-engine.jar"))).name
        cached = Path(self.engine_cache_dir) / sha256 / filename
        if cached.is_file():
            return cached
        content = self._call("api/v2/analysis/engine", {}, accept="application/octet-stream").content
        if hashlib.sha256(content).hexdigest() != sha256:
            raise SonarQubeError(f"the scanner engine from {self.url} does not match the sha256 the server names")
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(content)
        return cached

    def _get(self, path: str, params: dict[str, str]) -> dict:
        return dict(self._call(path, params, accept="application/json").json())

    def _call(self, path: str, params: dict[str, str], *, accept: str) -> requests.Response:
        url = f"{self.url.rstrip('/')}/{path}"
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=30),
            retry=retry_if_exception_type(_Transient),
        )
        try:
            return retrying(self._call_once, url, params, accept)
        except RetryError as exc:
            raise SonarQubeError(
                f"SonarQube at {self.url} did not answer {path} after {self.attempts} attempts: "
                f"{exc.last_attempt.exception()}"
            ) from None

    def _call_once(self, url: str, params: dict[str, str], accept: str) -> requests.Response:
        try:
            response = requests.get(
                url, params=params, timeout=self.request_timeout_seconds,
                headers={"Authorization": f"Bearer {self._token()}", "Accept": accept},
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _Transient(type(error).__name__) from None
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code == 401:
            raise SonarQubeError(
                f"SonarQube at {self.url} rejected the token (HTTP 401): put a valid user or project analysis token "
                f"in the environment variable {self.token_env}"
            )
        if response.status_code == 403:
            raise SonarQubeError(
                f"SonarQube at {self.url} refused {url.removeprefix(self.url.rstrip('/'))} (HTTP 403): the token in "
                f"{self.token_env} needs Execute Analysis and Browse on the project"
            )
        if response.status_code != 200:
            errors = "; ".join(e.get("msg", "") for e in _json(response).get("errors", [])) or response.reason
            raise SonarQubeError(f"SonarQube at {self.url}: {url} answered HTTP {response.status_code}: {errors}")
        return response

    def _task_url(self, task_id: str) -> str:
        return f"{self.url.rstrip('/')}/api/ce/task?id={task_id}"


def _json(response: requests.Response) -> dict:
    try:
        return dict(response.json())
    except ValueError:
        return {}
