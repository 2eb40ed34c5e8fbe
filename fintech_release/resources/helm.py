"""`HelmRunner`: the helm command line, for the gke platform's releases and ingress.

Every call runs the real `helm` binary, 3.x or 4.x: a bare `--wait` works in both (in helm 4 it
means the watcher strategy), and only the flag that rolls a failed upgrade back differs (`--atomic`,
`--rollback-on-failure`; picked from `helm version`). Values go to helm through a temporary file,
never on the command line. helm's failures become errors that say where and what: a values file
the chart's schema rejects names the environment, the service and the field; an unreachable
cluster names the environment and the kube context; a release left pending by an interrupted
operation is refused before anything is changed, with the command that recovers it.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from dagster import ConfigurableResource
from pydantic import BaseModel, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fintech_release.errors import DeploymentRefusedError, ToolFailedError
from fintech_release.resources._process import output_tail, run_tool

HELM_INSTALL_HINT = "Run `bash scripts/install-kube-tools.sh` (installs helm into .tools/bin) or see https://helm.sh."
PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
# Revisions a release can be rolled back to: the one serving now and the ones it replaced.
RESTORABLE_STATUSES = frozenset({"deployed", "superseded"})
NOT_FOUND = re.compile(r"release: not found")  # helm's storage driver error, the same in helm 3 and 4
UNREACHABLE = re.compile(r"kubernetes cluster unreachable", re.IGNORECASE)
SCHEMA_FIELD = re.compile(r"- at '(?P<pointer>[^']*)': (?P<detail>.+)")
TEMPLATE_FAIL = re.compile(r"execution error at \([^)]*\): (?P<detail>(?:values: )?(?P<field>[\w.\[\]-]+)?.*)")
# helm's own process may outlive --timeout a little (rollback after a failed upgrade): allow for it.
PROCESS_GRACE_SECONDS = 120


class ChartValuesError(ToolFailedError):
    """helm rejected a release's values (chart schema or a template check); names environment, service and field."""


class ClusterUnreachableError(ToolFailedError):
    """helm could not reach the environment's Kubernetes API server."""


class HelmRelease(BaseModel, frozen=True):
    """One revision of a Helm release, as `helm status` / `helm history` report it."""

    name: str
    namespace: str
    revision: int
    status: str  # deployed, superseded, failed, pending-install, pending-upgrade, pending-rollback, ...
    chart: str  # name-version, e.g. microservice-0.1.0
    app_version: str
    updated: str  # RFC 3339 time of the revision; empty when helm reports none
    description: str


