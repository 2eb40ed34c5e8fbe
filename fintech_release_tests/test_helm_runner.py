"""HelmRunner: what it runs, what it parses, and the errors it gives.

Two kinds of tests, labelled on each:

* real helm binary - no cluster can run here, so these point helm at a kubeconfig whose API server
  address does not answer (the "cluster unreachable" path), or use helm's client-only dry run to
  obtain the release JSON that `helm status -o json` prints;
* unit tests of our handling of helm's documented JSON output (also of `GkeIngress`, which drives
  HelmRunner) - a small fake `helm` script replays that JSON (the release object captured from
  the real binary; the `helm history -o json` list of {revision, updated, status, chart,
  app_version, description}) so the pending-release refusal, the
  flags of `upgrade` and the parsing can be checked without a cluster. They say nothing about a
  real cluster's behaviour.
"""

# ruff: noqa: F811 - pytest fixtures imported from fixtures_kube_tools are test parameters

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fintech_release.errors import DeploymentRefusedError, ReleaseConfigError, ToolNotFoundError
from fintech_release.resources.gke_ingress import GkeIngress, GkeIngressTarget
from fintech_release.resources.helm import ClusterUnreachableError, HelmRelease, HelmRunner
from fintech_release_tests.fixtures_kube_tools import helm_executable, unreachable_kubeconfig  # noqa: F401
from fintech_release_tests.release_setup import REPO_ROOT

