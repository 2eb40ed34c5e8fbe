"""build/*: analysis, tests, jar and image of one service commit, with the gates that block promotion.

The build steps themselves (checkout, analysis and its gate, tests, jar, image) are the functions
below the assets; the `branch_ci` op job (fintech_release/jobs/branch_ci.py) calls the same functions,
so a feature branch is built exactly as master is, without touching master's assets.
"""

from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import BaseModel

from fintech_release.assets.source import CommitRef, resolve_commit
from fintech_release.config import ReleaseConfig
from fintech_release.config.models import SONAR_SEVERITIES
from fintech_release.records.event_log import (
    latest_materialization_metadata,
    require_latest_materialization,
)
from fintech_release.records.keys import (
    BUILD_ANALYSIS,
    BUILD_BASE_IMAGE,
    BUILD_IMAGE,
    BUILD_JAR,
    BUILD_TESTS,
    SOURCE_COMMIT,
)
from fintech_release.records.versioning import (
    artifact_version,
    image_version,
    local_image_reference,
    next_build_number,
    next_rebuild,
)
from fintech_release.resources.analysis import AnalysisReport, CodeAnalyzer
from fintech_release.resources.base_image import BaseImageBuilder
from fintech_release.resources.build_tool import BuildTool, TestSummary
from fintech_release.resources.images import BuiltImage, ImageBuilder
from fintech_release.resources.source import SourceControl

QUALITY_GATE = "quality_gate"
TESTS_PASSED = "tests_passed"
ISSUES_SHOWN = 20
NOT_RECORDED = "not recorded"
JAR_SHA256_LABEL = "io.fintech-release.jar-sha256"


def base_image_asset(config: ReleaseConfig) -> AssetsDefinition:
    """build/base_image: the JRE every service image starts from; its content digest is the data version."""

    @asset(
        key=BUILD_BASE_IMAGE,
        group_name="base_image",
        kinds={"docker"},
        description="The JRE base image (jlink of the local JDK). A new one makes every service image stale.",
    )
    def base_image(context: AssetExecutionContext, base_image_builder: BaseImageBuilder) -> MaterializeResult:
        previous = latest_materialization_metadata(context.instance, BUILD_BASE_IMAGE) or {}
        built = base_image_builder.build(reference=config.build.base_image, modules=config.build.jre_modules)
        before = str(previous.get("content_digest", "none"))
        status = "unchanged" if before == built.content_digest else "rebuilt" if previous else "built"
        context.log.info(f"{built.reference}: {status} (content {before} → {built.content_digest})")
        return MaterializeResult(
            metadata={
                "status": status,
                "reference": built.reference,
                "image_id": built.image_id,
                "content_digest": built.content_digest,
                "previous_content_digest": before,
                "imported": built.imported,  # False: the engine already held this content, kept as it was
                "modules": MetadataValue.json(list(built.modules)),
            },
            data_version=DataVersion(built.content_digest),
        )

    return base_image


