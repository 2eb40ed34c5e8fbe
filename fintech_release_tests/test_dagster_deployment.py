"""The orchestrator's own production deployment (deploy/dagster, Dockerfile).

* Real PostgreSQL (started by the suite on loopback): deploy/dagster/dagster.yaml, with its
  PostgreSQL settings pointed at the test server through the environment, loads as a Dagster
  instance whose run launcher is a real ``K8sRunLauncher`` (reading a kubeconfig that points
  nowhere: no Kubernetes API server can run here, and none is contacted); a real job of this
  project (``build_and_push``, its analysis step with the real Checkstyle) runs on it, and the run
  and its events are read back from PostgreSQL's tables with psycopg2. The pool limit is exercised
  on PostgreSQL's slot tables; the run queue's tag limit with the daemon's own admission counter.
* File checks (no cluster, no helm chart here): values.yaml for the official chart carries the
  essentials, holds no secret and says the same as dagster.yaml; the chart's rendering of the run
  coordinator and concurrency blocks, mirrored from its templates (not the real chart), is an
  instance config Dagster accepts; the Dockerfile runs as non-root and serves what the chart serves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import process_config
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.test_utils import create_run_for_test
from dagster._utils.tags import TagConcurrencyLimitsCounter
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from fintech_release.assets.source import report_head_commits
from fintech_release.jobs import BUILD_AND_PUSH, deploy_job_name
from fintech_release.records.keys import BUILD_ANALYSIS, DEPLOYMENT_TAG, SOURCE_COMMIT, deployment_pool
from fintech_release.release_graph import build_definitions
from fintech_release_tests.components import free_port
from fintech_release_tests.dagster_run_pod import run_pod_job
from fintech_release_tests.fixtures_postgres import PostgresServer, postgres  # noqa: F401
from fintech_release_tests.release_setup import REPO_ROOT, example_repositories, write_release_config

DEPLOY_DIR = REPO_ROOT / "deploy" / "dagster"
SERVICE = "contact-us"
TAG_LIMIT = {"key": DEPLOYMENT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
GRPC_COMMAND = ["dagster", "api", "grpc", "-m", "fintech_release.definitions", "-h", "0.0.0.0", "-p", "3030"]
# What the chart's deployment template puts before a user deployment's dagsterApiGrpcArgs.
CHART_GRPC_PREFIX = ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p"]
# Environment the chart gives the daemon and webserver; dagster.yaml's run launcher reads it.
K8S_ENV = {
    "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": "dagster",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql",
}
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: nobody, user: {token: not-a-token}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
"""


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY_DIR / name).read_text())


@pytest.fixture
def database(postgres: PostgresServer) -> str:  # noqa: F811
    """A fresh database on the test PostgreSQL for one test."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    return name


@pytest.fixture
def production_env(
    postgres: PostgresServer, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> Path:
    """The environment the production instance reads, pointed at the test's database; returns DAGSTER_HOME."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    for name, value in {**postgres.dagster_env(database), **K8S_ENV, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def production_instance(production_env: Path, tmp_path: Path) -> Iterator[DagsterInstance]:
    """deploy/dagster/dagster.yaml as an instance; only the run launcher's cluster credentials differ.

    In a pod the launcher reads the in-cluster service account; here it reads a kubeconfig whose
    server is an unused loopback port (loading it contacts nothing).
    """
    document = _load("dagster.yaml")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    document["run_launcher"]["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    (production_env / "dagster.yaml").write_text(yaml.safe_dump(document))
    with DagsterInstance.from_config(str(production_env)) as instance:
        yield instance


def test_instance_config_is_valid_and_its_run_launcher_block_fits_k8s_run_launcher(production_env: Path) -> None:
    config, _ = dagster_instance_config(str(DEPLOY_DIR))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    processed = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert processed.success, processed.errors
    assert processed.value["load_incluster_config"] is True
    assert processed.value["instance_config_map"] == K8S_ENV["DAGSTER_K8S_INSTANCE_CONFIG_MAP"]
    assert config["telemetry"] == {"enabled": False}


def test_concurrency_settings_reach_the_instance(production_instance: DagsterInstance) -> None:
    assert isinstance(production_instance.run_launcher, K8sRunLauncher)
    assert isinstance(production_instance.run_storage, PostgresRunStorage)
    assert isinstance(production_instance.event_log_storage, PostgresEventLogStorage)
    concurrency = production_instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1
    assert list(concurrency.run_queue_config.tag_concurrency_limits) == [TAG_LIMIT]


def test_a_real_job_runs_on_the_production_storage_and_lands_in_postgres(
    production_instance: DagsterInstance, postgres: PostgresServer, database: str, tmp_path: Path  # noqa: F811
) -> None:
    config = write_release_config(
        tmp_path, example_repositories(tmp_path / "git", (SERVICE,)), registry_host=f"127.0.0.1:{free_port()}"
    )
    defs = build_definitions(config)
    head = report_head_commits(production_instance, config, defs.resources["source"])[SERVICE]
    result = defs.resolve_job_def(BUILD_AND_PUSH).execute_in_process(
        instance=production_instance, partition_key=SERVICE, asset_selection=[BUILD_ANALYSIS]
    )
    assert result.success
    with postgres.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchall() == [(BUILD_AND_PUSH, "SUCCESS")]
        cursor.execute(
            "SELECT asset_key, partition FROM event_logs WHERE run_id = %s"
            " AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (result.run_id,),
        )
        assert cursor.fetchall() == [(BUILD_ANALYSIS.to_string(), SERVICE)]
        cursor.execute(
            "SELECT asset_key, check_name, execution_status FROM asset_check_executions WHERE run_id = %s",
            (result.run_id,),
        )
        assert cursor.fetchall() == [(BUILD_ANALYSIS.to_string(), "quality_gate", "SUCCEEDED")]
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s"
            " AND event LIKE %s",
            (SOURCE_COMMIT.to_string(), f"%{head}%"),
        )
        assert cursor.fetchone() == (1,)  # the recorded head commit the run built


