"""Which run a commit starts (ci_runs.py): the rule the commit sensor and the webhook share. Pure unit tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from fintech_release.config import ReleaseConfig, load_release_config
from fintech_release.jobs import BRANCH_CI, BUILD_AND_PUSH
from fintech_release.records.keys import COMMIT_TAG, SERVICE_TAG
from fintech_release.triggers.ci_runs import PARTITION_TAG, ci_run_for, service_for_repository

SHA = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"


def _config(tmp_path: Path, repositories: dict[str, str]) -> ReleaseConfig:
    document = {
        "source_control": {"branch_patterns": ["feature/*"]},
        "services": [
            {"name": name, "repository": repository, "port": 18100 + index}
            for index, (name, repository) in enumerate(repositories.items())
        ],
        "environments": [{"name": "ci", "ephemeral": True}],
    }
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_release_config(path)


def test_the_release_branch_builds_and_pushes_and_watched_branches_run_branch_ci(tmp_path: Path) -> None:
    config = _config(tmp_path, {"payments": ".demo/git/payments.git"})
    master = ci_run_for(config, "payments", "master", SHA)
    assert master is not None and (master.job_name, master.partition_key) == (BUILD_AND_PUSH, "payments")
    assert master.identity_tags == {COMMIT_TAG: SHA, PARTITION_TAG: "payments"}
    feature = ci_run_for(config, "payments", "feature/login", SHA)
    assert feature is not None and (feature.job_name, feature.partition_key) == (BRANCH_CI, None)
    assert feature.identity_tags == {COMMIT_TAG: SHA, SERVICE_TAG: "payments"}
    assert master.run_key != feature.run_key
    assert ci_run_for(config, "payments", "experiment/x", SHA) is None


def test_a_repository_is_found_by_its_slug_or_its_local_bare_repository_name(tmp_path: Path) -> None:
    config = _config(tmp_path, {"payments": ".demo/git/payments.git", "accounts": "accounts"})
    assert service_for_repository(config, "payments") == "payments"
    assert service_for_repository(config, ".demo/git/payments.git") == "payments"
    assert service_for_repository(config, "accounts") == "accounts"
    assert service_for_repository(config, "ledger") is None
