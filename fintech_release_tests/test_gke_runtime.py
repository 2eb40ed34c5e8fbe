"""GkeRuntime and KubernetesCluster.

* Decisions that need no cluster run against a stand-in Kubernetes API on loopback: a small HTTP
  server answering the five list endpoints (Deployments, ReplicaSets, pods, HPAs, ingresses) with
  documents shaped like the real API's (built by `k8s_objects`), read by the real `kubernetes`
  client through a real kubeconfig. This is a contract test against the documented response
  shapes, not a cluster: it shows which requests are made (paths, label selectors), that an
  unchanged digest is not upgraded (helm is never run), that health stops at the first back-off,
  that a health watch runs the kubeconfig's credentials plugin (a stand-in script for
  gke-gcloud-auth-plugin) once, how refused credentials and an unreachable API server (a loopback
  port nothing listens on) are reported, and that a permanent environment is never torn down.
* Rollouts: helm is a stand-in shell script (not the real helm) that logs its arguments and
  replays release JSON in the shape `helm status/history/upgrade -o json` print; the stand-in API
  serves what the cluster would hold after the last helm command (before the upgrade, during the
  rollout, after the rollback). Shown: the upgrade runs without helm's wait; a new pod in
  CrashLoopBackOff is caught on the first look and rolled back to the revision deployed before;
  a rollout that never gets ready is rolled back at helm's timeout; a first install that fails is
  uninstalled; a healthy rollout is `deployed`; an upgrade helm rejects is rolled back with the
  chart's values seen; a rollback that fails too names the helm command that recovers;
  restarts weeks before the deployment count for nothing. Scenes can change look by look, so the
  verdict rules are shown end to end: a release that fixes a crash loop (old pods crash-looping) goes
  out; a new pod the node evicted, and conditions left from the last rollout (seen before the
  controller observed the upgrade), roll nothing back; an image pull the registry answers with 503
  is retried and the release goes out, one failing past the grace period is rolled back; a paused
  Deployment is rolled back at the first look; an autoscaler without metrics for an hour fails
  `pod_health` at the first look but rolls nothing back, one catching up after a rollout is waited
  for past the window; a watch stops when interrupted. What a real cluster does during a rollout is
  only covered by the opt-in integration test.
* ensure_environment and teardown with the real terraform binary on a provider-free root module
  (a `terraform_data` resource, outputs, a sensitive output) with the environment's var file and a
  local backend path per environment; skipped when terraform is missing.
* Integration (opt-in, needs KUBECONFIG, helm and FINTECH_RELEASE_TEST_IMAGE): deploys a demo
  service image to a real cluster in a throw-away namespace, checks its health, fails a rollout
  with a digest that does not exist (rolled back at the image pull back-off, the first image keeps serving), then
  uninstalls and deletes the namespace. Skipped, with the reason, when any of those is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from fintech_release.errors import DeploymentRefusedError, ExternalSystemError, ReleaseConfigError, ToolFailedError
from fintech_release.resources.gke_runtime import GkeRuntime, GkeTarget
from fintech_release.resources.helm import HelmRunner
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.runtime import DeploySpec
from fintech_release.resources.terraform import TerraformRunner
from fintech_release_tests.components import answer_json
from fintech_release_tests.k8s_objects import (
    ENVIRONMENT,
    IMAGE,
    NAMESPACE,
    OLD_HASH,
    OLD_IMAGE,
    OLD_REVISION,
    SERVICE,
    autoscaler,
    available,
    condition,
    container_status,
    deployment,
    disrupted,
    ingress,
    old_pod,
    pod,
    progressing,
    replica_set,
    replica_sets,
    terminated,
    to_document,
    waiting,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-never-logged-5c1d"
LIST_KINDS = {
    f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments": "DeploymentList",
    f"/api/v1/namespaces/{NAMESPACE}/pods": "PodList",
    f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers": "HorizontalPodAutoscalerList",
    f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses": "IngressList",
    f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets": "ReplicaSetList",
}


class StandInApi:
    """Answers the five list endpoints from `objects`; records every request; can fail the next few."""

    def __init__(self) -> None:
        self.objects: dict[str, list[Any]] = {path: [] for path in LIST_KINDS}
        self.requests: list[tuple[str, str | None, str | None]] = []  # path, label selector, Authorization header
        self.failures: list[int] = []  # HTTP statuses to answer with, one per request, before serving
        # Called with the request's path before it is answered, e.g. to change the objects as a helm command would.
        self.before_request: Callable[[str], None] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(
        self, *, deployments: Sequence[Any] = (), pods: Sequence[Any] = (), hpas: Sequence[Any] = (),
        ingresses: Sequence[Any] = (), replica_sets: Sequence[Any] = (),
    ) -> None:
        paths = list(LIST_KINDS)
        for path, models in zip(paths, (deployments, pods, hpas, ingresses, replica_sets), strict=True):
            self.objects[path] = [to_document(model) for model in models]

    def count(self, kind: str) -> int:
        return sum(1 for path, _, _ in self.requests if path.endswith(kind))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server naming
                url = urlparse(self.path)
                selector = parse_qs(url.query).get("labelSelector", [None])[0]
                api.requests.append((url.path, selector, self.headers.get("Authorization")))
                if api.before_request:
                    api.before_request(url.path)
                if api.failures:
                    status = api.failures.pop(0)
                    self._answer(status, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                          "message": "stand-in failure", "code": status})
                elif url.path in LIST_KINDS:
                    self._answer(200, {"kind": LIST_KINDS[url.path], "apiVersion": "v1",
                                       "metadata": {"resourceVersion": "4711"}, "items": api.objects[url.path]})
                else:
                    self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

            def _answer(self, status: int, body: dict) -> None:
                answer_json(self, status, body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def stand_in_api() -> Iterator[StandInApi]:
    api = StandInApi()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def write_kubeconfig(path: Path, server: str, context: str = "gke_acme-staging_europe-west2_staging") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "staging", "cluster": {"server": server}}],
        "users": [{"name": "deployer", "user": {"token": TOKEN}}],
        "contexts": [{"name": context, "context": {"cluster": "staging", "user": "deployer"}}],
        "current-context": context,
    }))
    return path


def make_runtime(
    kubeconfig: Path, *, ephemeral: bool = False, helm: str = "/nonexistent/helm", helm_timeout: int = 600,
    grace: float = 60, cluster_defaults: bool = False,
) -> GkeRuntime:
    """A runtime whose helm is missing unless given: a test that reaches it fails with ToolNotFoundError. It looks
    every 0.1 s with 2 s requests, or as release.yaml's defaults make it with `cluster_defaults`."""
    timing = {} if cluster_defaults else {"request_timeout_seconds": 2, "poll_seconds": 0.1}
    return GkeRuntime(
        release_config=str(REPO_ROOT / "examples" / "release.gke.yaml"),
        charts_dir=str(REPO_ROOT / "deploy" / "charts"),
        environments={ENVIRONMENT: GkeTarget(
            project="acme-staging", region="europe-west2", kube_context="gke_acme-staging_europe-west2_staging",
            namespace=NAMESPACE, terraform_root="/nonexistent/terraform/environment",
            terraform_var_file="/nonexistent/terraform/environments/staging.tfvars", ephemeral=ephemeral,
        )},
        cluster=KubernetesCluster(kubeconfig=str(kubeconfig), transient_grace_seconds=grace, **timing),
        helm=HelmRunner(executable=helm, kubeconfig=str(kubeconfig), timeout_seconds=helm_timeout),
        terraform=TerraformRunner(executable="/nonexistent/terraform"),
    )


