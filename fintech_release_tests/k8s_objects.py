"""Builders of Kubernetes objects as the API server returns them, for tests of the health model.

Each builder writes the JSON document `kubectl get -o json` prints for the object (camelCase
fields, RFC 3339 times, the labels the `microservice` chart sets) and deserializes it with the
official client's own `ApiClient.deserialize`, so the code under test sees the very models a
real API call yields. Defaults describe a healthy, finished rollout of `payments` in staging.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client import ApiClient, V1Deployment, V1Ingress, V1Pod, V2HorizontalPodAutoscaler

from fintech_release.health.kubernetes import ENVIRONMENT_LABEL, SERVICE_LABEL

SERVICE = "payments"
ENVIRONMENT = "staging"
NAMESPACE = "fintech"
REPOSITORY = "europe-west1-docker.pkg.dev/fintech-staging/services/payments"
DIGEST = "sha256:" + "7d9f" * 16
OLD_DIGEST = "sha256:" + "0b1e" * 16
IMAGE = f"{REPOSITORY}@{DIGEST}"
OLD_IMAGE = f"{REPOSITORY}@{OLD_DIGEST}"
NOW = "2026-11-28T10:15:00Z"
STARTED = "2026-11-28T10:12:41Z"
LABELS = {
    "app.kubernetes.io/name": SERVICE,
    "app.kubernetes.io/instance": SERVICE,
    "app.kubernetes.io/managed-by": "Helm",
    ENVIRONMENT_LABEL: ENVIRONMENT,
    SERVICE_LABEL: SERVICE,
}


class _Response:
    """What `ApiClient.deserialize` reads: the body of an HTTP response."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.data = json.dumps(document)


def to_model(document: dict[str, Any], kind: str) -> Any:
    """`document` (an API JSON object) as the client model class named `kind`, e.g. "V1Pod"."""
    return ApiClient().deserialize(_Response(document), kind)


def condition(kind: str, status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    """A status condition as controllers write them."""
    found: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": NOW}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def progressing(status: str = "True", reason: str = "NewReplicaSetAvailable", message: str | None = None) -> dict:
    """The Deployment's Progressing condition; by default the rollout finished."""
    done = f'ReplicaSet "{SERVICE}-7d9f5c6b8" has successfully progressed.'
    return condition("Progressing", status, reason, message or done)


def available(status: str = "True", reason: str = "MinimumReplicasAvailable") -> dict:
    """The Deployment's Available condition."""
    has = "has" if status == "True" else "does not have"
    return condition("Available", status, reason, f"Deployment {has} minimum availability.")


def deployment(
    *,
    image: str = IMAGE,
    replicas: int = 2,
    generation: int = 4,
    observed_generation: int = 4,
    status_replicas: int | None = None,
    updated: int | None = None,
    ready: int | None = None,
    available_replicas: int | None = None,
    conditions: list[dict] | None = None,
    paused: bool = False,
) -> V1Deployment:
    """A Deployment from the microservice chart; by default a finished rollout of `replicas` pods."""
    status: dict[str, Any] = {
        "observedGeneration": observed_generation,
        "replicas": replicas if status_replicas is None else status_replicas,
        "updatedReplicas": replicas if updated is None else updated,
        "readyReplicas": replicas if ready is None else ready,
        "availableReplicas": replicas if available_replicas is None else available_replicas,
        "conditions": [available(), progressing()] if conditions is None else conditions,
    }
    spec: dict[str, Any] = {
        "replicas": replicas,
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/instance": SERVICE}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": LABELS},
            "spec": {"containers": [container(image)], "restartPolicy": "Always"},
        },
    }
    if paused:
        spec["paused"] = True
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": SERVICE, "namespace": NAMESPACE, "generation": generation, "labels": LABELS,
            "annotations": {"deployment.kubernetes.io/revision": str(generation)},
            "creationTimestamp": "2026-10-01T08:00:00Z", "uid": "0d6f3c0e-6a55-4c1b-9a51-5f2f6a1f0c11",
        },
        "spec": spec,
        "status": status,
    }
    return to_model(document, "V1Deployment")


def running(started_at: str = STARTED) -> dict[str, Any]:
    return {"running": {"startedAt": started_at}}


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(reason: str, exit_code: int, *, started_at: str = STARTED, finished_at: str = NOW) -> dict[str, Any]:
    """A terminated container state; as `lastState` it is the run before the latest restart."""
    return {"terminated": {"reason": reason, "exitCode": exit_code, "startedAt": started_at,
                           "finishedAt": finished_at, "containerID": "containerd://" + "c" * 64}}