def build_assets(config: ReleaseConfig, services: PartitionsDefinition) -> list[AssetsDefinition]:
    """The build stage for every service in `config`, partitioned by service."""

    @asset(
        key=BUILD_ANALYSIS,
        deps=[SOURCE_COMMIT],
        partitions_def=services,
        group_name="build",
        kinds={"java"},
        description="Static analysis of the commit; the quality gate blocks everything downstream.",
        check_specs=[
            AssetCheckSpec(
                QUALITY_GATE,
                asset=BUILD_ANALYSIS,
                blocking=True,
                description="SonarQube-style conditions from release.yaml (analysis.quality_gate).",
            )
        ],
    )
    def analysis(
        context: AssetExecutionContext, source: SourceControl, analyzer: CodeAnalyzer
    ) -> MaterializeResult:
        commit = resolve_commit(context, config, source)
        workdir = checkout_commit(config, source, context.partition_key, commit.sha, "analysis")
        outcome = analyze(config, analyzer, workdir, context.partition_key)
        gate = AssetCheckResult(
            check_name=QUALITY_GATE,
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR,
            description=outcome.verdict,
            metadata=outcome.gate_metadata(config),
        )
        return MaterializeResult(
            metadata={**commit_metadata(commit), **outcome.metadata()},
            data_version=DataVersion(commit.sha),
            check_results=[gate],
        )

    @asset(
        key=BUILD_TESTS,
        deps=[SOURCE_COMMIT],
        partitions_def=services,
        group_name="build",
        kinds={"gradle"},
        description="Every test of the commit (JUnit results); failing tests block the jar.",
        check_specs=[
            AssetCheckSpec(
                TESTS_PASSED, asset=BUILD_TESTS, blocking=True,
                description="Every test of the commit passed (Gradle's JUnit results); blocks the jar, image and push.",
            )
        ],
    )
    def tests(context: AssetExecutionContext, source: SourceControl, build_tool: BuildTool) -> MaterializeResult:
        commit = resolve_commit(context, config, source)
        summary = build_tool.run_tests(
            project_dir=checkout_commit(config, source, context.partition_key, commit.sha, "build")
        )
        return MaterializeResult(
            metadata={**commit_metadata(commit), **junit_metadata(summary)},
            data_version=DataVersion(commit.sha),
            check_results=[
                AssetCheckResult(
                    check_name=TESTS_PASSED,
                    passed=summary.passed,
                    severity=AssetCheckSeverity.ERROR,
                    description=junit_verdict(summary),
                    metadata={**junit_counts(summary), "failed_tests": MetadataValue.json(list(summary.failed_tests))},
                )
            ],
        )

    @asset(
        key=BUILD_JAR,
        deps=[BUILD_TESTS, BUILD_ANALYSIS],
        partitions_def=services,
        group_name="build",
        kinds={"gradle"},
        description="The service jar, stamped with the artifact version <base>-<build number>.",
    )
    def jar(context: AssetExecutionContext, source: SourceControl, build_tool: BuildTool) -> MaterializeResult:
        commit = resolve_commit(context, config, source)
        workdir = checkout_commit(config, source, context.partition_key, commit.sha, "build")
        build_number = next_build_number(context.instance, context.partition_key)
        version = artifact_version(build_tool.project_version(project_dir=workdir), build_number)
        built = build_tool.build_jar(project_dir=workdir, version=version)
        return MaterializeResult(
            metadata={
                **commit_metadata(commit),
                "build_number": build_number,
                "version": version,
                "path": MetadataValue.path(built.path),
                "workspace": MetadataValue.path(str(workdir)),
                "size_bytes": built.size_bytes,
                "sha256": built.sha256,
            },
            data_version=DataVersion(built.sha256),
        )

    @asset(
        key=BUILD_IMAGE,
        deps=[BUILD_JAR, BUILD_BASE_IMAGE],
        partitions_def=services,
        group_name="build",
        kinds={"docker"},
        description="The service image on the local JRE base, with a version of its own (the jar's, or a rebuild "
        "of it: 1.0.0-7.r1); runtime settings come from the environment.",
    )
    def image(context: AssetExecutionContext, image_builder: ImageBuilder) -> MaterializeResult:
        service = config.service(context.partition_key)
        built_jar = require_latest_materialization(context, BUILD_JAR)
        base = latest_materialization_metadata(context.instance, BUILD_BASE_IMAGE) or {}
        base_digest = str(base.get("content_digest", NOT_RECORDED))
        previous = latest_materialization_metadata(context.instance, BUILD_IMAGE, service.name)
        same = _same_image(config, image_builder, service.name, previous, built_jar, base_digest)
        if same is not None and previous is not None:
            context.log.info(
                f"{service.name}: image {previous['version']} already holds jar {built_jar['version']} on base "
                f"{base_digest}: not built again, its version stays"
            )
            return _image_result(config, built_jar, base_digest, same, previous, "unchanged")
        jar_path, workdir = Path(built_jar["path"]), Path(built_jar["workspace"])
        if not jar_path.is_file():
            raise Failure(f"the jar {jar_path} recorded by build/jar[{service.name}] is gone: rebuild build/jar")
        jar_version = str(built_jar["version"])
        rebuild = next_rebuild(previous, jar_version)
        version = image_version(jar_version, rebuild)
        built = build_service_image(
            config,
            image_builder,
            service.name,
            workdir=workdir,
            jar_path=jar_path,
            jar_sha256=str(built_jar["sha256"]),
            version=version,
            jar_version=jar_version,
            sha=str(built_jar["commit"]),
        )
        what = {"version": version, "rebuild": rebuild}
        return _image_result(config, built_jar, base_digest, built, what, "built" if rebuild == 0 else "rebuilt")

    return [analysis, tests, jar, image]


