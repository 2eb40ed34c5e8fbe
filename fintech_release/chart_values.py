"""Helm values for the charts under deploy/charts, computed from release.yaml.

`service_values` gives the `microservice` chart's values for one service in one environment (what
`GkeRuntime` deploys); `ingress_values` gives the `ingress-rules` chart's values for an environment (what
`GkeIngress` installs). The charts' values.schema.json files are the contract: everything returned here
must validate against them.

On a gke environment a service also gets what Terraform made for it, found by the same names
(deploy/terraform): its Google service account `<resource_prefix>-<env>-<service>` (Workload Identity),
and, when it has a database, the Cloud SQL Auth Proxy sidecar, the user `<database>_app` and its password
as the file of the Secret `<service>-db`: the service reads DB_HOST (127.0.0.1), DB_PORT, DB_NAME, DB_USER
and DB_PASSWORD_FILE, never a password from its environment.
"""

from __future__ import annotations

import re

from fintech_release.config.models import (
    Environment,
    GkeEnvironmentSettings,
    ReleaseConfig,
    Service,
    cloudsql_secret,
    cloudsql_user,
    database_name,
)
from fintech_release.errors import ReleaseConfigError

# registry[:port]/path@sha256:<64 hex>: the only form of image reference a release may deploy.
PINNED_IMAGE = re.compile(r"^(?P<repository>[a-z0-9][a-z0-9._\-/:]*[a-z0-9])@(?P<digest>sha256:[a-f0-9]{64})$")


def service_values(
    config: ReleaseConfig, environment: Environment, service: str, image: str, env: dict[str, str]
) -> dict:
    """Values of the `microservice` chart for `service` in `environment`, running the pinned `image`.

    `image` must be `registry/path@sha256:<digest>`; `env` is the runtime settings to run with
    (APP_ENV defaults to the environment's name). Raises `ReleaseConfigError` naming the service
    and environment when the image is not pinned or autoscaling cannot reach `replicas`.
    """
    where = f"service {service!r} in environment {environment.name!r}"
    pinned = PINNED_IMAGE.match(image)
    if pinned is None or re.search(r":[^/]*$", pinned["repository"]):
        raise ReleaseConfigError(
            f"{where}: image {image!r} is not pinned by digest; deploy registry/path@sha256:<64 hex digits>"
        )
    definition = config.service(service)
    values = definition.deployment_in(environment.name)
    autoscaling = values.autoscaling
    max_replicas = autoscaling.max_replicas if autoscaling.max_replicas is not None else 2 * values.replicas
    if max_replicas < values.replicas:
        raise ReleaseConfigError(
            f"{where}: deployment.autoscaling.max_replicas ({max_replicas}) is below replicas ({values.replicas});"
            " raise max_replicas or lower replicas in release.yaml"
        )
    resources = {"cpu": values.cpu, "memory": values.memory}
    chart_values: dict = {
        "environment": environment.name,
        "service": service,
        "image": {"repository": pinned["repository"], "digest": pinned["digest"]},
        "port": definition.port,
        "healthPath": definition.health_path,
        "livenessPath": definition.liveness_path,
        "replicas": values.replicas,
        # Requests equal to limits: the Guaranteed QoS class, so a busy node never evicts these pods first.
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "autoscaling": {
            "enabled": True,
            "maxReplicas": max_replicas,
            "cpuPercent": autoscaling.cpu_percent,
            "memoryPercent": autoscaling.memory_percent,
        },
        "env": {"APP_ENV": environment.name, **env},
    }
    if environment.gke is not None:
        chart_values.update(_gke_values(config, environment.name, environment.gke, definition))
    return chart_values


def _gke_values(config: ReleaseConfig, environment: str, gke: GkeEnvironmentSettings, service: Service) -> dict:
    """Workload identity, network policy, database and ESPv2 values of `service` in the gke `environment`."""
    account = f"{config.gke.resource_prefix}-{environment}-{service.name}@{gke.project}.iam.gserviceaccount.com"
    values: dict = {
        "serviceAccount": {"gcpServiceAccount": account},
        "networkPolicy": {"enabled": True, "googleApis": True, "databaseCidr": gke.database_cidr},
        "esp": {"enabled": gke.endpoints, "serviceName": f"{service.name}.endpoints.{gke.project}.cloud.goog"},
    }
    if service.database is not None:
        values["database"] = {
            "enabled": True,
            "instanceConnectionName": gke.cloudsql_instance,
            "name": database_name(environment, service.database),
            "user": cloudsql_user(service.database, "application"),
            "secretName": cloudsql_secret(service.name, "application"),
            "proxy": {"privateIp": config.gke.database_ip_type == "PRIVATE"},
        }
    return values


def ingress_values(
    environment: str, service_ports: dict[str, int], host: str | None = None, tls_secret: str | None = None
) -> dict:
    """Values of the `ingress-rules` chart: a route /<service>/… to each service, at its Service's port.

    With `tls_secret` (a kubernetes.io/tls Secret for `host`) the ingress terminates TLS and redirects HTTP.
    """
    return {
        "environment": environment,
        "ingressClassName": "nginx",
        "host": host or "",
        "tls": {"secretName": tls_secret or ""},
        "services": [{"name": name, "port": port} for name, port in service_ports.items()],
    }
