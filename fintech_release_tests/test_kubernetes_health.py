"""The Kubernetes health model on realistic objects: pure unit tests, no cluster.

Every object is a JSON document shaped like `kubectl get -o json` output (ownerReferences,
pod-template-hash labels, ReplicaSets with revision annotations, conditions with their times,
container states as the kubelet writes them), deserialized by the official client
(`fintech_release_tests/k8s_objects.py`), so `evaluate` and `judge` read the same models a real API
call returns. Covered: a finished rollout, mid-rollout states, which pods count (the new
ReplicaSet's: old pods that crash or failed, pods the node killed and pods that ended before the
deployment fail nothing), Deployment conditions only for the observed generation, each pod failure
reason, errors the kubelet retries (failing only past the grace period, or at once when final),
OOMKilled, restarts (only those since a given moment), a wrong digest, the same digest under another
registry path, a paused Deployment, autoscalers that cannot read metrics and an ingress without an
address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fintech_release.config.models import GkePlatformSettings
from fintech_release.health.kubernetes import (
    TRANSIENT_GRACE_SECONDS,
    ServiceObjects,
    Timeline,
    Verdict,
    evaluate,
    image_digest,
    judge,
    new_replica_set,
    replica_status,
    running_image,
)
from fintech_release_tests.k8s_objects import (
    DIGEST,
    ENVIRONMENT,
    IMAGE,
    NEW_HASH,
    OLD_DIGEST,
    OLD_HASH,
    OLD_IMAGE,
    OLD_REVISION,
    REPOSITORY,
    SERVICE,
    autoscaler,
    available,
    condition,
    container,
    container_status,
    deployment,
    disrupted,
    ingress,
    old_pod,
    pod,
    progressing,
    replica_failure,
    replica_set,
    replica_sets,
    sidecar,
    terminated,
    unscheduled_pod,
    waiting,
)

POD_A = f"{SERVICE}-{NEW_HASH}-x2k4q"
POD_B = f"{SERVICE}-{NEW_HASH}-m8n2p"
OLD_A, OLD_B = f"{SERVICE}-{OLD_HASH}-a1b2c", f"{SERVICE}-{OLD_HASH}-d3e4f"
AT = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)  # the look; k8s_objects.NOW, when its conditions last changed
GRACE = 60.0


def healthy_pods() -> list:
    return [pod(POD_A), pod(POD_B)]


def service(
    dep=None, pods=(), autoscalers=(), ingresses=(), *, sets=None  # noqa: ANN001 - client models
) -> ServiceObjects:
    """The service's objects; by default the Deployment and ReplicaSets of a finished rollout."""
    return ServiceObjects(deployment=deployment() if dep is None else dep, pods=list(pods),
                          autoscalers=list(autoscalers), ingresses=list(ingresses),
                          replica_sets=replica_sets() if sets is None else sets)


def verdict(
    objects: ServiceObjects, *, desired: int = 2, expected: str | None = IMAGE, since: datetime | None = None,
    seen_for: float | None = None,
) -> Verdict:
    """The verdict at AT; with `seen_for`, as a watch that has seen every retried error that many seconds."""
    first = evaluate(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=desired,
                     expected_image=expected, since=since, timeline=Timeline(now=AT, grace_seconds=GRACE))
    if seen_for is None:
        return first
    memory = {key: AT - timedelta(seconds=seen_for) for key in first.retried}
    return evaluate(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=desired,
                    expected_image=expected, since=since,
                    timeline=Timeline(now=AT, grace_seconds=GRACE, first_seen=memory))


def problems(objects: ServiceObjects, **kwargs) -> tuple[str, ...]:  # noqa: ANN003
    return verdict(objects, **kwargs).health.problems


