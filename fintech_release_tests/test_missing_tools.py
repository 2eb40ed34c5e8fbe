"""A machine without the tools the local platform needs gives an error that says what is missing and
how to get it, never a FileNotFoundError or a connection trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from fintech_release.errors import DockerEngineUnavailableError, ToolNotFoundError
from fintech_release.resources.analysis import CheckstyleAnalyzer
from fintech_release.resources.build_tool import GradleBuildTool
from fintech_release.resources.images import DockerImageBuilder
from fintech_release_tests.conftest import EXAMPLES_DIR


def test_missing_gradle_names_the_tool_and_how_to_install_it(tmp_path: Path) -> None:
    gradle = GradleBuildTool(executable=str(tmp_path / "no-gradle-here"))
    with pytest.raises(ToolNotFoundError, match=r"Gradle not found .*apt-get install gradle") as raised:
        gradle.run_tests(project_dir=EXAMPLES_DIR / "contact-us")
    assert raised.value.__suppress_context__


def test_missing_checkstyle_names_the_tool(tmp_path: Path) -> None:
    analyzer = CheckstyleAnalyzer(executable=str(tmp_path / "no-checkstyle"))
    with pytest.raises(ToolNotFoundError, match=r"Checkstyle not found .*apt-get install checkstyle"):
        analyzer.analyze(source_dir=EXAMPLES_DIR / "contact-us", report_dir=tmp_path / "report")


def test_no_docker_engine_says_how_to_start_one(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path / 'docker.sock'}"
    builder = DockerImageBuilder(docker_host=socket, timeout_seconds=5)
    with pytest.raises(DockerEngineUnavailableError) as raised:
        builder.build(
            context_dir=EXAMPLES_DIR / "contact-us",
            dockerfile="Dockerfile",
            reference="fintech-release-test/never:1",
            base_image="fintech-release-test/jre:17",
            build_args={},
            labels={},
        )
    message = str(raised.value)
    assert f"no Docker engine answers at {socket}" in message
    assert "dockerd --iptables=false --bridge=none" in message
