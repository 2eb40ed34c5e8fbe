"""`GkeIngress`: an environment's entry point on GKE - ingress-nginx, then our ingress-rules chart.

`ensure` installs the upstream ingress-nginx chart (repository and version pinned in release.yaml)
into the cluster's `ingress-nginx` namespace, then `deploy/charts/ingress-rules` into the
environment's namespace: one route `/<service>(/|$)(.*)` per service, rewritten to `/$2`.
Kubernetes Services send traffic only to ready pods, so `set_backends` changes nothing here.
`remove` uninstalls both releases.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Config

from fintech_release.chart_values import ingress_values
from fintech_release.errors import ReleaseConfigError
from fintech_release.resources.helm import HelmRunner
from fintech_release.resources.ingress import Ingress, IngressInfo

INGRESS_NGINX_NAMESPACE = "ingress-nginx"
INGRESS_NGINX_RELEASE = "ingress-nginx"
ROUTES_RELEASE = "fintech-routes"


class GkeIngressTarget(Config):
    """Where one environment's ingress goes: the namespace of its services and the kube context of its cluster."""

    namespace: str = "fintech"
    kube_context: str | None = None  # None: the HelmRunner's (or the kubeconfig's current) context
    host: str | None = None  # the public host name (None: any)
    tls_secret: str | None = None  # kubernetes.io/tls Secret for `host`: TLS ends at the ingress, HTTP redirects


class GkeIngress(Ingress):
    """ingress-nginx plus the ingress-rules chart, installed with Helm into each environment's cluster."""

    helm: HelmRunner
    charts_dir: str  # holds the ingress-rules chart (release.yaml gke.charts_dir)
    ingress_nginx_chart: str = "ingress-nginx"
    ingress_nginx_repo: str = "https://kubernetes.github.io/ingress-nginx"
    ingress_nginx_version: str = "4.11.3"
    ingress_nginx_replicas: int = 2
    environments: dict[str, GkeIngressTarget]  # environment name -> namespace and kube context
    service_ports: dict[str, int]  # service name -> the port its Kubernetes Service listens on

    def ensure(self, *, environment: str, address: str, port: int, services: list[str]) -> IngressInfo:
        """Install or upgrade ingress-nginx, then the routes to `services`.

        `address` and `port` belong to the local platform; on GKE the controller's Service decides them.
        """
        unknown = sorted(set(services) - set(self.service_ports))
        if unknown:
            raise ReleaseConfigError(
                f"environment {environment!r}: no port known for service(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(self.service_ports))})"
            )
        target, helm = self._target(environment), self._helm(environment)
        helm.upgrade_install(
            environment=environment,
            service=INGRESS_NGINX_RELEASE,
            release=INGRESS_NGINX_RELEASE,
            chart=self.ingress_nginx_chart,
            repo=self.ingress_nginx_repo,
            version=self.ingress_nginx_version,
            namespace=INGRESS_NGINX_NAMESPACE,
            values={
                "controller": {
                    "replicaCount": self.ingress_nginx_replicas,
                    "ingressClassResource": {"name": "nginx"},
                }
            },
        )
        helm.upgrade_install(
            environment=environment,
            service="ingress-rules",
            release=ROUTES_RELEASE,
            chart=Path(self.charts_dir) / "ingress-rules",
            namespace=target.namespace,
            values=ingress_values(
                environment,
                {name: self.service_ports[name] for name in services},
                host=target.host,
                tls_secret=target.tls_secret,
            ),
        )
        return self._info(environment, services)

    def set_backends(self, *, environment: str, service: str, backends: list[str]) -> IngressInfo:
        """Nothing to do: the Service of `service` routes to its ready pods by itself."""
        return self._info(environment, sorted(self.service_ports))

    def remove(self, *, environment: str) -> list[str]:
        """Uninstall the routes, then ingress-nginx; return the releases removed."""
        target, helm = self._target(environment), self._helm(environment)
        removed = []
        for release, service, namespace in (
            (ROUTES_RELEASE, "ingress-rules", target.namespace),
            (INGRESS_NGINX_RELEASE, INGRESS_NGINX_RELEASE, INGRESS_NGINX_NAMESPACE),
        ):
            helm.uninstall(environment=environment, service=service, release=release, namespace=namespace)
            removed.append(f"helm release {release} (namespace {namespace})")
        return removed

    def _target(self, environment: str) -> GkeIngressTarget:
        try:
            return self.environments[environment]
        except KeyError:
            raise ReleaseConfigError(
                f"environment {environment!r} is not a gke environment of this ingress"
                f" (known: {', '.join(sorted(self.environments))})"
            ) from None

    def _helm(self, environment: str) -> HelmRunner:
        """The HelmRunner pointed at `environment`'s cluster."""
        return self.helm.for_context(self._target(environment).kube_context)

    def _info(self, environment: str, services: list[str]) -> IngressInfo:
        namespace = self._target(environment).namespace
        return IngressInfo(
            environment=environment,
            url=f"http://{INGRESS_NGINX_RELEASE}-controller.{INGRESS_NGINX_NAMESPACE}.svc.cluster.local",
            routes={name: [f"{name}.{namespace}.svc.cluster.local:{self.service_ports[name]}"] for name in services},
        )