def spec(image: str = IMAGE, replicas: int = 2) -> DeploySpec:
    return DeploySpec(environment=ENVIRONMENT, service=SERVICE, image=image, replicas=replicas, address="0.0.0.0",
                      health_path="/health", env={"APP_ENV": ENVIRONMENT})


def healthy_service(api: StandInApi, image: str = IMAGE) -> None:
    api.serve(deployments=[deployment(image=image)], replica_sets=replica_sets(),
              pods=[pod("payments-7d9f5c6b8-x2k4q", image=image), pod("payments-7d9f5c6b8-m8n2p", image=image)],
              hpas=[autoscaler()], ingresses=[ingress()])


def test_unchanged_when_the_running_digest_matches_and_helm_is_never_run(stand_in_api: StandInApi,
                                                                         tmp_path: Path) -> None:
    healthy_service(stand_in_api)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: pytest.fail("never called on gke"))

    assert (outcome.status, outcome.image, outcome.previous_image) == ("unchanged", IMAGE, IMAGE)
    assert outcome.health.healthy, outcome.health.problems
    selectors = {selector for path, selector, _ in stand_in_api.requests if not path.endswith("ingresses")}
    assert selectors == {f"io.fintech-release/service={SERVICE},io.fintech-release/environment={ENVIRONMENT}"}
    assert {auth for _, _, auth in stand_in_api.requests} == {f"Bearer {TOKEN}"}


def test_a_different_digest_goes_to_helm(stand_in_api: StandInApi, tmp_path: Path) -> None:
    healthy_service(stand_in_api, image=OLD_IMAGE)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    assert runtime.running_image(environment=ENVIRONMENT, service=SERVICE) == OLD_IMAGE
    with pytest.raises(ExternalSystemError, match="helm not found"):  # the stand-in helm path does not exist
        runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)


