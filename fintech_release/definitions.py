"""The code location Dagster loads: the release graph for release.yaml ($FINTECH_RELEASE_CONFIG or ./release.yaml)."""

from fintech_release.config import load_release_config
from fintech_release.release_graph import build_definitions

defs = build_definitions(load_release_config())
