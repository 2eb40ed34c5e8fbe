"""The Job the K8sRunLauncher creates for a run, built by dagster-k8s from deploy/dagster/values.yaml.

The official chart turns `runLauncher.config.k8sRunLauncher` into the launcher's config (image pull
policy, env secrets, volumes, container security context, `runK8sConfig`) and gives it the user-code
image, the instance ConfigMap and the PostgreSQL secret; this mirrors that mapping and lets dagster-k8s'
own `construct_dagster_k8s_job` build the Job, so tests judge the run pod a real run would get. No
cluster is contacted.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
from kubernetes.client import ApiClient

from fintech_release_tests.release_setup import REPO_ROOT

VALUES = REPO_ROOT / "deploy" / "dagster" / "values.yaml"


def run_pod_job(values_file: Path = VALUES) -> dict:
    """The run Job as a manifest (camelCase, as `kubectl get job -o yaml` shows it)."""
    values = yaml.safe_load(values_file.read_text())
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    job_config = DagsterK8sJobConfig(
        job_image=f"{image['repository']}:{image['tag']}",
        dagster_home="/opt/dagster/dagster_home",
        image_pull_policy=launcher["imagePullPolicy"],
        service_account_name=values["global"]["serviceAccountName"],
        instance_config_map="dagster-instance",
        postgres_password_secret=values["global"]["postgresqlSecretName"],
        env_config_maps=[item["name"] if isinstance(item, dict) else item for item in launcher["envConfigMaps"]],
        env_secrets=[item["name"] for item in launcher["envSecrets"]],
        env_vars=launcher["envVars"],
        volume_mounts=launcher["volumeMounts"],
        volumes=launcher["volumes"],
        resources=launcher["resources"],
    )
    run_k8s = launcher["runK8sConfig"]
    # The launcher hands its securityContext to the run as container config (container_context.py).
    container_config = {**run_k8s["containerConfig"], "securityContext": launcher["securityContext"]}
    user_config = UserDefinedDagsterK8sConfig.from_dict(
        {"container_config": container_config, "pod_spec_config": run_k8s["podSpecConfig"]}
    )
    job = construct_dagster_k8s_job(
        job_config,
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0123456789abcdef",
        user_defined_k8s_config=user_config,
        component="run_worker",
    )
    manifest = ApiClient().sanitize_for_serialization(job)
    manifest.setdefault("apiVersion", "batch/v1")
    manifest.setdefault("kind", "Job")
    manifest["metadata"]["namespace"] = "dagster"
    return manifest