STAND_IN_HELM = """#!/bin/sh
# Stand-in for helm 3.16 (not the real helm): logs every call, replays the JSON files next to it.
here="$(dirname "$0")"
echo "$*" >> "$here/calls.log"
reply() { if [ -f "$here/$1" ]; then cat "$here/$1"; else echo "Error: release: not found" >&2; exit 1; fi; }
case "$1" in
  version) echo "v3.16.2" ;;
  status) reply status.json ;;
  history) reply history.json ;;
  upgrade)
    while [ "$#" -gt 0 ]; do [ "$1" = "--values" ] && cp "$2" "$here/values-seen.yaml"; shift; done
    if [ -f "$here/upgrade-fails" ]; then cat "$here/upgrade-fails" >&2; exit 1; fi
    reply upgrade.json ;;
  rollback)
    if [ -f "$here/rollback-fails" ]; then cat "$here/rollback-fails" >&2; exit 1; fi
    echo "Rollback was a success! Happy Helming!" ;;
  uninstall) echo 'release "payments" uninstalled' ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""
WEEKS_AGO = "2026-10-02T03:04:05Z"  # long before any test runs


class StandInHelm:
    """The stand-in helm script in a folder: what it should answer, and the calls it received."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.executable = folder / "helm"
        self.executable.write_text(STAND_IN_HELM)
        self.executable.chmod(0o755)

    def deployed_before(self, revision: int) -> None:
        """A release whose `revision` is deployed (older ones superseded); an upgrade makes revision + 1."""
        history = [{"revision": n, "updated": "2026-11-20T10:00:00Z", "status": "superseded",
                    "chart": "microservice-0.1.0", "app_version": "by-digest", "description": "Upgrade complete"}
                   for n in range(1, revision + 1)]
        history[-1]["status"] = "deployed"
        (self.folder / "history.json").write_text(json.dumps(history))
        (self.folder / "status.json").write_text(json.dumps(release_document(revision, "deployed")))
        (self.folder / "upgrade.json").write_text(json.dumps(release_document(revision + 1, "deployed")))

    def first_install(self) -> None:
        (self.folder / "upgrade.json").write_text(json.dumps(release_document(1, "deployed")))

    def upgrade_fails(self, message: str) -> None:
        (self.folder / "upgrade-fails").write_text(message)

    def rollback_fails(self, message: str) -> None:
        (self.folder / "rollback-fails").write_text(message)

    def calls(self) -> list[str]:
        log = self.folder / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def last_change(self) -> str:
        """The last command that changes the cluster (upgrade, rollback, uninstall), or "" before any."""
        changes = [call.split()[0] for call in self.calls() if call.split()[0] in ("upgrade", "rollback", "uninstall")]
        return changes[-1] if changes else ""


def release_document(revision: int, status: str) -> dict[str, Any]:
    """The release object `helm status -o json` / `helm upgrade -o json` print (the fields we read)."""
    return {"name": SERVICE, "namespace": NAMESPACE, "version": revision,
            "info": {"status": status, "last_deployed": "2026-11-28T10:12:00Z", "description": "Upgrade complete"},
            "chart": {"metadata": {"name": "microservice", "version": "0.1.0", "appVersion": "by-digest"}}}


Scene = dict[str, Any]  # keyword arguments of StandInApi.serve


def follow_helm(api: StandInApi, helm: StandInHelm, scenes: dict[str, Scene | list[Scene]]) -> None:
    """Serve `scenes[helm.last_change()]`: what the cluster holds after the last helm command.

    A list is what successive looks see after that command (a look starts with the Deployment
    list); the last scene stays.
    """
    looks: dict[str, int] = {}

    def before(path: str) -> None:
        change = helm.last_change()
        scene = scenes[change]
        if isinstance(scene, list):
            if path.endswith("/deployments"):
                looks[change] = looks.get(change, -1) + 1
            scene = scene[min(looks.get(change, 0), len(scene) - 1)]
        api.serve(**scene)

    api.before_request = before


def ready_status(image: str, *, restarted_weeks_ago: bool) -> dict[str, Any]:
    """A running, ready container of `image`; optionally restarted once, weeks ago."""
    if not restarted_weeks_ago:
        return container_status(image=image)
    previous_run = terminated("Error", 137, started_at="2026-09-30T00:00:00Z", finished_at=WEEKS_AGO)
    return container_status(image=image, last_state=previous_run, restart_count=1)


OLD_PODS = ("payments-6c8b7f9d4-a1b2c", "payments-6c8b7f9d4-d3e4f")


def old_release(restarted_weeks_ago: bool = False, *, old_pods: Sequence[Any] | None = None) -> Scene:
    """Revision 3 serving: two ready pods of OLD_IMAGE (optionally each restarted once, weeks ago), or `old_pods`."""
    pods = [old_pod(name, statuses=[ready_status(OLD_IMAGE, restarted_weeks_ago=restarted_weeks_ago)])
            for name in OLD_PODS] if old_pods is None else list(old_pods)
    return {"deployments": [deployment(image=OLD_IMAGE, revision=OLD_REVISION)], "pods": pods,
            "replica_sets": [replica_set(OLD_HASH, OLD_REVISION, image=OLD_IMAGE, replicas=2)],
            "hpas": [autoscaler()], "ingresses": [ingress()]}


def rolling_out(*new_pods: Any, old_pods: Sequence[Any] | None = None, available_replicas: int = 2) -> Scene:
    """Mid-rollout to revision 4 (maxSurge 1, maxUnavailable 0): the old pods still serve beside `new_pods`."""
    old = old_release(restarted_weeks_ago=True, old_pods=old_pods)
    conditions = [available() if available_replicas >= 2 else available("False", "MinimumReplicasUnavailable"),
                  progressing(reason="ReplicaSetUpdated")]
    rollout = deployment(generation=5, observed_generation=5, status_replicas=3, updated=1, ready=available_replicas,
                         available_replicas=available_replicas, conditions=conditions)
    return {**old, "deployments": [rollout], "pods": [*old["pods"], *new_pods],
            "replica_sets": replica_sets(new=1, old=2)}


