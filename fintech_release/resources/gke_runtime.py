"""`GkeRuntime`: the gke platform's `ServiceRuntime` - Terraform for environments, Helm for releases,
the Kubernetes API for health.

* `ensure_environment` converges the environment (the one Terraform root, with the environment's
  var file and state) and reports the plan summary and the non-sensitive outputs.
* `deploy` upgrades a service only when the digest it runs differs from the candidate's. helm
  applies the upgrade without waiting; the rollout (the Deployment and its new ReplicaSet's pods)
  is watched through the Kubernetes API and rolled back (`helm rollback`) at the first failure of
  the new pods or at helm's timeout, so a failed rollout returns `failed` with the previous image
  still serving; it never raises for that.
* `health` watches the new pods, Deployment, autoscaler and ingress and stops at the first failure;
  only restarts during the watch count (a pod on GKE may have restarted once weeks ago).
* `teardown` destroys what Terraform manages for an ephemeral environment and refuses any other.

`on_backends_changed` is never called: a Kubernetes Service routes to the pods its endpoints
list, and those follow pod readiness by themselves; there is no list of backends to hand to
the ingress as on the local platform.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dagster import Config
from pydantic import Field

from fintech_release.chart_values import service_values
from fintech_release.config.loader import load_release_config
from fintech_release.errors import DeploymentRefusedError, ExternalSystemError, ReleaseConfigError, ToolFailedError
from fintech_release.health.kubernetes import Timeline, image_digest, judge, running_image
from fintech_release.health.model import ServiceHealth
from fintech_release.resources.helm import (
    RESTORABLE_STATUSES,
    ChartValuesError,
    ClusterUnreachableError,
    HelmRelease,
    HelmRunner,
)
from fintech_release.resources.kubernetes_cluster import KubernetesCluster
from fintech_release.resources.runtime import BackendsChanged, DeployOutcome, DeploySpec, ServiceRuntime
from fintech_release.resources.terraform import SENSITIVE, ApplyResult, PlanSummary, TerraformRunner

SERVICE_CHART = "microservice"
DETAIL_LINES = 6  # lines of helm's output kept in a failed outcome's detail


class GkeTarget(Config):
    """Where one gke environment lives: built from its `Environment.gke` settings in release.yaml."""

    project: str
    region: str
    kube_context: str | None = None  # None: the kubeconfig's current context
    namespace: str = "fintech"
    terraform_root: str  # absolute: <gke.terraform_dir>/environment, the one root of every environment
    # absolute: Environment.gke.terraform_var_file or <gke.terraform_dir>/environments/<name>.tfvars
    terraform_var_file: str
    ephemeral: bool = False  # only ephemeral environments (ci) may be torn down


class GkeRuntime(ServiceRuntime):
    """Services as Helm releases of the `microservice` chart on GKE; environments converged by Terraform."""

    release_config: str  # absolute path of release.yaml: the chart values come from it
    charts_dir: str  # absolute: <gke.charts_dir>
    environments: dict[str, GkeTarget] = Field(default_factory=dict)
    cluster: KubernetesCluster
    helm: HelmRunner  # pointed at each environment's kube context (HelmRunner.for_context)
    terraform: TerraformRunner

    def ensure_environment(self, *, environment: str, address: str) -> dict[str, str]:
        """Converge the environment with Terraform (create what is missing, repair drift); report what it did.

        `address` is the local platform's loopback address and means nothing here.
        """
        target = self._target(environment)
        result = self.terraform.apply(
            environment=environment, root=Path(target.terraform_root), var_file=Path(target.terraform_var_file)
        )
        return {
            "project": target.project,
            "region": target.region,
            "namespace": target.namespace,
            "kube_context": target.kube_context or "(current)",
            "terraform_root": target.terraform_root,
            "terraform_var_file": target.terraform_var_file,
            **_apply_facts(result),
        }

    def running_image(self, *, environment: str, service: str) -> str | None:
        """The image the service's Deployment runs (its pod template), or None when it is not deployed."""
        target = self._target(environment)
        deployment = self.cluster.read_deployment(
            environment=environment, kube_context=target.kube_context, namespace=target.namespace, service=service
        )
        return running_image(deployment, service)

    def deploy(self, *, spec: DeploySpec, on_backends_changed: BackendsChanged) -> DeployOutcome:
        """Upgrade the service's Helm release to `spec.image` unless it already runs that digest; fail fast.

        Unchanged compares digests only (on gke the autoscaler owns the replica count, and the
        chart's settings go out with the next image) and reports `spec.image`, whatever registry
        path the Deployment names. Otherwise helm applies the upgrade without waiting and the
        rollout is watched here for at most helm's timeout, stopping once it rolled out or at the
        first failure of the new ReplicaSet's pods (CrashLoopBackOff, a restart, an image that
        cannot be pulled, the progress deadline, a paused Deployment) instead of waiting for the
        timeout; old pods, pods the node killed and retries still within `transient_grace_seconds`
        fail nothing. The autoscaler and the ingress are not the rollout's: their problems stay in
        the outcome's health for `pod_health`. A rollout that fails or times out is rolled back to
        the revision deployed before (`helm rollback <revision> --wait`; a first install is
        uninstalled) and the outcome is `failed`. The previous version serves throughout: the
        chart's RollingUpdate has maxUnavailable 0, so no old pod goes before a new one is ready.
        """
        target = self._target(spec.environment)
        since = datetime.now(UTC)
        previous = self.running_image(environment=spec.environment, service=spec.service)
        wanted = image_digest(spec.image)
        if previous is not None and wanted is not None and image_digest(previous) == wanted:
            return DeployOutcome(
                status="unchanged", image=spec.image, previous_image=previous,
                health=self._look(target, spec, expected_image=spec.image, since=since),
                detail=f"{spec.service} already runs {wanted}: not upgraded",
            )
        helm = self.helm.for_context(target.kube_context)
        release = {"environment": spec.environment, "service": spec.service, "release": spec.service,
                   "namespace": target.namespace}
        restorable = [entry for entry in helm.history(**release) if entry.status in RESTORABLE_STATUSES]
        restore_to = restorable[-1] if restorable else None
        try:
            upgraded = helm.upgrade_install(
                **release, chart=Path(self.charts_dir) / SERVICE_CHART, values=self._values(spec), wait=False,
            )
        except (ChartValuesError, ClusterUnreachableError):
            raise
        except ToolFailedError as exc:  # helm may have applied part of the release before it failed
            output = "\n".join(str(exc).splitlines()[-DETAIL_LINES:])
            return self._roll_back(helm, target, spec, restore_to, previous, since, f"helm upgrade failed:\n{output}")
        window = helm.timeout_seconds
        try:
            verdict = self.cluster.watch_health(
                environment=spec.environment, kube_context=target.kube_context, namespace=target.namespace,
                service=spec.service, desired_replicas=spec.replicas, expected_image=spec.image,
                window_seconds=window, until_rolled_out=True, since=since,
            )
        except ExternalSystemError as exc:
            return self._roll_back(
                helm, target, spec, restore_to, previous, since, f"the rollout could not be watched: {exc}"
            )
        health = verdict.health
        if verdict.rolled_out:
            return DeployOutcome(
                status="deployed", image=spec.image, previous_image=previous, health=health,
                detail=f"Helm release {upgraded.name} revision {upgraded.revision} runs {spec.image},"
                f" {health.ready_replicas} replicas ready",
            )
        cause = "failing" if verdict.rollout_failing else f"not rolled out within helm's timeout of {window} s"
        return self._roll_back(
            helm, target, spec, restore_to, previous, since, f"{cause}: " + "; ".join(health.problems), health
        )

    def health(
        self, *, environment: str, service: str, desired_replicas: int, expected_image: str | None,
        window_seconds: float, since: datetime | None = None,
    ) -> ServiceHealth:
        """Watch for the whole window (a pod dying after it got ready is caught); stop at the first failure.

        Only restarts from `since` (default: the start of the watch) count, or a pod waiting in
        CrashLoopBackOff. An error that is retried (an image pull after a registry 5xx, an autoscaler
        waiting for metrics) is watched past the window until it clears or its grace period ends.
        """
        target = self._target(environment)
        return self.cluster.watch_health(
            environment=environment, kube_context=target.kube_context, namespace=target.namespace, service=service,
            desired_replicas=desired_replicas, expected_image=expected_image, window_seconds=window_seconds,
            since=since or datetime.now(UTC),
        ).health

    def teardown(self, *, environment: str) -> list[str]:
        """Destroy what Terraform manages for an ephemeral environment; refuse a permanent environment untouched."""
        self.refuse_teardown(environment=environment)
        target = self._target(environment)
        summary = self.terraform.destroy(
            environment=environment, root=Path(target.terraform_root), var_file=Path(target.terraform_var_file)
        )
        return _destroyed(summary)

    def refuse_teardown(self, *, environment: str) -> None:
        """Raise `DeploymentRefusedError` when `environment` is permanent: only ephemeral ones are torn down.

        The teardown op asks before it removes anything (the ingress goes before the runtime).
        """
        target = self._target(environment)
        if not target.ephemeral:
            raise DeploymentRefusedError(
                f"environment {environment!r} is not ephemeral: teardown destroys only throw-away environments"
                f" (ci). Nothing was destroyed. To remove it on purpose, run `terraform destroy"
                f" -var-file={target.terraform_var_file}` in {target.terraform_root} yourself, initialised with"
                f" that environment's state prefix (see deploy/terraform/README.md)."
            )

    def _target(self, environment: str) -> GkeTarget:
        if environment not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ReleaseConfigError(
                f"environment {environment!r} is not a gke environment of this runtime (gke environments: {known});"
                " set `platform: gke` and its `gke:` settings in release.yaml"
            )
        return self.environments[environment]

    def _values(self, spec: DeploySpec) -> dict:
        """The chart values from release.yaml, with the spec's replica count (a rollback restores its own)."""
        config = load_release_config(self.release_config)
        values = service_values(config, config.environment(spec.environment), spec.service, spec.image, spec.env)
        values["replicas"] = spec.replicas
        autoscaling = values["autoscaling"]
        autoscaling["maxReplicas"] = max(autoscaling["maxReplicas"], spec.replicas)
        return values

    def _roll_back(
        self, helm: HelmRunner, target: GkeTarget, spec: DeploySpec, restore_to: HelmRelease | None,
        previous: str | None, since: datetime, cause: str, health: ServiceHealth | None = None,
    ) -> DeployOutcome:
        """Restore the release as it was before the upgrade; a `failed` outcome with what serves now.

        `health` is the last look at the failed rollout (None: look now, after restoring). Raises
        when the restore itself fails: the release then needs a person.
        """
        release = {"environment": spec.environment, "service": spec.service, "release": spec.service,
                   "namespace": target.namespace}
        try:
            if restore_to is None:
                helm.uninstall(**release)
                restored = "the first install was uninstalled"
            else:
                helm.rollback(**release, revision=restore_to.revision)
                restored = f"rolled back to revision {restore_to.revision}"
        except ExternalSystemError as exc:
            recovery = helm.recovery_command(
                release=spec.service, namespace=target.namespace, revision=restore_to.revision if restore_to else None
            )
            raise ToolFailedError(
                f"environment {spec.environment!r}, service {spec.service!r}: {spec.image} did not roll out"
                f" ({cause.splitlines()[0]}) and restoring the Helm release failed too. Recover with"
                f" `{recovery}`. {exc}"
            ) from None
        serving = self.running_image(environment=spec.environment, service=spec.service)
        if health is None:
            health = self._look(target, spec, expected_image=spec.image, since=since)
        return DeployOutcome(
            status="failed", image=serving, previous_image=previous, health=health,
            detail=f"{spec.image} did not roll out ({cause}); {restored}, the Deployment runs {serving or 'nothing'}",
        )

    def _look(
        self, target: GkeTarget, spec: DeploySpec, *, expected_image: str | None, since: datetime | None
    ) -> ServiceHealth:
        """The service's health right now, without waiting; restarts before `since` do not count."""
        objects = self.cluster.read_service(
            environment=spec.environment, kube_context=target.kube_context, namespace=target.namespace,
            service=spec.service,
        )
        return judge(
            objects, environment=spec.environment, service=spec.service, desired_replicas=spec.replicas,
            expected_image=expected_image, since=since,
            timeline=Timeline(now=datetime.now(UTC), grace_seconds=self.cluster.transient_grace_seconds),
        )


def _apply_facts(result: ApplyResult) -> dict[str, str]:
    """The plan summary and every non-sensitive output, as text for materialization metadata."""
    facts = {"terraform_applied": str(result.applied).lower()}
    for key, value in result.plan.as_metadata().items():
        facts[key] = ", ".join(value) if isinstance(value, list) else str(value)
    for name, value in sorted(result.outputs.items()):
        if value != SENSITIVE:
            facts[f"output_{name}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return facts


def _destroyed(summary: PlanSummary) -> list[str]:
    """The Terraform addresses the destroy plan removed."""
    return sorted({*summary.addresses.get("delete", ()), *summary.addresses.get("replace", ())})
