"""Resources: one interface per outside system, with the implementation each platform uses.

Assets depend on the interfaces (`SourceControl`, `CodeAnalyzer`, `BuildTool`, `ImageBuilder`,
`ImageRegistry`, `BaseImageBuilder`, `ServiceRuntime`, `Ingress`, `DatabaseAdmin`); `platform_resources` picks the
implementations from release.yaml in this one place: the source (local git or Bitbucket), the local
platform's runtime/ingress/database, and, when an environment runs on gke, `gke_runtime`, `gke_ingress`,
one `gke_database_<env>` per environment and `gke_cloudsql_admin` (see fintech_release/platforms.py).
Secrets come from environment variables the resources read when they need them (fintech_release/env_secrets.py),
so run config and the event log only ever hold the variable's name.

The implementations only gke or Google Cloud use (Cloud Build, Cloud SQL, Terraform, Helm, the Kubernetes API) are
imported where they are chosen: their client libraries (kubernetes, google-cloud-*, grpc) take about a second to
import, which every `fintech-release` command on a local-only release.yaml would otherwise pay.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource

from fintech_release.config import Environment, ReleaseConfig
from fintech_release.config.models import cloudsql_secret, cloudsql_user, database_name
from fintech_release.platforms import CLOUDSQL_ADMIN_KEY, GKE, gke_database_key
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST
from fintech_release.resources.analysis import CheckstyleAnalyzer, CodeAnalyzer
from fintech_release.resources.base_image import DEFAULT_JAVA_HOME, BaseImageBuilder, JlinkBaseImageBuilder
from fintech_release.resources.bitbucket import BitbucketCloudSource, BitbucketServerSource
from fintech_release.resources.build_tool import BuildTool, GradleBuildTool
from fintech_release.resources.database import DatabaseAdmin
from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.images import DockerImageBuilder, ImageBuilder
from fintech_release.resources.ingress import Ingress
from fintech_release.resources.local_database import LocalMariaDB
from fintech_release.resources.local_ingress import LocalNginxIngress
from fintech_release.resources.local_runtime import LocalDockerRuntime
from fintech_release.resources.registry import GoogleRegistry, ImageRegistry, LocalRegistry
from fintech_release.resources.runtime import ServiceRuntime
from fintech_release.resources.sonarqube import SonarQubeAnalyzer
from fintech_release.resources.source import LocalGitSource, SourceControl
from fintech_release.resources._tools import find_tool

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
    database = config.local.database
    resources: dict[str, ConfigurableResource] = {
        "source": _source(config),
        "analyzer": _analyzer(config),
        "build_tool": GradleBuildTool(
            executable=config.build.gradle_executable,
            java_home=str(config.build.java_home) if config.build.java_home else None,
            timeout_seconds=config.build.timeout_seconds,
        ),
        "image_builder": _image_builder(config, docker_host),
        "base_image_builder": JlinkBaseImageBuilder(
            java_home=str(config.build.java_home or DEFAULT_JAVA_HOME), docker_host=docker_host
        ),
        "registry": _registry(config, docker_host),
        "runtime": LocalDockerRuntime(docker_host=docker_host, scope=config.local.scope),
        "ingress": LocalNginxIngress(state_dir=str(config.resolve_path(config.local.state_dir) / "ingress")),
        "database": LocalMariaDB(
            host=database.host,
            port=database.port,
            user=database.user,
            password_env=database.password_env,
            credentials_dir=str(config.resolve_path(config.local.state_dir) / "db-credentials"),
            backups_dir=str(config.resolve_path(config.local.state_dir) / "backups"),
        ),
    }
    if config.notifications.email is not None:
        resources["notifier"] = _email_notifier(config)
    gke_environments = [e for e in config.environments if e.platform == "gke"]
    if gke_environments:
        resources.update(_gke_resources(config, gke_environments))
    return resources


def _source(config: ReleaseConfig) -> SourceControl:
    """Bitbucket Cloud or Server when release.yaml says so, else bare git repositories on disk."""
    bitbucket = config.source_control.bitbucket
    if config.source_control.platform != "bitbucket" or bitbucket is None:
        return LocalGitSource()
    common = {
        "owner": bitbucket.owner,
        "token_env": bitbucket.token_env,
        "username_env": bitbucket.username_env,
        "timeout_seconds": bitbucket.timeout_seconds,
    }
    if bitbucket.flavor == "cloud":
        return BitbucketCloudSource(**common, **({"base_url": bitbucket.base_url} if bitbucket.base_url else {}))
    return BitbucketServerSource(base_url=str(bitbucket.base_url), **common)


def _image_builder(config: ReleaseConfig, docker_host: str) -> ImageBuilder:
    """The Docker engine here, or Cloud Build pushing into the registry's build namespace."""
    cloud = config.build.cloud_build
    if config.build.builder == "cloud_build" and cloud is not None:
        from fintech_release.resources.cloud_build import CloudBuildImageBuilder

        return CloudBuildImageBuilder(
            project=cloud.project,
            location=cloud.location,
            staging_bucket=cloud.staging_bucket,
            image_repository=f"{config.registry.registry_host}/{config.registry.path_prefix}",
            timeout_seconds=cloud.timeout_seconds,
        )
    return DockerImageBuilder(docker_host=docker_host)


