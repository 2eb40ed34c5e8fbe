"""build/*: analysis, tests, jar and image of one service commit, with the gates that block promotion."""

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

from fintech_release.assets.event_log import latest_materialization_metadata, require_latest_materialization
from fintech_release.assets.keys import (
    BUILD_ANALYSIS,
    BUILD_BASE_IMAGE,
    BUILD_IMAGE,
    BUILD_JAR,
    BUILD_TESTS,
    SOURCE_COMMIT,
)
from fintech_release.assets.source import CommitRef, resolve_commit
from fintech_release.config import ReleaseConfig
from fintech_release.config.models import SONAR_SEVERITIES
from fintech_release.resources.analysis import AnalysisReport, CodeAnalyzer
from fintech_release.resources.base_image import BaseImageBuilder
from fintech_release.resources.build_tool import BuildTool
from fintech_release.resources.images import ImageBuilder
from fintech_release.resources.source import SourceControl
from fintech_release.versioning import artifact_version, local_image_reference, next_build_number

QUALITY_GATE = "quality_gate"
TESTS_PASSED = "tests_passed"
ISSUES_SHOWN = 20


def base_image_asset(config: ReleaseConfig) -> AssetsDefinition:
    """build/base_image: the JRE every service image starts from; its content digest is the data version."""

    @asset(
        key=BUILD_BASE_IMAGE,
        group_name="base_image",
        kinds={"docker"},
        description="The JRE base image (jlink of the local JDK). A new one makes every service image stale.",
    )
    def base_image(base_image_builder: BaseImageBuilder) -> MaterializeResult:
        built = base_image_builder.build(reference=config.build.base_image, modules=config.build.jre_modules)
        return MaterializeResult(
            metadata={
                "reference": built.reference,
                "image_id": built.image_id,
                "content_digest": built.content_digest,
                "modules": MetadataValue.json(list(built.modules)),
            },
            data_version=DataVersion(built.content_digest),
        )

    return base_image


