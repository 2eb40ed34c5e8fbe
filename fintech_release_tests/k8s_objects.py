"""Builders of Kubernetes objects as the API server returns them, for tests of the health model.

Each builder writes the JSON document `kubectl get -o json` prints for the object (camelCase
fields, RFC 3339 times, the labels the `microservice` chart sets, the ownerReferences,
pod-template-hash labels and revision annotations the Deployment controller writes) and
deserializes it with the official client's own `ApiClient.deserialize`, so the code under test
sees the very models a real API call yields. Defaults describe a healthy, finished rollout of
`payments` in staging: revision 4 (ReplicaSet `payments-7d9f5c6b8`, IMAGE) replaced revision 3
(`payments-6c8b7f9d4`, OLD_IMAGE, scaled to 0).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from kubernetes.client import ApiClient, V1Deployment, V1Ingress, V1Pod, V1ReplicaSet, V2HorizontalPodAutoscaler

from fintech_release.health.kubernetes import ENVIRONMENT_LABEL, REVISION_ANNOTATION, SERVICE_LABEL

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
DEPLOYMENT_UID = "0d6f3c0e-6a55-4c1b-9a51-5f2f6a1f0c11"
NEW_HASH, OLD_HASH = "7d9f5c6b8", "6c8b7f9d4"  # pod-template-hash of the new and the previous ReplicaSet
NEW_REVISION, OLD_REVISION = 4, 3
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


def condition(
    kind: str, status: str, reason: str | None = None, message: str | None = None, *, at: str = NOW
) -> dict[str, Any]:
    """A status condition as controllers write them, last changed `at`."""
    found: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": at}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def deployment_condition(kind: str, status: str, reason: str, message: str, *, at: str = NOW) -> dict[str, Any]:
    """A Deployment condition: the controller also stamps when it last wrote it (lastUpdateTime)."""
    return {**condition(kind, status, reason, message, at=at), "lastUpdateTime": at}


def progressing(
    status: str = "True", reason: str = "NewReplicaSetAvailable", message: str | None = None, *, at: str = NOW
) -> dict:
    """The Deployment's Progressing condition; by default the rollout finished."""
    done = f'ReplicaSet "{SERVICE}-{NEW_HASH}" has successfully progressed.'
    return deployment_condition("Progressing", status, reason, message or done, at=at)


def available(status: str = "True", reason: str = "MinimumReplicasAvailable") -> dict:
    """The Deployment's Available condition."""
    has = "has" if status == "True" else "does not have"
    return deployment_condition("Available", status, reason, f"Deployment {has} minimum availability.")


def replica_failure(message: str, *, at: str = NOW) -> dict:
    """The ReplicaFailure condition the controller copies from a ReplicaSet that cannot create pods."""
    return deployment_condition("ReplicaFailure", "True", "FailedCreate", message, at=at)


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
    revision: int = NEW_REVISION,
) -> V1Deployment:
    """A Deployment from the microservice chart; by default a finished rollout of `replicas` pods.

    `revision` is what the controller copied from the newest ReplicaSet it made for the template.
    """
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
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "creationTimestamp": "2026-10-01T08:00:00Z", "uid": DEPLOYMENT_UID,
        },
        "spec": spec,
        "status": status,
    }
    return to_model(document, "V1Deployment")


def replica_set_uid(template_hash: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"replicaset/{SERVICE}-{template_hash}"))


def replica_set(
    template_hash: str = NEW_HASH,
    revision: int = NEW_REVISION,
    *,
    image: str = IMAGE,
    replicas: int = 2,
    ready: int | None = None,
    owner_uid: str = DEPLOYMENT_UID,
    created: str = "2026-11-28T10:12:29Z",
) -> V1ReplicaSet:
    """A ReplicaSet the Deployment controller made for one pod template (owned by the Deployment)."""
    ready = replicas if ready is None else ready
    labels = {**LABELS, "pod-template-hash": template_hash}
    document = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{SERVICE}-{template_hash}", "namespace": NAMESPACE, "uid": replica_set_uid(template_hash),
            "generation": 1, "creationTimestamp": created, "labels": labels,
            "annotations": {"deployment.kubernetes.io/desired-replicas": "2",
                            "deployment.kubernetes.io/max-replicas": "3", REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVICE, "uid": owner_uid,
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/instance": SERVICE,
                                         "pod-template-hash": template_hash}},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [container(image)], "restartPolicy": "Always"}},
        },
        "status": {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                   "availableReplicas": ready, "observedGeneration": 1},
    }
    return to_model(document, "V1ReplicaSet")


def replica_sets(*, new: int = 2, old: int = 0, new_revision: int = NEW_REVISION) -> list[V1ReplicaSet]:
    """The new ReplicaSet (IMAGE) with `new` replicas and the previous one (OLD_IMAGE) with `old`."""
    return [
        replica_set(NEW_HASH, new_revision, replicas=new),
        replica_set(OLD_HASH, OLD_REVISION, image=OLD_IMAGE, replicas=old, created="2026-11-20T09:00:00Z"),
    ]


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
    template_hash: str = NEW_HASH,
) -> V1Pod:
    """A pod of the ReplicaSet `template_hash` (default: the new one); by default running and ready.

    `ready` defaults to all containers ready.
    """
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
        "name": name, "namespace": NAMESPACE, "labels": {**LABELS, "pod-template-hash": template_hash},
        "creationTimestamp": "2026-11-28T10:12:30Z", "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{name}")),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{SERVICE}-{template_hash}",
                             "uid": replica_set_uid(template_hash), "controller": True, "blockOwnerDeletion": True}],
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


def old_pod(name: str, **kwargs: Any) -> V1Pod:
    """A pod of the previous ReplicaSet (OLD_IMAGE); `kwargs` as for `pod`."""
    statuses = kwargs.pop("statuses", None) or [container_status(image=OLD_IMAGE)]
    return pod(name, image=OLD_IMAGE, statuses=statuses, template_hash=OLD_HASH, **kwargs)


def unscheduled_pod(name: str, message: str) -> V1Pod:
    """A Pending pod no node can take: no container statuses yet, PodScheduled False."""
    scheduled = condition("PodScheduled", "False", "Unschedulable", message)
    return pod(name, statuses=[], phase="Pending", conditions=[scheduled])


def disrupted(message: str, reason: str = "TerminationByKubelet") -> dict[str, Any]:
    """The DisruptionTarget condition the kubelet or scheduler sets on a pod it is about to end (Kubernetes 1.26+)."""
    return condition("DisruptionTarget", "True", reason, message)


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
