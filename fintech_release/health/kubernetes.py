"""Health of one service on Kubernetes, judged from the objects the API returns (pure functions, no API calls).

`KubernetesCluster` reads a service's Deployment, Pods, HorizontalPodAutoscalers and Ingresses into
`ServiceObjects`; `judge` turns them into the project's one `ServiceHealth`. Each pod becomes a
`ReplicaStatus` for `fintech_release.health.model.assess` (crash loops, exits, wrong image, not ready,
ready count), and what only Kubernetes knows is added in the same plain words: Deployment
conditions and rollout progress (as `kubectl rollout status` and Argo CD read them), pods that
cannot start (image pulls, missing secrets, no node to run on), autoscalers that cannot scale and
ingresses without an address.

`is_failing_fast` says when waiting longer cannot help: a back-off state, a restart, an exited
container, a Deployment past its progress deadline or unable to create pods.

Restarts count from a moment (`since`): a pod on GKE lives for weeks, and one restart long before
this deployment or watch says nothing about the release being judged now. A container's last
restart is when its previous run ended (`lastState.terminated.finishedAt`); a container waiting
in CrashLoopBackOff always counts, and so does a restart whose time the kubelet no longer reports.
Images are compared by digest: the same digest under another registry path is the same image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kubernetes.client import (
    V1Container,
    V1ContainerStatus,
    V1Deployment,
    V1Ingress,
    V1Pod,
    V1PodCondition,
    V2HorizontalPodAutoscaler,
)

from fintech_release.health.model import Readiness, ReplicaStatus, ServiceHealth, assess

SERVICE_LABEL = "io.fintech-release/service"
ENVIRONMENT_LABEL = "io.fintech-release/environment"

CRASH_LOOP = "CrashLoopBackOff"
# Waiting reasons no amount of waiting fixes: the image cannot be pulled or the container cannot be created.
BLOCKED_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})


@dataclass(frozen=True)
class ServiceObjects:
    """What the cluster holds for one service in one namespace (`deployment` None: not deployed)."""

    deployment: V1Deployment | None
    pods: Sequence[V1Pod] = ()
    autoscalers: Sequence[V2HorizontalPodAutoscaler] = ()
    ingresses: Sequence[V1Ingress] = ()


def judge(
    objects: ServiceObjects,
    *,
    environment: str,
    service: str,
    desired_replicas: int,
    expected_image: str | None,
    since: datetime | None = None,
) -> ServiceHealth:
    """The service's health: every problem of its Deployment, pods, autoscalers and ingresses, in plain words.

    The desired count is the larger of `desired_replicas` and the Deployment's own (an autoscaler
    may have raised it); pods being deleted are left out, as `kubectl rollout status` does. Only
    restarts at or after `since` (timezone-aware) count; None counts every restart.
    """
    desired = max(desired_replicas, _spec_replicas(objects.deployment))
    replicas = [replica_status(pod, service, since) for pod in _live(objects.pods)]
    verdict = assess(
        environment=environment, service=service, replicas=[_by_digest(r, expected_image) for r in replicas],
        desired_replicas=desired, expected_image=expected_image,
    )
    problems = [
        *deployment_problems(objects.deployment, service),
        *verdict.problems,
        *(f"{r.name} cannot start: {r.reason}" for r in replicas if r.state == "starting" and r.reason),
        *(problem for hpa in objects.autoscalers for problem in autoscaler_problems(hpa)),
        *(problem for ingress in objects.ingresses for problem in ingress_problems(ingress)),
    ]
    return ServiceHealth(
        environment=environment,
        service=service,
        healthy=not problems,
        ready_replicas=verdict.ready_replicas,
        desired_replicas=desired,
        problems=tuple(problems),
        replicas=tuple(replicas),
    )


def is_failing_fast(objects: ServiceObjects, service: str, since: datetime | None = None) -> bool:
    """True when the service cannot become healthy by waiting: stop watching and report it now.

    Restarts before `since` are ignored, as in `judge`.
    """
    if _deployment_gave_up(objects.deployment):
        return True
    return any(_failing(*_observe(pod, service, since)) for pod in _live(objects.pods))


def replica_status(pod: V1Pod, service: str, since: datetime | None = None) -> ReplicaStatus:
    """One pod as a replica: the worst state of its containers (init containers included), with the reason.

    The replica's image is the service container's repository at the digest the node really runs
    (`containerStatuses[].imageID`), so a tag that moved shows up as a wrong image. A pod that
    cannot pull its image or create a container is `starting`, with the reason. `restart_count`
    counts the restarts of containers that last restarted at or after `since` (None: all).
    """
    return _observe(pod, service, since)[0]


def _observe(pod: V1Pod, service: str, since: datetime | None) -> tuple[ReplicaStatus, bool]:
    """The pod as a replica, and whether it is blocked (image pull or container creation failing)."""
    containers = pod.spec.containers if pod.spec else []
    main = _main_container(containers, service)
    main_name = main.name if main else None
    init = [(status, True) for status in pod.status.init_container_statuses or []]
    regular = [(status, False) for status in pod.status.container_statuses or []]
    restarts = sum(status.restart_count or 0 for status, _ in init + regular if _restarted_since(status, since))
    main_status = next((status for status, _ in regular if status.name == main_name), None)
    image = _running_reference(main.image if main else "", main_status.image_id if main_status else None)
    if pod.status.phase == "Failed":
        reason = ": ".join(part for part in (pod.status.reason, pod.status.message) if part) or None
        replica = ReplicaStatus(
            name=pod.metadata.name, image=image, state="exited", readiness="unknown", restart_count=restarts,
            reason=reason,
        )
        return replica, False
    if init + regular:
        main_first = sorted(init + regular, key=lambda pair: pair[0].name != main_name)
        state, reason, exit_code = _worst_container(main_first, main_name, since)
    else:
        state, reason, exit_code = "starting", _unschedulable(pod), None
    readiness = _readiness(pod) if state == "running" else "unknown"
    if readiness == "not_ready" and reason is None:
        reason = _condition(pod.status.conditions, "Ready", "message")
    replica = ReplicaStatus(
        name=pod.metadata.name,
        image=image,
        state="starting" if state == "blocked" else state,  # type: ignore[arg-type]
        readiness=readiness,
        restart_count=restarts,
        exit_code=exit_code,
        started_at=pod.status.start_time,
        reason=reason,
    )
    return replica, state == "blocked"


def deployment_problems(deployment: V1Deployment | None, service: str) -> list[str]:
    """The Deployment's own verdict: missing, paused, conditions, and rollout progress like `kubectl rollout status`."""
    if deployment is None:
        return [f"no Deployment labelled {SERVICE_LABEL}={service}: the service is not deployed"]
    name = f"deployment {deployment.metadata.name}"
    status = deployment.status
    problems = [f"{name} is paused"] if deployment.spec.paused else []
    for condition in status.conditions or []:
        why = _because(condition.reason, condition.message)
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            problems.append(f"{name} exceeded its progress deadline{why}")
        elif condition.type == "ReplicaFailure" and condition.status == "True":
            problems.append(f"{name} cannot create pods{why}")
        elif condition.type == "Available" and condition.status == "False":
            problems.append(f"{name} is not available{why}")
    generation, observed = deployment.metadata.generation or 0, status.observed_generation or 0
    if observed < generation:
        return [*problems, f"{name}: the controller has not yet seen generation {generation} (saw {observed})"]
    desired = _spec_replicas(deployment)
    updated, available = status.updated_replicas or 0, status.available_replicas or 0
    if updated < desired:
        problems.append(f"{name}: {updated} of {desired} replicas updated to the new version")
    elif (status.replicas or 0) > updated:
        problems.append(f"{name}: {(status.replicas or 0) - updated} old replicas pending termination")
    elif available < updated:
        problems.append(f"{name}: {available} of {updated} updated replicas available")
    return problems