def rolled_out(*extra_pods: Any, hpas: Sequence[Any] | None = None) -> Scene:
    """Revision 4 finished: two ready new pods (plus `extra_pods`), the old ReplicaSet scaled to 0."""
    return {"deployments": [deployment(generation=5, observed_generation=5)],
            "pods": [pod("payments-7d9f5c6b8-x2k4q"), pod("payments-7d9f5c6b8-m8n2p"), *extra_pods],
            "replica_sets": replica_sets(), "hpas": [autoscaler()] if hpas is None else list(hpas),
            "ingresses": [ingress()]}


def crash_looping_pod() -> Any:
    just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pod("payments-7d9f5c6b8-qq7rt", statuses=[container_status(
        state=waiting("CrashLoopBackOff", "back-off 10s restarting failed container=payments"),
        last_state=terminated("Error", 1, started_at=just_now, finished_at=just_now), ready=False, restart_count=1)])


def rollout_runtime(api: StandInApi, tmp_path: Path, helm: StandInHelm, *, helm_timeout: int = 600) -> GkeRuntime:
    return make_runtime(write_kubeconfig(tmp_path / "kubeconfig", api.url), helm=str(helm.executable),
                        helm_timeout=helm_timeout)


def test_a_crash_looping_rollout_is_rolled_back_at_the_first_look(stand_in_api: StandInApi, tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": rolling_out(crash_looping_pod()),
                                     "rollback": old_release()})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: pytest.fail("never called on gke"))

    assert (outcome.status, outcome.image, outcome.previous_image) == ("failed", OLD_IMAGE, OLD_IMAGE)
    assert "payments-7d9f5c6b8-qq7rt is crash-looping: 1 restarts (CrashLoopBackOff; last exit Error, code 1)" \
        in outcome.health.problems
    assert "rolled back to revision 7" in outcome.detail and "the Deployment runs " + OLD_IMAGE in outcome.detail
    calls = [call for call in helm.calls() if not call.startswith("version")]
    assert [call.split()[0] for call in calls] == ["history", "status", "upgrade", "rollback", "status"]
    upgrade, rollback = calls[2], calls[3]
    assert "--wait" not in upgrade and "--atomic" not in upgrade
    assert rollback.startswith("rollback payments 7 --wait --timeout 600s --namespace fintech")
    assert stand_in_api.count("pods") == 1  # the first look after the upgrade saw the back-off


def test_a_rollback_that_fails_too_names_the_command_that_recovers(stand_in_api: StandInApi, tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    helm.rollback_fails("Error: timed out waiting for the condition")
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": rolling_out(crash_looping_pod()),
                                     "rollback": rolling_out(crash_looping_pod())})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    with pytest.raises(ToolFailedError) as raised:
        runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    message = str(raised.value)
    assert message.startswith(f"environment 'staging', service 'payments': {IMAGE} did not roll out (failing:")
    assert (f"Recover with `helm rollback payments 7 --namespace {NAMESPACE} --kubeconfig {tmp_path / 'kubeconfig'}"
            " --kube-context gke_acme-staging_europe-west2_staging`.") in message


def test_a_rollout_that_never_gets_ready_is_rolled_back_at_helms_timeout(
    stand_in_api: StandInApi, tmp_path: Path
) -> None:
    """No back-off, only a pod that stays not ready; the old pods' restarts weeks ago do not end the watch."""
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=3)
    never_ready = pod("payments-7d9f5c6b8-zz9yx", statuses=[container_status(ready=False)])
    follow_helm(stand_in_api, helm, {"": old_release(restarted_weeks_ago=True), "upgrade": rolling_out(never_ready),
                                     "rollback": old_release(restarted_weeks_ago=True)})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm, helm_timeout=1)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    assert (outcome.status, outcome.image) == ("failed", OLD_IMAGE)
    assert "not rolled out within helm's timeout of 1 s" in outcome.detail
    assert "payments-7d9f5c6b8-zz9yx is not ready" in "; ".join(outcome.health.problems)
    assert not [problem for problem in outcome.health.problems if "crash-looping" in problem]
    kubeconfig = tmp_path / "kubeconfig"
    rollback = (f"rollback payments 3 --wait --timeout 1s --namespace {NAMESPACE} --kubeconfig {kubeconfig}"
                " --kube-context gke_acme-staging_europe-west2_staging")
    assert [call for call in helm.calls() if call.startswith("rollback")] == [rollback]
    assert stand_in_api.count("pods") >= 2  # it kept looking until the timeout


def test_a_failed_first_install_is_uninstalled(stand_in_api: StandInApi, tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.first_install()
    installing = {"deployments": [deployment(updated=1, ready=0, available_replicas=0, revision=1)],
                  "pods": [crash_looping_pod()], "replica_sets": [replica_set(revision=1, replicas=2)]}
    follow_helm(stand_in_api, helm, {"": {}, "upgrade": installing, "uninstall": {}})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    assert (outcome.status, outcome.image, outcome.previous_image) == ("failed", None, None)
    assert "the first install was uninstalled" in outcome.detail
    assert [call.split()[0] for call in helm.calls()][-1] == "uninstall"
    assert not [call for call in helm.calls() if call.startswith("rollback")]


def test_a_healthy_rollout_is_deployed_without_a_rollback(stand_in_api: StandInApi, tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(restarted_weeks_ago=True), "upgrade": rolled_out()})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    assert (outcome.status, outcome.image, outcome.previous_image) == ("deployed", IMAGE, OLD_IMAGE)
    assert outcome.health.healthy, outcome.health.problems
    assert "revision 8" in outcome.detail
    assert [call.split()[0] for call in helm.calls()] == ["history", "status", "upgrade"]  # helm's wait unused


