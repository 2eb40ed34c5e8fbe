"""The Helm charts under deploy/charts with values computed from release.yaml (real helm binary).

For every demo service of release.yaml in every environment (turned into gke environments):
`helm lint` passes, `helm template` renders, and every rendered object validates against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields fail) of the versions GKE
runs. No cluster is involved: nothing here is installed anywhere.
"""

# ruff: noqa: F811 - pytest fixtures imported from fixtures_kube_tools are test parameters

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from fintech_release.chart_values import ingress_values, service_values
from fintech_release.config import ReleaseConfig
from fintech_release.errors import ReleaseConfigError
from fintech_release.resources.helm import ChartValuesError, HelmRunner
from fintech_release_tests.fixtures_kube_tools import gke_release_config, helm_executable  # noqa: F401
from fintech_release_tests.release_setup import REPO_ROOT

CHARTS = REPO_ROOT / "deploy" / "charts"
MICROSERVICE = CHARTS / "microservice"
INGRESS_RULES = CHARTS / "ingress-rules"
KUBERNETES_VERSIONS = ("1.31.0", "1.33.0")  # the oldest GKE minor we target and the kubectl we ship
DIGEST = "sha256:" + "0123456789abcdef" * 4
REPOSITORY = "europe-west1-docker.pkg.dev/fintech-release-test/fintech"

_DEMO = yaml.safe_load((REPO_ROOT / "release.yaml").read_text())
SERVICES = [service["name"] for service in _DEMO["services"]]
ENVIRONMENTS = [environment["name"] for environment in _DEMO["environments"]]


@pytest.fixture
def helm(helm_executable: str) -> HelmRunner:
    return HelmRunner(executable=helm_executable, read_attempts=1)


def _values(config: ReleaseConfig, environment: str, service: str, **overrides: object) -> dict:
    values = service_values(
        config,
        config.environment(environment),
        service,
        image=f"{REPOSITORY}/{service}@{DIGEST}",
        env={"APP_ENV": environment, "FEATURE_FLAGS": "none"},
    )
    return {**values, **overrides}


def _by_kind(manifests: list[dict]) -> dict[str, dict]:
    kinds = [manifest["kind"] for manifest in manifests]
    assert len(kinds) == len(set(kinds)), f"one object of each kind expected, got {kinds}"
    return {manifest["kind"]: manifest for manifest in manifests}


def _validate(manifests: list[dict]) -> None:
    for version in KUBERNETES_VERSIONS:
        for manifest in manifests:
            kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("service", SERVICES)
