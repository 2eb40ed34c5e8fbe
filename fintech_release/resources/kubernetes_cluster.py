"""`KubernetesCluster`: reads what the cluster holds for one service, through the official `kubernetes` client.

It also reads one key of a Secret (`read_secret_value`): the migration user's password, which Terraform
writes only to Cloud SQL and to the Secret `<service>-db-migration`. The value is returned to the
caller and nowhere else: errors name the Secret and the key, never the data.

Every call names the environment it works for, the kube context and the namespace, so one
resource serves every gke environment. Objects are found by the labels the `microservice` chart
sets (`io.fintech-release/service`, `io.fintech-release/environment`). Each call loads the
kubeconfig (on GKE that runs the auth plugin) and opens an API client once; a health watch reuses
them for all its looks. Connection failures are retried a bounded number of times; a cluster
that stays unreachable, or credentials that are missing or refused, become an `ExternalSystemError`
naming the environment and what to do.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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
from fintech_release.health.kubernetes import (
    ENVIRONMENT_LABEL,
    SERVICE_LABEL,
    TRANSIENT_GRACE_SECONDS,
    ServiceObjects,
    Timeline,
    Verdict,
    evaluate,
)

T = TypeVar("T")
CREDENTIALS_HINT = (
    "fetch credentials with `gcloud container clusters get-credentials <cluster> --region <region> --project"
    " <project>`, or point KUBECONFIG (or the resource's kubeconfig) at a file with that context"
)


class KubernetesCluster(ConfigurableResource):
    """Read-only access to the Deployments, ReplicaSets, Pods, HPAs, Ingresses and named Secrets of gke environments."""

    kubeconfig: str | None = None  # None: $KUBECONFIG, else ~/.kube/config
    request_timeout_seconds: float = Field(default=10, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # per read, on connection errors and 5xx/429 answers
    poll_seconds: float = Field(default=2, gt=0)  # between two looks in `watch_health`
    # How long errors the kubelet or a controller retries may last before they fail (gke.transient_grace_seconds).
    transient_grace_seconds: float = Field(default=TRANSIENT_GRACE_SECONDS, ge=0)

    def read_service(
        self, *, environment: str, kube_context: str | None, namespace: str, service: str
    ) -> ServiceObjects:
        """The service's Deployment, ReplicaSets and pods, its autoscalers and the environment's ingresses."""
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

    def read_secret_value(
        self, *, environment: str, kube_context: str | None, namespace: str, name: str, key: str
    ) -> str:
        """The value under `key` of the Secret `name` in `namespace`, decoded; never logged or put in an error."""
        where = (environment, kube_context, namespace)
        with self._api(environment, kube_context) as api:
            read = partial(
                client.CoreV1Api(api).read_namespaced_secret, name, namespace,
                _request_timeout=self.request_timeout_seconds,
            )
            secret = self._call(
                read, where, needs=f"get on the Secret {name!r}",
                missing=f"Secret {name!r} does not exist; Terraform's k8s_secrets module creates it: apply the "
                "environment's Terraform",
            )
        encoded = (secret.data or {}).get(key)
        place = f"environment {environment!r}: Secret {name!r} in namespace {namespace!r}"
        if not encoded:
            raise ExternalSystemError(f"{place} has no key {key!r}; Terraform's k8s_secrets module writes it")
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise ExternalSystemError(f"{place}: the value of {key!r} is not base64-encoded UTF-8 text") from None

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
        until_rolled_out: bool = False,
        since: datetime | None = None,
    ) -> Verdict:
        """Look every `poll_seconds` and return the last verdict; never longer than the window (+ the grace period).

        `until_rolled_out` (a deployment; the window is helm's timeout): stop once the rollout
        finished or cannot succeed; problems that are not the rollout's (an autoscaler, an ingress)
        neither end nor fail it. Otherwise (`pod_health`): watch the whole window, so a pod that dies
        a few seconds after it got ready is caught, stop at the first failure, and while a retried
        error is still within its grace period at the window's end, look on until it is decided (at
        most the grace period longer). Restarts before `since` (timezone-aware; None: every restart)
        neither fail the service nor end the watch. The watch remembers when it first saw each
        retried error (`Verdict.retried`): that is where its grace period starts.
        """
        deadline = time.monotonic() + window_seconds
        settle_by = deadline + (0 if until_rolled_out else self.transient_grace_seconds)
        first_seen: dict[str, datetime] = {}
        # One kubeconfig load (on GKE: one run of the auth exec plugin) and one API client for the whole watch.
        with self._api(environment, kube_context) as api:
            while True:
                objects = self._read_service(api, environment, kube_context, namespace, service)
                now = datetime.now(UTC)
                verdict = evaluate(
                    objects, environment=environment, service=service, desired_replicas=desired_replicas,
                    expected_image=expected_image, since=since,
                    timeline=Timeline(now=now, grace_seconds=self.transient_grace_seconds, first_seen=first_seen),
                )
                first_seen = {key: first_seen.get(key, now) for key in verdict.retried}
                if until_rolled_out and (verdict.rolled_out or verdict.rollout_failing):
                    return verdict
                if not until_rolled_out and verdict.failing:
                    return verdict
                clock = time.monotonic()
                if clock >= deadline and (not verdict.undecided or clock >= settle_by):
                    return verdict
                end = deadline if clock < deadline else settle_by
                time.sleep(min(self.poll_seconds, max(0.0, end - clock)))

    def _read_service(
        self, api: ApiClient, environment: str, kube_context: str | None, namespace: str, service: str
    ) -> ServiceObjects:
        service_selector = f"{SERVICE_LABEL}={service},{ENVIRONMENT_LABEL}={environment}"
        environment_selector = f"{ENVIRONMENT_LABEL}={environment}"
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        autoscaling, networking = client.AutoscalingV2Api(api), client.NetworkingV1Api(api)
        where = (environment, kube_context, namespace)
        deployments = self._list(partial(apps.list_namespaced_deployment, namespace), service_selector, where)
        # The chart's pod-template labels: the Deployment's ReplicaSets carry them (plus pod-template-hash).
        replica_sets = self._list(partial(apps.list_namespaced_replica_set, namespace), service_selector, where)
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
            replica_sets=replica_sets.items,
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
        return self._call(
            partial(list_call, label_selector=selector, _request_timeout=self.request_timeout_seconds), where,
            needs="read access to deployments, replicasets, pods, horizontalpodautoscalers and ingresses",
        )

    def _call(
        self, call: Callable[[], T], where: tuple[str, str | None, str], *, needs: str, missing: str | None = None
    ) -> T:
        """`call()` with bounded retries; errors name `where`, the access the account `needs` for a 401/403 and,
        for a 404, what is `missing` (None: the answer's status)."""
        environment, kube_context, namespace = where
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.5, max=5),
                retry=retry_if_exception(_transient),
                reraise=True,
            ):
                with attempt:
                    return call()
        except ApiException as exc:
            raise _api_error(exc, environment, kube_context, namespace, needs=needs, missing=missing) from None
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


def _api_error(
    exc: ApiException, environment: str, kube_context: str | None, namespace: str, *, needs: str, missing: str | None
) -> ExternalSystemError:
    """One line naming where, never the answer's body."""
    where = f"environment {environment!r} (context {kube_context or '(current)'}, namespace {namespace!r})"
    if exc.status in (401, 403):
        return ExternalSystemError(
            f"{where}: the Kubernetes API refused the credentials (HTTP {exc.status} {exc.reason}). The account"
            f" needs {needs} there; {CREDENTIALS_HINT}"
        )
    if exc.status == 404 and missing:
        return ExternalSystemError(f"{where}: {missing}")
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
