"""Resources: one interface per outside system, with the implementation each platform uses.

Assets depend on the interfaces (`SourceControl`, `CodeAnalyzer`, `BuildTool`, `ImageBuilder`,
`ImageRegistry`, `BaseImageBuilder`, `ServiceRuntime`, `Ingress`, `DatabaseAdmin`); `platform_resources` picks the
implementations from release.yaml in this one place. Secrets come from the environment through
`EnvVar`, so run config and the event log only ever hold the variable's name.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar

from fintech_release.config import ReleaseConfig
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST
from fintech_release.resources.analysis import CheckstyleAnalyzer, CodeAnalyzer
from fintech_release.resources.base_image import DEFAULT_JAVA_HOME, BaseImageBuilder, JlinkBaseImageBuilder
from fintech_release.resources.build_tool import BuildTool, GradleBuildTool
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.images import DockerImageBuilder, ImageBuilder
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.local_database import LocalMariaDB
from fintech_release.resources.local_ingress import LocalNginxIngress
from fintech_release.resources.local_runtime import LocalDockerRuntime
from fintech_release.resources.registry import ImageRegistry, LocalRegistry
from fintech_release.resources.runtime import ServiceRuntime
from fintech_release.resources.source import LocalGitSource, SourceControl

__all__ = [
    "BaseImageBuilder",
    "BuildTool",
    "CodeAnalyzer",
    "DatabaseAdmin",
    "ImageBuilder",
    "ImageRegistry",
    "Ingress",
    "ServiceRuntime",
    "SourceControl",
    "platform_resources",
]


def platform_resources(config: ReleaseConfig) -> dict[str, ConfigurableResource]:
    """The resources every asset uses, keyed by the parameter names assets ask for."""
    docker_host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    checkstyle_config = config.analysis.checkstyle_config
    database = config.local.database
    return {
        "source": LocalGitSource(),
        "analyzer": CheckstyleAnalyzer(
            config_path=str(config.resolve_path(checkstyle_config)) if checkstyle_config else None
        ),
        "build_tool": GradleBuildTool(
            executable=config.build.gradle_executable,
            java_home=str(config.build.java_home) if config.build.java_home else None,
            timeout_seconds=config.build.timeout_seconds,
        ),
        "image_builder": DockerImageBuilder(docker_host=docker_host),
        "base_image_builder": JlinkBaseImageBuilder(
            java_home=str(config.build.java_home or DEFAULT_JAVA_HOME), docker_host=docker_host
        ),
        "registry": LocalRegistry(host=config.registry.host, docker_host=docker_host),
        "runtime": LocalDockerRuntime(docker_host=docker_host, scope=config.local.scope),
        "ingress": LocalNginxIngress(state_dir=str(config.resolve_path(config.local.state_dir) / "ingress")),
        "database": LocalMariaDB(
            host=database.host,
            port=database.port,
            user=database.user,
            password=EnvVar(database.password_env),
        ),
    }
