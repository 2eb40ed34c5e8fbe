"""Code analysis with the real Checkstyle: findings map onto SonarQube severities, a file that cannot
be parsed is a blocker, and the quality gate names every condition that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fintech_release.config.models import QualityGate
from fintech_release.errors import ToolFailedError
from fintech_release.resources.analysis import CheckstyleAnalyzer

SOURCES = {
    "Messy.java": """import java.util.*;

public final class Messy {
    private Messy() {
    }

    static int f(final List<String> xs) {
        try {
            return Integer.parseInt(xs.get(0));
        } catch (NumberFormatException e) {
        }
        if (xs.isEmpty()) return 1;
        return 0; // TODO tidy up
    }
}
""",
    "Broken.java": "class Broken { void f( { }\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    sources = tmp_path / "service" / "src" / "main" / "java"
    sources.mkdir(parents=True)
    for name, text in SOURCES.items():
        (sources / name).write_text(text)
    return tmp_path / "service"


def test_findings_map_onto_sonarqube_severities(project: Path) -> None:
    report = CheckstyleAnalyzer().analyze(source_dir=project, report_dir=project / "report")
    by_rule = {(issue.file, issue.rule): issue.severity for issue in report.issues}
    assert by_rule[("src/main/java/Messy.java", "EmptyCatchBlock")] == "critical"
    assert by_rule[("src/main/java/Messy.java", "AvoidStarImport")] == "major"
    assert by_rule[("src/main/java/Messy.java", "NeedBraces")] == "major"
    assert by_rule[("src/main/java/Messy.java", "TodoComment")] == "minor"
    assert by_rule[("src/main/java/Broken.java", "Checker")] == "blocker"
    assert report.files_analyzed == 2
    assert report.counts() == {"blocker": 1, "critical": 1, "major": 2, "minor": 1, "info": 0}
    assert Path(report.report_path).is_file()


def test_unparseable_file_is_reported_by_its_cause_not_a_java_stack(project: Path) -> None:
    report = CheckstyleAnalyzer().analyze(source_dir=project, report_dir=project / "report")
    blocker = next(issue for issue in report.issues if issue.severity == "blocker")
    assert blocker.message.startswith("file cannot be parsed: ")
    assert "unexpected token" in blocker.message and "\tat " not in blocker.message


def test_quality_gate_lists_each_failed_condition() -> None:
    gate = QualityGate(blocker=0, critical=0, major=1)
    counts = {"blocker": 1, "critical": 0, "major": 2, "minor": 40, "info": 0}
    assert gate.violations(counts) == ["blocker issues: 1 (allowed 0)", "major issues: 2 (allowed 1)"]
    assert gate.violations({"blocker": 0, "critical": 0, "major": 1}) == []


def test_a_service_without_java_sources_is_an_error_not_a_clean_report(tmp_path: Path) -> None:
    with pytest.raises(ToolFailedError, match=r"no Java sources to analyse: .*src/main/java does not exist"):
        CheckstyleAnalyzer().analyze(source_dir=tmp_path, report_dir=tmp_path / "report")
