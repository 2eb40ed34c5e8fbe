"""Health of one service on Kubernetes, judged from the objects the API returns (pure functions, no API calls).

`KubernetesCluster` reads a service's Deployment, ReplicaSets, Pods, HorizontalPodAutoscalers and
Ingresses into `ServiceObjects`; `evaluate` turns them into a `Verdict`: the project's one
`ServiceHealth` (what `judge` returns) plus what a watch needs to decide whether to go on looking.
Each judged pod becomes a `ReplicaStatus` for `fintech_release.health.model.assess`, and what only
Kubernetes knows is added in the same plain words: Deployment conditions and rollout progress (as
`kubectl rollout status` reads them), pods that cannot start, autoscalers that cannot scale and
ingresses without an address.

Which pods count. Only the live pods of the Deployment's new ReplicaSet: the one it owns whose
`deployment.kubernetes.io/revision` equals the Deployment's, once the controller has observed the
Deployment's current generation (before that the annotation still names the previous ReplicaSet).
Pods of older ReplicaSets are on their way out: their crashes say nothing about the new version,
so a release that fixes a crash loop can go out. Pods being deleted, pods the node or the cluster
killed (evicted, preempted, node shut down, rejected at admission: `status.reason` as the kubelet
writes it, or a `DisruptionTarget` condition) and pods that ended before `since` are left out too;
the ReplicaSet replaces them.

Errors someone retries (the kubelet pulling an image after a registry 5xx/429, creating a container
after a name-reservation race or once a Secret appears; the ReplicaSet controller creating pods
once quota frees; the HPA reading metrics once metrics-server has them) are not failures until they
persisted for `Timeline.grace_seconds`, measured from the condition's lastTransitionTime where the
API gives one, else from when the watch first saw them (`Timeline.first_seen`, keyed by
`Verdict.retried`); before that only what they block (a pod not ready) counts. An image the registry
says is missing or forbidden, an unparsable image name, or an image that runs as root under
`runAsNonRoot` fails at once: no retry fixes those.

Restarts count from a moment (`since`): a pod on GKE lives for weeks, and one restart long before
this deployment or watch says nothing about the release being judged now. A container's last
restart is when its previous run ended (`lastState.terminated.finishedAt`); a container waiting
in CrashLoopBackOff always counts, and so does a restart whose time the kubelet no longer reports.
Images are compared by digest: the same digest under another registry path is the same image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from kubernetes.client import (
    V1Container,
    V1ContainerStatus,
    V1Deployment,
    V1Ingress,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1ReplicaSet,
    V2HorizontalPodAutoscaler,
)

from fintech_release.health.model import Readiness, ReplicaState, ReplicaStatus, ServiceHealth, assess

SERVICE_LABEL = "io.fintech-release/service"
ENVIRONMENT_LABEL = "io.fintech-release/environment"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TRANSIENT_GRACE_SECONDS = 60  # release.yaml gke.transient_grace_seconds: metrics-server needs 30-60 s for new pods

CRASH_LOOP = "CrashLoopBackOff"
IMAGE_PULL = frozenset({"ErrImagePull", "ImagePullBackOff"})  # one retried state: the kubelet alternates them
FINAL_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})  # the kubelet will never pull this image
# What registries answer for an image that is missing or that the node may not read: retrying cannot help.
FINAL_PULL_MESSAGES = (
    "not found", "manifest unknown", "unauthorized", "denied", "forbidden", "invalid reference format",
    "invalid image name",
)
FINAL_CONFIG_MESSAGES = ("runasnonroot",)  # the image runs as root (or a named user) under runAsNonRoot
# status.reason of a pod the node killed or refused (kubelet: eviction manager, preemption, graceful node
# shutdown - "Shutdown" before Kubernetes 1.22 -, admission "OutOf<resource>"; node lifecycle: NodeLost).
NODE_KILLED_REASONS = frozenset({
    "Evicted", "Preempting", "Terminated", "Shutdown", "NodeShutdown", "NodeLost", "NodeAffinity",
    "UnexpectedAdmissionError",
})
# A container's state as judged here; a replica blocked on an error or retrying one is still starting.
ContainerState = Literal["restarting", "exited", "blocked", "retrying", "starting", "running"]
_REPLICA_STATE: dict[ContainerState, ReplicaState] = {
    "restarting": "restarting", "exited": "exited", "blocked": "starting", "retrying": "starting",
    "starting": "starting", "running": "running",
}
_READINESS: dict[str, Readiness] = {"True": "ready", "False": "not_ready"}


@dataclass(frozen=True)
class ServiceObjects:
    """What the cluster holds for one service in one namespace (`deployment` None: not deployed)."""

    deployment: V1Deployment | None
    pods: Sequence[V1Pod] = ()
    autoscalers: Sequence[V2HorizontalPodAutoscaler] = ()
    ingresses: Sequence[V1Ingress] = ()
    replica_sets: Sequence[V1ReplicaSet] = ()


@dataclass(frozen=True)
class Timeline:
    """When a look happens, how long retried errors may last, and when the watch first saw each one."""

    now: datetime
    grace_seconds: float = TRANSIENT_GRACE_SECONDS
    first_seen: Mapping[str, datetime] = field(default_factory=dict)  # keys from `Verdict.retried`

    def age(self, key: str, started: datetime | None = None) -> float:
        """Seconds the retried error `key` has lasted: from `started` (the API's own time) or its first sighting."""
        start = started or self.first_seen.get(key) or self.now
        return max(0.0, (self.now - start).total_seconds())


@dataclass(frozen=True)
class Verdict:
    """The service's health, and what it means for a watch.

    `rolled_out`: the Deployment finished rolling out and the new ReplicaSet's pods are ready,
    running the expected image without restarts (as `kubectl rollout status`, plus the pods).
    `rollout_failing`: the rollout cannot succeed by waiting. `failing`: that, or an autoscaler that
    stayed unable past the grace period. `undecided`: a retried error is still within its grace
    period. `retried`: the keys of the retried errors in view, for the watch to remember.
    """

    health: ServiceHealth
    rolled_out: bool
    rollout_failing: bool
    failing: bool
    undecided: bool
    retried: tuple[str, ...]


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    failing: bool = False
    undecided: bool = False
    retried: list[str] = field(default_factory=list)

    def add(self, other: _Findings) -> None:
        self.problems += other.problems
        self.failing = self.failing or other.failing
        self.undecided = self.undecided or other.undecided
        self.retried += other.retried


def evaluate(
    objects: ServiceObjects,
    *,
    environment: str,
    service: str,
    desired_replicas: int,
    expected_image: str | None,
    since: datetime | None = None,
    timeline: Timeline | None = None,
) -> Verdict:
    """Judge the service at `timeline.now` (None: now, nothing seen before, the default grace period).

    The desired count is the larger of `desired_replicas` and the Deployment's own (an autoscaler
    may have raised it). Only restarts at or after `since` (timezone-aware) count, and pods that
    ended before it are left out; None counts every restart.
    """
    timeline = timeline or Timeline(now=datetime.now(UTC))
    desired = max(desired_replicas, _spec_replicas(objects.deployment))
    rollout = _deployment_findings(objects.deployment, service, since, timeline)
    looks = [_observe(pod, service, since, timeline) for pod in _current_pods(objects, since)]
    replicas = [replica for replica, _ in looks]
    assessed = assess(
        environment=environment, service=service, replicas=[_by_digest(r, expected_image) for r in replicas],
        desired_replicas=desired, expected_image=expected_image,
    )
    rollout.problems += assessed.problems
    for replica, found in looks:
        rollout.add(found)
        rollout.failing = rollout.failing or replica.state in ("restarting", "exited") or replica.restart_count > 0
    scaling = _Findings()
    for hpa in objects.autoscalers:
        scaling.add(_autoscaler_findings(hpa, timeline))
    extras = [problem for ingress in objects.ingresses for problem in ingress_problems(ingress)]
    problems = (*rollout.problems, *scaling.problems, *extras)
    health = ServiceHealth(
        environment=environment, service=service, healthy=not problems, ready_replicas=assessed.ready_replicas,
        desired_replicas=desired, problems=problems, replicas=tuple(replicas),
    )
    return Verdict(
        health=health,
        rolled_out=not rollout.problems,
        rollout_failing=rollout.failing,
        failing=rollout.failing or scaling.failing,
        undecided=rollout.undecided or scaling.undecided,
        retried=(*rollout.retried, *scaling.retried),
    )


def judge(
    objects: ServiceObjects,
    *,
    environment: str,
    service: str,
    desired_replicas: int,
    expected_image: str | None,
    since: datetime | None = None,
    timeline: Timeline | None = None,
) -> ServiceHealth:
    """The service's health: every problem of its Deployment, new pods, autoscalers and ingresses, in plain words."""
    return evaluate(
        objects, environment=environment, service=service, desired_replicas=desired_replicas,
        expected_image=expected_image, since=since, timeline=timeline,
    ).health


def new_replica_set(deployment: V1Deployment | None, replica_sets: Iterable[V1ReplicaSet]) -> V1ReplicaSet | None:
    """The Deployment's ReplicaSet of its current revision, once the controller observed its current generation.

    `kubectl`'s deployment util finds it by comparing pod templates; the controller writes the new
    ReplicaSet's revision onto the Deployment before it records the observed generation, so the
    revision names the same ReplicaSet then (except when paused: no new ReplicaSet is made).
    """
    if deployment is None or not _observed(deployment):
        return None
    revision = (deployment.metadata.annotations or {}).get(REVISION_ANNOTATION)
    if revision is None:
        return None
    owned = [
        rs for rs in replica_sets
        if _controller_uid(rs.metadata) == deployment.metadata.uid
        and (rs.metadata.annotations or {}).get(REVISION_ANNOTATION) == revision
    ]
    return min(owned, key=_age_order, default=None)  # like kubectl, the oldest should there ever be two


def _current_pods(objects: ServiceObjects, since: datetime | None = None) -> list[V1Pod]:
    """The new ReplicaSet's pods that are not being deleted, not killed by their node and did not end before `since`."""
    new = new_replica_set(objects.deployment, objects.replica_sets)
    if new is None:
        return []
    return [
        pod for pod in objects.pods
        if pod.metadata.deletion_timestamp is None
        and _controller_uid(pod.metadata) == new.metadata.uid
        and not _killed_by_node(pod)
        and not _ended_before(pod, since)
    ]


def _killed_by_node(pod: V1Pod) -> bool:
    """The node or the cluster ended the pod (eviction, preemption, node shutdown, admission), not its own code."""
    if any(c.type == "DisruptionTarget" and c.status == "True" for c in pod.status.conditions or []):
        return True
    if pod.status.phase == "Succeeded":  # restartPolicy Always: only a kill by the node ends a pod cleanly
        return True
    reason = pod.status.reason or ""
    return pod.status.phase == "Failed" and (reason in NODE_KILLED_REASONS or reason.startswith("OutOf"))


def replica_status(
    pod: V1Pod, service: str, since: datetime | None = None, timeline: Timeline | None = None
) -> ReplicaStatus:
    """One pod as a replica: the worst state of its containers (init containers included), with the reason.

    The replica's image is the service container's repository at the digest the node really runs
    (`containerStatuses[].imageID`), so a tag that moved shows up as a wrong image. A pod that
    cannot pull its image or create a container is `starting`, with the reason. `restart_count`
    counts the restarts of containers that last restarted at or after `since` (None: all).
    """
    return _observe(pod, service, since, timeline or Timeline(now=datetime.now(UTC)))[0]


def _observe(pod: V1Pod, service: str, since: datetime | None, timeline: Timeline) -> tuple[ReplicaStatus, _Findings]:
    """The pod as a replica, and what it adds: a container that cannot start, or one still retried."""
    found = _Findings()
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
        return replica, found
    if init + regular:
        main_first = sorted(init + regular, key=lambda pair: pair[0].name != main_name)
        state, reason, exit_code = _worst_container(pod.metadata.name, main_first, main_name, since, timeline, found)
    else:
        state, reason, exit_code = "starting", _unschedulable(pod), None
    readiness = _readiness(pod) if state == "running" else "unknown"
    if readiness == "not_ready" and reason is None:
        reason = _condition(pod.status.conditions, "Ready", "message")
    if state == "blocked":
        found.problems.append(f"{pod.metadata.name} cannot start: {reason}")
        found.failing = True
    replica = ReplicaStatus(
        name=pod.metadata.name,
        image=image,
        state=_REPLICA_STATE[state],
        readiness=readiness,
        restart_count=restarts,
        exit_code=exit_code,
        started_at=pod.status.start_time,
        reason=reason,
    )
    return replica, found


def _deployment_findings(
    deployment: V1Deployment | None, service: str, since: datetime | None, timeline: Timeline
) -> _Findings:
    """The Deployment's own verdict: missing, paused, conditions, and rollout progress like `kubectl rollout status`.

    Conditions count only once the controller observed the current generation: until then they
    describe the previous rollout. A progress deadline last updated before `since` is reported but
    does not end the watch (it is left from an earlier rollout); ReplicaFailure (e.g. quota, which
    the ReplicaSet controller retries) fails once it lasted the grace period.
    """
    found = _Findings()
    if deployment is None:
        found.problems.append(f"no Deployment labelled {SERVICE_LABEL}={service}: the service is not deployed")
        return found
    name = f"deployment {deployment.metadata.name}"
    if deployment.spec.paused:
        found.problems.append(
            f"{name} is paused: nothing rolls out until `kubectl rollout resume deployment/{deployment.metadata.name}`"
        )
        found.failing = True
    status = deployment.status
    generation, observed = deployment.metadata.generation or 0, status.observed_generation or 0
    if observed < generation:
        found.problems.append(f"{name}: the controller has not yet seen generation {generation} (saw {observed})")
        return found
    for condition in status.conditions or []:
        why = _because(condition.reason, condition.message)
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            found.problems.append(f"{name} exceeded its progress deadline{why}")
            updated = condition.last_update_time or condition.last_transition_time
            found.failing = found.failing or since is None or updated is None or updated >= since
        elif condition.type == "ReplicaFailure" and condition.status == "True":
            key = f"deployment/{deployment.metadata.name}/ReplicaFailure"
            found.retried.append(key)
            lasted = timeline.age(key, condition.last_transition_time)
            if lasted < timeline.grace_seconds:
                found.undecided = True
            else:
                found.problems.append(f"{name} cannot create pods{why} for {lasted:.0f} s")
                found.failing = True
        elif condition.type == "Available" and condition.status == "False":
            found.problems.append(f"{name} is not available{why}")
    desired = _spec_replicas(deployment)
    updated, available = status.updated_replicas or 0, status.available_replicas or 0
    if updated < desired:
        found.problems.append(f"{name}: {updated} of {desired} replicas updated to the new version")
    elif (status.replicas or 0) > updated:
        found.problems.append(f"{name}: {(status.replicas or 0) - updated} old replicas pending termination")
    elif available < updated:
        found.problems.append(f"{name}: {available} of {updated} updated replicas available")
    return found


def _autoscaler_findings(hpa: V2HorizontalPodAutoscaler, timeline: Timeline) -> _Findings:
    """AbleToScale or ScalingActive false for a failure (Failed…/Invalid…) that lasted the grace period.

    Right after a rollout the HPA cannot read the new pods' metrics for 30-60 s, and AbleToScale is
    false during a back-off after scaling; neither is a problem of its own.
    """
    found = _Findings()
    name = f"autoscaler {hpa.metadata.name}"
    for condition in (hpa.status.conditions if hpa.status else None) or []:
        reason = condition.reason or ""
        trouble = condition.status == "False" and reason.startswith(("Failed", "Invalid"))
        if not trouble or condition.type not in ("AbleToScale", "ScalingActive"):
            continue
        key = f"autoscaler/{hpa.metadata.name}/{condition.type}"
        found.retried.append(key)
        lasted = timeline.age(key, condition.last_transition_time)
        if lasted < timeline.grace_seconds:
            found.undecided = True
            continue
        what = "cannot scale" if condition.type == "AbleToScale" else "cannot compute a replica count"
        found.problems.append(f"{name} {what}{_because(reason, condition.message)} for {lasted:.0f} s")
        found.failing = True
    return found


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
    pod: str,
    statuses: list[tuple[V1ContainerStatus, bool]],
    main: str | None,
    since: datetime | None,
    timeline: Timeline,
    found: _Findings,
) -> tuple[ContainerState, str | None, int | None]:
    """The worst container state (crash loop > exited > blocked > retrying > starting > running), reason, exit code."""
    rank: dict[ContainerState, int] = {
        "restarting": 5, "exited": 4, "blocked": 3, "retrying": 2, "starting": 1, "running": 0
    }
    worst: tuple[ContainerState, str | None, int | None] | None = None
    for status, is_init in statuses:
        state, reason, exit_code = _container_state(pod, status, is_init, since, timeline, found)
        if worst is None or rank[state] > rank[worst[0]]:
            prefix = "" if status.name == main else f"container {status.name}: "
            worst = (state, f"{prefix}{reason}" if reason else None, exit_code)
    assert worst is not None
    return worst


