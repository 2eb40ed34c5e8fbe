"""release.yaml: the one file that declares services and environments."""

from fintech_release.config.loader import CONFIG_ENV_VAR, default_config_path, load_release_config
from fintech_release.config.models import Environment, QualityGate, ReleaseConfig, Service

__all__ = [
    "CONFIG_ENV_VAR",
    "Environment",
    "QualityGate",
    "ReleaseConfig",
    "Service",
    "default_config_path",
    "load_release_config",
]