def test_finished_rollout_with_autoscaler_and_ingress_is_healthy() -> None:
    result = verdict(service(pods=healthy_pods(), autoscalers=[autoscaler()], ingresses=[ingress()]))

    assert result.health.healthy, result.health.problems
    assert (result.health.ready_replicas, result.health.desired_replicas) == (2, 2)
    assert [r.name for r in result.health.replicas] == [POD_A, POD_B]
    assert result.rolled_out and not result.failing and not result.undecided


def test_judge_is_the_verdicts_health_for_the_between_deployments_check() -> None:
    objects = service(pods=healthy_pods())

    assert judge(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=2,
                 expected_image=IMAGE) == verdict(objects).health


# --- which pods count: the new ReplicaSet's ----------------------------------------------------------------------

def mid_rollout(new_pods: list, old_pods: list, *, available_replicas: int = 2) -> ServiceObjects:
    """maxSurge 1, maxUnavailable 0: the new ReplicaSet has 1 pod, the old one still 2."""
    conditions = [available() if available_replicas >= 2 else available("False", "MinimumReplicasUnavailable"),
                  progressing(reason="ReplicaSetUpdated", message=f'ReplicaSet "{SERVICE}-{NEW_HASH}" is progressing.')]
    dep = deployment(generation=5, observed_generation=5, status_replicas=3, updated=1,
                     ready=available_replicas, available_replicas=available_replicas, conditions=conditions)
    return service(dep, [*new_pods, *old_pods], sets=replica_sets(new=1, old=2))


def test_mid_rollout_is_not_healthy_yet_and_old_pods_are_not_judged() -> None:
    creating = pod("payments-7d9f5c6b8-qq7rt", statuses=[
        container_status(state=waiting("ContainerCreating"), ready=False, image_id="")])
    result = verdict(mid_rollout([creating], [old_pod(OLD_A), old_pod(OLD_B)]))

    assert not result.health.healthy and not result.rolled_out and not result.failing
    assert result.health.problems[0] == "deployment payments: 1 of 2 replicas updated to the new version"
    assert "0 of 2 replicas ready" in result.health.problems
    assert [r.name for r in result.health.replicas] == ["payments-7d9f5c6b8-qq7rt"]


def crash_looping_old_pod(name: str, **kwargs) -> object:  # noqa: ANN003
    return old_pod(name, statuses=[container_status(
        image=OLD_IMAGE, state=waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container"),
        last_state=terminated("Error", 1), ready=False, restart_count=31)], **kwargs)


def test_old_pods_crash_looping_fail_nothing_so_a_release_that_fixes_them_goes_out() -> None:
    during = verdict(mid_rollout([pod(POD_A)], [crash_looping_old_pod(OLD_A), crash_looping_old_pod(OLD_B)],
                                 available_replicas=1))
    # The controller scaled the broken old pods down first; one is still terminating.
    after = verdict(service(deployment(generation=5, observed_generation=5),
                            [*healthy_pods(), crash_looping_old_pod(OLD_A, deleting=True)]))

    assert not during.failing and not during.rollout_failing
    assert not [problem for problem in during.health.problems if "crash-looping" in problem]
    assert after.rolled_out and after.health.healthy, after.health.problems


def test_an_old_pod_left_failed_or_restarting_fails_nothing() -> None:
    failed = old_pod(OLD_A, phase="Failed", reason="DeadlineExceeded",
                     message="Pod was active on the node longer than the specified deadline",
                     statuses=[container_status(image=OLD_IMAGE, state=terminated("Error", 137), ready=False)])
    restarted = old_pod(OLD_B, statuses=[container_status(image=OLD_IMAGE, last_state=terminated("OOMKilled", 137),
                                                          restart_count=3)])

    result = verdict(service(pods=[*healthy_pods(), failed, restarted], sets=replica_sets(old=1)))

    assert not result.failing
    assert not any(OLD_A in p or OLD_B in p for p in result.health.problems)