def stamp(seconds_ago: float = 0) -> str:
    """An API timestamp (RFC 3339, seconds) `seconds_ago` before now."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployed_without_rollback(outcome: Any, helm: StandInHelm) -> None:
    assert (outcome.status, outcome.image) == ("deployed", IMAGE), outcome.detail
    assert not [call for call in helm.calls() if call.startswith(("rollback", "uninstall"))]


def test_a_release_that_fixes_a_crash_loop_goes_out(stand_in_api: StandInApi, tmp_path: Path) -> None:
    """The old pods crash-loop (and restarted seconds ago); the new ones get ready: deployed and healthy."""
    def crashing(deleting: bool = False) -> list[Any]:
        return [old_pod(name, deleting=deleting, statuses=[container_status(
            image=OLD_IMAGE, state=waiting("CrashLoopBackOff", "back-off 2m40s restarting failed container=payments"),
            last_state=terminated("Error", 1, started_at=stamp(3), finished_at=stamp(1)), ready=False,
            restart_count=12)]) for name in OLD_PODS]

    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(old_pods=crashing()), "upgrade": [
        rolling_out(pod("payments-7d9f5c6b8-x2k4q"), old_pods=crashing(), available_replicas=1),
        rolled_out(*crashing(deleting=True)),
    ]})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)
    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=0)

    deployed_without_rollback(outcome, helm)
    assert outcome.health.healthy and health.healthy, (outcome.health.problems, health.problems)


def test_a_pod_the_node_evicted_during_the_rollout_rolls_nothing_back(stand_in_api: StandInApi, tmp_path: Path) -> None:
    evicted = pod("payments-7d9f5c6b8-ev1ct", phase="Failed", reason="Evicted",
                  message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 91Mi. ",
                  conditions=[condition("Ready", "False", "PodFailed"), disrupted("The node was low on memory.")],
                  statuses=[container_status(state=terminated("Error", 137, finished_at=stamp()), ready=False)])
    creating = pod("payments-7d9f5c6b8-qq7rt", statuses=[
        container_status(state=waiting("ContainerCreating"), ready=False, image_id="")])
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(),
                                     "upgrade": [rolling_out(evicted, creating), rolled_out(evicted)]})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    deployed_without_rollback(outcome, helm)
    assert outcome.health.healthy, outcome.health.problems


def test_conditions_left_from_the_last_rollout_do_not_fail_this_one(stand_in_api: StandInApi, tmp_path: Path) -> None:
    """The first look comes before the controller observed the upgrade: its conditions are the last rollout's."""
    left_over = [available("False", "MinimumReplicasUnavailable"),
                 progressing("False", "ProgressDeadlineExceeded", 'ReplicaSet "payments-58c4d9" has timed out '
                             "progressing.", at=stamp(3600)),
                 condition("ReplicaFailure", "True", "FailedCreate", "exceeded quota: compute", at=stamp(3600))]
    not_yet_observed = {**old_release(), "deployments": [deployment(
        generation=5, observed_generation=4, revision=OLD_REVISION, conditions=left_over)]}
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": [
        not_yet_observed, rolling_out(pod("payments-7d9f5c6b8-x2k4q")), rolled_out()]})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    deployed_without_rollback(outcome, helm)
    assert stand_in_api.count("replicasets") >= 3


def pulling(message: str, reason: str = "ErrImagePull") -> Any:
    return pod("payments-7d9f5c6b8-qq7rt", statuses=[
        container_status(state=waiting(reason, message), ready=False, image_id="")])


def test_an_image_pull_the_registry_answers_with_503_is_retried_and_the_release_goes_out(
    stand_in_api: StandInApi, tmp_path: Path
) -> None:
    unavailable = (f'failed to pull and unpack image "{IMAGE}": failed to copy: httpReadSeeker: failed open: '
                   "unexpected status code https://europe-west1-docker.pkg.dev/v2/: 503 Service Unavailable")
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": [
        rolling_out(pulling(unavailable)),
        rolling_out(pulling(f'Back-off pulling image "{IMAGE}"', "ImagePullBackOff")),
        rolling_out(pod("payments-7d9f5c6b8-qq7rt")), rolled_out()]})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    deployed_without_rollback(outcome, helm)


def test_an_image_pull_failing_past_the_grace_period_is_rolled_back(stand_in_api: StandInApi, tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(), "rollback": old_release(), "upgrade": rolling_out(
        pulling(f'Back-off pulling image "{IMAGE}"', "ImagePullBackOff"))})
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url), helm=str(helm.executable),
                           grace=0.3)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    assert (outcome.status, outcome.image) == ("failed", OLD_IMAGE)
    assert "did not roll out (failing: " in outcome.detail  # not helm's timeout of 600 s
    assert f'payments-7d9f5c6b8-qq7rt cannot start: ImagePullBackOff (Back-off pulling image "{IMAGE}"), for' in \
        outcome.detail
    assert stand_in_api.count("pods") >= 3  # it waited out the grace period before it gave up