def _deployment_run(instance: DagsterInstance, environment: str, status: DagsterRunStatus) -> DagsterRun:
    """A deploy_<env> run stored in the instance, tagged as the lead's launch code tags it."""
    return create_run_for_test(
        instance, job_name=deploy_job_name(environment), status=status, tags={DEPLOYMENT_TAG: environment}
    )


def test_pool_admits_one_deployment_step_per_environment_on_postgres(production_instance: DagsterInstance) -> None:
    staging, production = deployment_pool("staging"), deployment_pool("production")
    first, second, other = (
        _deployment_run(production_instance, env, DagsterRunStatus.STARTED)
        for env in ("staging", "staging", "production")
    )
    # The executor's own claim path: it sizes an unconfigured pool from `pools.default_limit`.
    with InstanceConcurrencyContext(production_instance, first) as holder:
        assert holder.claim(staging, "staging_releases")
    with InstanceConcurrencyContext(production_instance, second) as waiter:
        assert not waiter.claim(staging, "staging_releases")
    with InstanceConcurrencyContext(production_instance, other) as elsewhere:
        assert elsewhere.claim(production, "production_releases")
    storage = production_instance.event_log_storage
    assert storage.get_concurrency_info(staging).slot_count == 1
    storage.free_concurrency_slot_for_step(first.run_id, "staging_releases")  # the step ended
    with InstanceConcurrencyContext(production_instance, second) as waiter:
        assert waiter.claim(staging, "staging_releases")


def test_run_queue_admits_one_deployment_per_environment(production_instance: DagsterInstance) -> None:
    _deployment_run(production_instance, "staging", DagsterRunStatus.STARTED)
    # What the daemon decides for runs waiting in the queue: only the tags and the runs in progress count.
    next_staging = _deployment_run(production_instance, "staging", DagsterRunStatus.NOT_STARTED)
    next_production = _deployment_run(production_instance, "production", DagsterRunStatus.NOT_STARTED)
    limits = production_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    in_progress = production_instance.get_runs(RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES))
    counter = TagConcurrencyLimitsCounter(list(limits), list(in_progress))
    assert counter.is_blocked(next_staging)
    assert not counter.is_blocked(next_production)


# --------------------------------------------------------------------------- #
# values.yaml for the official chart, and the image
# --------------------------------------------------------------------------- #