def test_before_the_controller_observes_the_new_generation_no_pod_is_judged() -> None:
    # The revision annotation still names the old ReplicaSet, whose pods crash: they must not count as new.
    dep = deployment(generation=5, observed_generation=4, revision=OLD_REVISION)
    objects = service(dep, [crash_looping_old_pod(OLD_A)], sets=replica_sets(new=0, old=1, new_revision=5))

    result = verdict(objects)

    assert new_replica_set(objects.deployment, objects.replica_sets) is None
    assert result.health.problems == ("deployment payments: the controller has not yet seen generation 5 (saw 4)",
                                      "0 of 2 replicas ready")
    assert not result.failing


def test_the_new_replica_set_is_the_owned_one_of_the_deployments_revision() -> None:
    stranger = replica_set("5f5f5f5f5", 4, owner_uid="11111111-2222-3333-4444-555555555555")
    objects = service(sets=[stranger, *replica_sets()])

    found = new_replica_set(objects.deployment, objects.replica_sets)

    assert found is not None and found.metadata.name == f"{SERVICE}-{NEW_HASH}"
    assert new_replica_set(deployment(revision=9), objects.replica_sets) is None


def test_without_the_new_replica_set_no_pod_counts_and_the_service_is_not_healthy() -> None:
    result = verdict(service(pods=healthy_pods(), sets=[]))

    assert not result.health.healthy and not result.failing
    assert "0 of 2 replicas ready" in result.health.problems


# --- pods the node killed, pods that ended before -----------------------------------------------------------------

def node_killed(name: str, reason: str, message: str, *, with_condition: bool) -> object:
    """A Failed pod as the kubelet leaves it: containers killed (137), Ready false, maybe DisruptionTarget."""
    conditions = [condition("PodScheduled", "True"), condition("Ready", "False", "PodFailed"),
                  *([disrupted(message)] if with_condition else [])]
    return pod(name, phase="Failed", reason=reason, message=message, conditions=conditions,
               statuses=[container_status(state=terminated("Error", 137), ready=False)])


def test_pods_the_node_killed_fail_neither_pod_health_nor_a_deploy() -> None:
    killed = [
        node_killed("payments-7d9f5c6b8-ev1ct", "Evicted", "The node was low on resource: memory. Threshold "
                    "quantity: 100Mi, available: 91Mi. ", with_condition=True),
        node_killed("payments-7d9f5c6b8-shut1", "Terminated",
                    "Pod was terminated in response to imminent node shutdown.", with_condition=True),
        node_killed("payments-7d9f5c6b8-shut2", "Shutdown", "Node is shutting, evicting pods", with_condition=False),
        node_killed("payments-7d9f5c6b8-prmpt", "Preempting", "Preempted in order to admit critical pod",
                    with_condition=False),
        node_killed("payments-7d9f5c6b8-admit", "OutOfcpu", "Pod was rejected: Node didn't have enough resource: "
                    "cpu, requested: 250, used: 3850, capacity: 4000", with_condition=False),
        node_killed("payments-7d9f5c6b8-rejct", "NodeShutdown", "Pod was rejected as the node is shutting down.",
                    with_condition=False),
    ]

    result = verdict(service(pods=[*healthy_pods(), *killed]))

    assert result.health.healthy, result.health.problems
    assert result.rolled_out and not result.failing
    assert [r.name for r in result.health.replicas] == [POD_A, POD_B]


