"""Build tools: run a service's tests and build its jar. `GradleBuildTool` runs Gradle offline."""

from __future__ import annotations

import hashlib
import re
from abc import abstractmethod
from pathlib import Path
from subprocess import CompletedProcess

from dagster import ConfigurableResource
from junitparser import Error, Failure, JUnitXml
from pydantic import BaseModel

from fintech_release.errors import ToolFailedError
from fintech_release.resources._process import output_tail, run_tool

GRADLE_HINT = "Install Gradle (apt-get install gradle) or set build.gradle_executable in release.yaml."
_VERSION_LINE = re.compile(r"^\s*version\s*[=:]\s*(\S+)\s*$", re.MULTILINE)


class TestSummary(BaseModel, frozen=True):
    """The JUnit results of one test run."""

    tests: int
    failures: int
    errors: int
    skipped: int
    duration_seconds: float
    failed_tests: tuple[str, ...]
    report_dir: str

    @property
    def passed(self) -> bool:
        """True when tests ran and none failed or errored."""
        return self.tests > 0 and self.failures == 0 and self.errors == 0


class JarArtifact(BaseModel, frozen=True):
    """A built jar."""

    path: str
    size_bytes: int
    sha256: str
    version: str


class BuildTool(ConfigurableResource):
    """Tests and packages a service."""

    @abstractmethod
    def project_version(self, *, project_dir: Path) -> str:
        """The version the project declares (the base of the artifact version)."""

    @abstractmethod
    def run_tests(self, *, project_dir: Path) -> TestSummary:
        """Run every test; failing tests are reported, not raised. A build that cannot run tests raises."""

    @abstractmethod
    def build_jar(self, *, project_dir: Path, version: str) -> JarArtifact:
        """Build the jar stamped with `version`."""


class GradleBuildTool(BuildTool):
    """Gradle, offline, with the JDK at `java_home` (the machine's default JDK when unset)."""

    executable: str = "gradle"
    java_home: str | None = None
    gradle_user_home: str | None = None
    use_daemon: bool = True
    timeout_seconds: float = 1200

    def project_version(self, *, project_dir: Path) -> str:
        properties = project_dir / "gradle.properties"
        match = _VERSION_LINE.search(properties.read_text()) if properties.is_file() else None
        if match is None:
            raise ToolFailedError(f"{properties}: declare the service version as a line 'version=1.0.0'")
        return match.group(1)

    def run_tests(self, *, project_dir: Path) -> TestSummary:
        completed = self._gradle(project_dir, "test", check=False)
        report_dir = project_dir / "build" / "test-results" / "test"
        reports = sorted(report_dir.glob("TEST-*.xml"))
        if not reports:
            raise ToolFailedError(
                f"Gradle produced no test results in {report_dir} (exit code {completed.returncode}):\n"
                + output_tail(completed)
            )
        summary = summarize_junit(reports, report_dir=report_dir)
        if completed.returncode != 0 and summary.passed:
            raise ToolFailedError(f"Gradle failed although every test passed:\n{output_tail(completed)}")
        return summary

    def build_jar(self, *, project_dir: Path, version: str) -> JarArtifact:
        self._gradle(project_dir, "assemble", f"-Pversion={version}")
        jars = [
            jar
            for jar in (project_dir / "build" / "libs").glob(f"*-{version}.jar")
            if not jar.name.endswith(("-sources.jar", "-javadoc.jar"))
        ]
        if len(jars) != 1:
            raise ToolFailedError(f"expected one jar for version {version} in {project_dir}/build/libs, found {jars}")
        jar = jars[0]
        with jar.open("rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        return JarArtifact(
            path=str(jar), size_bytes=jar.stat().st_size, sha256=sha256, version=version
        )

    def _gradle(self, project_dir: Path, *tasks: str, check: bool = True) -> CompletedProcess[str]:
        env: dict[str, str] = {}
        if self.java_home:
            env["JAVA_HOME"] = self.java_home
        if self.gradle_user_home:
            env["GRADLE_USER_HOME"] = self.gradle_user_home
        daemon = "--daemon" if self.use_daemon else "--no-daemon"
        return run_tool(
            [self.executable, "--offline", "--console=plain", daemon, *tasks],
            tool="Gradle",
            install_hint=GRADLE_HINT,
            cwd=project_dir,
            env=env,
            timeout_seconds=self.timeout_seconds,
            check=check,
        )


def summarize_junit(reports: list[Path], *, report_dir: Path) -> TestSummary:
    """Add up JUnit XML files (one per test class, as Gradle writes them)."""
    tests = failures = errors = skipped = 0
    duration = 0.0
    failed: list[str] = []
    for report in reports:
        suites = JUnitXml.fromfile(str(report))
        for suite in suites if isinstance(suites, JUnitXml) else [suites]:
            tests += suite.tests
            failures += suite.failures
            errors += suite.errors
            skipped += suite.skipped
            duration += suite.time or 0.0
            failed += [
                f"{case.classname}.{case.name}"
                for case in suite
                if any(isinstance(result, Failure | Error) for result in case.result)
            ]
    return TestSummary(
        tests=tests,
        failures=failures,
        errors=errors,
        skipped=skipped,
        duration_seconds=round(duration, 3),
        failed_tests=tuple(failed),
        report_dir=str(report_dir),
    )
