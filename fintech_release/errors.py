"""The exceptions fintech-release raises, so a user knows what to catch.

    FintechReleaseError
    ├── ReleaseConfigError            release.yaml is invalid (file, field and value named)
    ├── DeploymentRefusedError        no approval for the candidate; nothing was touched
    ├── MissingEnvironmentVariableError  a secret's variable (named in release.yaml) is not set
    └── ExternalSystemError           an outside system failed or is missing
        ├── ToolNotFoundError         a command-line tool (gradle, git, checkstyle, jlink) is not installed
        ├── ToolFailedError           a tool ran and failed; carries the tail of its output
        ├── DockerEngineUnavailableError
        ├── RegistryUnavailableError  the registry did not answer within the retry budget
        ├── ImageTagConflictError     a tag already names another image in the registry; nothing was overwritten
        ├── IngressConfigError        a new ingress config failed validation; the old one still serves
        └── MigrationError            a migration failed, or an applied one was edited
"""

from __future__ import annotations


class FintechReleaseError(Exception):
    """Base class of every error fintech-release raises on purpose."""


class ReleaseConfigError(FintechReleaseError):
    """release.yaml cannot be loaded; the message names the file, the field and the value."""


class ExternalSystemError(FintechReleaseError):
    """An outside system (tool, engine, registry, repository) failed."""


class ToolNotFoundError(ExternalSystemError):
    """A command-line tool the platform needs is not installed."""


class ToolFailedError(ExternalSystemError):
    """A command-line tool exited with an error."""


class DockerEngineUnavailableError(ExternalSystemError):
    """No Docker engine answers at the configured address."""


class RegistryUnavailableError(ExternalSystemError):
    """The image registry did not answer within the retry budget."""


class ImageTagConflictError(ExternalSystemError):
    """A tag already names another image in the registry: a version names one image, so nothing was pushed over it."""


class MissingEnvironmentVariableError(FintechReleaseError):
    """An environment variable a secret comes from is not set; the message names it and how to set it."""


class DeploymentRefusedError(FintechReleaseError):
    """A deployment was refused before it touched anything (no approval, unknown candidate)."""


class IngressConfigError(ExternalSystemError):
    """A new ingress configuration failed validation; the running one was kept."""


class MigrationError(ExternalSystemError):
    """A migration failed or an applied migration was edited afterwards."""