def test_a_new_pod_that_failed_by_itself_fails_unless_it_ended_before_since() -> None:
    deadline = pod(POD_B, phase="Failed", reason="DeadlineExceeded",
                   message="Pod was active on the node longer than the specified deadline",
                   statuses=[container_status(state=terminated("Error", 137, finished_at="2026-11-28T10:14:00Z"),
                                              ready=False)])
    objects = service(pods=[pod(POD_A), deadline, pod("payments-7d9f5c6b8-r3pl4")])

    now_failing = verdict(objects, since=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    long_over = verdict(objects, since=datetime(2026, 11, 28, 10, 14, 30, tzinfo=UTC))

    assert now_failing.failing
    assert (f"{POD_B} exited with code None (DeadlineExceeded: Pod was active on the node longer than the specified "
            "deadline) after 0 restarts") in now_failing.health.problems
    assert long_over.health.healthy and not long_over.failing, long_over.health.problems


# --- the Deployment's conditions, for the generation the controller observed --------------------------------------

def test_generation_not_yet_observed_ignores_conditions_left_from_the_last_rollout() -> None:
    left_over = [available("False", "MinimumReplicasUnavailable"),
                 progressing("False", "ProgressDeadlineExceeded", 'ReplicaSet "payments-58c4d9" has timed out '
                             "progressing.", at="2026-11-27T16:00:00Z"),
                 replica_failure("exceeded quota: compute", at="2026-11-27T16:00:00Z")]
    result = verdict(service(deployment(generation=5, observed_generation=4, conditions=left_over), healthy_pods()))

    assert result.health.problems == ("deployment payments: the controller has not yet seen generation 5 (saw 4)",
                                      "0 of 2 replicas ready")
    assert not result.failing


def test_progress_deadline_exceeded_fails_fast() -> None:
    message = 'ReplicaSet "payments-7d9f5c6b8" has timed out progressing.'
    objects = service(
        deployment(updated=1, available_replicas=1, ready=1, conditions=[
            available("False", "MinimumReplicasUnavailable"),
            progressing("False", "ProgressDeadlineExceeded", message),
        ]),
        [pod(POD_A)],
    )

    result = verdict(objects, since=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))

    assert f"deployment payments exceeded its progress deadline (ProgressDeadlineExceeded: {message})" in \
        result.health.problems
    assert ("deployment payments is not available (MinimumReplicasUnavailable: Deployment does not have minimum "
            "availability.)") in result.health.problems
    assert result.rollout_failing and result.failing


def test_a_progress_deadline_written_before_this_deployment_is_reported_but_does_not_end_the_watch() -> None:
    stale = progressing("False", "ProgressDeadlineExceeded", "timed out", at="2026-11-27T16:00:00Z")
    result = verdict(service(deployment(conditions=[available(), stale]), healthy_pods()),
                     since=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))

    assert not result.failing and not result.rolled_out
    assert "deployment payments exceeded its progress deadline (ProgressDeadlineExceeded: timed out)" in \
        result.health.problems


def test_replica_failure_is_retried_by_the_controller_and_fails_once_it_lasted_the_grace_period() -> None:
    quota = 'pods "payments-7d9f5c6b8-" is forbidden: exceeded quota: compute, requested: cpu=250m'

    def with_failure(at: str) -> Verdict:
        return verdict(service(deployment(updated=1, conditions=[
            available(), progressing(reason="ReplicaSetUpdated"), replica_failure(quota, at=at)]), [pod(POD_A)]))

    fresh, lasting = with_failure("2026-11-28T10:14:40Z"), with_failure("2026-11-28T10:13:00Z")

    assert not fresh.failing and fresh.undecided
    assert not [problem for problem in fresh.health.problems if "cannot create pods" in problem]
    assert lasting.failing
    assert f"deployment payments cannot create pods (FailedCreate: {quota}) for 120 s" in lasting.health.problems


def test_a_paused_deployment_ends_the_watch_with_a_clear_verdict() -> None:
    result = verdict(service(deployment(paused=True), healthy_pods()))

    assert result.rollout_failing and not result.rolled_out
    assert ("deployment payments is paused: nothing rolls out until `kubectl rollout resume deployment/payments`"
            in result.health.problems)


def test_missing_deployment() -> None:
    assert problems(ServiceObjects(None)) == (
        "no Deployment labelled io.fintech-release/service=payments: the service is not deployed",
        "0 of 2 replicas ready",
    )


