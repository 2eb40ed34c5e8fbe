"""Code analysis: find issues in a service's sources. `CheckstyleAnalyzer` runs Checkstyle offline; SonarQube's
analyzer (sonarqube.py) leaves the gate to the server, whose verdict the report carries (`ServerGate`)."""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from importlib import resources
from pathlib import Path

from dagster import ConfigurableResource
from defusedxml import ElementTree
from pydantic import BaseModel

from fintech_release.config.models import SONAR_SEVERITIES
from fintech_release.errors import ToolFailedError
from fintech_release.resources._process import output_tail, run_tool

CHECKSTYLE_HINT = "Install Checkstyle (apt-get install checkstyle) or set the analyzer's executable."
# Checkstyle's own severities, in the SonarQube vocabulary the quality gate speaks.
CHECKSTYLE_TO_SONAR = {"error": "critical", "warning": "major", "info": "minor", "ignore": "info"}


class Issue(BaseModel, frozen=True):
    """One finding, with a SonarQube severity (blocker, critical, major, minor, info)."""

    file: str
    line: int
    severity: str
    rule: str
    message: str


class GateCondition(BaseModel, frozen=True):
    """One condition of a server's quality gate, as SonarQube reports it."""

    metric: str  # e.g. new_coverage
    status: str  # OK, WARN, ERROR
    comparator: str  # GT, LT
    threshold: str
    actual: str

    def describe(self) -> str:
        """E.g. 'new_coverage is 71.2, must not be below 80'."""
        comparator = {"GT": "above", "LT": "below"}.get(self.comparator, self.comparator)
        return f"{self.metric} is {self.actual or '?'}, must not be {comparator} {self.threshold}"


class ServerGate(BaseModel, frozen=True):
    """The quality gate a server (SonarQube) judged the analysis by: OK, WARN, ERROR or NONE."""

    status: str
    conditions: tuple[GateCondition, ...]

    def violations(self) -> list[str]:
        """Each failed condition in words; a gate in ERROR without conditions still fails."""
        failed = [condition.describe() for condition in self.conditions if condition.status == "ERROR"]
        return failed or ([f"quality gate {self.status}"] if self.status == "ERROR" else [])


class AnalysisReport(BaseModel, frozen=True):
    """What an analyzer found in one source tree; `server_gate` when a server judged it (SonarQube)."""

    tool: str
    files_analyzed: int
    issues: tuple[Issue, ...]
    report_path: str
    server_gate: ServerGate | None = None

    def counts(self) -> dict[str, int]:
        """Issue count per severity, every severity present (zero where none)."""
        found = Counter(issue.severity for issue in self.issues)
        return {severity: found.get(severity, 0) for severity in SONAR_SEVERITIES}


class CodeAnalyzer(ConfigurableResource):
    """Analyses a service's sources and reports issues by severity (SonarQube on gke, Checkstyle locally)."""

    @abstractmethod
    def analyze(self, *, source_dir: Path, report_dir: Path, project: str | None = None) -> AnalysisReport:
        """Analyse the Java sources under `source_dir` of service `project`; the raw report goes to `report_dir`."""


class CheckstyleAnalyzer(CodeAnalyzer):
    """Checkstyle from the machine's packages, with fintech-release's ruleset unless one is given."""

    executable: str = "checkstyle"
    config_path: str | None = None
    timeout_seconds: float = 300

    def analyze(self, *, source_dir: Path, report_dir: Path, project: str | None = None) -> AnalysisReport:
        sources = source_dir / "src" / "main" / "java"
        if not sources.is_dir():
            raise ToolFailedError(f"no Java sources to analyse: {sources} does not exist")
        report_dir.mkdir(parents=True, exist_ok=True)
        report_path = report_dir / "checkstyle-result.xml"
        config = self.config_path or str(resources.files("fintech_release.resources") / "checkstyle.xml")
        # Checkstyle's exit code is the number of errors it found: findings are data, not a failure.
        completed = run_tool(
            [self.executable, "-c", config, "-f", "xml", "-o", str(report_path), str(sources)],
            tool="Checkstyle",
            install_hint=CHECKSTYLE_HINT,
            timeout_seconds=self.timeout_seconds,
            check=False,
        )
        if not report_path.is_file() or report_path.stat().st_size == 0:
            raise ToolFailedError(f"Checkstyle wrote no report for {sources}:\n{output_tail(completed)}")
        return parse_checkstyle_report(report_path, relative_to=source_dir)


def parse_checkstyle_report(report_path: Path, *, relative_to: Path) -> AnalysisReport:
    """Read Checkstyle's XML report; a file Checkstyle could not parse counts as a blocker."""
    root = ElementTree.parse(report_path).getroot()
    if root is None:
        raise ToolFailedError(f"Checkstyle's report {report_path} has no root element")
    issues: list[Issue] = []
    files = root.findall("file")
    for file_element in files:
        path = Path(file_element.get("name", "?"))
        shown = str(path.relative_to(relative_to)) if path.is_relative_to(relative_to) else str(path)
        for error in file_element.findall("error"):
            rule = error.get("source", "").rsplit(".", 1)[-1].removesuffix("Check")
            message = error.get("message", "")
            if rule == "Checker" and message.startswith("Got an exception"):
                severity, message = "blocker", "file cannot be parsed: " + _cause(message)
            else:
                severity = CHECKSTYLE_TO_SONAR.get(error.get("severity", "error"), "major")
            issues.append(
                Issue(file=shown, line=int(error.get("line", 0)), severity=severity, rule=rule, message=message)
            )
    return AnalysisReport(
        tool="checkstyle", files_analyzed=len(files), issues=tuple(issues), report_path=str(report_path)
    )


def _cause(exception_text: str) -> str:
    causes = [line for line in exception_text.splitlines() if line.startswith("Caused by: ")]
    return causes[-1].removeprefix("Caused by: ") if causes else exception_text.splitlines()[0]