def autoscaler_problems(hpa: V2HorizontalPodAutoscaler) -> list[str]:
    """AbleToScale or ScalingActive false: the autoscaler cannot read its target or its metrics."""
    name = f"autoscaler {hpa.metadata.name}"
    problems = []
    for condition in (hpa.status.conditions if hpa.status else None) or []:
        if condition.status != "False":
            continue
        why = _because(condition.reason, condition.message)
        if condition.type == "AbleToScale":
            problems.append(f"{name} cannot scale{why}")
        elif condition.type == "ScalingActive":
            problems.append(f"{name} cannot compute a replica count{why}")
    return problems


def ingress_problems(ingress: V1Ingress) -> list[str]:
    """An ingress is only reachable once its controller published a load-balancer address."""
    balancer = ingress.status.load_balancer if ingress.status else None
    addresses = [entry.ip or entry.hostname for entry in (balancer.ingress if balancer else None) or []]
    if any(addresses):
        return []
    return [f"ingress {ingress.metadata.name} has no load-balancer address yet"]


def running_image(deployment: V1Deployment | None, service: str) -> str | None:
    """The image the Deployment's pod template gives the service container, or None when not deployed."""
    if deployment is None:
        return None
    main = _main_container(deployment.spec.template.spec.containers, service)
    return main.image if main else None


def image_digest(reference: str | None) -> str | None:
    """`sha256:…` from a pinned reference or a container status imageID, else None (a tag is no digest)."""
    if not reference or "@" not in reference:
        return None
    digest = reference.rsplit("@", 1)[1]
    return digest if digest.startswith("sha256:") else None