def test_old_replicas_pending_termination_then_updated_replicas_not_available() -> None:
    terminating = service(deployment(status_replicas=3, updated=2), [*healthy_pods(), old_pod(OLD_A, deleting=True)])
    waiting_for_available = service(deployment(available_replicas=1), healthy_pods())

    assert problems(terminating) == ("deployment payments: 1 old replicas pending termination",)
    assert problems(waiting_for_available) == ("deployment payments: 1 of 2 updated replicas available",)


# --- new pods: crashes and restarts fail at once -------------------------------------------------------------------

def test_crash_loop_back_off_names_restarts_and_last_exit() -> None:
    looping = pod(POD_B, statuses=[container_status(
        state=waiting("CrashLoopBackOff", f"back-off 1m20s restarting failed container={SERVICE} pod={POD_B}"),
        last_state=terminated("Error", 1), ready=False, restart_count=4)])

    result = verdict(service(deployment(ready=1, available_replicas=1), [pod(POD_A), looping]))

    assert f"{POD_B} is crash-looping: 4 restarts (CrashLoopBackOff; last exit Error, code 1)" in result.health.problems
    assert "1 of 2 replicas ready" in result.health.problems
    assert result.rollout_failing


def test_oom_killed_container_that_restarted_and_runs_again() -> None:
    oom = pod(POD_A, statuses=[container_status(last_state=terminated("OOMKilled", 137), restart_count=1)])

    replica = replica_status(oom, SERVICE)
    result = verdict(service(pods=[oom, pod(POD_B)]))

    assert (replica.state, replica.readiness, replica.restart_count) == ("running", "ready", 1)
    assert result.health.problems == (f"{POD_A} is crash-looping: 1 restarts (last exit OOMKilled, code 137)",)
    assert result.rollout_failing


DEPLOYED_AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # `since`: when the deployment being judged began


def restarted_at(finished_at: str, *, state: dict | None = None) -> list:
    """POD_A restarted twice, the last run ending at `finished_at`; POD_B never restarted."""
    statuses = [container_status(state=state, last_state=terminated(
        "Error", 143, started_at="2026-09-30T00:00:00Z", finished_at=finished_at), ready=state is None,
        restart_count=2)]
    return [pod(POD_A, statuses=statuses), pod(POD_B)]


def test_restarts_before_since_are_ignored() -> None:
    objects = service(pods=restarted_at("2026-10-02T03:04:05Z"))

    result = verdict(objects, since=DEPLOYED_AT)

    assert result.health.healthy, result.health.problems
    assert replica_status(objects.pods[0], SERVICE, DEPLOYED_AT).restart_count == 0
    assert not result.failing
    assert not verdict(objects).health.healthy  # without `since` every restart counts


def test_a_restart_after_since_fails() -> None:
    result = verdict(service(pods=restarted_at("2026-11-28T10:03:00Z")), since=DEPLOYED_AT)

    assert result.health.problems == (f"{POD_A} is crash-looping: 2 restarts (last exit Error, code 143)",)
    assert result.rollout_failing


def test_a_pod_in_crash_loop_back_off_fails_however_long_ago_it_last_ran() -> None:
    objects = service(deployment(ready=1, available_replicas=1),
                      restarted_at("2026-10-02T03:04:05Z", state=waiting("CrashLoopBackOff")))

    result = verdict(objects, since=DEPLOYED_AT)

    assert f"{POD_A} is crash-looping: 2 restarts (CrashLoopBackOff; last exit Error, code 143)" in \
        result.health.problems
    assert result.rollout_failing


def test_crash_looping_sidecar_is_named_as_the_failing_container() -> None:
    statuses = [
        container_status(),
        container_status("cloud-sql-proxy", image="gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1",
                         state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 1), ready=False,
                         restart_count=3),
    ]
    proxied = pod(POD_A, statuses=statuses, containers=[container(), sidecar()])

    result = verdict(service(deployment(replicas=1), [proxied], sets=replica_sets(new=1)), desired=1)

    assert replica_status(proxied, SERVICE).image == IMAGE  # the service container's image, not the sidecar's
    assert result.health.problems == (
        f"{POD_A} is crash-looping: 3 restarts (container cloud-sql-proxy: CrashLoopBackOff; last exit Error, code 1)",
        "0 of 1 replicas ready",
    )
    assert result.rollout_failing