def _container_state(
    pod: str, status: V1ContainerStatus, is_init: bool, since: datetime | None, timeline: Timeline, found: _Findings
) -> tuple[ContainerState, str | None, int | None]:
    last = status.last_state.terminated if status.last_state else None
    recent = last is not None and _restarted_since(status, since)
    last_exit = f"last exit {last.reason or 'Error'}, code {last.exit_code}" if last and recent else None
    state = status.state
    if state and state.waiting:
        reason = state.waiting.reason or "Waiting"
        if reason == CRASH_LOOP:
            return "restarting", "; ".join(filter(None, (reason, last_exit))), last.exit_code if last else None
        if _is_error(reason):
            waited, why = _waiting_on_error(pod, status.name, reason, state.waiting.message, timeline, found)
            return waited, why, None
        return "starting", None, None
    if state and state.terminated:
        done = state.terminated
        if is_init and done.exit_code == 0:
            return "running", None, None  # an init container that finished its work
        return "exited", done.reason or "Error", done.exit_code
    if state and state.running:
        return "running", last_exit, None
    return "starting", None, None


def _waiting_on_error(
    pod: str, container: str, reason: str, message: str | None, timeline: Timeline, found: _Findings
) -> tuple[Literal["blocked", "retrying"], str]:
    """("blocked", why) for an error no retry fixes or one that lasted the grace period, else ("retrying", why)."""
    text = f"{reason}{_because(None, message)}"
    if _final(reason, message or ""):
        return "blocked", text
    key = f"pod/{pod}/{container}/{'ImagePull' if reason in IMAGE_PULL else reason}"
    found.retried.append(key)
    lasted = timeline.age(key)
    if lasted >= timeline.grace_seconds:
        return "blocked", f"{text}, for {lasted:.0f} s"
    found.undecided = True
    return "retrying", f"{text}, retried for {lasted:.0f} s of {timeline.grace_seconds:.0f} s"