def test_microservice_chart_renders_valid_hardened_objects(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
    service: str,
    environment: str,
) -> None:
    config = gke_release_config
    values = _values(config, environment, service)
    messages = helm.lint(chart=MICROSERVICE, values=values)
    assert not [m for m in messages if m.startswith(("[ERROR]", "[WARNING]"))], messages

    namespace = config.environment(environment).gke.namespace
    manifests = helm.template(chart=MICROSERVICE, values=values, release=service, namespace=namespace)
    _validate(manifests)
    objects = _by_kind(manifests)
    assert set(objects) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
        "ConfigMap",
    }
    definition = config.service(service)
    expected = definition.deployment_in(environment)
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["io.fintech-release/environment"] == environment
        assert labels["io.fintech-release/service"] == service
        assert labels["app.kubernetes.io/name"] == service
        assert labels["app.kubernetes.io/managed-by"] == "Helm"

    deployment = objects["Deployment"]["spec"]
    assert deployment["replicas"] == expected.replicas
    assert deployment["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = deployment["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == f"{REPOSITORY}/{service}@{DIGEST}"
    assert container["ports"] == [{"name": "http", "containerPort": definition.port, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": definition.health_path, "port": "http"}
    resources = {"cpu": expected.cpu, "memory": expected.memory}
    assert container["resources"] == {"requests": resources, "limits": resources}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]

    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == expected.replicas
    assert hpa["spec"]["maxReplicas"] == (expected.autoscaling.max_replicas or 2 * expected.replicas)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": expected.autoscaling.cpu_percent, "memory": expected.autoscaling.memory_percent}
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == deployment["selector"]
    assert objects["Service"]["spec"]["selector"] == deployment["selector"]["matchLabels"]
    config_map = objects["ConfigMap"]["data"]
    assert config_map == {
        "APP_ENV": environment,
        "FEATURE_FLAGS": "none",
        "PORT": str(definition.port),
        "BIND_ADDRESS": "0.0.0.0",
    }


def test_payments_runs_three_replicas_in_production_and_keeps_its_other_settings(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    production = _by_kind(
        helm.template(
            chart=MICROSERVICE,
            values=_values(gke_release_config, "production", "payments"),
            release="payments",
            namespace="fintech-production",
        )
    )
    staging = _by_kind(
        helm.template(
            chart=MICROSERVICE,
            values=_values(gke_release_config, "staging", "payments"),
            release="payments",
            namespace="fintech-staging",
        )
    )
    assert production["Deployment"]["spec"]["replicas"] == 3
    assert production["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert production["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 6
    assert staging["Deployment"]["spec"]["replicas"] == 2
    assert staging["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 4


def test_workload_identity_annotation_is_optional(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    account = "payments-sa@fintech-release-test.iam.gserviceaccount.com"
    values = _values(gke_release_config, "staging", "payments", serviceAccount={"gcpServiceAccount": account})
    objects = _by_kind(helm.template(chart=MICROSERVICE, values=values, release="payments", namespace="fintech"))
    assert objects["ServiceAccount"]["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": account}
    plain = _by_kind(
        helm.template(
            chart=MICROSERVICE,
            values=_values(gke_release_config, "staging", "payments"),
            release="payments",
            namespace="fintech",
        )
    )
    assert "annotations" not in plain["ServiceAccount"]["metadata"]


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"image": {"repository": f"{REPOSITORY}/payments"}}, "image.digest", "'' does not match"),
        ({"image": {"repository": f"{REPOSITORY}/payments", "digest": "1.0.0"}}, "image.digest", "does not match"),
        (
            {"image": {"repository": f"{REPOSITORY}/payments:1.0.0", "digest": DIGEST}},
            "image.repository",
            "does not match",
        ),
        ({"replicas": "three"}, "replicas", "want integer"),
        (
            {"resources": {"requests": {"cpu": 1, "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}},
            "resources.requests.cpu",
            "want string",
        ),
        ({"replica": 3}, "(top level)", "additional properties 'replica' not allowed"),
        (
            {"autoscaling": {"enabled": True, "maxReplicas": 2, "cpuPercent": 70, "memoryPercent": 80}},
            "autoscaling.maxReplicas",
            "must be at least replicas (3)",
        ),
    ],
)
def test_bad_values_fail_naming_environment_service_and_field(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
    change: dict,
    field: str,
    detail: str,
) -> None:
    values = _values(gke_release_config, "production", "payments", **change)
    with pytest.raises(ChartValuesError) as raised:
        helm.template(chart=MICROSERVICE, values=values, release="payments", namespace="fintech")
    message = str(raised.value)
    assert "environment 'production', service 'payments'" in message
    assert f"{field}: " in message and detail in message
    if field != "autoscaling.maxReplicas":  # a template `fail`: helm lint only logs those (lint mode), by design
        lint = helm.lint(chart=MICROSERVICE, values=values)
        assert any(line.startswith("[ERROR]") and detail in line for line in lint), lint


def test_template_refuses_a_tag_even_with_schema_validation_skipped(
    helm_executable: str,
    tmp_path: Path,
    gke_release_config: ReleaseConfig,
) -> None:
    values_file = tmp_path / "values.yaml"
    values = _values(gke_release_config, "staging", "accounts")
    values_file.write_text(
        yaml.safe_dump({**values, "image": {"repository": values["image"]["repository"], "digest": "latest"}})
    )
    completed = subprocess.run(
        [
            helm_executable,
            "template",
            "accounts",
            str(MICROSERVICE),
            "--values",
            str(values_file),
            "--skip-schema-validation",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert 'image.digest must be sha256:<64 hex digits>, got "latest"' in completed.stderr


def test_service_values_refuse_an_image_that_is_not_pinned(gke_release_config: ReleaseConfig) -> None:
    production = gke_release_config.environment("production")
    for image in (f"{REPOSITORY}/payments:1.0.0", f"{REPOSITORY}/payments", f"{REPOSITORY}/payments@sha256:abc"):
        with pytest.raises(ReleaseConfigError, match=r"service 'payments' in environment 'production'.*not pinned"):
            service_values(gke_release_config, production, "payments", image=image, env={})


def test_ingress_rules_route_every_service_with_path_rewrite(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    for environment in ENVIRONMENTS:
        # The service ports as the definitions give them to GkeIngress (resources/__init__.py).
        values = ingress_values(environment, {service.name: service.port for service in gke_release_config.services})
        lint = helm.lint(chart=INGRESS_RULES, values=values)
        assert not [m for m in lint if m.startswith(("[ERROR]", "[WARNING]"))], lint
        manifests = helm.template(
            chart=INGRESS_RULES, values=values, release="fintech-routes", namespace=f"fintech-{environment}"
        )
        _validate(manifests)
        (ingress,) = manifests
        assert ingress["apiVersion"] == "networking.k8s.io/v1" and ingress["kind"] == "Ingress"
        assert ingress["metadata"]["labels"]["io.fintech-release/environment"] == environment
        assert ingress["metadata"]["annotations"] == {
            "nginx.ingress.kubernetes.io/use-regex": "true",
            "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
        }
        assert ingress["spec"]["ingressClassName"] == "nginx"
        (rule,) = ingress["spec"]["rules"]
        routes = {
            path["path"]: (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["number"])
            for path in rule["http"]["paths"]
        }
        assert routes == {f"/{s.name}(/|$)(.*)": (s.name, s.port) for s in gke_release_config.services}
