"""Typed models of release.yaml: the services to release and the environments they go to.

Every model forbids unknown keys, so a typo fails loading instead of being ignored, and every value is
checked against where it goes (git, Docker, Kubernetes, MySQL, Dagster; see formats.py), so a file that
loads can be deployed. Rules across fields raise `FieldError` naming the field they are about.
Relative paths are resolved against the folder holding release.yaml by the loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from ipaddress import IPv4Address
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from fintech_release.config import formats
from fintech_release.config.formats import FieldError, shown

# A service name is a partition key, a Docker repository name and a DNS label: keep all three happy.
ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
EnvironmentName = Annotated[str, AfterValidator(formats.check_environment_name)]
Port = Annotated[int, Field(ge=1024, le=65535)]
SqlIdentifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MYSQL_NAME_MAX = 64  # characters in a database name
MySqlUser = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,32}$")]  # MySQL 5.7 allows 32

EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$")]
HttpUrl = Annotated[str, AfterValidator(formats.check_http_url)]
Host = Annotated[str, AfterValidator(formats.check_host)]
Executable = Annotated[str, AfterValidator(formats.check_not_an_option)]
PathInRepository = Annotated[str, AfterValidator(formats.check_relative_path)]
EmailAddress = Annotated[str, AfterValidator(formats.check_email_address)]
Owner = Annotated[str, AfterValidator(formats.check_owner)]
GcsBucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")]
BranchName = Annotated[str, AfterValidator(formats.check_branch_name)]
GcpProject = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
GcpRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]$")]
GcpLocation = Annotated[str, StringConstraints(pattern=r"^[a-z]+(-[a-z]+[0-9])?$")]  # a region, or us / eu / asia
BaseImage = Annotated[str, AfterValidator(formats.check_base_image)]
# Local images are <image_namespace>/<service>:<version>; 200 leaves room for the service in Docker's 255.
ImageNamespace = Annotated[str, AfterValidator(formats.check_image_path), Field(max_length=200)]
JavaModule = Annotated[str, AfterValidator(formats.check_java_module)]
Cpu = Annotated[str, AfterValidator(formats.check_cpu)]
Memory = Annotated[str, AfterValidator(formats.check_memory)]
# Names in the POSIX form; PORT, BIND_ADDRESS and APP_ENV are the runtime's.
EnvironmentVariables = Annotated[dict[str, str], AfterValidator(formats.check_env)]

# A Cloud SQL instance connection name, "project:region:instance" (the project optionally domain-scoped).
CLOUDSQL_INSTANCE_PATTERN = r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]*:[a-z]+-[a-z]+[0-9]:[a-z][a-z0-9-]*$"

# A Bitbucket repository slug: the repository's name inside the workspace (Cloud) or project (Server), no path;
# never '.' or '..' (they would climb the REST path) and never starting with '-'.
BITBUCKET_SLUG_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9._][A-Za-z0-9._-]*$"

SONAR_SEVERITIES = ("blocker", "critical", "major", "minor", "info")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QualityGate(_Strict):
    """SonarQube-style gate: the most issues of each severity a build may have (absent = no limit)."""

    blocker: int | None = Field(default=0, ge=0)
    critical: int | None = Field(default=0, ge=0)
    major: int | None = Field(default=None, ge=0)
    minor: int | None = Field(default=None, ge=0)
    info: int | None = Field(default=None, ge=0)

    def limits(self) -> dict[str, int]:
        """The severities that have a limit, with that limit."""
        return {sev: limit for sev in SONAR_SEVERITIES if (limit := getattr(self, sev)) is not None}

    def violations(self, counts: dict[str, int]) -> list[str]:
        """Each failed condition as text, e.g. 'critical issues: 3 (allowed 0)'; empty when the gate passes."""
        return [
            f"{severity} issues: {counts.get(severity, 0)} (allowed {limit})"
            for severity, limit in self.limits().items()
            if counts.get(severity, 0) > limit
        ]


class SonarQubeSettings(_Strict):
    """A SonarQube server: the analysis is submitted there and its own quality gate decides."""

    url: HttpUrl  # e.g. https://sonar.bank.example
    token_env: EnvVarName = "SONAR_TOKEN"  # a project analysis token (Execute Analysis and Browse)
    project_key_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{0,100}$")] = ""
    java_executable: Executable = "java"  # runs the scanner engine the server serves
    timeout_seconds: float = Field(default=15, gt=0, le=120)  # each Web API request
    task_timeout_seconds: int = Field(default=600, ge=10, le=86_400)  # how long the server's task may take


class AnalysisSettings(_Strict):
    """How code is analysed and which quality gate it must pass: Checkstyle here, or a SonarQube server."""

    platform: Literal["checkstyle", "sonarqube"] = "checkstyle"
    checkstyle_config: Path | None = None
    quality_gate: QualityGate = QualityGate()  # checkstyle; SonarQube's gate is the server's
    sonarqube: SonarQubeSettings | None = None

    @model_validator(mode="after")
    def _sonarqube_settings_match_platform(self) -> AnalysisSettings:
        if self.platform == "sonarqube" and self.sonarqube is None:
            raise FieldError(("sonarqube",), "required when platform is sonarqube (url, token_env)")
        if self.platform == "checkstyle" and self.sonarqube is not None:
            raise FieldError(("sonarqube",), "only used when platform is sonarqube")
        return self


class CloudBuildSettings(_Strict):
    """Google Cloud Build: where builds run and where their contexts are staged."""

    project: GcpProject
    location: GcpLocation | Literal["global"] = "global"  # a region for a regional pool, e.g. europe-west2
    staging_bucket: GcsBucketName  # the build contexts (tar.gz) go here; a lifecycle rule may delete them
    timeout_seconds: int = Field(default=1200, ge=60, le=86_400)


class BuildSettings(_Strict):
    """Where builds happen and which base image service images start from."""

    # Who builds images: the Docker engine here (default), or Cloud Build where runs are pods without an engine.
    builder: Literal["docker", "cloud_build"] = "docker"
    cloud_build: CloudBuildSettings | None = None

    workspace: Path = Path(".fintech-release/workspaces")
    gradle_executable: Executable = "gradle"
    java_home: Path | None = None
    base_image: BaseImage = "fintech-release/jre:17"
    # The Java modules in the base image (None: the default set).
    jre_modules: tuple[JavaModule, ...] | None = Field(default=None, min_length=1)
    image_namespace: ImageNamespace = "fintech-release"
    timeout_seconds: int = Field(default=1200, ge=10, le=86_400)

    @model_validator(mode="after")
    def _cloud_build_settings_match_builder(self) -> BuildSettings:
        if self.builder == "cloud_build" and self.cloud_build is None:
            raise FieldError(("cloud_build",), "required when builder is cloud_build (project, staging_bucket)")
        if self.builder == "docker" and self.cloud_build is not None:
            raise FieldError(("cloud_build",), "only used when builder is cloud_build")
        return self


class RegistrySettings(_Strict):
    """The image registry: `local` is a registry you run (the demo's on loopback); `artifact_registry` and `gcr` are
    Google's, opened with Application Default Credentials (Workload Identity in GKE), never a key file."""

    platform: Literal["local", "artifact_registry", "gcr"] = "local"
    host: Annotated[str, AfterValidator(formats.check_registry_host)] = "127.0.0.1:5000"  # local: host[:port], no path
    namespace: ImageNamespace | None = None  # local: a path below the host, e.g. team/releases
    tls: bool = False  # local: https (with ca_file for a private CA) instead of plain http
    ca_file: Path | None = None  # local: the CA (PEM) that signed the registry's certificate
    username_env: EnvVarName | None = None  # local: htpasswd / token-service credentials from these variables
    password_env: EnvVarName | None = None
    project: GcpProject | None = None  # artifact_registry, gcr: the Google Cloud project
    location: GcpLocation | None = None  # artifact_registry: e.g. europe-west2; gcr: us, eu or asia (None: gcr.io)
    repository: Annotated[str, StringConstraints(pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")] | None = None
    # How long a push keeps trying while the registry does not answer (e.g. restarts), with back-off.
    retry_seconds: float = Field(default=60, ge=1, le=3600)

    @model_validator(mode="after")
    def _fields_match_platform(self) -> RegistrySettings:
        local_only = ("namespace", "tls", "ca_file", "username_env", "password_env")
        google_only = ("project", "location", "repository")
        if self.platform == "local":
            for name in google_only:
                if name in self.model_fields_set:
                    raise FieldError((name,), "only for platform artifact_registry or gcr (platform is local)")
            if (self.username_env is None) != (self.password_env is None):
                raise FieldError(("password_env" if self.password_env is None else "username_env",),
                                 "username_env and password_env go together")
            if self.ca_file is not None and not self.tls:
                raise FieldError(("ca_file",), "needs tls: true (a CA is for a registry that speaks https)")
            return self
        for name in (*local_only, "host"):
            if name in self.model_fields_set:
                raise FieldError((name,), f"only for platform local (platform is {self.platform}; Google's registries "
                                 "are opened with Application Default Credentials)")
        required = ("project", "location", "repository") if self.platform == "artifact_registry" else ("project",)
        for name in required:
            if getattr(self, name) is None:
                raise FieldError((name,), f"required for platform {self.platform}")
        if self.platform == "gcr" and self.location not in (None, "us", "eu", "asia"):
            raise FieldError(("location",), f"Container Registry is gcr.io, us.gcr.io, eu.gcr.io or asia.gcr.io "
                             f"(location us, eu, asia or none), not {shown(self.location)}")
        return self

    @property
    def registry_host(self) -> str:
        """host[:port] images are pushed to: the local host, LOCATION-docker.pkg.dev or [LOCATION.]gcr.io."""
        if self.platform == "artifact_registry":
            return f"{self.location}-docker.pkg.dev"
        if self.platform == "gcr":
            return f"{self.location}.gcr.io" if self.location else "gcr.io"
        return self.host

    @property
    def path_prefix(self) -> str:
        """The path below the host every service repository lives under: PROJECT/REPOSITORY, PROJECT or namespace."""
        if self.platform == "artifact_registry":
            return f"{self.project}/{self.repository}"
        if self.platform == "gcr":
            return str(self.project)
        return self.namespace or ""


class LocalDatabaseSettings(_Strict):
    """The MariaDB/MySQL server the local platform's environments keep their databases on."""

    host: Host = "127.0.0.1"
    port: Port = 3306
    user: MySqlUser = "fintech_release"
    password_env: EnvVarName = "FINTECH_RELEASE_DB_PASSWORD"


class LocalPlatformSettings(_Strict):
    """Where the local platform keeps what it owns (ingress configuration) and its database server."""

    scope: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")] = "fintech-release"
    state_dir: Path = Path(".fintech-release/state")
    database: LocalDatabaseSettings = LocalDatabaseSettings()


class Autoscaling(_Strict):
    """Pod autoscaling on gke (HorizontalPodAutoscaler); `replicas` is the minimum."""

    max_replicas: int | None = Field(default=None, ge=1, le=100)  # None: twice `replicas`
    cpu_percent: int = Field(default=70, ge=10, le=100)
    memory_percent: int = Field(default=80, ge=10, le=100)


class DeploymentValues(_Strict):
    """How a service runs in an environment (the Helm values, or the local containers)."""

    replicas: int = Field(default=2, ge=1, le=50)
    cpu: Cpu = "250m"
    memory: Memory = "256Mi"
    env: EnvironmentVariables = Field(default_factory=dict)
    autoscaling: Autoscaling = Autoscaling()


class ServiceDeployment(DeploymentValues):
    """Deployment values for every environment, with optional per-environment overrides."""

    environments: dict[EnvironmentName, DeploymentValues] = Field(default_factory=dict)


class Service(_Strict):
    """One microservice: where its code lives, how it builds and how it runs."""

    name: ServiceName
    repository: Annotated[str, AfterValidator(formats.check_not_an_option)]
    branch: BranchName = "master"
    build_tool: Literal["gradle"] = "gradle"
    dockerfile: PathInRepository = "Dockerfile"
    port: Port
    health_path: Annotated[str, AfterValidator(formats.check_http_path)] = "/health"  # readiness: 503 while not ready
    # Start-up and liveness probes on gke (the local runtime restarts only what exits): answered while the process
    # serves at all, so a database outage takes replicas out of traffic (readiness) without restarting them.
    liveness_path: Annotated[str, AfterValidator(formats.check_http_path)] = "/live"
    database: SqlIdentifier | None = None  # each environment's database is <env>_<database> (database_name)
    migrations: PathInRepository | None = "migrations"
    deployment: ServiceDeployment = ServiceDeployment()
    # Who owns the service's releases, shown in the Dagster catalog (default: the file's `owners`).
    owners: tuple[Owner, ...] = ()

    def deployment_in(self, environment: str) -> DeploymentValues:
        """The service's deployment values in `environment`: the environment's override wins field by field.

        Only the fields an override sets replace the service-wide ones (e.g. `production: {replicas: 3}`
        keeps the service's cpu and memory); `env` is merged, the override's variables winning.
        """
        base = self.deployment
        merged = DeploymentValues(
            replicas=base.replicas, cpu=base.cpu, memory=base.memory, env=base.env, autoscaling=base.autoscaling
        )
        override = base.environments.get(environment)
        if override is None:
            return merged
        changes = {name: getattr(override, name) for name in override.model_fields_set if name != "env"}
        return merged.model_copy(update={**changes, "env": {**base.env, **override.env}})


class Approval(_Strict):
    """Who must say yes before a deployment to an environment."""

    required: bool = False
    four_eyes: bool = False  # the approver may not be an author of any commit in the candidate

    @model_validator(mode="after")
    def _four_eyes_needs_an_approval(self) -> Approval:
        if self.four_eyes and not self.required:
            raise ValueError(
                "four_eyes: true needs required: true (four eyes is a rule about who approves; without a required "
                "approval the environment would have no gate at all)"
            )
        return self


class GkeEnvironmentSettings(_Strict):
    """Where a gke environment lives in Google Cloud, and how to reach its cluster and database."""

    project: GcpProject
    region: GcpRegion
    kube_context: str | None = None  # a context in KUBECONFIG; None: the current context
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "fintech"
    cloudsql_instance: Annotated[str, StringConstraints(pattern=CLOUDSQL_INSTANCE_PATTERN)]
    terraform_var_file: Path | None = None  # None: <gke.terraform_dir>/environments/<name>.tfvars
    require_backups_and_failover: bool = False  # checked through the Cloud SQL Admin API before deploying
    # The public host name and the kubernetes.io/tls Secret for it: TLS ends at the ingress, HTTP is redirected.
    ingress_host: Annotated[str, AfterValidator(formats.check_host)] | None = None
    tls_secret: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")] | None = None
    # ESPv2 in front of every service (Cloud Endpoints; Terraform's `services.<name>.endpoints` creates the APIs).
    endpoints: bool = False
    # Where Cloud SQL's private IPs are (the VPC's private services range): the services' egress to port 3307.
    database_cidr: Annotated[str, AfterValidator(formats.check_ipv4_cidr)] = "10.0.0.0/8"


class Environment(_Strict):
    """A place services run: ci (ephemeral), staging, production.

    On the local platform an environment is a label scope on the Docker engine plus its own
    loopback address, where its ingress listens and its replicas bind.
    """

    name: EnvironmentName
    platform: Literal["local", "gke"] = "local"
    ephemeral: bool = False
    approval: Approval = Approval()
    promotes_from: EnvironmentName | None = None
    address: IPv4Address | None = None
    ingress_port: Port = 8000
    auto_rollback: bool = False
    health_window_seconds: float = Field(default=10, ge=1, le=300)
    deploy_after_build: bool = False  # deploy by itself after every successful build_and_push run
    # Between deployments: how often the health watch judges every released service (not for ephemeral ones;
    # 20 s: a crash is seen within 30 s, interval + the daemon's 5 s loop + a look, against Helm's 300 s; each look
    # costs a few Kubernetes API calls per service on gke, so large estates may raise it),
    health_interval_seconds: int = Field(default=20, ge=5, le=3600)
    # whether it brings back the recorded release of a service that turned bad (never a new version),
    self_heal: bool = False
    # and who hears when one turns bad or recovers (default: notifications.email.master_recipients).
    notify: tuple[EmailAddress, ...] = ()
    gke: GkeEnvironmentSettings | None = None
    # A backup of the databases before any pending migration runs (None: yes for environments that promote
    # from another or need four eyes, i.e. production-like ones); nothing migrates when it fails.
    backup_before_migrations: bool | None = None

    @property
    def backs_up_before_migrations(self) -> bool:
        """Whether migrations in this environment are preceded by a backup (the explicit setting, else the default)."""
        if self.backup_before_migrations is not None:
            return self.backup_before_migrations
        return self.promotes_from is not None or self.approval.four_eyes

    @model_validator(mode="after")
    def _tls_needs_a_host(self) -> Environment:
        if self.gke is not None and self.gke.tls_secret and not self.gke.ingress_host:
            raise FieldError(("gke", "tls_secret"), "needs gke.ingress_host (the name the certificate is for)")
        return self

    @model_validator(mode="after")
    def _gke_settings_match_platform(self) -> Environment:
        if self.platform == "gke" and self.gke is None:
            raise FieldError(("gke",), "required when platform is gke (project, region, cloudsql_instance)")
        if self.platform == "local" and self.gke is not None:
            raise FieldError(("gke",), "only allowed when platform is gke")
        if self.deploy_after_build and (self.approval.required or self.promotes_from is not None):
            raise FieldError(
                ("deploy_after_build",),
                "only for environments that deploy the newest pushed images without an approval"
                " (e.g. ci); this one needs an approval or promotes from another environment",
            )
        return self

    @field_validator("address")
    @classmethod
    def _address_is_loopback(cls, value: IPv4Address | None) -> IPv4Address | None:
        if value is not None and not value.is_loopback:
            raise ValueError("must be a loopback address (127.0.0.0/8): local environments never leave the machine")
        return value


class GkePlatformSettings(_Strict):
    """Tools and shared settings of every gke environment."""

    terraform_dir: Path = Path("deploy/terraform")
    terraform_state_bucket: GcsBucketName | None = None  # the GCS bucket deploy/terraform/bootstrap creates
    # A Terraform data dir per environment below it; None: <root>/.terraform-<env>
    terraform_data_dir: Path | None = None
    charts_dir: Path = Path("deploy/charts")
    terraform_executable: Executable = "terraform"
    helm_executable: Executable = "helm"
    helm_timeout_seconds: int = Field(default=600, ge=30, le=86_400)
    # How long an error the kubelet or a controller retries (image pull after a registry 5xx, a Secret
    # that appears, quota, HPA metrics after a rollout) may last before it fails a rollout or pod_health.
    transient_grace_seconds: float = Field(default=60, ge=0, le=300)
    ingress_nginx_chart: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")] = "ingress-nginx"
    ingress_nginx_repo: HttpUrl = "https://kubernetes.github.io/ingress-nginx"
    # A pinned chart version (SemVer), not a range.
    ingress_nginx_version: Annotated[
        str, StringConstraints(pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
    ] = "4.11.3"
    database_user: MySqlUser = "proxy"
    database_password_env: EnvVarName = "FINTECH_RELEASE_CLOUDSQL_PASSWORD"
    database_ip_type: Literal["PRIVATE", "PUBLIC", "PSC"] = "PRIVATE"
    # Terraform's name_prefix: each service's Google service account is <prefix>-<environment>-<service>.
    resource_prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,14}$")] = "fintech"


class BitbucketSettings(_Strict):
    """A Bitbucket Cloud workspace (REST 2.0) or a Bitbucket Server / Data Center project (REST 1.0)."""

    flavor: Literal["cloud", "server"]
    base_url: HttpUrl | None = None  # None: https://api.bitbucket.org/2.0 for cloud; required for server
    # cloud: the workspace; server: the project key (~user for a personal project)
    owner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_~][A-Za-z0-9_.-]*$")]
    username_env: EnvVarName | None = None  # app passwords (cloud) need a username; tokens do not
    token_env: EnvVarName = "FINTECH_RELEASE_BITBUCKET_TOKEN"
    timeout_seconds: float = Field(default=15, gt=0, le=120)

    @model_validator(mode="after")
    def _server_needs_base_url(self) -> BitbucketSettings:
        if self.flavor == "server" and self.base_url is None:
            raise FieldError(("base_url",), "required for Bitbucket Server (e.g. https://bitbucket.example.com)")
        return self


class SourceSettings(_Strict):
    """Where commits come from and which branches the commit sensor watches."""

    platform: Literal["local", "bitbucket"] = "local"
    bitbucket: BitbucketSettings | None = None
    branch_patterns: tuple[str, ...] = ()  # fnmatch patterns of other branches to build, e.g. "feature/*"
    poll_interval_seconds: int = Field(default=60, ge=5, le=3600)

    @model_validator(mode="after")
    def _bitbucket_settings_match_platform(self) -> SourceSettings:
        if self.platform == "bitbucket" and self.bitbucket is None:
            raise FieldError(("bitbucket",), "required when platform is bitbucket")
        return self


class EmailSettings(_Strict):
    """SMTP delivery of CI results: master to a group, other branches to the commit author."""

    host: Host = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None
    sender: EmailAddress = "fintech-release@localhost"
    master_recipients: tuple[EmailAddress, ...] = ()
    attempts: int = Field(default=3, ge=1, le=10)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    ca_file: Path | None = None  # CA bundle (PEM) for a server with a private certificate (starttls/tls)


class NotificationSettings(_Strict):
    """Who hears about CI results, and where run links point."""

    dagster_url: HttpUrl = "http://127.0.0.1:3000"
    email: EmailSettings | None = None
    bitbucket_build_status: bool = True  # publish INPROGRESS/SUCCESSFUL/FAILED when the source is Bitbucket


class WebhookSettings(_Strict):
    """The endpoint Bitbucket push events arrive at; runs are launched on the Dagster webserver."""

    host: Host = "127.0.0.1"
    port: Port = 8089
    secret_env: EnvVarName = "FINTECH_RELEASE_WEBHOOK_SECRET"
    dagster_graphql_url: HttpUrl = "http://127.0.0.1:3000/graphql"
    # The record of accepted deliveries and the launches they owe (SQLite); one webhook process per directory.
    state_dir: Path = Path(".fintech-release/webhook")


class ReleaseConfig(_Strict):
    """The whole of release.yaml."""

    source: Path = Field(default=Path("release.yaml"), exclude=True)
    build: BuildSettings = BuildSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    registry: RegistrySettings = RegistrySettings()
    local: LocalPlatformSettings = LocalPlatformSettings()
    gke: GkePlatformSettings = GkePlatformSettings()
    source_control: SourceSettings = SourceSettings()
    notifications: NotificationSettings = NotificationSettings()
    webhook: WebhookSettings = WebhookSettings()
    # Who owns the release itself (the build, the registry, the environments), shown in the Dagster catalog.
    owners: tuple[Owner, ...] = ()
    services: tuple[Service, ...] = Field(min_length=1)
    environments: tuple[Environment, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> ReleaseConfig:
        _require_unique("services", "name", [s.name for s in self.services])
        _require_unique("environments", "name", [e.name for e in self.environments])
        known = {e.name for e in self.environments}
        declared = f"(declared: {', '.join(sorted(known))})"
        for index, env in enumerate(self.environments):
            if env.promotes_from is not None and env.promotes_from not in known:
                raise FieldError(
                    ("environments", index, "promotes_from"),
                    f"unknown environment {shown(env.promotes_from)} {declared}",
                )
        for index, service in enumerate(self.services):
            for env_name in service.deployment.environments:
                if env_name not in known:
                    raise FieldError(
                        ("services", index, "deployment", "environments", env_name),
                        f"unknown environment {shown(env_name)} {declared}",
                    )
        _require_unique("services", "port", [s.port for s in self.services])
        return self

    @model_validator(mode="after")
    def _remote_builds_reach_the_registry(self) -> ReleaseConfig:
        """Cloud Build pushes to the registry and pulls the base image from it: both must be Google's."""
        if self.build.builder != "cloud_build":
            return self
        if self.registry.platform == "local":
            raise FieldError(("build", "builder"), "cloud_build pushes to the registry: it needs registry.platform "
                             "artifact_registry or gcr (Cloud Build cannot reach a local registry)")
        home = f"{self.registry.registry_host}/{self.registry.path_prefix}/"
        if not self.build.base_image.startswith(home):
            raise FieldError(("build", "base_image"), f"Cloud Build pulls the base image: it must be in the registry, "
                             f"e.g. {home}jre:17 (got {shown(self.build.base_image)})")
        return self

    @model_validator(mode="after")
    def _promotions_start_somewhere(self) -> ReleaseConfig:
        """Every promotion chain ends at an environment that deploys built images: no self-reference, no cycle."""
        source_of = {e.name: e.promotes_from for e in self.environments}
        for index, env in enumerate(self.environments):
            chain = [env.name]
            while (upstream := source_of[chain[-1]]) is not None and upstream not in chain:
                chain.append(upstream)
            if upstream == env.name:
                where = ("environments", index, "promotes_from")
                if len(chain) == 1:
                    raise FieldError(where, f"{shown(env.name)} cannot promote from itself")
                raise FieldError(
                    where,
                    f"{shown(env.promotes_from)} makes a promotion cycle ({' → '.join([*chain, env.name])}); "
                    "the first environment of a chain deploys built images and has no promotes_from",
                )
        return self

    @model_validator(mode="after")
    def _local_addresses_are_distinct(self) -> ReleaseConfig:
        """Local environments listen on loopback addresses of their own (set, or 127.0.<position + 1>.1)."""
        first_at: dict[str, int] = {}
        for index, env in enumerate(self.environments):
            if env.platform != "local":
                continue
            where = ("environments", index, "address") if env.address else ("environments", index)
            if env.address is None and index + 1 > 255:
                raise FieldError(where, "needs an address: the default 127.0.<position + 1>.1 stops at 255")
            address = self.environment_address(env.name)
            if address in first_at:
                other = self.environments[first_at[address]]
                how = "set" if other.address else "its default 127.0.<position + 1>.1"
                mine = "" if env.address else " (this environment's default address)"
                raise FieldError(
                    where,
                    f"{address}{mine} is also the address of environments[{first_at[address]}] {other.name!r} ({how}); "
                    "give each local environment its own address",
                )
            first_at[address] = index
        return self

    @model_validator(mode="after")
    def _autoscaling_reaches_replicas(self) -> ReleaseConfig:
        """In every environment, after overrides are merged, the autoscaler's ceiling is at least `replicas`."""
        for index, service in enumerate(self.services):
            overrides = service.deployment.environments
            for env in self.environments:
                override = overrides.get(env.name)
                values = service.deployment if override is None else service.deployment_in(env.name)
                ceiling = values.autoscaling.max_replicas
                if ceiling is None or ceiling >= values.replicas:
                    continue
                where: tuple[str | int, ...] = ("services", index, "deployment")
                changed = override.model_fields_set if override is not None else set()
                if "autoscaling" in changed:
                    where += ("environments", env.name, "autoscaling", "max_replicas")
                elif "replicas" in changed:
                    where += ("environments", env.name, "replicas")
                else:
                    where += ("autoscaling", "max_replicas")
                raise FieldError(
                    where,
                    f"max_replicas {ceiling} is below replicas {values.replicas} in environment {env.name!r}; "
                    "raise max_replicas or lower replicas",
                )
        return self

    @model_validator(mode="after")
    def _databases_fit_mysql(self) -> ReleaseConfig:
        """Each service's database name fits MySQL in every environment, and no two services share one."""
        owner: dict[tuple[str, str], tuple[int, str]] = {}
        for index, service in enumerate(self.services):
            if service.database is None:
                continue
            where = ("services", index, "database")
            for env in self.environments:
                name = database_name(env.name, service.database)
                if len(name) > MYSQL_NAME_MAX:
                    raise FieldError(
                        where,
                        f"{service.database!r} becomes database {name!r} in environment {env.name!r}: "
                        f"{len(name)} characters, MySQL allows {MYSQL_NAME_MAX}",
                    )
                # Local environments share one database server; each gke environment has its own instance.
                server = "local" if env.platform == "local" else env.name
                first_index, first_env = owner.setdefault((server, name.lower()), (index, env.name))
                if first_index != index:
                    raise FieldError(
                        where,
                        f"{service.database!r} becomes database {name!r} in environment {env.name!r}, which "
                        f"services[{first_index}] ({self.services[first_index].name}) uses in {first_env!r}; "
                        "each service needs its own database",
                    )
        return self

    @model_validator(mode="after")
    def _repositories_fit_the_source(self) -> ReleaseConfig:
        if self.source_control.platform == "bitbucket":
            for index, service in enumerate(self.services):
                if not re.fullmatch(BITBUCKET_SLUG_PATTERN, service.repository):
                    raise FieldError(
                        ("services", index, "repository"),
                        f"{shown(service.repository)} is not a Bitbucket repository slug; with source_control.platform "
                        "bitbucket it names the repository inside the workspace or project "
                        "(source_control.bitbucket.owner), e.g. contact-us",
                    )
        # The commit sensor's cursor and the webhook find a service by its repository: one repository, one service.
        first_with: dict[str, int] = {}
        for index, service in enumerate(self.services):
            reference = self.repository_ref(service)
            if reference in first_with:
                raise FieldError(
                    ("services", index, "repository"),
                    f"{shown(service.repository)} is also services[{first_with[reference]}].repository; "
                    "each service needs its own repository",
                )
            first_with[reference] = index
        return self

    @property
    def service_names(self) -> list[str]:
        """Service names in file order: the partition keys of every per-service asset."""
        return [s.name for s in self.services]

    @cached_property
    def services_by_name(self) -> Mapping[str, Service]:
        """Every service by its name, built once (the model is frozen): `service` is called once per service and
        environment when the definitions are built, so a scan of `services` each time would grow with the square.
        (`model_copy(update={"services": …})` would carry this over unchanged: validate a new config instead.)"""
        return MappingProxyType({service.name: service for service in self.services})

    def service(self, name: str) -> Service:
        """The service called `name`; KeyError naming the known services otherwise."""
        try:
            return self.services_by_name[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r} (known: {', '.join(self.service_names)})") from None

    def owners_of(self, service: str) -> list[str]:
        """The owners of `service`'s releases: its own, else the file's."""
        return list(self.service(service).owners or self.owners)

    def environment(self, name: str) -> Environment:
        """The environment called `name`; KeyError naming the known environments otherwise."""
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(f"unknown environment {name!r} (known: {', '.join(e.name for e in self.environments)})")

    def environment_address(self, name: str) -> str:
        """Where a local environment listens: its `address`, else 127.0.<position + 1>.1."""
        environment = self.environment(name)
        if environment.address is not None:
            return str(environment.address)
        return f"127.0.{self.environments.index(environment) + 1}.1"

    def repository_ref(self, service: Service) -> str:
        """What the source control takes for `service`: the Bitbucket slug as written, or an absolute local path."""
        if self.source_control.platform == "bitbucket":
            return service.repository
        return str(self.resolve_path(service.repository))

    def resolve_path(self, path: str | Path) -> Path:
        """A path from release.yaml, made absolute against the folder holding the file."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.source.parent / candidate).resolve()


def database_name(environment: str, database: str) -> str:
    """The MySQL database of `database` in `environment`: <env>_<database>, '-' as '_' (e.g. pre_prod_payments)."""
    return f"{environment}_{database}".replace("-", "_")


# What Terraform creates for a service with a database on gke (deploy/terraform: modules/cloudsql, k8s_secrets).
def cloudsql_user(database: str, role: Literal["migration", "application"]) -> str:
    """The Cloud SQL user of a service's `database`: <database>_mig (migrations) or <database>_app (the service)."""
    return f"{database}_{'mig' if role == 'migration' else 'app'}"


def cloudsql_secret(service: str, role: Literal["migration", "application"]) -> str:
    """The Kubernetes Secret holding that user's password (key `password`): <service>-db-migration or <service>-db."""
    return f"{service}-db-migration" if role == "migration" else f"{service}-db"


def _require_unique(collection: str, field: str, values: list[object]) -> None:
    first_at: dict[object, int] = {}
    for index, value in enumerate(values):
        if value in first_at:
            raise FieldError(
                (collection, index, field), f"duplicate value {shown(value)} (also {collection}[{first_at[value]}])"
            )
        first_at[value] = index