def _is_error(reason: str) -> bool:
    """A waiting reason that reports an error (as Argo CD reads them: Err…, …Error, …BackOff), not a normal wait."""
    return reason.startswith("Err") or reason.endswith(("Error", "BackOff")) or reason in FINAL_REASONS


def _final(reason: str, message: str) -> bool:
    """An error no retry fixes: an image that cannot be named or pulled, or that runs as root under runAsNonRoot."""
    text = message.lower()
    if reason in FINAL_REASONS:
        return True
    if reason in IMAGE_PULL:
        return any(phrase in text for phrase in FINAL_PULL_MESSAGES)
    return reason == "CreateContainerConfigError" and any(phrase in text for phrase in FINAL_CONFIG_MESSAGES)


def _unschedulable(pod: V1Pod) -> str | None:
    conditions: list[V1PodCondition] = pod.status.conditions or []
    for condition in conditions:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"{condition.reason or 'Unschedulable'}{_because(None, condition.message)}"
    return None


def _readiness(pod: V1Pod) -> Readiness:
    ready = _condition(pod.status.conditions, "Ready", "status")
    return _READINESS.get(ready or "", "unknown")


def _condition(conditions: list[V1PodCondition] | None, kind: str, attribute: str) -> str | None:
    return next((getattr(c, attribute) for c in conditions or [] if c.type == kind), None)