def test_a_paused_deployment_is_rolled_back_at_the_first_look(stand_in_api: StandInApi, tmp_path: Path) -> None:
    paused = {**old_release(), "deployments": [deployment(generation=5, observed_generation=5, revision=OLD_REVISION,
                                                          paused=True, image=IMAGE)]}
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": paused, "rollback": old_release()})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)

    assert (outcome.status, outcome.image) == ("failed", OLD_IMAGE)
    assert "deployment payments is paused: nothing rolls out until `kubectl rollout resume" in outcome.detail
    assert stand_in_api.count("pods") == 1


def broken_metrics(at: str) -> Any:
    return autoscaler(condition("ScalingActive", "False", "FailedGetResourceMetric",
                                "the HPA was unable to compute the replica count: failed to get cpu utilization: "
                                "unable to get metrics for resource cpu: no metrics returned from resource metrics API",
                                at=at), condition("AbleToScale", "True", "SucceededGetScale", "got the scale"))


def test_an_autoscaler_without_metrics_for_an_hour_fails_pod_health_at_once_but_rolls_nothing_back(
    stand_in_api: StandInApi, tmp_path: Path
) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=7)
    broken = [broken_metrics(stamp(3600))]
    follow_helm(stand_in_api, helm, {"": old_release(), "upgrade": [
        {**rolling_out(pod("payments-7d9f5c6b8-x2k4q")), "hpas": broken}, rolled_out(hpas=broken)]})
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)
    looks_before = stand_in_api.count("pods")
    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=300)

    deployed_without_rollback(outcome, helm)
    assert not health.healthy
    assert health.problems[0].startswith("autoscaler payments cannot compute a replica count (FailedGetResourceMetric:")
    assert stand_in_api.count("pods") - looks_before == 1  # a clear verdict at the first look, not after 300 s


def test_pod_health_waits_for_the_autoscalers_metrics_after_a_rollout(stand_in_api: StandInApi, tmp_path: Path) -> None:
    """Metrics missing for the first looks (normal right after new pods start), then there: healthy."""
    helm = StandInHelm(tmp_path)
    catching_up = rolled_out(hpas=[broken_metrics(stamp())])
    follow_helm(stand_in_api, helm, {"": [catching_up, catching_up, rolled_out()]})
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url), grace=30)

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=0)

    assert health.healthy, health.problems
    assert stand_in_api.count("pods") == 3  # looked on past the window until the metrics came


def test_a_watch_stops_at_once_when_interrupted(stand_in_api: StandInApi, tmp_path: Path) -> None:
    """Ctrl-C (or Dagster's termination, raised the same way in the main thread) ends a long watch."""
    healthy_service(stand_in_api)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                           window_seconds=600)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert stand_in_api.count("pods") >= 2


def test_an_upgrade_helm_rejects_is_rolled_back_with_the_chart_values_seen(stand_in_api: StandInApi,
                                                                           tmp_path: Path) -> None:
    helm = StandInHelm(tmp_path)
    helm.deployed_before(revision=2)
    helm.upgrade_fails('Error: UPGRADE FAILED: admission webhook "policy.example" denied the request')
    stand_in_api.serve(**old_release())
    runtime = rollout_runtime(stand_in_api, tmp_path, helm)

    outcome = runtime.deploy(spec=spec(replicas=3), on_backends_changed=lambda backends: pytest.fail("not on gke"))

    assert (outcome.status, outcome.image, outcome.previous_image) == ("failed", OLD_IMAGE, OLD_IMAGE)
    assert 'admission webhook "policy.example" denied the request' in outcome.detail
    assert [call for call in helm.calls() if call.startswith("rollback payments 2 --wait")]
    values = yaml.safe_load((tmp_path / "values-seen.yaml").read_text())
    assert values["image"] == {"repository": IMAGE.split("@")[0], "digest": IMAGE.split("@")[1]}
    assert (values["replicas"], values["autoscaling"]["maxReplicas"]) == (3, 6)
    assert values["env"]["APP_ENV"] == ENVIRONMENT


def test_unchanged_reports_the_specs_image_when_only_the_registry_path_differs(
    stand_in_api: StandInApi, tmp_path: Path
) -> None:
    """Same digest under a mirror's path; each pod restarted once, weeks ago: unchanged and healthy."""
    mirrored = "mirror.gcr.io/fintech/payments@" + IMAGE.split("@")[1]
    stand_in_api.serve(deployments=[deployment(image=mirrored)], hpas=[autoscaler()], ingresses=[ingress()],
                       replica_sets=replica_sets(), pods=[pod(f"payments-7d9f5c6b8-{suffix}", image=mirrored,
                                 statuses=[ready_status(mirrored, restarted_weeks_ago=True)])
                             for suffix in ("x2k4q", "m8n2p")])
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    outcome = runtime.deploy(spec=spec(), on_backends_changed=lambda backends: None)
    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=outcome.image,
                            window_seconds=0)

    assert (outcome.status, outcome.image, outcome.previous_image) == ("unchanged", IMAGE, mirrored)
    assert outcome.health.healthy, outcome.health.problems
    assert health.healthy, health.problems
    assert {replica.image for replica in health.replicas} == {mirrored}  # what the pods really say, kept