def _secret_literals(node: object, path: str = "") -> list[str]:
    """Paths of values that look like an inline secret (a non-empty value under a password/token key)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            secret_key = re.search(r"password|token|passwd", str(key), re.IGNORECASE) and not str(key).endswith(
                "SecretName"
            )
            if secret_key and value not in (None, "", False):
                found.append(where)
            found += _secret_literals(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _secret_literals(item, f"{path}[{index}]")
    return found


def test_values_carry_the_production_essentials_and_no_secret() -> None:
    values = _load("values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
    assert _secret_literals(values) == []
    assert values["dagsterDaemon"]["enabled"] and values["dagsterDaemon"]["runCoordinator"]["type"] == (
        "QueuedRunCoordinator"
    )
    user_code = values["dagster-user-deployments"]
    (deployment,) = user_code["deployments"]
    assert user_code["enabled"] and deployment["image"]["repository"] and deployment["image"]["tag"] != "latest"
    served = CHART_GRPC_PREFIX + [str(deployment["port"])] + deployment["dagsterApiGrpcArgs"]
    assert _options(served) == _options(GRPC_COMMAND)
    assert deployment["envSecrets"] == [{"name": "fintech-release-sensors"}]
    assert values["telemetry"]["enabled"] is False


def test_run_pods_are_restricted_get_only_the_runs_secrets_and_reach_no_docker_engine() -> None:
    """The Job dagster-k8s builds from values.yaml: Pod Security `restricted`, no RBAC token, no engine."""
    values = _load("values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}  # the sensors' secrets stay out
    job = run_pod_job()
    for version in ("1.31.0", "1.33.0"):
        kubernetes_validate.validate(job, version, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fintech-release-run" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    secrets = sorted(source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source)
    assert secrets == ["fintech-release-runs"]
    pg = [env["valueFrom"]["secretKeyRef"]["name"] for env in container["env"] if "valueFrom" in env]
    assert pg == ["dagster-postgresql"]  # the run writes its events to Dagster's PostgreSQL
    writable = {mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")}
    assert writable == {"/opt/fintech-release/work", "/tmp", "/home/fintech"}
    for document in (DEPLOY_DIR / "values.yaml", DEPLOY_DIR / "dagster.yaml", REPO_ROOT / "Dockerfile"):
        text = document.read_text()
        assert "DOCKER_HOST" not in text and "2375" not in text and "tcp://" not in text, document


def test_dagster_postgresql_connection_uses_tls() -> None:
    params = _load("values.yaml")["postgresql"]["postgresqlParams"]
    assert params["sslmode"] in ("require", "verify-ca", "verify-full")


def _options(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """A `dagster api grpc` command line as (command words, option -> value), order-insensitive."""
    words = [word for word in argv if not word.startswith("-")][:3]
    options = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
    return words, options


def _chart_instance_sections(values: dict) -> dict:
    """The run_coordinator and concurrency blocks the chart renders from `values`.

    Mirrors the chart's templates helpers/instance/_run-coordinator.tpl and _concurrency.tpl: the
    coordinator gets a `config` only when a queuedRunCoordinator key has a value (older releases
    then add `max_concurrent_runs: -1`), and `concurrency` is rendered when enabled.
    """
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator: dict = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    if any(value not in (None, [], {}, "") for value in queued.values()):
        coordinator["config"] = {"max_concurrent_runs": queued.get("maxConcurrentRuns") or -1}
    concurrency = values["concurrency"]
    assert concurrency["enabled"]
    return {
        "run_coordinator": coordinator,
        "concurrency": {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
            "runs": {"tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"]},
        },
    }


def test_values_and_dagster_yaml_say_the_same_and_dagster_accepts_it(tmp_path: Path) -> None:
    rendered = _chart_instance_sections(_load("values.yaml"))
    instance = _load("dagster.yaml")
    assert rendered["concurrency"] == instance["concurrency"]
    assert rendered["run_coordinator"] == instance["run_coordinator"]
    assert rendered["concurrency"]["runs"]["tag_concurrency_limits"] == [TAG_LIMIT]
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({**rendered, "telemetry": {"enabled": False}}))
    dagster_instance_config(str(tmp_path))  # raises on a conflicting queue configuration


def test_image_runs_as_non_root_and_serves_the_code_location() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages and all(image.startswith("python:3.11-slim") for image in stages)
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert yaml.safe_load(cmd) == GRPC_COMMAND
    for tool in ("git", "openjdk-17-jdk-headless", "gradle", "checkstyle"):
        assert re.search(rf"\b{re.escape(tool)}\b", dockerfile), tool
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".demo", ".dagster_home", "release.yaml"} <= set(ignored)