def checkout_commit(config: ReleaseConfig, source: SourceControl, service: str, sha: str, purpose: str) -> Path:
    """A working tree of `sha` under the build workspace: <workspace>/<service>/<sha[:12]>/<purpose>.

    Steps that may run at the same time use different purposes, so no two of them build in one tree.
    """
    workspace = config.resolve_path(config.build.workspace) / service / sha[:12] / purpose
    return source.checkout(repository=config.repository_ref(config.service(service)), sha=sha, destination=workspace)


class AnalysisOutcome(BaseModel, frozen=True):
    """An analysis report judged by the quality gate of release.yaml."""

    report: AnalysisReport
    counts: dict[str, int]
    violations: list[str]

    @property
    def passed(self) -> bool:
        """True when every quality gate condition is met."""
        return not self.violations

    @property
    def verdict(self) -> str:
        """The failed conditions, e.g. 'critical issues: 1 (allowed 0)', or 'every condition met'."""
        return "; ".join(self.violations) if self.violations else "every condition met"

    def metadata(self) -> dict[str, Any]:
        """What the analysis found: tool, counts per severity and issues (or the server's gate), the report."""
        report, gate = self.report.report_path, self.report.server_gate
        found: dict[str, Any] = {"tool": self.report.tool}
        if gate is None:
            found |= {
                "files_analyzed": self.report.files_analyzed,
                **{f"{severity}_issues": count for severity, count in self.counts.items()},
                "issues": MetadataValue.md(_issues_table(self.report)),
            }
        else:
            found["quality_gate_status"] = gate.status
        where = MetadataValue.url(report) if report.startswith("http") else MetadataValue.path(report)
        return found | {"report": where}

    def gate_metadata(self, config: ReleaseConfig) -> dict[str, Any]:
        """The gate's judgement: failed conditions, and the limits and counts (or the server's conditions)."""
        gate = self.report.server_gate
        if gate is not None:
            return {
                "failed_conditions": MetadataValue.json(self.violations),
                "conditions": MetadataValue.json([condition.model_dump() for condition in gate.conditions]),
            }
        return {
            "failed_conditions": MetadataValue.json(self.violations),
            "limits": MetadataValue.json(config.analysis.quality_gate.limits()),
            **{f"{severity}_issues": count for severity, count in self.counts.items()},
        }


def analyze(config: ReleaseConfig, analyzer: CodeAnalyzer, workdir: Path, service: str) -> AnalysisOutcome:
    """Analyse the working tree; a server's gate (SonarQube) is the verdict, else release.yaml's quality gate."""
    report = analyzer.analyze(
        source_dir=workdir, report_dir=workdir / "build" / "reports" / "analysis", project=service
    )
    counts = report.counts()
    if report.server_gate is not None:
        return AnalysisOutcome(report=report, counts=counts, violations=report.server_gate.violations())
    return AnalysisOutcome(
        report=report, counts=counts, violations=config.analysis.quality_gate.violations(counts)
    )


def junit_counts(summary: TestSummary) -> dict[str, int]:
    """Tests run, failed, errored and skipped."""
    return {
        "tests": summary.tests,
        "failures": summary.failures,
        "errors": summary.errors,
        "skipped": summary.skipped,
    }


def junit_verdict(summary: TestSummary) -> str:
    """One line: how many passed, or which tests failed."""
    if summary.passed:
        return f"{summary.tests} tests passed"
    if summary.tests == 0:
        return "no tests ran"
    return f"{summary.failures} failed, {summary.errors} errors: {', '.join(summary.failed_tests)}"


def junit_metadata(summary: TestSummary) -> dict[str, Any]:
    """The test run as metadata: counts, duration, failed tests, where the JUnit reports are."""
    return {
        **junit_counts(summary),
        "duration_seconds": summary.duration_seconds,
        "failed_tests": MetadataValue.json(list(summary.failed_tests)),
        "report_dir": MetadataValue.path(summary.report_dir),
    }