def _restarted_since(status: V1ContainerStatus, since: datetime | None) -> bool:
    """Whether the container's restarts count: its last one ended at or after `since`, or it is in back-off now."""
    if since is None or (status.state and status.state.waiting and status.state.waiting.reason == CRASH_LOOP):
        return True
    last = status.last_state.terminated if status.last_state else None
    return last is None or last.finished_at is None or last.finished_at >= since


def _by_digest(replica: ReplicaStatus, expected_image: str | None) -> ReplicaStatus:
    """The replica named by `expected_image` when it runs that digest (under whatever registry path) for `assess`."""
    digest = image_digest(expected_image)
    if digest is None or image_digest(replica.image) != digest:
        return replica
    return replica.model_copy(update={"image": expected_image})


def _main_container(containers: Iterable[V1Container], service: str) -> V1Container | None:
    """The container named after the service, else the first one (sidecars such as a SQL proxy come after)."""
    containers = list(containers or [])
    return next((c for c in containers if c.name == service), containers[0] if containers else None)


def _running_reference(spec_image: str, image_id: str | None) -> str:
    """`repository@digest` from the spec's repository and the digest the node runs, else the spec's image."""
    digest = image_digest(image_id)
    if digest is None:
        return spec_image
    repository = spec_image.split("@", 1)[0]
    name_start = repository.rfind("/") + 1
    if ":" in repository[name_start:]:  # a tag, not a registry port
        repository = repository[: name_start + repository[name_start:].index(":")]
    return f"{repository}@{digest}"


def _worst_container(
    statuses: list[tuple[V1ContainerStatus, bool]], main: str | None, since: datetime | None
) -> tuple[str, str | None, int | None]:
    """The worst container state (crash loop > exited > blocked > starting > running), its reason and exit code."""
    rank = {"restarting": 4, "exited": 3, "blocked": 2, "starting": 1, "running": 0}
    worst: tuple[str, str | None, int | None] | None = None
    for status, is_init in statuses:
        state, reason, exit_code = _container_state(status, is_init, since)
        if worst is None or rank[state] > rank[worst[0]]:
            prefix = "" if status.name == main else f"container {status.name}: "
            worst = (state, f"{prefix}{reason}" if reason else None, exit_code)
    assert worst is not None
    return worst


def _container_state(
    status: V1ContainerStatus, is_init: bool, since: datetime | None
) -> tuple[str, str | None, int | None]:
    last = status.last_state.terminated if status.last_state else None
    recent = last is not None and _restarted_since(status, since)
    last_exit = f"last exit {last.reason or 'Error'}, code {last.exit_code}" if last and recent else None
    state = status.state
    if state and state.waiting:
        reason = state.waiting.reason or "Waiting"
        if reason == CRASH_LOOP:
            return "restarting", "; ".join(filter(None, (reason, last_exit))), last.exit_code if last else None
        if reason in BLOCKED_REASONS:
            return "blocked", f"{reason}{_because(None, state.waiting.message)}", None
        return "starting", None, None
    if state and state.terminated:
        done = state.terminated
        if is_init and done.exit_code == 0:
            return "running", None, None  # an init container that finished its work
        return "exited", done.reason or "Error", done.exit_code
    if state and state.running:
        return "running", last_exit, None
    return "starting", None, None


def _unschedulable(pod: V1Pod) -> str | None:
    conditions: list[V1PodCondition] = pod.status.conditions or []
    for condition in conditions:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"{condition.reason or 'Unschedulable'}{_because(None, condition.message)}"
    return None


def _readiness(pod: V1Pod) -> Readiness:
    ready = _condition(pod.status.conditions, "Ready", "status")
    return {"True": "ready", "False": "not_ready"}.get(ready or "", "unknown")  # type: ignore[return-value]


def _condition(conditions: list[V1PodCondition] | None, kind: str, attribute: str) -> str | None:
    return next((getattr(c, attribute) for c in conditions or [] if c.type == kind), None)


def _because(reason: str | None, message: str | None) -> str:
    text = ": ".join(part for part in (reason, message) if part)
    return f" ({text})" if text else ""


def _spec_replicas(deployment: V1Deployment | None) -> int:
    if deployment is None:
        return 0
    return 1 if deployment.spec.replicas is None else deployment.spec.replicas


def _live(pods: Iterable[V1Pod]) -> list[V1Pod]:
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None]


def _deployment_gave_up(deployment: V1Deployment | None) -> bool:
    conditions = (deployment.status.conditions if deployment and deployment.status else None) or []
    return any(
        (c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded")
        or (c.type == "ReplicaFailure" and c.status == "True")
        for c in conditions
    )


def _failing(replica: ReplicaStatus, blocked: bool) -> bool:
    """A back-off or exit, a restart already counted, or a container that cannot be pulled or created."""
    return blocked or replica.state in ("restarting", "exited") or replica.restart_count > 0
