"""The Kubernetes health model on realistic objects: pure unit tests, no cluster.

Every object is a JSON document shaped like `kubectl get -o json` output, deserialized by the
official client (`fintech_release_tests/k8s_objects.py`), so `judge` and `is_failing_fast` read
the same models a real API call returns. Covered: a finished rollout, mid-rollout states,
ProgressDeadlineExceeded, each pod failure reason, OOMKilled, restarts (and which of them count:
only those since a given moment), a wrong digest, the same digest under another registry path,
autoscaler failures and an ingress without an address.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fintech_release.health.model import ServiceHealth
from fintech_release.health.kubernetes import (
    ServiceObjects,
    image_digest,
    is_failing_fast,
    judge,
    replica_status,
    running_image,
)
from fintech_release_tests.k8s_objects import (
    DIGEST,
    ENVIRONMENT,
    IMAGE,
    OLD_DIGEST,
    OLD_IMAGE,
    REPOSITORY,
    SERVICE,
    autoscaler,
    available,
    condition,
    container,
    container_status,
    deployment,
    ingress,
    pod,
    progressing,
    sidecar,
    terminated,
    unscheduled_pod,
    waiting,
)

POD_A = f"{SERVICE}-7d9f5c6b8-x2k4q"
POD_B = f"{SERVICE}-7d9f5c6b8-m8n2p"


def healthy_pods() -> list:
    return [pod(POD_A), pod(POD_B)]


def verdict(objects: ServiceObjects, *, desired: int = 2, expected: str | None = IMAGE) -> ServiceHealth:
    return judge(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=desired, expected_image=expected)


def test_finished_rollout_with_autoscaler_and_ingress_is_healthy() -> None:
    objects = ServiceObjects(deployment(), healthy_pods(), [autoscaler()], [ingress()])

    health = verdict(objects)

    assert health.healthy, health.problems
    assert (health.ready_replicas, health.desired_replicas) == (2, 2)
    assert [r.name for r in health.replicas] == [POD_A, POD_B]
    assert not is_failing_fast(objects, SERVICE)


def test_mid_rollout_one_of_two_updated_is_not_healthy_yet_but_not_failing() -> None:
    objects = ServiceObjects(
        deployment(status_replicas=3, updated=1, ready=2, available_replicas=2,
                   conditions=[available(), progressing(reason="ReplicaSetUpdated",
                                                        message='ReplicaSet "payments-7d9f5c6b8" is progressing.')]),
        [pod(POD_A), pod(POD_B, image=OLD_IMAGE), pod("payments-58c4d9-qq7rt", statuses=[
            container_status(state=waiting("ContainerCreating"), ready=False, image_id="")])],
    )

    health = verdict(objects)

    assert not health.healthy
    assert health.problems[0] == "deployment payments: 1 of 2 replicas updated to the new version"
    assert f"{POD_B} runs {OLD_IMAGE}, expected {IMAGE}" in health.problems
    assert not is_failing_fast(objects, SERVICE)


def test_old_replicas_pending_termination_then_updated_replicas_not_available() -> None:
    terminating = ServiceObjects(deployment(status_replicas=3, updated=2), [*healthy_pods(), pod(
        "payments-58c4d9-qq7rt", image=OLD_IMAGE, deleting=True)])
    waiting_for_available = ServiceObjects(deployment(available_replicas=1), healthy_pods())

    assert verdict(terminating).problems == ("deployment payments: 1 old replicas pending termination",)
    assert verdict(waiting_for_available).problems == ("deployment payments: 1 of 2 updated replicas available",)


def test_generation_not_yet_observed_by_the_controller() -> None:
    health = verdict(ServiceObjects(deployment(generation=5, observed_generation=4), healthy_pods()))

    assert health.problems == ("deployment payments: the controller has not yet seen generation 5 (saw 4)",)


def test_progress_deadline_exceeded_fails_fast() -> None:
    message = 'ReplicaSet "payments-58c4d9" has timed out progressing.'
    objects = ServiceObjects(
        deployment(updated=1, available_replicas=1, ready=1, conditions=[
            available("False", "MinimumReplicasUnavailable"),
            progressing("False", "ProgressDeadlineExceeded", message),
        ]),
        [pod(POD_A)],
    )

    health = verdict(objects)

    assert f"deployment payments exceeded its progress deadline (ProgressDeadlineExceeded: {message})" in \
        health.problems
    assert ("deployment payments is not available (MinimumReplicasUnavailable: Deployment does not have minimum "
            "availability.)") in health.problems
    assert is_failing_fast(objects, SERVICE)


def test_replica_failure_condition_fails_fast() -> None:
    quota = 'pods "payments-58c4d9-" is forbidden: exceeded quota: compute, requested: cpu=250m'
    objects = ServiceObjects(
        deployment(updated=0, conditions=[available(), progressing(reason="ReplicaSetUpdated"),
                                          condition("ReplicaFailure", "True", "FailedCreate", quota)]),
        healthy_pods(),
    )

    assert f"deployment payments cannot create pods (FailedCreate: {quota})" in verdict(objects).problems
    assert is_failing_fast(objects, SERVICE)


def test_paused_deployment() -> None:
    assert "deployment payments is paused" in verdict(ServiceObjects(deployment(paused=True), healthy_pods())).problems


def test_missing_deployment() -> None:
    health = verdict(ServiceObjects(None))

    assert health.problems == (
        "no Deployment labelled io.fintech-release/service=payments: the service is not deployed",
        "0 of 2 replicas ready",
    )


def test_crash_loop_back_off_names_restarts_and_last_exit() -> None:
    looping = pod(POD_B, statuses=[container_status(
        state=waiting("CrashLoopBackOff", f"back-off 1m20s restarting failed container={SERVICE} pod={POD_B}"),
        last_state=terminated("Error", 1), ready=False, restart_count=4)])
    objects = ServiceObjects(deployment(ready=1, available_replicas=1), [pod(POD_A), looping])

    health = verdict(objects)

    assert f"{POD_B} is crash-looping: 4 restarts (CrashLoopBackOff; last exit Error, code 1)" in health.problems
    assert "1 of 2 replicas ready" in health.problems
    assert is_failing_fast(objects, SERVICE)


def test_oom_killed_container_that_restarted_and_runs_again() -> None:
    oom = pod(POD_A, statuses=[container_status(last_state=terminated("OOMKilled", 137), restart_count=1)])

    replica = replica_status(oom, SERVICE)
    health = verdict(ServiceObjects(deployment(), [oom, pod(POD_B)]))

    assert (replica.state, replica.readiness, replica.restart_count) == ("running", "ready", 1)
    assert health.problems == (f"{POD_A} is crash-looping: 1 restarts (last exit OOMKilled, code 137)",)
    assert is_failing_fast(ServiceObjects(deployment(), [oom]), SERVICE)


def test_restarts_alone_make_a_ready_pod_unhealthy() -> None:
    restarted = pod(POD_A, statuses=[container_status(last_state=terminated("Error", 143), restart_count=2)])

    assert verdict(ServiceObjects(deployment(), [restarted, pod(POD_B)])).problems == (
        f"{POD_A} is crash-looping: 2 restarts (last exit Error, code 143)",
    )


DEPLOYED_AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # `since`: when the deployment being judged began


def restarted_at(finished_at: str, *, state: dict | None = None) -> list:
    """POD_A restarted twice, the last run ending at `finished_at`; POD_B never restarted."""
    statuses = [container_status(state=state, last_state=terminated(
        "Error", 143, started_at="2026-09-30T00:00:00Z", finished_at=finished_at), ready=state is None,
        restart_count=2)]
    return [pod(POD_A, statuses=statuses), pod(POD_B)]


def test_restarts_before_since_are_ignored() -> None:
    objects = ServiceObjects(deployment(), restarted_at("2026-10-02T03:04:05Z"))

    health = judge(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                   since=DEPLOYED_AT)

    assert health.healthy, health.problems
    assert replica_status(objects.pods[0], SERVICE, DEPLOYED_AT).restart_count == 0
    assert not is_failing_fast(objects, SERVICE, DEPLOYED_AT)
    assert not verdict(objects).healthy  # without `since` every restart counts, as before


def test_a_restart_after_since_fails() -> None:
    objects = ServiceObjects(deployment(), restarted_at("2026-11-28T10:03:00Z"))

    health = judge(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                   since=DEPLOYED_AT)

    assert health.problems == (f"{POD_A} is crash-looping: 2 restarts (last exit Error, code 143)",)
    assert is_failing_fast(objects, SERVICE, DEPLOYED_AT)


def test_a_pod_in_crash_loop_back_off_fails_however_long_ago_it_last_ran() -> None:
    objects = ServiceObjects(deployment(ready=1, available_replicas=1),
                             restarted_at("2026-10-02T03:04:05Z", state=waiting("CrashLoopBackOff")))

    health = judge(objects, environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                   since=DEPLOYED_AT)

    assert f"{POD_A} is crash-looping: 2 restarts (CrashLoopBackOff; last exit Error, code 143)" in health.problems
    assert is_failing_fast(objects, SERVICE, DEPLOYED_AT)


def test_the_same_digest_under_another_registry_path_is_the_expected_image() -> None:
    mirrored = f"mirror.gcr.io/fintech/payments@{DIGEST}"
    pods = [pod(name, image=mirrored, statuses=[container_status(image=mirrored)]) for name in (POD_A, POD_B)]

    health = verdict(ServiceObjects(deployment(image=mirrored), pods))

    assert health.healthy, health.problems
    assert {replica.image for replica in health.replicas} == {mirrored}


def test_image_pull_back_off_and_err_image_pull_fail_fast_with_the_kubelet_message() -> None:
    for reason, message in [
        ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'),
        ("ErrImagePull", f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": not found'),
    ]:
        stuck = pod(POD_B, statuses=[container_status(state=waiting(reason, message), ready=False, image_id="")])
        objects = ServiceObjects(deployment(ready=1, available_replicas=1, updated=2), [pod(POD_A), stuck])

        health = verdict(objects)

        assert f"{POD_B} cannot start: {reason} ({message})" in health.problems
        assert "1 of 2 replicas ready" in health.problems
        assert is_failing_fast(objects, SERVICE)


def test_create_container_config_error_names_the_missing_secret() -> None:
    message = 'secret "cloudsql-proxy-credentials" not found'
    stuck = pod(POD_A, statuses=[container_status(
        state=waiting("CreateContainerConfigError", message), ready=False, image_id="")])
    objects = ServiceObjects(deployment(ready=0, available_replicas=0, replicas=1), [stuck])

    health = verdict(objects, desired=1)

    assert f"{POD_A} cannot start: CreateContainerConfigError ({message})" in health.problems
    assert is_failing_fast(objects, SERVICE)


def test_container_creating_is_only_not_ready_yet() -> None:
    creating = pod(POD_B, statuses=[container_status(state=waiting("ContainerCreating"), ready=False, image_id="")])
    objects = ServiceObjects(deployment(ready=1, available_replicas=1), [pod(POD_A), creating])

    health = verdict(objects)

    assert "1 of 2 replicas ready" in health.problems
    assert "deployment payments: 1 of 2 updated replicas available" in health.problems
    assert not any(POD_B in problem for problem in health.problems)
    assert not is_failing_fast(objects, SERVICE)


def test_running_pod_whose_readiness_probe_fails() -> None:
    unready = pod(POD_B, statuses=[container_status(ready=False)])

    health = verdict(ServiceObjects(deployment(ready=1, available_replicas=1), [pod(POD_A), unready]))

    assert f"{POD_B} is not ready (containers with unready status: [payments])" in health.problems
    assert not is_failing_fast(ServiceObjects(deployment(), [unready]), SERVICE)


def test_unschedulable_pod_waits_for_the_cluster_autoscaler() -> None:
    message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available"
    objects = ServiceObjects(deployment(ready=1, available_replicas=1), [pod(POD_A), unscheduled_pod(POD_B, message)])

    health = verdict(objects)

    assert f"{POD_B} cannot start: Unschedulable ({message})" in health.problems
    assert not is_failing_fast(objects, SERVICE)


def test_evicted_pod_is_an_exited_replica() -> None:
    evicted = pod(POD_B, phase="Failed", statuses=[], reason="Evicted",
                  message="The node was low on resource: memory.")

    health = verdict(ServiceObjects(deployment(), [pod(POD_A), evicted]))

    assert f"{POD_B} exited with code None (Evicted: The node was low on resource: memory.) after 0 restarts" in \
        health.problems


def test_crash_looping_sidecar_is_named_as_the_failing_container() -> None:
    statuses = [
        container_status(),
        container_status("cloud-sql-proxy", image="gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1",
                         state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 1), ready=False,
                         restart_count=3),
    ]
    proxied = pod(POD_A, statuses=statuses, containers=[container(), sidecar()])
    objects = ServiceObjects(deployment(replicas=1), [proxied])

    replica = replica_status(proxied, SERVICE)

    assert replica.image == IMAGE  # the service container's image, not the sidecar's
    assert verdict(objects, desired=1).problems == (
        f"{POD_A} is crash-looping: 3 restarts (container cloud-sql-proxy: CrashLoopBackOff; last exit Error, code 1)",
        "0 of 1 replicas ready",
    )
    assert is_failing_fast(objects, SERVICE)


def test_failed_init_container_is_a_crash_loop_and_a_finished_one_is_fine() -> None:
    failing = pod(POD_A, ready=False, init_statuses=[container_status(
        "migrate", state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 2), ready=False,
        restart_count=2)], statuses=[container_status(state=waiting("PodInitializing"), ready=False, image_id="")])
    finished = pod(POD_B, init_statuses=[container_status("migrate", state=terminated("Completed", 0), ready=False)])

    assert replica_status(failing, SERVICE).reason == "container migrate: CrashLoopBackOff; last exit Error, code 2"
    assert replica_status(finished, SERVICE).state == "running"


def test_wrong_digest_running_is_reported_from_the_image_id() -> None:
    # The spec asks for the new digest but the node resolved another one (e.g. a mirror serving a stale copy).
    stale = pod(POD_B, statuses=[container_status(image_id=f"{REPOSITORY}@{OLD_DIGEST}")])

    health = verdict(ServiceObjects(deployment(), [pod(POD_A), stale]))

    assert health.problems == (f"{POD_B} runs {OLD_IMAGE}, expected {IMAGE}",)


def test_image_id_from_a_mirror_or_docker_prefix_with_the_right_digest_matches() -> None:
    mirrored = pod(POD_A, statuses=[container_status(image_id=f"docker-pullable://mirror.gcr.io/payments@{DIGEST}")])
    tagged = pod(POD_B, image="127.0.0.1:5000/payments:1.0.0",
                 statuses=[container_status(image="127.0.0.1:5000/payments:1.0.0",
                                            image_id=f"127.0.0.1:5000/payments@{DIGEST}")])

    assert replica_status(mirrored, SERVICE).image == IMAGE
    assert replica_status(tagged, SERVICE).image == f"127.0.0.1:5000/payments@{DIGEST}"


def test_autoscaler_that_cannot_read_metrics_or_its_target() -> None:
    metrics = ("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
               "metrics for resource cpu: no metrics returned from resource metrics API")
    scale = 'the HPA controller was unable to get the target\'s current scale: deployments/scale.apps "payments" ' \
        "not found"
    objects = ServiceObjects(deployment(), healthy_pods(), [autoscaler(
        condition("AbleToScale", "False", "FailedGetScale", scale),
        condition("ScalingActive", "False", "FailedGetResourceMetric", metrics),
    )])

    health = verdict(objects)

    assert health.problems == (
        f"autoscaler payments cannot scale (FailedGetScale: {scale})",
        f"autoscaler payments cannot compute a replica count (FailedGetResourceMetric: {metrics})",
    )
    assert not is_failing_fast(objects, SERVICE)  # metrics often arrive a minute after the pods


def test_ingress_without_a_load_balancer_address() -> None:
    assert verdict(ServiceObjects(deployment(), healthy_pods(), [], [ingress(ip=None)])).problems == (
        "ingress staging-ingress-rules has no load-balancer address yet",
    )
    assert verdict(ServiceObjects(deployment(), healthy_pods(), [], [ingress(ip=None, hostname="lb.example")])).healthy


def test_autoscaled_deployment_above_the_minimum_needs_all_its_replicas() -> None:
    objects = ServiceObjects(deployment(replicas=3, ready=2, available_replicas=2), healthy_pods())

    health = verdict(objects, desired=2)

    assert health.desired_replicas == 3
    assert "2 of 3 replicas ready" in health.problems


def test_running_image_and_digest_helpers() -> None:
    assert running_image(deployment(image=OLD_IMAGE), SERVICE) == OLD_IMAGE
    assert running_image(None, SERVICE) is None
    assert image_digest(IMAGE) == DIGEST
    assert image_digest("docker-pullable://gcr.io/x/payments@" + DIGEST) == DIGEST
    assert image_digest("gcr.io/x/payments:1.0.0") is None
    assert image_digest("sha256:" + "e" * 64) is None  # a local image id, not a repository digest