def build_service_image(
    config: ReleaseConfig,
    image_builder: ImageBuilder,
    service: str,
    *,
    workdir: Path,
    jar_path: Path,
    jar_sha256: str,
    version: str,
    sha: str,
    jar_version: str | None = None,
) -> BuiltImage:
    """Build `service`'s image from its jar, tagged `<namespace>/<service>:<version>`, with the OCI labels.

    `version` is the image's own version; `jar_version` the jar's inside it (default: the same).
    """
    settings = config.service(service)
    return image_builder.build(
        context_dir=workdir,
        dockerfile=settings.dockerfile,
        reference=local_image_reference(config.build.image_namespace, service, version),
        base_image=config.build.base_image,
        build_args={"JAR_FILE": str(jar_path.relative_to(workdir))},
        labels={
            "org.opencontainers.image.title": service,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.source": settings.repository,
            "org.opencontainers.image.base.name": config.build.base_image,
            JAR_SHA256_LABEL: jar_sha256,
            "io.fintech-release.jar-version": jar_version or version,
        },
    )


def _same_image(
    config: ReleaseConfig,
    image_builder: ImageBuilder,
    service: str,
    previous: dict[str, Any] | None,
    built_jar: dict[str, Any],
    base_digest: str,
) -> BuiltImage | None:
    """The service's newest image when it holds this jar on a base image of this content and the builder still has
    it; None when a new image must be built."""
    if previous is None or base_digest == NOT_RECORDED:
        return None
    version = str(previous["version"])
    same_inputs = (
        str(previous.get("jar_version", version)) == str(built_jar["version"])
        and (previous.get("labels") or {}).get(JAR_SHA256_LABEL) == str(built_jar["sha256"])
        and previous.get("base_image") == config.build.base_image
        and previous.get("base_image_digest") == base_digest
        and previous.get("reference") == local_image_reference(config.build.image_namespace, service, version)
    )
    recorded = _recorded_image(previous)
    if same_inputs and image_builder.holds(reference=recorded.reference, image_id=recorded.image_id):
        return recorded
    return None


def _recorded_image(previous: dict[str, Any]) -> BuiltImage:
    """The image a build/image materialization recorded."""
    digest = previous.get("registry_digest")
    return BuiltImage(
        image_id=str(previous["image_id"]), reference=str(previous["reference"]),
        size_bytes=int(previous.get("size_bytes", 0)), labels=dict(previous.get("labels") or {}),
        registry_digest=str(digest) if digest else None,
    )


def _image_result(
    config: ReleaseConfig, built_jar: dict[str, Any], base_digest: str, built: BuiltImage, versions: dict[str, Any],
    status: str,
) -> MaterializeResult:
    """build/image's record: the image, its version (and rebuild number), the jar and base image it holds."""
    return MaterializeResult(
        metadata={
            "status": status,
            "commit": built_jar["commit"],
            "author_email": built_jar["author_email"],
            "committed_at": str(built_jar.get("committed_at", "")),
            "version": str(versions["version"]),
            "rebuild": int(versions.get("rebuild", 0)),
            "jar_version": str(built_jar["version"]),
            "build_number": int(built_jar["build_number"]),
            "image_id": built.image_id,
            "reference": built.reference,
            "size_bytes": built.size_bytes,
            "labels": MetadataValue.json(built.labels),
            "base_image": config.build.base_image,
            "base_image_digest": base_digest,
            **({"registry_digest": built.registry_digest} if built.registry_digest else {}),
        },
        data_version=DataVersion(built.image_id),
    )


def commit_metadata(commit: CommitRef) -> dict[str, Any]:
    """The commit a build step worked on: sha, branch, author, when it was committed."""
    return {
        "commit": commit.sha, "branch": commit.branch, "author_email": commit.author_email,
        "committed_at": commit.committed_at,
    }


def _issues_table(report: AnalysisReport) -> str:
    if not report.issues:
        return "No issues."
    shown = sorted(report.issues, key=lambda issue: SONAR_SEVERITIES.index(issue.severity))[:ISSUES_SHOWN]
    rows = [f"| {i.severity} | {i.file}:{i.line} | {i.rule} | {i.message.replace('|', '/')} |" for i in shown]
    more = len(report.issues) - len(shown)
    footer = f"\n\n{more} more in the report." if more > 0 else ""
    return "| severity | where | rule | message |\n|---|---|---|---|\n" + "\n".join(rows) + footer