class HelmRunner(ConfigurableResource):
    """Runs helm against one cluster (a kubeconfig and context) with a timeout for every operation."""

    executable: str = "helm"
    kubeconfig: str | None = None
    kube_context: str | None = None  # None: the kubeconfig's current context
    timeout_seconds: int = Field(default=600, ge=1)  # release.yaml asks for 30 or more (helm_timeout_seconds)
    read_attempts: int = Field(default=3, ge=1, le=10)  # status/history retried when the cluster is unreachable

    def upgrade_install(
        self,
        *,
        environment: str,
        service: str,
        release: str,
        chart: Path | str,
        namespace: str,
        values: dict,
        repo: str | None = None,
        version: str | None = None,
        wait: bool = True,
    ) -> HelmRelease:
        """Install or upgrade `release`; by default wait until it is ready, and on failure helm rolls it back.

        With `wait=False` helm returns once the objects are applied and never rolls back by itself:
        the caller watches the rollout and rolls back (`rollback`, `uninstall`) when it fails.
        `chart` is a chart directory, or a chart name in `repo` at `version`. Refuses (before
        changing anything) a release left pending by another or an interrupted helm operation.
        """
        current = self.status(environment=environment, service=service, release=release, namespace=namespace)
        if current is not None and current.status in PENDING_STATUSES:
            raise DeploymentRefusedError(self._pending_message(environment, service, current))
        wait_flags: list[str] = []
        if wait:
            wait_flags = ["--wait", "--atomic" if _major_version(self.executable) < 4 else "--rollback-on-failure"]
        source = ["--repo", repo] if repo else []
        source += ["--version", version] if version else []
        with tempfile.TemporaryDirectory(prefix="fintech-release-helm-") as folder:
            values_file = _write_values(Path(folder), values)
            args = ["upgrade", release, str(chart), "--install", "--create-namespace", *source, *wait_flags]
            args += ["--timeout", f"{self.timeout_seconds}s", "--values", str(values_file), "--output", "json"]
            completed = self._helm(
                args,
                environment=environment,
                service=service,
                namespace=namespace,
                timeout=self.timeout_seconds + PROCESS_GRACE_SECONDS,
            )
        return _release_from_status(_json_output(completed.stdout))

    def status(self, *, environment: str, service: str, release: str, namespace: str) -> HelmRelease | None:
        """The release's current revision, or None when there is no such release."""
        completed = self._read(["status", release, "--output", "json"], environment, service, namespace)
        return None if completed is None else _release_from_status(_json_output(completed.stdout))

    def history(self, *, environment: str, service: str, release: str, namespace: str) -> list[HelmRelease]:
        """Every kept revision of the release, oldest first; empty when there is no such release."""
        completed = self._read(
            ["history", release, "--max", "256", "--output", "json"], environment, service, namespace
        )
        if completed is None:
            return []
        return [
            HelmRelease(
                name=release,
                namespace=namespace,
                revision=int(entry["revision"]),
                status=entry.get("status", ""),
                chart=entry.get("chart", ""),
                app_version=entry.get("app_version", ""),
                updated=entry.get("updated") or "",
                description=entry.get("description", ""),
            )
            for entry in sorted(_json_output(completed.stdout) or [], key=lambda item: int(item["revision"]))
        ]

    def rollback(self, *, environment: str, service: str, release: str, namespace: str, revision: int) -> HelmRelease:
        """Roll the release back to `revision` (helm records it as a new revision) and wait until it is ready."""
        self._helm(
            ["rollback", release, str(revision), "--wait", "--timeout", f"{self.timeout_seconds}s"],
            environment=environment,
            service=service,
            namespace=namespace,
            timeout=self.timeout_seconds + PROCESS_GRACE_SECONDS,
        )
        restored = self.status(environment=environment, service=service, release=release, namespace=namespace)
        if restored is None:
            raise ToolFailedError(
                f"environment {environment!r}, service {service!r}: release {release!r} is gone"
                f" from namespace {namespace!r} right after `helm rollback` reported success"
            )
        return restored

    def uninstall(self, *, environment: str, service: str, release: str, namespace: str) -> None:
        """Remove the release and everything it installed; a release that does not exist is fine."""
        self._helm(
            ["uninstall", release, "--ignore-not-found", "--wait", "--timeout", f"{self.timeout_seconds}s"],
            environment=environment,
            service=service,
            namespace=namespace,
            timeout=self.timeout_seconds + PROCESS_GRACE_SECONDS,
        )

    def lint(self, *, chart: Path, values: dict) -> list[str]:
        """helm lint's findings for `chart` with `values`, e.g. '[ERROR] values.yaml: - at '/port': ...'.

        Findings are data, not failures: the caller decides what an [ERROR] means. helm lint checks
        the values schema but, in its lint mode, only logs a template's `fail`; `template` raises it.
        """
        with tempfile.TemporaryDirectory(prefix="fintech-release-helm-") as folder:
            values_file = _write_values(Path(folder), values)
            completed = run_tool(
                [self.executable, "lint", str(chart), "--values", str(values_file)],
                tool="helm",
                install_hint=HELM_INSTALL_HINT,
                timeout_seconds=120,
                check=False,
            )
        return [line.strip() for line in completed.stdout.splitlines() if re.match(r"\s*\[(INFO|WARNING|ERROR)]", line)]

    def template(self, *, chart: Path, values: dict, release: str, namespace: str) -> list[dict]:
        """The manifests `chart` renders with `values` (no cluster needed), one dict per object."""
        environment = str(values.get("environment", "?"))
        service = str(values.get("service", release))
        with tempfile.TemporaryDirectory(prefix="fintech-release-helm-") as folder:
            values_file = _write_values(Path(folder), values)
            completed = run_tool(
                [
                    self.executable,
                    "template",
                    release,
                    str(chart),
                    "--namespace",
                    namespace,
                    "--values",
                    str(values_file),
                ],
                tool="helm",
                install_hint=HELM_INSTALL_HINT,
                timeout_seconds=120,
                check=False,
            )
        if completed.returncode != 0:
            raise _failure(completed, "template", environment, service, self.kube_context)
        return [document for document in yaml.safe_load_all(completed.stdout) if document]

    def for_context(self, kube_context: str | None) -> HelmRunner:
        """This runner pointed at `kube_context`; None keeps its own (itself None: the kubeconfig's current one)."""
        return self.model_copy(update={"kube_context": kube_context or self.kube_context})

    def recovery_command(self, *, release: str, namespace: str, revision: int | None) -> str:
        """The helm command a person runs to restore `release`: roll back to `revision`, or (None) uninstall it."""
        action = f"rollback {release} {revision}" if revision is not None else f"uninstall {release}"
        cluster = f" --kubeconfig {self.kubeconfig}" if self.kubeconfig else ""
        cluster += f" --kube-context {self.kube_context}" if self.kube_context else ""
        return f"helm {action} --namespace {namespace}{cluster}"

    def _read(
        self, args: list[str], environment: str, service: str, namespace: str
    ) -> subprocess.CompletedProcess[str] | None:
        """A read-only helm command, retried while the cluster is unreachable; None when the release does not exist."""
        retrying = Retrying(
            stop=stop_after_attempt(self.read_attempts),
            wait=wait_exponential(multiplier=1, max=10),
            retry=retry_if_exception_type(ClusterUnreachableError),
            reraise=True,
        )
        return retrying(self._read_once, args, environment, service, namespace)

    def _read_once(
        self, args: list[str], environment: str, service: str, namespace: str
    ) -> subprocess.CompletedProcess[str] | None:
        completed = self._helm(
            args, environment=environment, service=service, namespace=namespace, timeout=120, check=False
        )
        if completed.returncode == 0:
            return completed
        if NOT_FOUND.search(completed.stderr) and not UNREACHABLE.search(completed.stderr):
            return None
        raise _failure(completed, args[0], environment, service, self.kube_context)

    def _helm(
        self,
        args: Sequence[str],
        *,
        environment: str,
        service: str,
        namespace: str,
        timeout: float,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        cluster = ["--namespace", namespace]
        cluster += ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        cluster += ["--kube-context", self.kube_context] if self.kube_context else []
        completed = run_tool(
            [self.executable, *args, *cluster],
            tool="helm",
            install_hint=HELM_INSTALL_HINT,
            timeout_seconds=timeout,
            check=False,
        )
        if check and completed.returncode != 0:
            raise _failure(completed, args[0], environment, service, self.kube_context)
        return completed

    def _pending_message(self, environment: str, service: str, current: HelmRelease) -> str:
        history = self.history(
            environment=environment, service=service, release=current.name, namespace=current.namespace
        )
        restorable = [entry.revision for entry in history if entry.status in RESTORABLE_STATUSES]
        revision = restorable[-1] if restorable else None
        command = self.recovery_command(release=current.name, namespace=current.namespace, revision=revision)
        if revision is not None:
            recovery = f"`{command}` (revision {revision}, the last one deployed)"
        else:
            recovery = f"`{command}` (it was never deployed)"
        return (
            f"environment {environment!r}, service {service!r}: Helm release {current.name!r} is"
            f" {current.status} at revision {current.revision} (since {current.updated or 'unknown'}): another helm"
            f" operation is running or was interrupted. Nothing was changed. Wait for it to finish; if none is"
            f" running, recover with {recovery}, then deploy again."
        )


@functools.cache
def _major_version(executable: str) -> int:
    """helm's major version (3 or 4): the flag that rolls a failed upgrade back differs between them."""
    completed = run_tool(
        [executable, "version", "--template", "{{.Version}}"],
        tool="helm",
        install_hint=HELM_INSTALL_HINT,
        timeout_seconds=30,
    )
    found = re.match(r"v?(\d+)\.", completed.stdout.strip())
    if found is None:
        raise ToolFailedError(f"cannot tell helm's version from `{executable} version`: {completed.stdout.strip()!r}")
    return int(found.group(1))


def _write_values(folder: Path, values: dict) -> Path:
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def _json_output(stdout: str) -> Any:
    """The JSON document helm printed with `--output json`, skipping any line of text printed before it."""
    start = re.search(r"^[\[{]", stdout, re.MULTILINE)
    if start is None:
        raise ToolFailedError(f"helm printed no JSON where JSON was asked for (--output json): {stdout[-500:]!r}")
    document, _ = json.JSONDecoder().raw_decode(stdout, start.start())
    return document


def _release_from_status(document: dict) -> HelmRelease:
    """A HelmRelease from helm's release JSON (`helm status -o json`, `helm upgrade -o json`)."""
    info = document.get("info") or {}
    metadata = (document.get("chart") or {}).get("metadata") or {}
    return HelmRelease(
        name=document["name"],
        namespace=document.get("namespace", ""),
        revision=int(document["version"]),
        status=info.get("status", ""),
        chart=f"{metadata.get('name', 'MISSING')}-{metadata.get('version', '')}",
        app_version=metadata.get("appVersion", ""),
        updated=info.get("last_deployed") or "",
        description=info.get("description", ""),
    )


def _failure(
    completed: subprocess.CompletedProcess[str], command: str, environment: str, service: str, context: str | None
) -> ToolFailedError:
    """The clearest error for a failed helm command: a values error, an unreachable cluster, or helm's output."""
    output = output_tail(completed)
    where = f"environment {environment!r}, service {service!r}"
    if UNREACHABLE.search(output):
        return ClusterUnreachableError(
            f"{where}: helm {command} cannot reach the Kubernetes cluster (kube context"
            f" {context or 'current'}). Check the cluster exists and your credentials are fresh"
            f" (e.g. `gcloud container clusters get-credentials`).\n{output}"
        )
    fields = [(_field_from_pointer(m["pointer"]), m["detail"]) for m in SCHEMA_FIELD.finditer(output)]
    if not fields and (failed := TEMPLATE_FAIL.search(output)):
        fields = [(failed["field"] or "?", failed["detail"])]
    if fields:
        problems = "; ".join(f"{field}: {detail.strip()}" for field, detail in fields)
        return ChartValuesError(f"{where}: helm {command} rejected the chart values - {problems}")
    return ToolFailedError(f"{where}: helm {command} failed with exit code {completed.returncode}:\n{output}")


def _field_from_pointer(pointer: str) -> str:
    """'/image/digest' -> 'image.digest'; '' (the top level) -> '(top level)'."""
    parts = [part for part in pointer.split("/") if part]
    return ".".join(parts) if parts else "(top level)"
