"""Terraform for the gke platform: converge an environment's root module, read its outputs, destroy it.

Every change goes through a saved plan: `terraform plan -out`, then `terraform show -json` of that
plan (Terraform's documented JSON output format) says what would change, and only a plan with
changes is applied. A converge therefore repairs what is missing or drifted and touches nothing
else. No variable value is ever on a command line: secrets reach Terraform as `TF_VAR_*` environment
variables, the caller's variables as a temporary `-var-file` (which, unlike `TF_VAR_*`, overrides the
root's terraform.tfvars), and every value is cut out of error messages.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import BaseModel, Field
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from fintech_release.errors import ReleaseConfigError, ToolFailedError
from fintech_release.resources._process import output_tail, run_tool

TERRAFORM_HINT = (
    "Install Terraform >= 1.5 (scripts/install-terraform.sh links or installs one into .tools/bin) "
    "or set gke.terraform_executable in release.yaml."
)
SENSITIVE = "(sensitive)"
REDACTED = "***"
_PLANFILE = "tfplan"
# Plain (non-secret) variable values shorter than this stay in error output: redacting "3" would
# garble line numbers and counts. Secret values are redacted whatever their length.
_MIN_PLAIN_REDACTION = 4

Action = Literal["create", "update", "delete", "replace", "import", "forget"]
_ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "replace", "import", "forget")


class PlanSummary(BaseModel, frozen=True):
    """What a saved Terraform plan would do to one environment, read from `terraform show -json`."""

    environment: str
    add: int
    change: int
    destroy: int
    addresses: dict[Action, tuple[str, ...]] = Field(default_factory=dict)
    changed_outputs: tuple[str, ...] = ()
    drifted: tuple[str, ...] = ()  # changed outside Terraform since the last apply (repaired by this plan)

    @property
    def has_changes(self) -> bool:
        """True when applying the plan would change a resource or an output."""
        return any(self.addresses.get(action) for action in _ACTIONS) or bool(self.changed_outputs)

    def as_metadata(self) -> dict[str, Any]:
        """Counts and addresses for a Dagster materialization (no attribute values, so no secrets)."""
        metadata: dict[str, Any] = {
            "terraform_add": self.add,
            "terraform_change": self.change,
            "terraform_destroy": self.destroy,
        }
        for action in _ACTIONS:
            if self.addresses.get(action):
                metadata[f"terraform_{action}"] = list(self.addresses[action])
        if self.changed_outputs:
            metadata["terraform_changed_outputs"] = list(self.changed_outputs)
        if self.drifted:
            metadata["terraform_drifted"] = list(self.drifted)
        return metadata

    @classmethod
    def from_plan_json(cls, plan: Mapping[str, Any], *, environment: str) -> PlanSummary:
        """Summarize a plan in Terraform's JSON output format (`resource_changes[].change.actions`)."""
        addresses: dict[Action, list[str]] = {action: [] for action in _ACTIONS}
        for resource in plan.get("resource_changes") or []:
            change = resource.get("change") or {}
            action = _action_of(change.get("actions") or ["no-op"])
            if action is not None:
                addresses[action].append(resource["address"])
            if change.get("importing") is not None:
                addresses["import"].append(resource["address"])
        changed_outputs = sorted(
            name
            for name, change in (plan.get("output_changes") or {}).items()
            if _action_of(change.get("actions") or ["no-op"]) is not None
        )
        drifted = sorted(
            drift["address"]
            for drift in plan.get("resource_drift") or []
            if _action_of((drift.get("change") or {}).get("actions") or ["no-op"]) is not None
        )
        replaced = len(addresses["replace"])
        return cls(
            environment=environment,
            add=len(addresses["create"]) + replaced,
            change=len(addresses["update"]),
            destroy=len(addresses["delete"]) + replaced,
            addresses={action: tuple(found) for action, found in addresses.items() if found},
            changed_outputs=tuple(changed_outputs),
            drifted=tuple(drifted),
        )


def _action_of(actions: list[str]) -> Action | None:
    """The one action a documented `actions` list stands for; None for no-op and data reads."""
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    if len(actions) == 1 and actions[0] in ("create", "update", "delete", "forget"):
        return actions[0]  # type: ignore[return-value]
    return None


class ApplyResult(BaseModel, frozen=True):
    """A converge: the plan that was (or, with no changes, was not) applied and the outputs after it."""

    plan: PlanSummary
    applied: bool
    outputs: dict[str, Any]


