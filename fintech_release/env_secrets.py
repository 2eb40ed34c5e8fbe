"""Secrets from environment variables, in one place: release.yaml names the variable, the value is read when used.

A resource keeps only the variable's name (`local.database.password_env`, `…token_env`, …) and reads the
value through `dagster.EnvVar` when it needs it, so run config and the event log never hold a secret. The
resource is not given the `EnvVar` itself: Dagster would resolve it when a run starts and fail the run on an
unset variable with its own multi-line config error and stack trace. A variable that is not set is one line
naming it and how to set it (`MissingEnvironmentVariableError`), wherever it is first needed: a CLI command
before it starts a run (`require_secrets` on the run's resources), a run launched in the UI when its step
sets up the resource (`ReadsSecrets.setup_for_execution`), a sensor or the webhook when it reads one.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping

from dagster import EnvVar, InitResourceContext

from fintech_release.errors import MissingEnvironmentVariableError


def env_secret(name: str, needed_for: str) -> str:
    """The value of the environment variable `name`; `MissingEnvironmentVariableError` when it is unset or empty."""
    value = EnvVar(name).get_value()
    if not value:
        raise MissingEnvironmentVariableError(
            f"the environment variable {name} is not set ({needed_for}): export {name}=… in the shell that runs "
            "fintech-release, and before `make ui` or `dagster dev` for runs launched in the UI"
        )
    return value


def secret(value: str | EnvVar | None, env_name: str | None, needed_for: str) -> str | None:
    """A secret given directly (a value, or an `EnvVar` not resolved by Dagster), else read from `env_name`."""
    if isinstance(value, EnvVar):
        return env_secret(value.env_var_name, needed_for)
    if value is not None:
        return value
    return env_secret(env_name, needed_for) if env_name else None


class ReadsSecrets:
    """A resource whose secrets come from environment variables: a step using it checks them first."""

    @abstractmethod
    def secret_variables(self) -> Mapping[str, str]:
        """The variables it reads that must be set, each with what it is for (empty when given directly)."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        require_secrets([self])


def require_secrets(resources: Iterable[object]) -> None:
    """`MissingEnvironmentVariableError` for the first variable one of `resources` needs and the environment lacks."""
    for resource in resources:
        if isinstance(resource, ReadsSecrets):
            for name, needed_for in resource.secret_variables().items():
                env_secret(name, needed_for)