MICROSERVICE = REPO_ROOT / "deploy" / "charts" / "microservice"
DIGEST = "sha256:" + "ab" * 32
VALUES = {
    "environment": "production",
    "service": "payments",
    "image": {"repository": "europe-west1-docker.pkg.dev/fintech-release-test/fintech/payments", "digest": DIGEST},
    "port": 8082,
    "healthPath": "/health",
    "replicas": 3,
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}},
    "autoscaling": {"enabled": True, "maxReplicas": 6, "cpuPercent": 70, "memoryPercent": 80},
    "env": {"APP_ENV": "production"},
}
TARGET: dict[str, Any] = {
    "environment": "production", "service": "payments", "release": "payments", "namespace": "fintech-production"
}
HISTORY = [  # helm history -o json: oldest first
    {
        "revision": 2,
        "updated": "2026-11-20T10:00:00Z",
        "status": "superseded",
        "chart": "microservice-0.1.0",
        "app_version": "by-digest",
        "description": "Upgrade complete",
    },
    {
        "revision": 3,
        "updated": "2026-11-21T10:00:00Z",
        "status": "deployed",
        "chart": "microservice-0.1.0",
        "app_version": "by-digest",
        "description": "Upgrade complete",
    },
    {
        "revision": 4,
        "updated": "2026-11-22T10:00:00Z",
        "status": "pending-upgrade",
        "chart": "microservice-0.1.0",
        "app_version": "by-digest",
        "description": "Preparing upgrade",
    },
]
FAKE_HELM = """#!/usr/bin/env bash
# A stand-in for helm that replays recorded JSON; every call is logged to calls.log.
here="$(dirname "$0")"
printf '%s\\n' "$*" >> "$here/calls.log"
replay() {
  if [[ -f "$here/$1" ]]; then cat "$here/$1"; else echo "Error: release: not found" >&2; exit 1; fi
}
if [[ -f "$here/unreachable" ]]; then
  [[ "$1" == version ]] || { echo 'Error: kubernetes cluster unreachable: i/o timeout' >&2; exit 1; }
fi
case "$1" in
  version) cat "$here/version" ;;
  status) replay status.json ;;
  history) replay history.json ;;
  upgrade)
    while (($#)); do
      if [[ "$1" == --values ]]; then cp "$2" "$here/upgrade-values.yaml"; echo "$2" > "$here/upgrade-values.path"; fi
      shift
    done
    echo 'Release "payments" does not exist. Installing it now.'  # text before the JSON must not break parsing
    replay upgrade.json ;;
  uninstall|rollback) ;;
  *) echo "fake helm: unexpected command $1" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def release_json(helm_executable: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The release object the real helm prints for our chart (client-side dry run: no cluster)."""
    values_file = tmp_path_factory.mktemp("release-json") / "values.yaml"
    values_file.write_text(yaml.safe_dump(VALUES))
    completed = subprocess.run(
        [
            helm_executable,
            "install",
            "payments",
            str(MICROSERVICE),
            "--namespace",
            "fintech-production",
            "--values",
            str(values_file),
            "--dry-run=client",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


class FakeHelm:
    """A fake helm in a folder: write what `status`/`history`/`upgrade` should print, then read calls.log."""

    def __init__(self, folder: Path, version: str = "v4.1.4") -> None:
        self.folder = folder
        self.executable = folder / "helm"
        self.executable.write_text(FAKE_HELM)
        self.executable.chmod(0o755)
        (folder / "version").write_text(version + "\n")

    def reply(self, command: str, document: object) -> None:
        (self.folder / f"{command}.json").write_text(json.dumps(document))

    def unreachable(self) -> None:
        (self.folder / "unreachable").touch()

    def calls(self) -> list[str]:
        log = self.folder / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


def _release(release_json: dict, *, status: str, revision: int) -> dict:
    return {**release_json, "version": revision, "info": {**release_json["info"], "status": status}}


# --- real helm binary ---------------------------------------------------------------------------------------------


def test_real_helm_against_an_unreachable_cluster_names_environment_and_context(
    helm_executable: str,
    unreachable_kubeconfig: Path,
) -> None:
    helm = HelmRunner(
        executable=helm_executable, kubeconfig=str(unreachable_kubeconfig), kube_context="unreachable", read_attempts=1
    )
    for call in (helm.status, helm.history):
        with pytest.raises(ClusterUnreachableError) as raised:
            call(**TARGET)
        message = str(raised.value)
        assert "environment 'production', service 'payments'" in message
        assert "cannot reach the Kubernetes cluster (kube context unreachable)" in message
        assert "connection refused" in message  # helm's own words follow: nothing listens there


def test_real_helm_upgrade_stops_at_the_unreachable_cluster_before_changing_anything(
    helm_executable: str,
    unreachable_kubeconfig: Path,
) -> None:
    helm = HelmRunner(executable=helm_executable, kubeconfig=str(unreachable_kubeconfig), read_attempts=1)
    with pytest.raises(ClusterUnreachableError, match="environment 'production', service 'payments'"):
        helm.upgrade_install(**TARGET, chart=MICROSERVICE, values=VALUES)


def test_real_helm_release_json_parses_into_a_helm_release(release_json: dict, tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    fake.reply("status", release_json)
    release = HelmRunner(executable=str(fake.executable)).status(**TARGET)
    assert release == HelmRelease(
        name="payments",
        namespace="fintech-production",
        revision=1,
        status="pending-install",  # what a client-side dry run reports
        chart="microservice-0.1.0",
        app_version="by-digest",
        updated=release_json["info"]["last_deployed"],
        description="Dry run complete",
    )


def test_missing_helm_says_how_to_install_it(tmp_path: Path) -> None:
    helm = HelmRunner(executable=str(tmp_path / "no-helm-here"))
    with pytest.raises(ToolNotFoundError, match=r"helm not found .*scripts/install-kube-tools\.sh"):
        helm.lint(chart=MICROSERVICE, values=VALUES)


# --- unit tests of our handling of helm's documented JSON output (fake helm script) --------------------------------


def test_unit_a_pending_upgrade_is_refused_with_the_rollback_that_recovers_it(
    release_json: dict, tmp_path: Path
) -> None:
    fake = FakeHelm(tmp_path)
    fake.reply("status", _release(release_json, status="pending-upgrade", revision=4))
    fake.reply("history", HISTORY)
    helm = HelmRunner(executable=str(fake.executable), kube_context="gke_prod")
    with pytest.raises(DeploymentRefusedError) as raised:
        helm.upgrade_install(**TARGET, chart=MICROSERVICE, values=VALUES)
    message = str(raised.value)
    assert message.startswith(
        "environment 'production', service 'payments': Helm release 'payments' is pending-upgrade"
    )
    assert "helm rollback payments 3 --namespace fintech-production --kube-context gke_prod" in message
    assert not [call for call in fake.calls() if call.startswith("upgrade")]


def test_unit_a_release_pending_its_first_install_is_refused_with_uninstall(release_json: dict, tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    fake.reply("status", _release(release_json, status="pending-install", revision=1))
    fake.reply("history", [{**HISTORY[0], "revision": 1, "status": "pending-install"}])
    with pytest.raises(DeploymentRefusedError, match=r"helm uninstall payments --namespace fintech-production`"):
        HelmRunner(executable=str(fake.executable)).upgrade_install(**TARGET, chart=MICROSERVICE, values=VALUES)
    assert not [call for call in fake.calls() if call.startswith("upgrade")]


@pytest.mark.parametrize(
    ("version", "flags"),
    [("v4.1.4", "--wait --rollback-on-failure"), ("v3.16.2", "--wait --atomic")],  # helm 4: bare --wait = watcher
)
def test_unit_upgrade_waits_rolls_back_on_failure_and_passes_values_in_a_file(
    release_json: dict, tmp_path: Path, version: str, flags: str
) -> None:
    fake = FakeHelm(tmp_path, version=version)
    fake.reply("status", _release(release_json, status="deployed", revision=3))
    fake.reply("upgrade", _release(release_json, status="deployed", revision=4))
    helm = HelmRunner(executable=str(fake.executable), kubeconfig="/etc/kube/config", timeout_seconds=300)
    release = helm.upgrade_install(**TARGET, chart=MICROSERVICE, values=VALUES)
    assert (release.revision, release.status) == (4, "deployed")
    (upgrade,) = [call for call in fake.calls() if call.startswith("upgrade")]
    assert upgrade.startswith(f"upgrade payments {MICROSERVICE} --install ")
    assert f" {flags} --timeout 300s " in upgrade
    assert "--namespace fintech-production --kubeconfig /etc/kube/config" in upgrade
    assert yaml.safe_load((tmp_path / "upgrade-values.yaml").read_text()) == VALUES
    assert not Path((tmp_path / "upgrade-values.path").read_text().strip()).exists()  # the temp file is gone


def test_unit_upgrade_without_wait_leaves_waiting_and_rolling_back_to_the_caller(
    release_json: dict, tmp_path: Path
) -> None:
    fake = FakeHelm(tmp_path, version="v3.16.2")
    fake.reply("status", _release(release_json, status="deployed", revision=3))
    fake.reply("upgrade", _release(release_json, status="deployed", revision=4))
    helm = HelmRunner(executable=str(fake.executable), timeout_seconds=300)
    release = helm.upgrade_install(**TARGET, chart=MICROSERVICE, values=VALUES, wait=False)
    assert release.revision == 4
    (upgrade,) = [call for call in fake.calls() if call.startswith("upgrade")]
    assert "--wait" not in upgrade and "--atomic" not in upgrade and "--rollback-on-failure" not in upgrade
    assert " --timeout 300s " in upgrade  # still bounds helm's hooks


@pytest.mark.parametrize("version", ["v4.1.4", "v3.16.2"])
def test_unit_rollback_sends_the_same_flags_to_helm_3_and_4(release_json: dict, tmp_path: Path, version: str) -> None:
    fake = FakeHelm(tmp_path, version=version)
    fake.reply("status", _release(release_json, status="deployed", revision=5))
    helm = HelmRunner(executable=str(fake.executable), kube_context="gke_prod", timeout_seconds=300)
    assert helm.rollback(**TARGET, revision=3).revision == 5
    assert fake.calls() == [
        "rollback payments 3 --wait --timeout 300s --namespace fintech-production --kube-context gke_prod",
        "status payments --output json --namespace fintech-production --kube-context gke_prod",
    ]  # and no `helm version`: nothing depends on it


def test_unit_a_runner_for_an_environments_context_and_its_recovery_command() -> None:
    helm = HelmRunner(kubeconfig="/etc/kube/config", kube_context="default-context")
    assert helm.for_context(None).kube_context == "default-context"  # the environment names none: the runner's own
    staging = helm.for_context("gke_staging")
    assert (staging.kube_context, staging.kubeconfig) == ("gke_staging", "/etc/kube/config")
    assert staging.recovery_command(release="payments", namespace="fintech", revision=4) == (
        "helm rollback payments 4 --namespace fintech --kubeconfig /etc/kube/config --kube-context gke_staging"
    )
    assert HelmRunner().recovery_command(release="payments", namespace="fintech", revision=None) == (
        "helm uninstall payments --namespace fintech"
    )


def test_unit_history_is_parsed_oldest_first_and_a_missing_release_is_none(tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    helm = HelmRunner(executable=str(fake.executable))
    assert helm.status(**TARGET) is None
    assert helm.history(**TARGET) == []
    fake.reply("history", list(reversed(HISTORY)))
    history = helm.history(**TARGET)
    assert [(entry.revision, entry.status) for entry in history] == [
        (2, "superseded"),
        (3, "deployed"),
        (4, "pending-upgrade"),
    ]
    assert history[1] == HelmRelease(
        name="payments",
        namespace="fintech-production",
        revision=3,
        status="deployed",
        chart="microservice-0.1.0",
        app_version="by-digest",
        updated="2026-11-21T10:00:00Z",
        description="Upgrade complete",
    )


def test_unit_reads_are_retried_while_the_cluster_is_unreachable(tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    fake.unreachable()
    with pytest.raises(ClusterUnreachableError):
        HelmRunner(executable=str(fake.executable), read_attempts=2).status(**TARGET)
    assert [call.split()[0] for call in fake.calls()] == ["status", "status"]


def _gke_ingress(fake: FakeHelm) -> GkeIngress:
    return GkeIngress(
        helm=HelmRunner(executable=str(fake.executable), kube_context="default-context"),
        charts_dir=str(REPO_ROOT / "deploy" / "charts"),
        ingress_nginx_version="4.11.3",
        environments={"staging": GkeIngressTarget(namespace="fintech-staging", kube_context="gke_staging")},
        service_ports={"payments": 8082, "accounts": 8083},
    )


def test_unit_gke_ingress_installs_ingress_nginx_first_then_the_routes(release_json: dict, tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    fake.reply("upgrade", _release(release_json, status="deployed", revision=1))
    info = _gke_ingress(fake).ensure(
        environment="staging", address="ignored", port=0, services=["payments", "accounts"]
    )
    upgrades = [call for call in fake.calls() if call.startswith("upgrade")]
    assert len(upgrades) == 2
    assert upgrades[0].startswith(
        "upgrade ingress-nginx ingress-nginx --install --create-namespace"
        " --repo https://kubernetes.github.io/ingress-nginx --version 4.11.3 "
    )
    assert upgrades[0].endswith("--namespace ingress-nginx --kube-context gke_staging")
    assert upgrades[1].startswith(f"upgrade fintech-routes {REPO_ROOT / 'deploy' / 'charts' / 'ingress-rules'} ")
    assert upgrades[1].endswith("--namespace fintech-staging --kube-context gke_staging")
    assert yaml.safe_load((tmp_path / "upgrade-values.yaml").read_text()) == {
        "environment": "staging",
        "ingressClassName": "nginx",
        "host": "",
        "tls": {"secretName": ""},
        "services": [{"name": "payments", "port": 8082}, {"name": "accounts", "port": 8083}],
    }
    assert info.routes == {
        "payments": ["payments.fintech-staging.svc.cluster.local:8082"],
        "accounts": ["accounts.fintech-staging.svc.cluster.local:8083"],
    }


def test_unit_gke_ingress_backends_need_no_change_and_remove_uninstalls_both(tmp_path: Path) -> None:
    fake = FakeHelm(tmp_path)
    ingress = _gke_ingress(fake)
    info = ingress.set_backends(environment="staging", service="payments", backends=["10.0.0.5:8082"])
    assert info.routes["payments"] == ["payments.fintech-staging.svc.cluster.local:8082"]
    assert fake.calls() == []
    assert ingress.remove(environment="staging") == [
        "helm release fintech-routes (namespace fintech-staging)",
        "helm release ingress-nginx (namespace ingress-nginx)",
    ]
    assert [call.split()[:2] for call in fake.calls()] == [
        ["uninstall", "fintech-routes"],
        ["uninstall", "ingress-nginx"],
    ]
    with pytest.raises(ReleaseConfigError, match="'production' is not a gke environment of this ingress"):
        ingress.remove(environment="production")