def _analyzer(config: ReleaseConfig) -> CodeAnalyzer:
    """Checkstyle offline, or the SonarQube server release.yaml names (its token from the environment)."""
    sonar = config.analysis.sonarqube
    if config.analysis.platform == "sonarqube" and sonar is not None:
        return SonarQubeAnalyzer(
            url=sonar.url,
            token_env=sonar.token_env,
            project_key_prefix=sonar.project_key_prefix,
            java_executable=sonar.java_executable,
            engine_cache_dir=str(config.resolve_path(config.build.workspace).parent / "sonar-engine"),
            request_timeout_seconds=sonar.timeout_seconds,
            task_timeout_seconds=sonar.task_timeout_seconds,
        )
    checkstyle_config = config.analysis.checkstyle_config
    return CheckstyleAnalyzer(config_path=str(config.resolve_path(checkstyle_config)) if checkstyle_config else None)


def _registry(config: ReleaseConfig, docker_host: str) -> ImageRegistry:
    """The registry release.yaml names; Google's take their credentials from Application Default Credentials."""
    settings = config.registry
    common = {"docker_host": docker_host, "retry_seconds": settings.retry_seconds}
    if settings.platform != "local":
        return GoogleRegistry(host=settings.registry_host, path=settings.path_prefix, **common)
    return LocalRegistry(
        host=settings.host,
        namespace=settings.path_prefix,
        tls=settings.tls,
        ca_file=str(config.resolve_path(settings.ca_file)) if settings.ca_file else None,
        username_env=settings.username_env,
        password_env=settings.password_env,
        **common,
    )


def _email_notifier(config: ReleaseConfig) -> EmailNotifier:
    email = config.notifications.email
    assert email is not None
    return EmailNotifier(
        host=email.host,
        port=email.port,
        security=email.security,
        sender=email.sender,
        attempts=email.attempts,
        timeout_seconds=email.timeout_seconds,
        username_env=email.username_env,
        password_env=email.password_env,
        ca_file=str(config.resolve_path(email.ca_file)) if email.ca_file else None,
    )


def _gke_resources(config: ReleaseConfig, environments: list[Environment]) -> dict[str, ConfigurableResource]:
    """Terraform + Helm + the Kubernetes API per gke environment, and each one's CloudSQL instance."""
    from fintech_release.resources.cloudsql import CloudSqlDatabase, ServiceAccounts
    from fintech_release.resources.cloudsql_admin import CloudSqlAdmin
    from fintech_release.resources.gke_ingress import GkeIngress, GkeIngressTarget
    from fintech_release.resources.gke_runtime import GkeRuntime, GkeTarget
    from fintech_release.resources.helm import HelmRunner
    from fintech_release.resources.kubernetes_cluster import KubernetesCluster
    from fintech_release.resources.terraform import TerraformRunner

    gke = config.gke
    charts_dir = str(config.resolve_path(gke.charts_dir))
    helm = HelmRunner(executable=find_tool(gke.helm_executable), timeout_seconds=gke.helm_timeout_seconds)
    targets = {env.name: env.gke for env in environments if env.gke is not None}
    resources: dict[str, ConfigurableResource] = {
        GKE.runtime: GkeRuntime(
            release_config=str(config.source.resolve()),
            charts_dir=charts_dir,
            environments={
                name: GkeTarget(
                    project=target.project,
                    region=target.region,
                    kube_context=target.kube_context,
                    namespace=target.namespace,
                    ephemeral=config.environment(name).ephemeral,
                    terraform_root=str(config.resolve_path(gke.terraform_dir / "environment")),
                    terraform_var_file=str(
                        config.resolve_path(
                            target.terraform_var_file or gke.terraform_dir / "environments" / f"{name}.tfvars"
                        )
                    ),
                )
                for name, target in targets.items()
            },
            cluster=KubernetesCluster(transient_grace_seconds=gke.transient_grace_seconds),
            helm=helm,
            terraform=TerraformRunner(
                executable=find_tool(gke.terraform_executable),
                # One state per environment: the runner fills {environment} in at `terraform init`.
                backend_config={
                    **({"bucket": gke.terraform_state_bucket} if gke.terraform_state_bucket else {}),
                    "prefix": "fintech-release/{environment}",
                },
                data_dir=str(config.resolve_path(gke.terraform_data_dir)) if gke.terraform_data_dir else None,
                secret_variables={"cloudsql_proxy_password": gke.database_password_env},
            ),
        ),
        GKE.ingress: GkeIngress(
            helm=helm,
            charts_dir=charts_dir,
            ingress_nginx_chart=gke.ingress_nginx_chart,
            ingress_nginx_repo=gke.ingress_nginx_repo,
            ingress_nginx_version=gke.ingress_nginx_version,
            environments={
                name: GkeIngressTarget(
                    namespace=target.namespace,
                    kube_context=target.kube_context,
                    host=target.ingress_host,
                    tls_secret=target.tls_secret,
                )
                for name, target in targets.items()
            },
            service_ports={service.name: service.port for service in config.services},
        ),
        CLOUDSQL_ADMIN_KEY: CloudSqlAdmin(),
    }
    for name, target in targets.items():
        resources[gke_database_key(name)] = CloudSqlDatabase(
            instance_connection_name=target.cloudsql_instance,
            admin=CloudSqlAdmin(),
            user=gke.database_user,
            password_env=gke.database_password_env,
            ip_type=gke.database_ip_type,
            environment=name,
            kube_context=target.kube_context,
            namespace=target.namespace,
            service_accounts={
                database_name(name, service.database): ServiceAccounts(
                    service=service.name,
                    migration_user=cloudsql_user(service.database, "migration"),
                    application_user=cloudsql_user(service.database, "application"),
                    migration_secret=cloudsql_secret(service.name, "migration"),
                )
                for service in config.services
                if service.database is not None
            },
            cluster=KubernetesCluster(transient_grace_seconds=gke.transient_grace_seconds),
        )
    return resources