def _because(reason: str | None, message: str | None) -> str:
    text = ": ".join(part for part in (reason, message) if part)
    return f" ({text})" if text else ""


def _spec_replicas(deployment: V1Deployment | None) -> int:
    if deployment is None:
        return 0
    return 1 if deployment.spec.replicas is None else deployment.spec.replicas


def _observed(deployment: V1Deployment) -> bool:
    return (deployment.status.observed_generation or 0) >= (deployment.metadata.generation or 0)


def _age_order(replica_set: V1ReplicaSet) -> tuple[datetime, str]:
    created = replica_set.metadata.creation_timestamp or datetime.max.replace(tzinfo=UTC)
    return created, replica_set.metadata.name


def _controller_uid(metadata: V1ObjectMeta) -> str | None:
    return next((ref.uid for ref in metadata.owner_references or [] if ref.controller), None)


def _ended_before(pod: V1Pod, since: datetime | None) -> bool:
    """A Failed pod whose containers all ended before `since` (or, without their times, that became not ready then)."""
    if since is None or pod.status.phase != "Failed":
        return False
    statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    ends = [s.state.terminated.finished_at for s in statuses if s.state and s.state.terminated]
    if not ends or None in ends:
        ready = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
        ends = [ready.last_transition_time] if ready and ready.last_transition_time else []
    return bool(ends) and max(ends) < since
