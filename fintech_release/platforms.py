"""Which resources serve an environment: its platform picks them, by resource key.

Local environments use `runtime`, `ingress` and `database` (Docker engine, nginx, MariaDB on
loopback); gke environments use `gke_runtime`, `gke_ingress` and `gke_database_<env>` (Terraform +
Helm + the Kubernetes API, ingress-nginx, and each environment's own CloudSQL instance). One release.yaml may mix
both, e.g. a local ci in front of gke staging and production. The keys show in the UI next to every asset that uses
them.
"""

from typing import NamedTuple

from fintech_release.config import Environment
from fintech_release.records.keys import dagster_name


class PlatformKeys(NamedTuple):
    """The resource keys and UI kinds of one platform."""

    runtime: str
    ingress: str
    database: str
    cluster_kinds: frozenset[str]
    database_kinds: frozenset[str]
    ingress_kinds: frozenset[str]
    release_kinds: frozenset[str]


LOCAL = PlatformKeys(
    runtime="runtime",
    ingress="ingress",
    database="database",
    cluster_kinds=frozenset({"docker"}),
    database_kinds=frozenset({"mysql"}),
    ingress_kinds=frozenset({"nginx"}),
    release_kinds=frozenset({"docker"}),
)
GKE = PlatformKeys(
    runtime="gke_runtime",
    ingress="gke_ingress",
    database="gke_database_<env>",  # replaced per environment by platform_keys
    cluster_kinds=frozenset({"terraform", "gke"}),
    database_kinds=frozenset({"cloudsql", "mysql"}),
    ingress_kinds=frozenset({"helm", "nginx"}),
    release_kinds=frozenset({"helm", "kubernetes"}),
)
# The Cloud SQL Admin API check of environments with `gke.require_backups_and_failover`.
CLOUDSQL_ADMIN_KEY = "gke_cloudsql_admin"


def platform_keys(environment: Environment) -> PlatformKeys:
    """The resource keys serving `environment`."""
    if environment.platform == "gke":
        return GKE._replace(database=gke_database_key(environment.name))
    return LOCAL


def gke_database_key(environment: str) -> str:
    """The resource key of a gke environment's CloudSQL instance (one instance per environment)."""
    return f"gke_database_{dagster_name(environment)}"
