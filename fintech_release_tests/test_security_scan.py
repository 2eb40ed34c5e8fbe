"""checkov on the production path, as a bank's cloud-security reviewer runs it (issue #17).

Scanned, offline (`--skip-download`: no Bridgecrew platform, no policy download):

* deploy/terraform once per environment, with that environment's variables (environments/<env>.tfvars),
  the bootstrap root and every module included;
* the microservice chart rendered with the real helm for every demo service in every environment of
  release.yaml (as gke environments), and the ingress-rules chart with TLS;
* deploy/dagster: the run-pod Job dagster-k8s builds from values.yaml with its NetworkPolicy, and the
  code-location Dockerfile.

A check that fails and is not in deploy/checkov-skips.yaml fails the test, naming the check, the
resource and the file; a skip that no longer matches any failure fails it too, so the list stays
short and true. checkov runs in its own virtualenv (.tools/checkov, scripts/install-checkov.sh). No
real GCP project or cluster exists here: the scan reads files, nothing is planned or applied.
"""

# ruff: noqa: F811 - pytest fixtures imported from fixtures_kube_tools are test parameters

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fintech_release.chart_values import ingress_values, service_values
from fintech_release.config import ReleaseConfig
from fintech_release.resources.helm import HelmRunner
from fintech_release_tests.dagster_run_pod import run_pod_job
from fintech_release_tests.fixtures_kube_tools import gke_release_config, helm_executable  # noqa: F401
from fintech_release_tests.release_setup import REPO_ROOT

CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
INSTALL = REPO_ROOT / "scripts" / "install-checkov.sh"
SKIPS = REPO_ROOT / "deploy" / "checkov-skips.yaml"
TERRAFORM = REPO_ROOT / "deploy" / "terraform"
CHARTS = REPO_ROOT / "deploy" / "charts"
ENVIRONMENTS = ("ci", "staging", "production")
DIGEST = "sha256:" + "0123456789abcdef" * 4


@dataclass(frozen=True)
class Failure:
    target: str  # terraform/<env>, charts, dagster
    check: str
    resource: str
    file: str

    def __str__(self) -> str:
        return f"{self.check} on {self.resource} ({self.target}: {self.file})"


@pytest.fixture(scope="module")
def checkov() -> str:
    """checkov from its own virtualenv, installed by scripts/install-checkov.sh on first use."""
    if not CHECKOV.is_file():
        completed = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=900, check=False)
        if completed.returncode != 0:
            pytest.fail(f"checkov is not installed and {INSTALL} failed:\n{completed.stdout}\n{completed.stderr}")
    return str(CHECKOV)


def run_checkov(checkov: str, target: str, *args: str) -> list[Failure]:
    """The failed checks of one checkov run (all frameworks it reported)."""
    completed = subprocess.run(
        [checkov, "--skip-download", "--compact", "--quiet", "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode in (0, 1), f"checkov {target} failed to run:\n{completed.stderr[-3000:]}"
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failures = []
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, f"checkov could not parse {target}: {report['summary']}"
        assert report["summary"]["passed"] > 0, f"checkov checked nothing in {target}"
        failures += [
            Failure(target, check["check_id"], check["resource"], check["file_path"])
            for check in report["results"]["failed_checks"]
        ]
    return failures


def render_charts(helm: HelmRunner, config: ReleaseConfig, folder: Path) -> None:
    """Every service's microservice chart in every environment, and each environment's routes with TLS."""
    for environment in ENVIRONMENTS:
        namespace = config.environment(environment).gke.namespace
        for service in config.services:
            values = service_values(
                config,
                config.environment(environment),
                service.name,
                image=f"europe-west1-docker.pkg.dev/fintech-release-admin/fintech-release/{service.name}@{DIGEST}",
                env={},
            )
            values["esp"]["enabled"] = True
            manifests = helm.template(
                chart=CHARTS / "microservice", values=values, release=service.name, namespace=namespace
            )
            (folder / f"{environment}-{service.name}.yaml").write_text(yaml.safe_dump_all(manifests))
        routes = ingress_values(
            environment,
            {service.name: service.port for service in config.services},
            host=f"{environment}.api.bank.example",
            tls_secret="api-tls",
        )
        manifests = helm.template(chart=CHARTS / "ingress-rules", values=routes, release="routes", namespace=namespace)
        (folder / f"{environment}-routes.yaml").write_text(yaml.safe_dump_all(manifests))


@pytest.fixture(scope="module")
def failures(
    checkov: str, helm_executable: str, gke_release_config: ReleaseConfig, tmp_path_factory: pytest.TempPathFactory
) -> list[Failure]:
    """Every failed check of every target, each target scanned once (the scans run two at a time)."""
    charts = tmp_path_factory.mktemp("rendered-charts")
    render_charts(HelmRunner(executable=helm_executable, read_attempts=1), gke_release_config, charts)
    dagster = tmp_path_factory.mktemp("dagster")
    (dagster / "run-pod-job.yaml").write_text(yaml.safe_dump(run_pod_job()))
    (dagster / "network-policy.yaml").write_text((REPO_ROOT / "deploy" / "dagster" / "network-policy.yaml").read_text())
    scans = [
        *[
            (f"terraform/{environment}", ("--framework", "terraform", "--directory", str(TERRAFORM),
                                          "--var-file", str(TERRAFORM / "environments" / f"{environment}.tfvars")))
            for environment in ENVIRONMENTS
        ],
        ("charts", ("--framework", "kubernetes", "--directory", str(charts))),
        ("dagster", ("--framework", "kubernetes", "dockerfile", "--directory", str(dagster),
                     "--file", str(REPO_ROOT / "Dockerfile"))),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda scan: run_checkov(checkov, scan[0], *scan[1]), scans)
    return [failure for target in found for failure in target]


def skips() -> list[dict]:
    return yaml.safe_load(SKIPS.read_text())["skips"]


def covered(failure: Failure, skip: dict) -> bool:
    return (
        failure.check == skip["check"]
        and skip["target"] in (failure.target, failure.target.split("/")[0])
        and any(part in failure.resource for part in skip.get("resources", [""]))
    )


def test_every_skip_says_why_and_names_a_target() -> None:
    for skip in skips():
        assert set(skip) <= {"check", "target", "resources", "why"}, skip
        assert skip["target"] in ("terraform", "charts", "dagster", *(f"terraform/{e}" for e in ENVIRONMENTS)), skip
        assert len(skip["why"].split()) >= 8, f"{skip['check']}: say why it does not apply"


def test_checkov_passes_everything_not_in_the_skip_file(failures: list[Failure]) -> None:
    unexplained = [failure for failure in failures if not any(covered(failure, skip) for skip in skips())]
    assert not unexplained, "checkov failed checks no skip explains:\n" + "\n".join(map(str, unexplained))


def test_every_skip_is_still_needed(failures: list[Failure]) -> None:
    stale = [skip for skip in skips() if not any(covered(failure, skip) for failure in failures)]
    assert not stale, f"skips that match no failed check any more (remove them): {stale}"

