"""The `branch_ci` job: build and test a commit of a feature branch with the build code master uses.

For the service, branch and commit in its run tags (set by the commit sensor and the webhook, see
ci_runs.py) it runs the quality gate, the tests, the jar and the image: the same functions the
build/* assets call (assets/build.py). It never pushes or deploys, and it records no asset
materialization: its results are op outputs with metadata, and logs, in its own run.

Why a job and not a branch partition dimension on build/*: the build/* and registry/* assets are
what can be released. A service x branch partitioning would put every branch ever pushed (a dynamic
partition set that only grows) into that graph, make master's staleness and lineage views carry
them, and need every consumer of "the latest build of a service" (build numbers, the push, the
deployment candidates) to filter branches out. A branch build produces nothing the release uses,
so it is a run of its own: the UI shows it under Runs, filterable by the fintech-release/* tags.

The image is tagged `<namespace>/<service>:<base>-<branch slug>.<sha[:12]>`, e.g.
`fintech-release/contact-us:1.0.0-feature-login.3f2a1b4c5d6e`: never a release version
(`<base>-<build number>`), and no build number is used up.
"""

import re
from pathlib import Path

from dagster import (
    Failure,
    In,
    JobDefinition,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)
from pydantic import BaseModel

from fintech_release.assets.build import (
    analyze,
    build_service_image,
    checkout_commit,
    junit_metadata,
    junit_verdict,
)
from fintech_release.config import ReleaseConfig
from fintech_release.jobs.names import BRANCH_CI
from fintech_release.records.keys import BRANCH_TAG, COMMIT_TAG, SERVICE_TAG
from fintech_release.resources.analysis import CodeAnalyzer
from fintech_release.resources.build_tool import BuildTool, JarArtifact
from fintech_release.resources.images import BuiltImage, ImageBuilder
from fintech_release.resources.source import SourceControl

SLUG_MAX = 40
TESTS_OP = "tests"  # its output (or failure) metadata is the run's test summary


class BranchCommit(BaseModel, frozen=True):
    """The commit a branch_ci run builds."""

    service: str
    branch: str
    sha: str
    author_email: str

    def purpose(self, step: str) -> str:
        """The workspace folder of `step`, apart from master's (the same sha may be built by both at once)."""
        return f"branch-{branch_slug(self.branch)}-{step}"


class BranchJar(BaseModel, frozen=True):
    """The jar of a branch build and the working tree it was built in (the image's build context)."""

    jar: JarArtifact
    workdir: str


def branch_slug(branch: str) -> str:
    """`feature/Login-2` -> `feature-login-2`: usable in an image tag and a folder name."""
    return re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:SLUG_MAX].strip("-") or "branch"


def branch_version(base_version: str, branch: str, sha: str) -> str:
    """The version of a branch build: `<base>-<branch slug>.<sha[:12]>` (never a release version)."""
    return f"{base_version}-{branch_slug(branch)}.{sha[:12]}"


def branch_ci_job(config: ReleaseConfig) -> JobDefinition:
    """The branch CI job for the services in `config`."""

    @op(out=Out(BranchCommit), description="Read the commit named by the run's tags.")
    def commit(context: OpExecutionContext, source: SourceControl) -> Output[BranchCommit]:
        tags = context.run.tags
        missing = [tag for tag in (SERVICE_TAG, BRANCH_TAG, COMMIT_TAG) if tag not in tags]
        if missing:
            raise Failure(
                f"{BRANCH_CI} builds the commit named by its run tags, and {', '.join(missing)} is missing: "
                f"launch it with the tags {SERVICE_TAG}, {BRANCH_TAG} and {COMMIT_TAG} "
                "(the commit sensor and the webhook set them)"
            )
        try:
            service = config.service(tags[SERVICE_TAG])
        except KeyError as unknown:
            raise Failure(f"{BRANCH_CI}: {unknown.args[0]} in {config.source}") from None
        info = source.commit(repository=config.repository_ref(service), sha=tags[COMMIT_TAG], branch=tags[BRANCH_TAG])
        built = BranchCommit(
            service=tags[SERVICE_TAG], branch=tags[BRANCH_TAG], sha=info.sha, author_email=info.author_email
        )
        return Output(
            built,
            metadata={"service": built.service, "branch": built.branch, "commit": built.sha,
                      "author_email": built.author_email, "message": info.message},
        )

    @op(out=Out(Nothing), description="Static analysis; fails when the quality gate of release.yaml fails.")
    def analysis(commit: BranchCommit, analyzer: CodeAnalyzer, source: SourceControl) -> Output[None]:
        workdir = checkout_commit(config, source, commit.service, commit.sha, commit.purpose("analysis"))
        outcome = analyze(config, analyzer, workdir, commit.service)
        if not outcome.passed:
            raise Failure(
                f"quality gate failed for {commit.service} on {commit.branch}: {outcome.verdict}",
                metadata={**outcome.metadata(), **outcome.gate_metadata(config)},
            )
        return Output(None, metadata=outcome.metadata())

    @op(name=TESTS_OP, out=Out(Nothing), description="Every test of the commit; fails when one fails.")
    def tests(commit: BranchCommit, build_tool: BuildTool, source: SourceControl) -> Output[None]:
        workdir = checkout_commit(config, source, commit.service, commit.sha, commit.purpose("build"))
        summary = build_tool.run_tests(project_dir=workdir)
        if not summary.passed:
            raise Failure(
                f"tests failed for {commit.service} on {commit.branch}: {junit_verdict(summary)}",
                metadata=junit_metadata(summary),
            )
        return Output(None, metadata=junit_metadata(summary))

    @op(
        ins={"commit": In(BranchCommit), "analysis": In(Nothing), "tests": In(Nothing)},
        out=Out(BranchJar),
        description="The jar, stamped with the branch version (no build number is used up).",
    )
    def jar(commit: BranchCommit, build_tool: BuildTool, source: SourceControl) -> Output[BranchJar]:
        workdir = checkout_commit(config, source, commit.service, commit.sha, commit.purpose("build"))
        version = branch_version(build_tool.project_version(project_dir=workdir), commit.branch, commit.sha)
        built = build_tool.build_jar(project_dir=workdir, version=version)
        return Output(
            BranchJar(jar=built, workdir=str(workdir)),
            metadata={"version": version, "path": MetadataValue.path(built.path), "sha256": built.sha256,
                      "size_bytes": built.size_bytes},
        )

    @op(out=Out(BuiltImage), description="The image, tagged with the branch version; it is not pushed.")
    def image(
        context: OpExecutionContext, commit: BranchCommit, branch_jar: BranchJar, image_builder: ImageBuilder
    ) -> Output[BuiltImage]:
        built = build_service_image(
            config,
            image_builder,
            commit.service,
            workdir=Path(branch_jar.workdir),
            jar_path=Path(branch_jar.jar.path),
            jar_sha256=branch_jar.jar.sha256,
            version=branch_jar.jar.version,
            sha=commit.sha,
        )
        context.log.info(f"built {built.reference} ({built.image_id}); branch builds are never pushed")
        return Output(
            built,
            metadata={"reference": built.reference, "image_id": built.image_id, "size_bytes": built.size_bytes,
                      "labels": MetadataValue.json(built.labels)},
        )

    @job(
        name=BRANCH_CI,
        description="Analysis, tests, jar and image of a feature-branch commit (tags name it); no push, no deploy.",
    )
    def branch_ci() -> None:
        built = commit()
        image(built, jar(commit=built, analysis=analysis(built), tests=tests(built)))

    return branch_ci
