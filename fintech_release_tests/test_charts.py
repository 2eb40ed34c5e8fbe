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
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}
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


def assert_network_policy(policy: dict, *, port: int) -> None:
    """Only the ingress controller calls in; only DNS, the metadata server, Google APIs and Cloud SQL go out."""
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == policy["metadata"]["name"]
    (ingress,) = spec["ingress"]
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }
    ]
    assert ingress["ports"] == [{"port": port, "protocol": "TCP"}]
    egress = {tuple(sorted((p["port"], p["protocol"]) for p in rule["ports"])): rule["to"] for rule in spec["egress"]}
    assert set(egress) == {((53, "TCP"), (53, "UDP")), ((80, "TCP"), (988, "TCP")), ((443, "TCP"),), ((3307, "TCP"),)}
    assert egress[((53, "TCP"), (53, "UDP"))][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    (google_apis,) = egress[((443, "TCP"),)]
    assert google_apis["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}
    assert egress[((3307, "TCP"),)] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]


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
        "NetworkPolicy",
    }
    definition = config.service(service)
    expected = definition.deployment_in(environment)
    gke = config.environment(environment).gke
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["io.fintech-release/environment"] == environment
        assert labels["io.fintech-release/service"] == service
        assert labels["app.kubernetes.io/name"] == service
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert manifest["metadata"]["namespace"] == namespace

    deployment = objects["Deployment"]["spec"]
    assert deployment["replicas"] == expected.replicas
    assert deployment["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = deployment["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == f"{REPOSITORY}/{service}@{DIGEST}"
    assert container["ports"] == [{"name": "http", "containerPort": definition.port, "protocol": "TCP"}]
    # Readiness follows the database (/health answers 503 without it); start-up and liveness do not, so a
    # database outage takes pods out of traffic and never restarts them.
    assert container["readinessProbe"]["httpGet"] == {"path": definition.health_path, "port": definition.port}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": definition.liveness_path, "port": definition.port}
    assert definition.liveness_path == "/live" != definition.health_path
    resources = {"cpu": expected.cpu, "memory": expected.memory}
    assert container["resources"] == {"requests": resources, "limits": resources}
    (proxy,) = pod["initContainers"]
    for hardened in (container, proxy):
        assert hardened["securityContext"] == RESTRICTED_CONTAINER

    # The database: the Cloud SQL Auth Proxy as a native sidecar on loopback, the password only as a file.
    assert proxy["name"] == "cloud-sql-proxy" and proxy["restartPolicy"] == "Always"
    assert proxy["args"][:3] == [gke.cloudsql_instance, "--address=127.0.0.1", "--port=3306"]
    assert "--private-ip" in proxy["args"] and "--health-check" in proxy["args"]
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "database-credentials", "mountPath": "/var/run/secrets/fintech-release/database", "readOnly": True},
    ]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert volumes["database-credentials"]["secret"] == {
        "secretName": f"{service}-db",
        "defaultMode": 0o440,
        "items": [{"key": "password", "path": "password"}],
    }
    assert "env" not in container and "env" not in proxy  # every setting comes from the ConfigMap below
    assert objects["ServiceAccount"]["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": f"fintech-{environment}-{service}@{gke.project}.iam.gserviceaccount.com"
    }

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
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "3306",
        "DB_NAME": f"{environment}_{definition.database}",
        "DB_USER": f"{definition.database}_app",
        "DB_PASSWORD_FILE": "/var/run/secrets/fintech-release/database/password",
    }
    assert_network_policy(objects["NetworkPolicy"], port=definition.port)


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


def test_espv2_fronts_the_service_when_endpoints_are_on(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    """With Cloud Endpoints the Service and the network policy point at ESPv2; probes still reach the service."""
    values = _values(gke_release_config, "production", "payments")
    values["esp"] = {**values["esp"], "enabled": True}
    manifests = helm.template(chart=MICROSERVICE, values=values, release="payments", namespace="fintech-production")
    _validate(manifests)
    objects = _by_kind(manifests)
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    app, esp = pod["containers"]
    assert app["ports"] == [{"name": "app", "containerPort": 8082, "protocol": "TCP"}]
    assert app["readinessProbe"]["httpGet"]["port"] == 8082
    assert esp["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert esp["args"][:3] == [
        "--listener_port=9000",
        "--backend=http://127.0.0.1:8082",
        "--service=payments.endpoints.fintech-release-test.cloud.goog",
    ]
    assert esp["securityContext"] == RESTRICTED_CONTAINER
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert_network_policy(objects["NetworkPolicy"], port=9000)


def test_a_service_without_database_gets_no_proxy_and_no_secret(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    values = _values(gke_release_config, "staging", "payments")
    values["database"] = {"enabled": False}
    objects = _by_kind(helm.template(chart=MICROSERVICE, values=values, release="payments", namespace="fintech"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod and [volume["name"] for volume in pod["volumes"]] == ["tmp"]
    assert not [name for name in objects["ConfigMap"]["data"] if name.startswith("DB_")]
    egress_ports = [rule["ports"][0]["port"] for rule in objects["NetworkPolicy"]["spec"]["egress"]]
    assert 3307 not in egress_ports


def test_database_settings_cannot_be_overridden_through_env(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    values = _values(gke_release_config, "staging", "payments")
    values["env"] = {**values["env"], "DB_PASSWORD": "not-here"}
    with pytest.raises(ChartValuesError, match="env.DB_PASSWORD is set by the chart"):
        helm.template(chart=MICROSERVICE, values=values, release="payments", namespace="fintech")


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


def test_ingress_terminates_tls_and_redirects_http_when_given_a_certificate(
    helm: HelmRunner,
    gke_release_config: ReleaseConfig,
) -> None:
    ports = {service.name: service.port for service in gke_release_config.services}
    values = ingress_values("production", ports, host="api.bank.example", tls_secret="api-bank-example-tls")
    manifests = helm.template(chart=INGRESS_RULES, values=values, release="fintech-routes", namespace="fintech")
    _validate(manifests)
    (ingress,) = manifests
    assert ingress["spec"]["tls"] == [{"hosts": ["api.bank.example"], "secretName": "api-bank-example-tls"}]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["spec"]["rules"][0]["host"] == "api.bank.example"
    with pytest.raises(ChartValuesError, match="tls.secretName needs host"):
        helm.template(
            chart=INGRESS_RULES,
            values=ingress_values("production", ports, tls_secret="api-bank-example-tls"),
            release="fintech-routes",
            namespace="fintech",
        )