def build_assets(config: ReleaseConfig, services: PartitionsDefinition) -> list[AssetsDefinition]:
    """The build stage for every service in `config`, partitioned by service."""

    def checkout(context: AssetExecutionContext, source: SourceControl, commit: CommitRef, purpose: str) -> Path:
        service = config.service(context.partition_key)
        workspace = config.resolve_path(config.build.workspace) / service.name / commit.sha[:12] / purpose
        return source.checkout(
            repository=str(config.resolve_path(service.repository)), sha=commit.sha, destination=workspace
        )

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
        workdir = checkout(context, source, commit, "analysis")
        report = analyzer.analyze(source_dir=workdir, report_dir=workdir / "build" / "reports" / "analysis")
        counts = report.counts()
        violations = config.analysis.quality_gate.violations(counts)
        gate = AssetCheckResult(
            check_name=QUALITY_GATE,
            passed=not violations,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(violations) if violations else "every condition met",
            metadata={
                "failed_conditions": MetadataValue.json(violations),
                "limits": MetadataValue.json(config.analysis.quality_gate.limits()),
                **{f"{severity}_issues": count for severity, count in counts.items()},
            },
        )
        return MaterializeResult(
            metadata={
                **_commit_metadata(commit),
                "tool": report.tool,
                "files_analyzed": report.files_analyzed,
                **{f"{severity}_issues": count for severity, count in counts.items()},
                "issues": MetadataValue.md(_issues_table(report)),
                "report": MetadataValue.path(report.report_path),
            },
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
        check_specs=[AssetCheckSpec(TESTS_PASSED, asset=BUILD_TESTS, blocking=True)],
    )
    def tests(context: AssetExecutionContext, source: SourceControl, build_tool: BuildTool) -> MaterializeResult:
        commit = resolve_commit(context, config, source)
        summary = build_tool.run_tests(project_dir=checkout(context, source, commit, "build"))
        counts = {
            "tests": summary.tests,
            "failures": summary.failures,
            "errors": summary.errors,
            "skipped": summary.skipped,
        }
        if summary.passed:
            verdict = f"{summary.tests} tests passed"
        elif summary.tests == 0:
            verdict = "no tests ran"
        else:
            verdict = f"{summary.failures} failed, {summary.errors} errors: {', '.join(summary.failed_tests)}"
        return MaterializeResult(
            metadata={
                **_commit_metadata(commit),
                **counts,
                "duration_seconds": summary.duration_seconds,
                "failed_tests": MetadataValue.json(list(summary.failed_tests)),
                "report_dir": MetadataValue.path(summary.report_dir),
            },
            data_version=DataVersion(commit.sha),
            check_results=[
                AssetCheckResult(
                    check_name=TESTS_PASSED,
                    passed=summary.passed,
                    severity=AssetCheckSeverity.ERROR,
                    description=verdict,
                    metadata={**counts, "failed_tests": MetadataValue.json(list(summary.failed_tests))},
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
        workdir = checkout(context, source, commit, "build")
        build_number = next_build_number(context.instance, context.partition_key)
        version = artifact_version(build_tool.project_version(project_dir=workdir), build_number)
        built = build_tool.build_jar(project_dir=workdir, version=version)
        return MaterializeResult(
            metadata={
                **_commit_metadata(commit),
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
        description="The service image on the local JRE base; runtime settings come from the environment.",
    )
    def image(context: AssetExecutionContext, image_builder: ImageBuilder) -> MaterializeResult:
        service = config.service(context.partition_key)
        built_jar = require_latest_materialization(context, BUILD_JAR)
        jar_path, workdir = Path(built_jar["path"]), Path(built_jar["workspace"])
        if not jar_path.is_file():
            raise Failure(f"the jar {jar_path} recorded by build/jar[{service.name}] is gone: rebuild build/jar")
        version, sha = str(built_jar["version"]), str(built_jar["commit"])
        base = latest_materialization_metadata(context.instance, BUILD_BASE_IMAGE) or {}
        built = image_builder.build(
            context_dir=workdir,
            dockerfile=service.dockerfile,
            reference=local_image_reference(config.build.image_namespace, service.name, version),
            base_image=config.build.base_image,
            build_args={"JAR_FILE": str(jar_path.relative_to(workdir))},
            labels={
                "org.opencontainers.image.title": service.name,
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.revision": sha,
                "org.opencontainers.image.source": service.repository,
                "org.opencontainers.image.base.name": config.build.base_image,
                "io.fintech-release.jar-sha256": str(built_jar["sha256"]),
            },
        )
        return MaterializeResult(
            metadata={
                "commit": sha,
                "author_email": built_jar["author_email"],
                "version": version,
                "image_id": built.image_id,
                "reference": built.reference,
                "size_bytes": built.size_bytes,
                "labels": MetadataValue.json(built.labels),
                "base_image": config.build.base_image,
                "base_image_digest": str(base.get("content_digest", "not recorded")),
            },
            data_version=DataVersion(built.image_id),
        )

    return [analysis, tests, jar, image]


def _commit_metadata(commit: CommitRef) -> dict[str, Any]:
    return {"commit": commit.sha, "branch": commit.branch, "author_email": commit.author_email}


def _issues_table(report: AnalysisReport) -> str:
    if not report.issues:
        return "No issues."
    shown = sorted(report.issues, key=lambda issue: SONAR_SEVERITIES.index(issue.severity))[:ISSUES_SHOWN]
    rows = [f"| {i.severity} | {i.file}:{i.line} | {i.rule} | {i.message.replace('|', '/')} |" for i in shown]
    more = len(report.issues) - len(shown)
    footer = f"\n\n{more} more in the report." if more > 0 else ""
    return "| severity | where | rule | message |\n|---|---|---|---|\n" + "\n".join(rows) + footer