def test_failed_init_container_is_a_crash_loop_and_a_finished_one_is_fine() -> None:
    failing = pod(POD_A, ready=False, init_statuses=[container_status(
        "migrate", state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 2), ready=False,
        restart_count=2)], statuses=[container_status(state=waiting("PodInitializing"), ready=False, image_id="")])
    finished = pod(POD_B, init_statuses=[container_status("migrate", state=terminated("Completed", 0), ready=False)])

    assert replica_status(failing, SERVICE).reason == "container migrate: CrashLoopBackOff; last exit Error, code 2"
    assert replica_status(finished, SERVICE).state == "running"


# --- errors the kubelet retries: a grace period, unless the message is final ---------------------------------------

def stuck(reason: str, message: str, name: str = POD_B) -> ServiceObjects:
    """POD_A ready; `name` waiting on `reason` (no image resolved yet)."""
    blocked = pod(name, statuses=[container_status(state=waiting(reason, message), ready=False, image_id="")])
    return service(deployment(ready=1, available_replicas=1), [pod(POD_A), blocked])


def test_image_errors_the_registry_calls_final_fail_at_once() -> None:
    for reason, message in [
        ("ErrImagePull", f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": failed to '
                         f'resolve reference "{IMAGE}": {IMAGE}: not found'),
        ("ErrImagePull", f'failed to pull and unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": '
                         "unexpected status from HEAD request to https://europe-west1-docker.pkg.dev/v2/: "
                         "403 Forbidden"),
        ("ErrImagePull", 'Error response from daemon: manifest for payments:1.0.0 not found: manifest unknown'),
        ("ErrImagePull", "failed to authorize: failed to fetch oauth token: 401 Unauthorized"),
        ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}": ErrImagePull: pull access denied'),
        ("InvalidImageName", 'Failed to apply default image tag "Payments:1": couldn\'t parse image reference '
                             '"Payments:1": invalid reference format: repository name must be lowercase'),
        ("ErrImageNeverPull", f'Container image "{IMAGE}" is not present with pull policy of Never'),
    ]:
        result = verdict(stuck(reason, message))

        assert f"{POD_B} cannot start: {reason} ({message})" in result.health.problems, reason
        assert "1 of 2 replicas ready" in result.health.problems
        assert result.rollout_failing, message


