"""Terraform for the gke platform: converge an environment, read its outputs, destroy it.

One root module serves every environment. A call names the environment, the root and the
environment's variable file (deploy/terraform/environments/<env>.tfvars); the environment's state is
kept apart by the backend configuration given at init (`backend_config` values may name
`{environment}`, e.g. prefix=fintech-release/{environment}) and its working data by a data directory
of its own (TF_DATA_DIR), so ci, staging and production can converge at the same time from one root.

Every change goes through a saved plan: `terraform plan -out`, then `terraform show -json` of that
plan (Terraform's documented JSON output format) says what would change, and only a plan with
changes is applied. A converge therefore repairs what is missing or drifted and touches nothing
else. No variable value is ever on a command line: secrets reach Terraform as `TF_VAR_*` environment
variables, the caller's variables as a temporary `-var-file` after the environment's (so they override
it), and every value is cut out of error messages.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import BaseModel, Field
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from fintech_release.env_secrets import env_secret
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
_ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# What terraform init prints when the registry, a module source or the state backend could not be reached
# for a moment (Go's net/http and DNS errors, HTTP 429/5xx answers). Anything else fails at once.
_TRANSIENT_INIT = re.compile(
    r"could not connect to|connection (reset|refused)|i/o timeout|TLS handshake timeout|"
    r"timeout awaiting response headers|Client\.Timeout exceeded|context deadline exceeded|unexpected EOF|"
    r"temporary failure in name resolution|server misbehaving|"
    r"\b(?:Error|HTTP|status(?: code)?):? (?:429|50[0234])\b|"
    r"Too Many Requests|Service Unavailable|Bad Gateway|Gateway Timeout|Internal Server Error",
    re.IGNORECASE,
)

Action = Literal["create", "update", "delete", "replace", "import", "move", "forget"]
_ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "replace", "import", "move", "forget")
# A documented `actions` list of one element names its action (["no-op"] and ["read"] change nothing).
_SINGLE_ACTIONS: dict[str, Action] = {"create": "create", "update": "update", "delete": "delete", "forget": "forget"}


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
            # A `moved` block: only the state changes, and only an applied plan records the new address.
            if resource.get("previous_address") not in (None, resource["address"]):
                addresses["move"].append(resource["address"])
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
    return _SINGLE_ACTIONS.get(actions[0]) if len(actions) == 1 else None


class ApplyResult(BaseModel, frozen=True):
    """A converge: the plan that was (or, with no changes, was not) applied and the outputs after it."""

    plan: PlanSummary
    applied: bool
    outputs: dict[str, Any]


class TerraformRunner(ConfigurableResource):
    """Runs Terraform on a root module for one environment at a time, non-interactively and through saved plans.

    `backend_config` goes to `terraform init -backend-config=KEY=VALUE`, with `{environment}` in a value
    replaced by the environment's name, e.g. {"bucket": "<state bucket>", "prefix": "fintech-release/{environment}"}
    (no secrets there). When it is set, some value must name `{environment}`: otherwise every
    environment of the root would share one state. `data_dir` holds one Terraform data directory per
    environment (TF_DATA_DIR=<data_dir>/<env>); unset, it is <root>/.terraform-<env>.
    `secret_variables` maps a Terraform variable to the name of the environment variable holding its
    value, e.g. {"cloudsql_proxy_password": "FINTECH_RELEASE_CLOUDSQL_PASSWORD"}.
    """

    executable: str = "terraform"
    timeout_seconds: float = 1800
    lock_timeout: str = "5m"
    init_attempts: int = Field(default=3, ge=1, le=5)  # on network or registry errors only, never on a timeout
    init_retry_wait_seconds: float = Field(default=2, ge=0)  # the first wait; doubled per attempt, at most 30 s
    backend_config: dict[str, str] = Field(default_factory=dict)
    data_dir: str | None = None
    secret_variables: dict[str, str] = Field(default_factory=dict)

    def plan(
        self, *, environment: str, root: Path, var_file: Path, variables: dict[str, str] | None = None
    ) -> PlanSummary:
        """What a converge would change now (refreshes state; changes nothing)."""
        return self._planned(self._session(environment, root, var_file, variables), destroy=False, apply=False)

    def apply(
        self, *, environment: str, root: Path, var_file: Path, variables: dict[str, str] | None = None
    ) -> ApplyResult:
        """Converge: plan to a file and apply exactly that plan, only when it has changes."""
        run = self._session(environment, root, var_file, variables)
        summary = self._planned(run, destroy=False, apply=True)
        return ApplyResult(plan=summary, applied=summary.has_changes, outputs=self._outputs(run))

    def outputs(self, *, environment: str, root: Path) -> dict[str, Any]:
        """The environment's outputs of the root module; sensitive ones are replaced by "(sensitive)".

        A read of the state: no variables are needed, so neither are the secret variables' environment variables.
        """
        run = self._session(environment, root, None, None, with_secrets=False)
        self._init(run)
        return self._outputs(run)

    def destroy(
        self, *, environment: str, root: Path, var_file: Path, variables: dict[str, str] | None = None
    ) -> PlanSummary:
        """Destroy everything the root module manages for the environment, through a saved destroy plan."""
        return self._planned(self._session(environment, root, var_file, variables), destroy=True, apply=True)

    def _planned(self, run: _Session, *, destroy: bool, apply: bool) -> PlanSummary:
        """Init, plan to a file and, when `apply` and the plan has changes, apply exactly that plan."""
        self._init(run)
        # The saved plan and the var-file hold variable values: they live in a private temporary directory only.
        with tempfile.TemporaryDirectory(prefix="terraform-plan-") as scratch:
            summary = self._plan(run, Path(scratch), destroy=destroy)
            if apply and summary.has_changes:
                self._apply(run, Path(scratch))
        return summary

    def _session(
        self,
        environment: str,
        root: Path,
        var_file: Path | None,
        variables: Mapping[str, str] | None,
        *,
        with_secrets: bool = True,
    ) -> _Session:
        if not _ENVIRONMENT_NAME.fullmatch(environment):
            raise ReleaseConfigError(
                f"environment {environment!r}: not a valid environment name for Terraform "
                "(lower-case letters, digits and dashes; it names the state prefix and the data directory)"
            )
        if not root.is_dir():
            raise ReleaseConfigError(
                f"environment {environment}: Terraform root {root} is not a directory "
                "(set gke.terraform_dir in release.yaml; the root is <terraform_dir>/environment)"
            )
        if var_file is not None and not var_file.is_file():
            raise ReleaseConfigError(
                f"environment {environment}: Terraform variables file {var_file} does not exist "
                "(create it, or set environments[].gke.terraform_var_file in release.yaml)"
            )
        if self.backend_config and not any("{environment}" in value for value in self.backend_config.values()):
            raise ReleaseConfigError(
                f"environment {environment}: no backend_config value of the Terraform runner names {{environment}} "
                f"(given: {', '.join(sorted(self.backend_config))}), so every environment would share one state; "
                "add e.g. prefix=fintech-release/{environment}"
            )
        secrets: dict[str, str] = {}
        for name, env_name in self.secret_variables.items() if with_secrets else ():
            secrets[name] = env_secret(env_name, f"Terraform variable {name} of environment {environment}")
        plain = dict(variables or {})
        data_dir = Path(self.data_dir) / environment if self.data_dir else root / f".terraform-{environment}"
        env = {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check calls home from CI machines
            "TF_DATA_DIR": str(data_dir.absolute()),
            **{f"TF_VAR_{name}": value for name, value in secrets.items()},
        }
        hidden = [value for value in plain.values() if len(value) >= _MIN_PLAIN_REDACTION]
        hidden += [value for value in secrets.values() if value]
        return _Session(
            environment=environment,
            root=root,
            var_file=var_file.absolute() if var_file is not None else None,
            env=env,
            variables=plain,
            hidden=sorted(set(hidden), key=len, reverse=True),
        )

    def _terraform(self, run: _Session, command: str, *args: str) -> CompletedProcess[str]:
        completed = self._execute(run, command, *args)
        if completed.returncode != 0:
            raise _failed(run, command, completed)
        return completed

    def _execute(self, run: _Session, command: str, *args: str) -> CompletedProcess[str]:
        """Run `terraform command args`; a non-zero exit is returned, a timeout raises `ToolFailedError`."""
        # Terraform runs inside the root module: a relative path to the binary means "from here".
        executable = os.path.abspath(self.executable) if os.sep in self.executable else self.executable
        return run_tool(
            [executable, command, *args],
            tool="terraform",
            install_hint=TERRAFORM_HINT,
            cwd=run.root,
            env=run.env,
            timeout_seconds=self.timeout_seconds,
            check=False,
        )

    def _init(self, run: _Session) -> None:
        backend = [
            f"-backend-config={key}={value.replace('{environment}', run.environment)}"
            for key, value in sorted(self.backend_config.items())
        ]
        # Only init reaches out for providers, modules and the backend: retry it when that failed for a moment.
        retrying = Retrying(
            retry=retry_if_result(_transient_init_failure),
            stop=stop_after_attempt(self.init_attempts),
            wait=wait_exponential(multiplier=self.init_retry_wait_seconds, max=30),
            retry_error_callback=_last_outcome,  # the last attempt's output, for the error
        )
        completed = retrying(
            self._execute, run, "init", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout}", *backend
        )
        if completed.returncode != 0:
            raise _failed(run, "init", completed)

    def _plan(self, run: _Session, scratch: Path, *, destroy: bool) -> PlanSummary:
        planfile = scratch / _PLANFILE
        # Later -var-files win: the caller's variables override the environment's file.
        var_files = [f"-var-file={run.var_file}"] if run.var_file is not None else []
        if run.variables:
            path = scratch / "caller.tfvars.json"
            path.write_text(json.dumps(run.variables))
            var_files.append(f"-var-file={path}")
        self._terraform(
            run,
            "plan",
            "-input=false",
            "-no-color",
            f"-lock-timeout={self.lock_timeout}",
            f"-out={planfile}",
            *var_files,
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


def _last_outcome(state: RetryCallState) -> Any:
    """What the last attempt returned (tenacity calls this only after an attempt, so there is one)."""
    if state.outcome is None:
        raise ToolFailedError("terraform init was never attempted")
    return state.outcome.result()


def _transient_init_failure(completed: CompletedProcess[str]) -> bool:
    """True when `terraform init` failed on a network or registry error that a later attempt may not meet."""
    return completed.returncode != 0 and _TRANSIENT_INIT.search(output_tail(completed)) is not None


def _failed(run: _Session, command: str, completed: CompletedProcess[str]) -> ToolFailedError:
    return ToolFailedError(
        f"terraform {command} failed for environment {run.environment} in {run.root} "
        f"(exit code {completed.returncode}):\n{run.redact(output_tail(completed))}"
    )


class _Session(BaseModel, frozen=True):
    """One runner call: where Terraform runs, its environment, and the values to keep out of messages."""

    environment: str
    root: Path
    var_file: Path | None
    env: dict[str, str]
    variables: dict[str, str]
    hidden: list[str]

    def redact(self, text: str) -> str:
        """`text` with every variable value replaced by ***."""
        for value in self.hidden:
            text = text.replace(value, REDACTED)
        return text