def container_status(
    name: str = SERVICE,
    *,
    image: str = IMAGE,
    image_id: str | None = None,
    state: dict[str, Any] | None = None,
    last_state: dict[str, Any] | None = None,
    ready: bool = True,
    restart_count: int = 0,
) -> dict[str, Any]:
    """A containerStatuses[] entry; by default running `image` with the digest the node resolved."""
    return {
        "name": name,
        "image": image,
        "imageID": image_id if image_id is not None else image,
        "state": state or running(),
        "lastState": last_state or {},
        "ready": ready,
        "started": ready,
        "restartCount": restart_count,
        "containerID": "containerd://" + "d" * 64,
    }


def pod(
    name: str = f"{SERVICE}-7d9f5c6b8-x2k4q",
    *,
    image: str = IMAGE,
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    ready: bool | None = None,
    phase: str = "Running",
    conditions: list[dict] | None = None,
    containers: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    reason: str | None = None,
    message: str | None = None,
) -> V1Pod:
    """A pod of the Deployment; by default running and ready. `ready` defaults to all containers ready."""
    statuses = [container_status(image=image)] if statuses is None else statuses
    is_ready = all(s["ready"] for s in statuses) and bool(statuses) if ready is None else ready
    if conditions is None:
        conditions = [
            condition("PodScheduled", "True"),
            condition("Initialized", "True"),
            condition("ContainersReady", "True" if is_ready else "False"),
            condition("Ready", "True", None, None) if is_ready else condition(
                "Ready", "False", "ContainersNotReady", f"containers with unready status: [{SERVICE}]"
            ),
        ]
    metadata: dict[str, Any] = {
        "name": name, "namespace": NAMESPACE, "labels": {**LABELS, "pod-template-hash": "7d9f5c6b8"},
        "creationTimestamp": "2026-11-28T10:12:30Z",
    }
    if deleting:
        metadata["deletionTimestamp"] = NOW
        metadata["deletionGracePeriodSeconds"] = 30
    status: dict[str, Any] = {
        "phase": phase, "conditions": conditions, "containerStatuses": statuses, "startTime": "2026-11-28T10:12:30Z",
        "hostIP": "10.132.0.7", "podIP": "10.8.1.23", "qosClass": "Guaranteed",
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    document = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": containers or [container(image)], "restartPolicy": "Always", "nodeName": "gke-n1"},
        "status": status,
    }
    return to_model(document, "V1Pod")


def unscheduled_pod(name: str, message: str) -> V1Pod:
    """A Pending pod no node can take: no container statuses yet, PodScheduled False."""
    scheduled = condition("PodScheduled", "False", "Unschedulable", message)
    return pod(name, statuses=[], phase="Pending", conditions=[scheduled])


def autoscaler(*conditions: dict[str, Any], current: int = 2) -> V2HorizontalPodAutoscaler:
    """The chart's HorizontalPodAutoscaler (autoscaling/v2); by default able to scale and active."""
    document = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVICE},
            "minReplicas": 2, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                   "averageUtilization": 70}}}],
        },
        "status": {
            "currentReplicas": current, "desiredReplicas": current,
            "conditions": list(conditions) or [
                condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                condition("ScalingActive", "True", "ValidMetricFound",
                          "the HPA was able to successfully calculate a replica count from cpu resource "
                          "utilization (percentage of request)"),
                condition("ScalingLimited", "False", "DesiredWithinRange",
                          "the desired count is within the acceptable range"),
            ],
        },
    }
    return to_model(document, "V2HorizontalPodAutoscaler")


def ingress(*, ip: str | None = "34.120.7.21", hostname: str | None = None) -> V1Ingress:
    """The environment's ingress rules; with no ip/hostname the controller has not published an address."""
    entries = [{k: v for k, v in (("ip", ip), ("hostname", hostname)) if v}] if ip or hostname else []
    document = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": f"{ENVIRONMENT}-ingress-rules", "namespace": NAMESPACE,
                     "labels": {ENVIRONMENT_LABEL: ENVIRONMENT}},
        "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [{
            "path": f"/{SERVICE}(/|$)(.*)", "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": SERVICE, "port": {"number": 8080}}}}]}}]},
        "status": {"loadBalancer": {"ingress": entries} if entries else {}},
    }
    return to_model(document, "V1Ingress")


def container(image: str = IMAGE, name: str = SERVICE) -> dict[str, Any]:
    """A pod spec container as the microservice chart renders it."""
    return {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}},
    }


def sidecar(
    name: str = "cloud-sql-proxy", image: str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1"
) -> dict[str, Any]:
    """A second container in the pod spec, as a SQL proxy sidecar would be."""
    return container(image, name)


def to_document(model: Any) -> dict[str, Any]:
    """A client model back as the API's JSON document (camelCase keys), e.g. to serve it over HTTP."""
    return ApiClient().sanitize_for_serialization(model)