def test_a_registry_5xx_or_429_is_retried_for_the_grace_period_then_fails() -> None:
    unavailable = (f'failed to pull and unpack image "{IMAGE}": failed to copy: httpReadSeeker: failed open: '
                   "unexpected status code https://europe-west1-docker.pkg.dev/v2/fintech-staging/services/payments/"
                   "blobs/sha256:4c1e: 503 Service Unavailable")
    for reason, message in [("ErrImagePull", unavailable),
                            ("ErrImagePull", "unexpected status code: 429 Too Many Requests"),
                            ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')]:
        objects = stuck(reason, message)

        first, later, past = verdict(objects), verdict(objects, seen_for=30), verdict(objects, seen_for=61)

        assert not first.failing and first.undecided and len(first.retried) == 1, reason
        assert not later.failing and "1 of 2 replicas ready" in later.health.problems
        assert not [problem for problem in later.health.problems if "cannot start" in problem]
        assert replica_status(objects.pods[1], SERVICE).reason.startswith(f"{reason} (")
        assert past.rollout_failing and not past.undecided
        assert f"{POD_B} cannot start: {reason} ({message}), for 61 s" in past.health.problems


def test_err_image_pull_and_image_pull_back_off_are_one_retried_state() -> None:
    pulling = verdict(stuck("ErrImagePull", "503 Service Unavailable"))
    backing_off = verdict(stuck("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'))

    assert pulling.retried == backing_off.retried


def test_a_missing_secret_or_a_name_reservation_race_waits_but_root_under_run_as_non_root_is_final() -> None:
    secret = 'secret "cloudsql-proxy-credentials" not found'
    race = ('failed to reserve container name "payments_payments-7d9f5c6b8-m8n2p_fintech_5e1f_0": name '
            '"payments_payments-7d9f5c6b8-m8n2p_fintech_5e1f_0" is reserved for "3f9c"')
    root = ('container has runAsNonRoot and image will run as root (pod: "payments-7d9f5c6b8-m8n2p_fintech(5e1f)", '
            "container: payments)")

    for reason, message in [("CreateContainerConfigError", secret), ("CreateContainerError", race)]:
        assert not verdict(stuck(reason, message)).failing, message
        assert verdict(stuck(reason, message), seen_for=61).rollout_failing, message
    assert f"{POD_B} cannot start: CreateContainerConfigError ({root})" in problems(
        stuck("CreateContainerConfigError", root))


def test_the_grace_period_is_release_yamls_default() -> None:
    assert GkePlatformSettings().transient_grace_seconds == TRANSIENT_GRACE_SECONDS <= 60


def test_an_api_time_wins_over_the_watchs_first_sighting() -> None:
    timeline = Timeline(now=AT, grace_seconds=GRACE, first_seen={"k": AT - timedelta(seconds=5)})

    assert timeline.age("k", AT - timedelta(seconds=90)) == 90
    assert timeline.age("k") == 5
    assert timeline.age("unseen") == 0


# --- not ready yet, wrong image -----------------------------------------------------------------------------------

def test_container_creating_is_only_not_ready_yet() -> None:
    result = verdict(stuck("ContainerCreating", ""))

    assert "1 of 2 replicas ready" in result.health.problems
    assert "deployment payments: 1 of 2 updated replicas available" in result.health.problems
    assert not any(POD_B in problem for problem in result.health.problems)
    assert not result.failing and not result.undecided


def test_running_pod_whose_readiness_probe_fails() -> None:
    unready = pod(POD_B, statuses=[container_status(ready=False)])

    result = verdict(service(deployment(ready=1, available_replicas=1), [pod(POD_A), unready]))

    assert f"{POD_B} is not ready (containers with unready status: [payments])" in result.health.problems
    assert not result.failing


def test_unschedulable_pod_waits_for_the_cluster_autoscaler() -> None:
    message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available"
    result = verdict(service(deployment(ready=1, available_replicas=1), [pod(POD_A), unscheduled_pod(POD_B, message)]))

    assert replica_status(unscheduled_pod(POD_B, message), SERVICE).reason == f"Unschedulable ({message})"
    assert "1 of 2 replicas ready" in result.health.problems
    assert not result.failing


def test_the_same_digest_under_another_registry_path_is_the_expected_image() -> None:
    mirrored = f"mirror.gcr.io/fintech/payments@{DIGEST}"
    pods = [pod(name, image=mirrored, statuses=[container_status(image=mirrored)]) for name in (POD_A, POD_B)]

    result = verdict(service(deployment(image=mirrored), pods))

    assert result.health.healthy, result.health.problems
    assert {replica.image for replica in result.health.replicas} == {mirrored}


def test_wrong_digest_running_is_reported_from_the_image_id() -> None:
    # The spec asks for the new digest but the node resolved another one (e.g. a mirror serving a stale copy).
    stale = pod(POD_B, statuses=[container_status(image_id=f"{REPOSITORY}@{OLD_DIGEST}")])

    result = verdict(service(pods=[pod(POD_A), stale]))

    assert result.health.problems == (f"{POD_B} runs {OLD_IMAGE}, expected {IMAGE}",)
    assert not result.rolled_out


def test_image_id_from_a_mirror_or_docker_prefix_with_the_right_digest_matches() -> None:
    mirrored = pod(POD_A, statuses=[container_status(image_id=f"docker-pullable://mirror.gcr.io/payments@{DIGEST}")])
    tagged = pod(POD_B, image="127.0.0.1:5000/payments:1.0.0",
                 statuses=[container_status(image="127.0.0.1:5000/payments:1.0.0",
                                            image_id=f"127.0.0.1:5000/payments@{DIGEST}")])

    assert replica_status(mirrored, SERVICE).image == IMAGE
    assert replica_status(tagged, SERVICE).image == f"127.0.0.1:5000/payments@{DIGEST}"


def test_autoscaled_deployment_above_the_minimum_needs_all_its_replicas() -> None:
    result = verdict(service(deployment(replicas=3, ready=2, available_replicas=2), healthy_pods(),
                             sets=replica_sets(new=3)), desired=2)

    assert result.health.desired_replicas == 3
    assert "2 of 3 replicas ready" in result.health.problems


# --- autoscaler and ingress: the service's, not the rollout's ------------------------------------------------------

METRICS = ("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics "
           "for resource cpu: no metrics returned from resource metrics API")
SCALE = ('the HPA controller was unable to get the target\'s current scale: deployments/scale.apps "payments" not '
         "found")


def broken_autoscaler(at: str) -> object:
    return autoscaler(condition("AbleToScale", "False", "FailedGetScale", SCALE, at=at),
                      condition("ScalingActive", "False", "FailedGetResourceMetric", METRICS, at=at))


def test_an_autoscaler_waiting_for_metrics_after_a_rollout_is_not_a_problem_yet() -> None:
    result = verdict(service(pods=healthy_pods(), autoscalers=[broken_autoscaler("2026-11-28T10:14:30Z")]))

    assert result.health.healthy and result.rolled_out, result.health.problems
    assert result.undecided and not result.failing


def test_an_autoscaler_that_cannot_read_metrics_past_the_grace_period_fails_but_not_the_rollout() -> None:
    result = verdict(service(pods=healthy_pods(), autoscalers=[broken_autoscaler("2026-11-28T10:13:00Z")]))

    assert result.health.problems == (
        f"autoscaler payments cannot scale (FailedGetScale: {SCALE}) for 120 s",
        f"autoscaler payments cannot compute a replica count (FailedGetResourceMetric: {METRICS}) for 120 s",
    )
    assert result.failing and not result.rollout_failing and result.rolled_out


def test_an_autoscaler_backing_off_after_scaling_is_no_problem() -> None:
    backoff = autoscaler(condition("AbleToScale", "False", "BackoffBoth", "the time since the previous scale is "
                                   "still within both the downscale and upscale forbidden windows",
                                   at="2026-11-28T10:05:00Z"))

    assert verdict(service(pods=healthy_pods(), autoscalers=[backoff])).health.healthy


def test_ingress_without_a_load_balancer_address() -> None:
    no_address = verdict(service(pods=healthy_pods(), ingresses=[ingress(ip=None)]))

    assert no_address.health.problems == ("ingress staging-ingress-rules has no load-balancer address yet",)
    assert no_address.rolled_out and not no_address.failing
    assert verdict(service(pods=healthy_pods(), ingresses=[ingress(ip=None, hostname="lb.example")])).health.healthy


def test_running_image_and_digest_helpers() -> None:
    assert running_image(deployment(image=OLD_IMAGE), SERVICE) == OLD_IMAGE
    assert running_image(None, SERVICE) is None
    assert image_digest(IMAGE) == DIGEST
    assert image_digest("docker-pullable://gcr.io/x/payments@" + DIGEST) == DIGEST
    assert image_digest("gcr.io/x/payments:1.0.0") is None
    assert image_digest("sha256:" + "e" * 64) is None  # a local image id, not a repository digest