def test_running_image_is_none_when_nothing_is_deployed(stand_in_api: StandInApi, tmp_path: Path) -> None:
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    assert runtime.running_image(environment=ENVIRONMENT, service=SERVICE) is None


def test_health_stops_at_the_first_back_off(stand_in_api: StandInApi, tmp_path: Path) -> None:
    looping = pod("payments-7d9f5c6b8-qq7rt", statuses=[container_status(
        state=waiting("CrashLoopBackOff"), last_state=terminated("OOMKilled", 137), ready=False, restart_count=4)])
    stand_in_api.serve(deployments=[deployment(ready=1, available_replicas=1)], replica_sets=replica_sets(),
                       pods=[pod("payments-7d9f5c6b8-x2k4q"), looping])
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=120)

    assert "payments-7d9f5c6b8-qq7rt is crash-looping: 4 restarts (CrashLoopBackOff; last exit OOMKilled, code 137)" \
        in health.problems
    assert stand_in_api.count("pods") == 1  # one look was enough: no waiting out the window


def test_health_watches_a_healthy_service_for_the_whole_window(stand_in_api: StandInApi, tmp_path: Path) -> None:
    healthy_service(stand_in_api)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=0.5)

    assert health.healthy, health.problems
    assert stand_in_api.count("pods") >= 2


def test_a_health_watch_runs_the_credentials_plugin_once(stand_in_api: StandInApi, tmp_path: Path) -> None:
    """The kubeconfig's user is an exec plugin, as gke-gcloud-auth-plugin is: one run serves every look."""
    plugin_log = tmp_path / "plugin.log"
    plugin = tmp_path / "auth-plugin"
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": TOKEN}}
    plugin.write_text(f"#!/bin/sh\necho run >> '{plugin_log}'\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url)
    document = yaml.safe_load(kubeconfig.read_text())
    document["users"] = [{"name": "deployer", "user": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin), "interactiveMode": "Never"}}}]
    kubeconfig.write_text(yaml.safe_dump(document))
    healthy_service(stand_in_api)
    runtime = make_runtime(kubeconfig)

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=0.5)

    assert health.healthy, health.problems
    assert stand_in_api.count("pods") >= 2
    assert {auth for _, _, auth in stand_in_api.requests} == {f"Bearer {TOKEN}"}
    assert plugin_log.read_text().splitlines() == ["run"]


def test_transient_server_errors_are_retried(stand_in_api: StandInApi, tmp_path: Path) -> None:
    healthy_service(stand_in_api)
    stand_in_api.failures = [503, 503]
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    assert runtime.running_image(environment=ENVIRONMENT, service=SERVICE) == IMAGE
    assert stand_in_api.count("deployments") == 3


def test_refused_credentials_name_the_environment_and_the_fix(stand_in_api: StandInApi, tmp_path: Path) -> None:
    stand_in_api.failures = [401]
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    with pytest.raises(ExternalSystemError) as raised:
        runtime.running_image(environment=ENVIRONMENT, service=SERVICE)

    message = str(raised.value)
    assert "environment 'staging'" in message and "refused the credentials (HTTP 401" in message
    assert "gcloud container clusters get-credentials" in message
    assert TOKEN not in message
    assert stand_in_api.count("deployments") == 1  # a refusal is not retried


def test_unreachable_cluster_names_the_environment(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens there, so every connection is refused.
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:9"))

    with pytest.raises(ExternalSystemError) as raised:
        runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                       window_seconds=1)

    message = str(raised.value)
    assert "environment 'staging'" in message and "did not answer after 3 attempts" in message
    assert "gke_acme-staging_europe-west2_staging" in message
    assert TOKEN not in message


def test_missing_kube_context_is_a_clear_error(stand_in_api: StandInApi, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url, context="some-other-cluster")
    runtime = make_runtime(kubeconfig)

    with pytest.raises(ExternalSystemError, match="environment 'staging': no usable Kubernetes credentials"):
        runtime.running_image(environment=ENVIRONMENT, service=SERVICE)


def test_teardown_refuses_a_permanent_environment(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "no-kubeconfig", ephemeral=False)

    with pytest.raises(DeploymentRefusedError, match="environment 'staging' is not ephemeral.*Nothing was destroyed"):
        runtime.teardown(environment=ENVIRONMENT)