class TerraformRunner(ConfigurableResource):
    """Runs Terraform on an environment's root module, non-interactively and through saved plans.

    The `variables` of a call override the root's terraform.tfvars. `backend_config` goes to
    `terraform init -backend-config=KEY=VALUE` (e.g. the state bucket; no secrets there).
    `secret_variables` maps a Terraform variable to the name of the environment variable holding its
    value, e.g. {"cloudsql_proxy_password": "FINTECH_RELEASE_CLOUDSQL_PASSWORD"}.
    """

    executable: str = "terraform"
    timeout_seconds: float = 1800
    lock_timeout: str = "5m"
    init_attempts: int = Field(default=3, ge=1, le=5)
    backend_config: dict[str, str] = Field(default_factory=dict)
    secret_variables: dict[str, str] = Field(default_factory=dict)

    def plan(self, *, environment: str, root: Path, variables: dict[str, str] | None = None) -> PlanSummary:
        """What a converge would change now (refreshes state; changes nothing)."""
        run = self._session(environment, root, variables)
        self._init(run)
        with tempfile.TemporaryDirectory(prefix="terraform-plan-") as scratch:
            return self._plan(run, Path(scratch), destroy=False)

    def apply(self, *, environment: str, root: Path, variables: dict[str, str] | None = None) -> ApplyResult:
        """Converge: plan to a file and apply exactly that plan, only when it has changes."""
        run = self._session(environment, root, variables)
        self._init(run)
        # The saved plan and the var-file hold variable values: they live in a private temporary directory only.
        with tempfile.TemporaryDirectory(prefix="terraform-plan-") as scratch:
            summary = self._plan(run, Path(scratch), destroy=False)
            if summary.has_changes:
                self._apply(run, Path(scratch))
        return ApplyResult(plan=summary, applied=summary.has_changes, outputs=self._outputs(run))

    def outputs(self, *, environment: str, root: Path) -> dict[str, Any]:
        """The root module's outputs; sensitive ones are replaced by "(sensitive)"."""
        run = self._session(environment, root, None)
        self._init(run)
        return self._outputs(run)

    def destroy(self, *, environment: str, root: Path, variables: dict[str, str] | None = None) -> PlanSummary:
        """Destroy everything the root module manages, through a saved destroy plan."""
        run = self._session(environment, root, variables)
        self._init(run)
        with tempfile.TemporaryDirectory(prefix="terraform-plan-") as scratch:
            summary = self._plan(run, Path(scratch), destroy=True)
            if summary.has_changes:
                self._apply(run, Path(scratch))
        return summary

    def _session(self, environment: str, root: Path, variables: Mapping[str, str] | None) -> _Session:
        if not root.is_dir():
            raise ReleaseConfigError(
                f"environment {environment}: Terraform root {root} is not a directory "
                "(set environments[].gke.terraform_root or gke.terraform_dir in release.yaml)"
            )
        secrets: dict[str, str] = {}
        for name, env_name in self.secret_variables.items():
            value = os.environ.get(env_name)
            if not value:
                raise ReleaseConfigError(
                    f"environment {environment}: Terraform variable {name} comes from the environment variable "
                    f"{env_name}, which is not set; export it before running Terraform"
                )
            secrets[name] = value
        plain = dict(variables or {})
        env = {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check calls home from CI machines
            **{f"TF_VAR_{name}": value for name, value in secrets.items()},
        }
        hidden = [value for value in plain.values() if len(value) >= _MIN_PLAIN_REDACTION]
        hidden += [value for value in secrets.values() if value]
        return _Session(
            environment=environment,
            root=root,
            env=env,
            variables=plain,
            hidden=sorted(set(hidden), key=len, reverse=True),
        )

    def _terraform(self, run: _Session, command: str, *args: str) -> CompletedProcess[str]:
        # Terraform runs inside the root module: a relative path to the binary means "from here".
        executable = os.path.abspath(self.executable) if os.sep in self.executable else self.executable
        completed = run_tool(
            [executable, command, *args],
            tool="terraform",
            install_hint=TERRAFORM_HINT,
            cwd=run.root,
            env=run.env,
            timeout_seconds=self.timeout_seconds,
            check=False,
        )
        if completed.returncode != 0:
            raise ToolFailedError(
                f"terraform {command} failed for environment {run.environment} in {run.root} "
                f"(exit code {completed.returncode}):\n{run.redact(output_tail(completed))}"
            )
        return completed

    def _init(self, run: _Session) -> None:
        backend = [f"-backend-config={key}={value}" for key, value in sorted(self.backend_config.items())]
        # Only init reaches out for providers, modules and the backend: retry it on a transient failure.
        attempt = retry(
            retry=retry_if_exception_type(ToolFailedError),
            stop=stop_after_attempt(self.init_attempts),
            wait=wait_exponential(multiplier=2, max=30),
            reraise=True,
        )(self._terraform)
        attempt(run, "init", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}", *backend)

    def _plan(self, run: _Session, scratch: Path, *, destroy: bool) -> PlanSummary:
        planfile = scratch / _PLANFILE
        var_file: list[str] = []
        if run.variables:
            path = scratch / "caller.tfvars.json"
            path.write_text(json.dumps(run.variables))
            var_file = [f"-var-file={path}"]
        self._terraform(
            run,
            "plan",
            "-input=false",
            "-no-color",
            f"-lock-timeout={self.lock_timeout}",
            f"-out={planfile}",
            *var_file,
            *(["-destroy"] if destroy else []),
        )
        shown = self._terraform(run, "show", "-json", "-no-color", str(planfile))
        return PlanSummary.from_plan_json(json.loads(shown.stdout), environment=run.environment)

    def _apply(self, run: _Session, scratch: Path) -> None:
        planfile = scratch / _PLANFILE
        self._terraform(run, "apply", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}", str(planfile))

    def _outputs(self, run: _Session) -> dict[str, Any]:
        shown = self._terraform(run, "output", "-json", "-no-color")
        return {
            name: SENSITIVE if output.get("sensitive") else output.get("value")
            for name, output in json.loads(shown.stdout or "{}").items()
        }


class _Session(BaseModel, frozen=True):
    """One runner call: where Terraform runs, its environment, and the values to keep out of messages."""

    environment: str
    root: Path
    env: dict[str, str]
    variables: dict[str, str]
    hidden: list[str]

    def redact(self, text: str) -> str:
        """`text` with every variable value replaced by ***."""
        for value in self.hidden:
            text = text.replace(value, REDACTED)
        return text
