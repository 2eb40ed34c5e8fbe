"""GkeRuntime and KubernetesCluster.

* Decisions that need no cluster run against a stand-in Kubernetes API on loopback: a small HTTP
  server answering the list endpoints with documents shaped like the real API's (built by
  `k8s_objects`), read by the real `kubernetes` client through a real kubeconfig. This is a
  contract test against the documented response shapes, not a cluster: it shows which requests
  are made (paths, label selectors), that an unchanged digest is not upgraded (helm is never
  run), that health stops at the first back-off, how refused credentials and an unreachable
  API server (a loopback port nothing listens on) are reported, and that a permanent
  environment is never torn down.
* A failed rollout: helm is a stand-in shell script that prints helm 3's documented "UPGRADE FAILED
  ... has been rolled back due to atomic being set" answer (not the real helm); the outcome is
  `failed` with the previous image serving, and the values file it was given is the chart's.
* ensure_environment and teardown with the real terraform binary on a provider-free root module
  (a `terraform_data` resource, outputs, a sensitive output); skipped when terraform is missing.
* Integration (opt-in, needs KUBECONFIG, helm and FINTECH_RELEASE_TEST_IMAGE): deploys a demo
  service image to a real cluster in a throw-away namespace, checks its health, fails a rollout
  with a digest that does not exist (helm rolls back, the first image keeps serving), then
  uninstalls and deletes the namespace. Skipped, with the reason, when any of those is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from fintech_release_tests.k8s_objects import (
    ENVIRONMENT,
    IMAGE,
    NAMESPACE,
    OLD_IMAGE,
    SERVICE,
    autoscaler,
    container_status,
    deployment,
    ingress,
    pod,
    terminated,
    to_document,
    waiting,
)

from fintech_release.errors import DeploymentRefusedError, ExternalSystemError, ReleaseConfigError
from fintech_release.resources.gke_runtime import GkeRuntime, GkeTarget
from fintech_release.resources.helm import HelmRunner
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.runtime import DeploySpec
from fintech_release.resources.terraform import TerraformRunner

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-never-logged-5c1d"
LIST_KINDS = {
    f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments": "DeploymentList",
    f"/api/v1/namespaces/{NAMESPACE}/pods": "PodList",
    f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers": "HorizontalPodAutoscalerList",
    f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses": "IngressList",
}


class StandInApi:
    """Answers the four list endpoints from `objects`; records every request; can fail the next few."""

    def __init__(self) -> None:
        self.objects: dict[str, list[Any]] = {path: [] for path in LIST_KINDS}
        self.requests: list[tuple[str, str | None, str | None]] = []  # path, label selector, Authorization header
        self.failures: list[int] = []  # HTTP statuses to answer with, one per request, before serving
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(
        self, *, deployments: Sequence[Any] = (), pods: Sequence[Any] = (), hpas: Sequence[Any] = (),
        ingresses: Sequence[Any] = (),
    ) -> None:
        paths = list(LIST_KINDS)
        for path, models in zip(paths, (deployments, pods, hpas, ingresses)):
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
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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


def make_runtime(kubeconfig: Path, *, ephemeral: bool = False, helm: str = "/nonexistent/helm") -> GkeRuntime:
    """A runtime whose helm is missing: any test that reaches helm fails with ToolNotFoundError."""
    return GkeRuntime(
        release_config=str(REPO_ROOT / "examples" / "release.gke.yaml"),
        charts_dir=str(REPO_ROOT / "deploy" / "charts"),
        environments={ENVIRONMENT: GkeTarget(
            project="acme-staging", region="europe-west2", kube_context="gke_acme-staging_europe-west2_staging",
            namespace=NAMESPACE, terraform_root="/nonexistent/terraform/environments/staging", ephemeral=ephemeral,
        )},
        cluster=KubernetesCluster(kubeconfig=str(kubeconfig), request_timeout_seconds=2, poll_seconds=0.1),
        helm=HelmRunner(executable=helm, kubeconfig=str(kubeconfig)),
        terraform=TerraformRunner(executable="/nonexistent/terraform"),
    )


def spec(image: str = IMAGE, replicas: int = 2) -> DeploySpec:
    return DeploySpec(environment=ENVIRONMENT, service=SERVICE, image=image, replicas=replicas, address="0.0.0.0",
                      health_path="/health", env={"APP_ENV": ENVIRONMENT})


def healthy_service(api: StandInApi, image: str = IMAGE) -> None:
    api.serve(deployments=[deployment(image=image)],
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
# Answers like helm 3.16: no release yet, and an upgrade that timed out and was rolled back (--atomic).
case "$1" in
  version) echo "v3.16.2" ;;
  status|history) echo "Error: release: not found" >&2; exit 1 ;;
  upgrade)
    while [ "$#" -gt 0 ]; do [ "$1" = "--values" ] && cp "$2" "$(dirname "$0")/values-seen.yaml"; shift; done
    echo "Error: UPGRADE FAILED: release payments failed, and has been rolled back due to atomic being set:" \
      "context deadline exceeded" >&2
    exit 1 ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def test_a_failed_rollout_is_an_outcome_with_the_previous_image_serving(stand_in_api: StandInApi,
                                                                        tmp_path: Path) -> None:
    """helm here is a stand-in script printing helm 3's messages; the values it received are the chart's."""
    helm = tmp_path / "helm"
    helm.write_text(STAND_IN_HELM)
    helm.chmod(0o755)
    healthy_service(stand_in_api, image=OLD_IMAGE)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url), helm=str(helm))

    outcome = runtime.deploy(spec=spec(replicas=3), on_backends_changed=lambda backends: pytest.fail("not on gke"))

    assert (outcome.status, outcome.image, outcome.previous_image) == ("failed", OLD_IMAGE, OLD_IMAGE)
    assert "rolled back due to atomic being set" in outcome.detail
    values = yaml.safe_load((tmp_path / "values-seen.yaml").read_text())
    assert values["image"] == {"repository": IMAGE.split("@")[0], "digest": IMAGE.split("@")[1]}
    assert (values["replicas"], values["autoscaling"]["maxReplicas"]) == (3, 6)
    assert values["env"]["APP_ENV"] == ENVIRONMENT


def test_running_image_is_none_when_nothing_is_deployed(stand_in_api: StandInApi, tmp_path: Path) -> None:
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    assert runtime.running_image(environment=ENVIRONMENT, service=SERVICE) is None


def test_health_stops_at_the_first_back_off(stand_in_api: StandInApi, tmp_path: Path) -> None:
    looping = pod("payments-58c4d9-qq7rt", statuses=[container_status(
        state=waiting("CrashLoopBackOff"), last_state=terminated("OOMKilled", 137), ready=False, restart_count=4)])
    stand_in_api.serve(deployments=[deployment(ready=1, available_replicas=1)],
                       pods=[pod("payments-7d9f5c6b8-x2k4q"), looping])
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=120)

    assert "payments-58c4d9-qq7rt is crash-looping: 4 restarts (CrashLoopBackOff; last exit OOMKilled, code 137)" \
        in health.problems
    assert stand_in_api.count("pods") == 1  # one look was enough: no waiting out the window


def test_health_watches_a_healthy_service_for_the_whole_window(stand_in_api: StandInApi, tmp_path: Path) -> None:
    healthy_service(stand_in_api)
    runtime = make_runtime(write_kubeconfig(tmp_path / "kubeconfig", stand_in_api.url))

    health = runtime.health(environment=ENVIRONMENT, service=SERVICE, desired_replicas=2, expected_image=IMAGE,
                            window_seconds=0.5)

    assert health.healthy, health.problems
    assert stand_in_api.count("pods") >= 2


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
resource "terraform_data" "cluster" {
  input = "stand-in for the GKE cluster"
}

output "cluster_name" {
  value = "fr-ci"
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
    root = tmp_path / "environments" / "ci"
    root.mkdir(parents=True)
    (root / "main.tf").write_text(TERRAFORM_ROOT)
    runtime = make_runtime(tmp_path / "no-kubeconfig", ephemeral=True).model_copy(update={
        "terraform": TerraformRunner(executable=shutil.which("terraform") or "terraform", timeout_seconds=120),
        "environments": {"ci": GkeTarget(project="acme-ci-project", region="europe-west1", namespace="fintech",
                                         terraform_root=str(root), ephemeral=True)},
    })

    created = runtime.ensure_environment(environment="ci", address="127.0.0.1")
    again = runtime.ensure_environment(environment="ci", address="127.0.0.1")
    removed = runtime.teardown(environment="ci")

    assert created["terraform_applied"] == "true" and created["terraform_create"] == "terraform_data.cluster"
    assert (created["output_cluster_name"], created["output_pubsub_topics"]) == ("fr-ci", '["payment-events"]')
    assert "output_proxy_password" not in created
    assert "never-in-metadata" not in json.dumps(created)
    assert (again["terraform_applied"], again["terraform_add"]) == ("false", "0")
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
                                      namespace=namespace, terraform_root=str(tmp_path), ephemeral=True)},
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
        runtime.helm.model_copy(update={"kube_context": TEST_CONTEXT}).uninstall(
            environment="ci", service="contact-us", release="contact-us", namespace=namespace)
        config.load_kube_config(context=TEST_CONTEXT)
        client.CoreV1Api().delete_namespace(namespace)