TERRAFORM_ROOT = """
terraform {
  backend "local" {}
}

variable "environment" {
  type = string
}

resource "terraform_data" "cluster" {
  input = "stand-in for the GKE cluster"
}

output "cluster_name" {
  value = "fr-${var.environment}"
}

output "pubsub_topics" {
  value = ["payment-events"]
}

output "proxy_password" {
  value     = "never-in-metadata-9f2e"
  sensitive = true
}
"""


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_ensure_environment_converges_and_teardown_destroys_with_real_terraform(tmp_path: Path) -> None:
    """Real terraform binary on a root with a provider-free resource (terraform_data): no cloud involved."""
    root = tmp_path / "environment"
    root.mkdir()
    (root / "main.tf").write_text(TERRAFORM_ROOT)
    var_file = tmp_path / "environments" / "ci.tfvars"
    var_file.parent.mkdir()
    var_file.write_text('environment = "ci"\n')
    runtime = make_runtime(tmp_path / "no-kubeconfig", ephemeral=True).model_copy(update={
        "terraform": TerraformRunner(executable=shutil.which("terraform") or "terraform", timeout_seconds=120,
                                     backend_config={"path": f"{tmp_path}/state/{{environment}}.tfstate"}),
        "environments": {"ci": GkeTarget(project="acme-ci-project", region="europe-west1", namespace="fintech",
                                         terraform_root=str(root), terraform_var_file=str(var_file),
                                         ephemeral=True)},
    })

    created = runtime.ensure_environment(environment="ci", address="127.0.0.1")
    again = runtime.ensure_environment(environment="ci", address="127.0.0.1")
    removed = runtime.teardown(environment="ci")

    assert created["terraform_applied"] == "true" and created["terraform_create"] == "terraform_data.cluster"
    assert (created["output_cluster_name"], created["output_pubsub_topics"]) == ("fr-ci", '["payment-events"]')
    assert "output_proxy_password" not in created
    assert "never-in-metadata" not in json.dumps(created)
    assert (again["terraform_applied"], again["terraform_add"]) == ("false", "0")
    assert created["terraform_var_file"] == str(var_file)
    assert (tmp_path / "state" / "ci.tfstate").is_file() and (root / ".terraform-ci").is_dir()
    assert removed == ["terraform_data.cluster"]


def test_an_environment_the_runtime_does_not_know(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "no-kubeconfig")

    with pytest.raises(ReleaseConfigError, match="'production' is not a gke environment.*gke environments: staging"):
        runtime.running_image(environment="production", service=SERVICE)


# --- integration (opt-in) -------------------------------------------------------------------------------------

TEST_IMAGE = os.environ.get("FINTECH_RELEASE_TEST_IMAGE")  # pinned demo service image the cluster can pull
TEST_CONTEXT = os.environ.get("FINTECH_RELEASE_TEST_KUBE_CONTEXT")  # None: the kubeconfig's current context
HELM = shutil.which("helm") or next((str(p) for p in [REPO_ROOT / ".tools" / "bin" / "helm"] if p.is_file()), None)
_missing = [
    reason for reason, absent in [
        ("KUBECONFIG is not set", not os.environ.get("KUBECONFIG")),
        ("helm is not on PATH nor in .tools/bin (scripts/install-kube-tools.sh)", HELM is None),
        ("FINTECH_RELEASE_TEST_IMAGE (a pinned contact-us image the cluster can pull) is not set", not TEST_IMAGE),
    ] if absent
]


@pytest.mark.integration
@pytest.mark.skipif(bool(_missing), reason="needs a real cluster: " + "; ".join(_missing))
def test_deploy_check_health_and_fail_a_rollout_on_a_real_cluster(tmp_path: Path) -> None:
    from kubernetes import client, config

    assert TEST_IMAGE is not None and HELM is not None
    namespace = f"fr-test-{uuid.uuid4().hex[:8]}"
    release_yaml = tmp_path / "release.yaml"
    release_yaml.write_text(yaml.safe_dump({
        "services": [{"name": "contact-us", "repository": "contact-us", "port": 8080,
                      "deployment": {"replicas": 1, "autoscaling": {"max_replicas": 2}}}],
        "environments": [{"name": "ci", "platform": "gke", "ephemeral": True, "gke": {
            "project": "fintech-release-test", "region": "europe-west1", "kube_context": TEST_CONTEXT,
            "namespace": namespace, "cloudsql_instance": "fintech-release-test:europe-west1:unused"}}],
    }))
    runtime = GkeRuntime(
        release_config=str(release_yaml),
        charts_dir=str(REPO_ROOT / "deploy" / "charts"),
        environments={"ci": GkeTarget(project="fintech-release-test", region="europe-west1", kube_context=TEST_CONTEXT,
                                      namespace=namespace, terraform_root=str(tmp_path),
                                      terraform_var_file=str(tmp_path / "ci.tfvars"), ephemeral=True)},
        cluster=KubernetesCluster(),
        helm=HelmRunner(executable=HELM, timeout_seconds=90),
        terraform=TerraformRunner(),
    )
    first = DeploySpec(environment="ci", service="contact-us", image=TEST_IMAGE, replicas=1, address="0.0.0.0",
                       health_path="/health")
    missing = first.model_copy(update={"image": TEST_IMAGE.split("@")[0] + "@sha256:" + "0" * 64})
    try:
        deployed = runtime.deploy(spec=first, on_backends_changed=lambda backends: None)
        health = runtime.health(environment="ci", service="contact-us", desired_replicas=1, expected_image=TEST_IMAGE,
                                window_seconds=10)
        failed = runtime.deploy(spec=missing, on_backends_changed=lambda backends: None)

        assert deployed.status == "deployed", deployed.detail
        assert health.healthy, health.problems
        assert (failed.status, failed.image) == ("failed", TEST_IMAGE), failed.detail
        assert runtime.running_image(environment="ci", service="contact-us") == TEST_IMAGE
    finally:
        runtime.helm.for_context(TEST_CONTEXT).uninstall(
            environment="ci", service="contact-us", release="contact-us", namespace=namespace)
        config.load_kube_config(context=TEST_CONTEXT)
        client.CoreV1Api().delete_namespace(namespace)
