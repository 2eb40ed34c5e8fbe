"""`KubernetesCluster`: reads what the cluster holds for one service, through the official `kubernetes` client.

Every call names the environment it works for, the kube context and the namespace, so one
resource serves every gke environment. Objects are found by the labels the `microservice` chart
sets (`io.fintech-release/service`, `io.fintech-release/environment`). Each call loads the
kubeconfig (on GKE that runs the auth plugin) and opens an API client once; a health watch reuses
them for all its looks. Connection failures are retried a bounded number of times; a cluster
that stays unreachable, or credentials that are missing or refused, become an `ExternalSystemError`
naming the environment and what to do.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import TypeVar

import urllib3
from dagster import ConfigurableResource
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException, V1Deployment
from kubernetes.config import ConfigException
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fintech_release.errors import ExternalSystemError
from fintech_release.health.model import ServiceHealth
from fintech_release.health.kubernetes import ENVIRONMENT_LABEL, SERVICE_LABEL, ServiceObjects, is_failing_fast, judge

T = TypeVar("T")
CREDENTIALS_HINT = (
    "fetch credentials with `gcloud container clusters get-credentials <cluster> --region <region> --project"
    " <project>`, or point KUBECONFIG (or the resource's kubeconfig) at a file with that context"
)


class KubernetesCluster(ConfigurableResource):
    """Read-only access to the Deployments, Pods, HPAs and Ingresses of gke environments."""

    kubeconfig: str | None = None  # None: $KUBECONFIG, else ~/.kube/config
    request_timeout_seconds: float = Field(default=10, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # per read, on connection errors and 5xx/429 answers
    poll_seconds: float = Field(default=2, gt=0)  # between two looks in `watch_health`

    def read_service(
        self, *, environment: str, kube_context: str | None, namespace: str, service: str
    ) -> ServiceObjects:
        """The service's Deployment, its live pods, its autoscalers and the environment's ingresses."""
        with self._api(environment, kube_context) as api:
            return self._read_service(api, environment, kube_context, namespace, service)

    def read_deployment(
        self, *, environment: str, kube_context: str | None, namespace: str, service: str
    ) -> V1Deployment | None:
        """The service's Deployment in the environment, or None when it is not deployed."""
        selector = f"{SERVICE_LABEL}={service},{ENVIRONMENT_LABEL}={environment}"
        with self._api(environment, kube_context) as api:
            found = self._list(
                partial(client.AppsV1Api(api).list_namespaced_deployment, namespace), selector,
                (environment, kube_context, namespace),
            )
        return _only_deployment(found.items, environment, namespace, service)

    def watch_health(
        self,
        *,
        environment: str,
        kube_context: str | None,
        namespace: str,
        service: str,
        desired_replicas: int,
        expected_image: str | None,
        window_seconds: float,
        stop_when_healthy: bool = True,
        since: datetime | None = None,
    ) -> ServiceHealth:
        """Look every `poll_seconds` until a fail-fast state, the end of the window, or (optionally) health.

        With `stop_when_healthy=False` a healthy service is watched for the whole window, so a pod
        that dies a few seconds after it got ready is still caught. Restarts before `since` (a
        timezone-aware time; None: every restart) neither fail the service nor end the watch.
        """
        deadline = time.monotonic() + window_seconds
        # One kubeconfig load (on GKE: one run of the auth exec plugin) and one API client for the whole watch.
        with self._api(environment, kube_context) as api:
            while True:
                objects = self._read_service(api, environment, kube_context, namespace, service)
                health = judge(
                    objects, environment=environment, service=service, desired_replicas=desired_replicas,
                    expected_image=expected_image, since=since,
                )
                if (
                    (stop_when_healthy and health.healthy)
                    or is_failing_fast(objects, service, since)
                    or time.monotonic() >= deadline
                ):
                    return health
                time.sleep(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))

    def _read_service(
        self, api: ApiClient, environment: str, kube_context: str | None, namespace: str, service: str
    ) -> ServiceObjects:
        service_selector = f"{SERVICE_LABEL}={service},{ENVIRONMENT_LABEL}={environment}"
        environment_selector = f"{ENVIRONMENT_LABEL}={environment}"
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        autoscaling, networking = client.AutoscalingV2Api(api), client.NetworkingV1Api(api)
        where = (environment, kube_context, namespace)
        deployments = self._list(partial(apps.list_namespaced_deployment, namespace), service_selector, where)
        pods = self._list(partial(core.list_namespaced_pod, namespace), service_selector, where)
        hpas = self._list(
            partial(autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace), service_selector, where
        )
        ingresses = self._list(partial(networking.list_namespaced_ingress, namespace), environment_selector, where)
        return ServiceObjects(
            deployment=_only_deployment(deployments.items, environment, namespace, service),
            pods=sorted(pods.items, key=lambda pod: pod.metadata.name),
            autoscalers=hpas.items,
            ingresses=ingresses.items,
        )

    @contextmanager
    def _api(self, environment: str, kube_context: str | None) -> Iterator[ApiClient]:
        """An API client for `kube_context` (None: the kubeconfig's current context), closed after use."""
        configuration = client.Configuration()
        path = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            config.load_kube_config(
                config_file=path, context=kube_context, client_configuration=configuration, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            raise ExternalSystemError(
                f"environment {environment!r}: no usable Kubernetes credentials for context"
                f" {kube_context or '(current)'} in {path}: {exc}. To fix: {CREDENTIALS_HINT}"
            ) from None
        configuration.retries = False  # tenacity owns the retries (bounded, with back-off)
        api = ApiClient(configuration)
        try:
            yield api
        finally:
            api.close()

    def _list(self, list_call: Callable[..., T], selector: str, where: tuple[str, str | None, str]) -> T:
        """`list_call(label_selector=…, _request_timeout=…)` with bounded retries; errors name `where`."""
        environment, kube_context, namespace = where
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.5, max=5),
                retry=retry_if_exception(_transient),
                reraise=True,
            ):
                with attempt:
                    return list_call(label_selector=selector, _request_timeout=self.request_timeout_seconds)
        except ApiException as exc:
            raise _api_error(exc, environment, kube_context, namespace) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ExternalSystemError(
                f"environment {environment!r}: the Kubernetes API server of context {kube_context or '(current)'}"
                f" did not answer after {self.attempts} attempts ({type(exc).__name__}). Check the cluster exists"
                f" and is reachable from here (VPN, authorized networks); {CREDENTIALS_HINT}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504)
    return isinstance(exc, urllib3.exceptions.HTTPError)


def _api_error(exc: ApiException, environment: str, kube_context: str | None, namespace: str) -> ExternalSystemError:
    where = f"environment {environment!r} (context {kube_context or '(current)'}, namespace {namespace!r})"
    if exc.status in (401, 403):
        return ExternalSystemError(
            f"{where}: the Kubernetes API refused the credentials (HTTP {exc.status} {exc.reason}). The account needs"
            f" read access to deployments, pods, horizontalpodautoscalers and ingresses there; {CREDENTIALS_HINT}"
        )
    return ExternalSystemError(f"{where}: the Kubernetes API answered HTTP {exc.status} {exc.reason}")


def _only_deployment(
    items: list[V1Deployment], environment: str, namespace: str, service: str
) -> V1Deployment | None:
    if len(items) > 1:
        names = ", ".join(sorted(item.metadata.name for item in items))
        raise ExternalSystemError(
            f"environment {environment!r}, namespace {namespace!r}: {len(items)} Deployments are labelled"
            f" {SERVICE_LABEL}={service} ({names}); keep one (the Helm release's) and delete the others"
        )
    return items[0] if items else None
