"""Bitbucket Cloud and Server clients: contract tests against documented Bitbucket response shapes (not the
real Bitbucket).

The server is `fixtures_bitbucket.FakeBitbucket`: a real HTTP server on 127.0.0.1 that answers with the
documented JSON shapes of Bitbucket Cloud REST 2.0 and Bitbucket Server REST 1.0, built from real bare git
repositories, and serves those repositories over git's smart HTTP (`git http-backend`). The tests check what
the clients send (paths, query parameters, the Authorization header, the build-status body) and what they make
of the answers: newest commits with author email, branch heads from one listing, pagination over several pages,
errors that name the environment variable but never the token, 404s that name what is missing, retries on
429/503 that stop, timeouts that are bounded, and a checkout over HTTP whose credentials never reach the URL
or the clone's config.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fintech_release.errors import ExternalSystemError, ReleaseConfigError
from fintech_release.resources.bitbucket import BitbucketCloudSource, BitbucketServerSource, BitbucketSource
from fintech_release.resources.source import BuildStatus
from fintech_release_tests.components import GitBareRepo, free_port
from fintech_release_tests.fixtures_bitbucket import BitbucketFactory, FakeBitbucket, bitbucket_factory  # noqa: F401

TOKEN = "s3cr3t-t0ken"
SLUG = "contact-us"
FLAVORS = ["cloud", "server"]


def owner_for(flavor: str) -> str:
    return "acme" if flavor == "cloud" else "PAY"


def client_for(fake: FakeBitbucket, **overrides: Any) -> BitbucketSource:
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "owner": fake.owner,
        "token": fake.token,
        "timeout_seconds": 5,
        "backoff_seconds": 0.01,
        **overrides,
    }
    kind = BitbucketCloudSource if fake.flavor == "cloud" else BitbucketServerSource
    return kind(**settings)


@pytest.fixture
def repo(git_bare_repo_factory) -> GitBareRepo:  # noqa: ANN001
    """A bare repository with five commits on master by different authors, and two more branches."""
    repo = git_bare_repo_factory(None, author_name="Grace Hopper", author_email="grace@bank.example")
    for number, (name, email) in enumerate(
        [("Alan Turing", "alan@bank.example"), ("Ada Lovelace", "ada@bank.example"),
         ("Edsger Dijkstra", "edsger@bank.example"), ("Barbara Liskov", "barbara@bank.example")],
        start=1,
    ):
        repo.commit({f"change-{number}.txt": f"{number}\n"}, f"Change {number}\n\nLonger explanation.",
                    author_email=email, author_name=name)
    for branch in ("feature/login", "release/1.0"):
        subprocess.run(["git", "--git-dir", str(repo.bare_path), "branch", branch, "master~2"], check=True)
    return repo


def master_log(repo: GitBareRepo) -> list[str]:
    completed = subprocess.run(["git", "--git-dir", str(repo.bare_path), "log", "--format=%H", "master"],
                               capture_output=True, text=True, check=True)
    return completed.stdout.split()


def serve(bitbucket_factory: BitbucketFactory, flavor: str, repo: GitBareRepo, **options: Any) -> FakeBitbucket:
    fake = bitbucket_factory(flavor, owner=owner_for(flavor), token=TOKEN, **options)
    fake.add_repository(SLUG, repo.bare_path)
    return fake


@pytest.mark.parametrize("flavor", FLAVORS)
def test_recent_commits_are_newest_first_with_author_email_across_pages(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = serve(bitbucket_factory, flavor, repo, max_page_size=2)
    commits = client_for(fake).recent_commits(repository=SLUG, branch="master", limit=4)

    assert [c.sha for c in commits] == master_log(repo)[:4]
    assert [c.author_email for c in commits] == [
        "barbara@bank.example", "edsger@bank.example", "ada@bank.example", "alan@bank.example"]
    assert commits[0].author_name == "Barbara Liskov"
    assert commits[0].message == "Change 4" and commits[0].branch == "master"
    assert commits[0].committed_at.tzinfo is not None and commits[0].committed_at > commits[1].committed_at
    requests = fake.api_requests()
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)
    if flavor == "server":
        pages = [r for r in requests if r.path.endswith(f"/rest/api/1.0/projects/PAY/repos/{SLUG}/commits")]
        assert [(r.query["until"], r.query["start"]) for r in pages] == [
            (["refs/heads/master"], ["0"]), (["refs/heads/master"], ["2"])]
    else:
        assert requests[0].path == f"/2.0/repositories/acme/{SLUG}/refs/branches/master"
        pages = [r for r in requests if "/commits/" in r.path]
        assert [r.path for r in pages] == [f"/2.0/repositories/acme/{SLUG}/commits/{commits[0].sha}"] * 2
        assert pages[0].query == {"pagelen": ["4"]} and pages[1].query["page"] == ["2"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_latest_commit_and_commit_by_sha(flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    client = client_for(fake)
    head = client.latest_commit(repository=SLUG, branch="master")
    assert head.sha == repo.head()
    assert (head.author_name, head.author_email, head.message) == (
        "Barbara Liskov", "barbara@bank.example", "Change 4")

    older_sha = master_log(repo)[3]
    older = client.commit(repository=SLUG, sha=older_sha, branch="feature/login")
    assert (older.sha, older.author_email, older.branch) == (older_sha, "alan@bank.example", "feature/login")

    feature = client.latest_commit(repository=SLUG, branch="feature/login")
    assert feature.sha == master_log(repo)[2] and feature.branch == "feature/login"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_branch_heads_come_from_the_listing_across_pages(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = serve(bitbucket_factory, flavor, repo, max_page_size=2)
    heads = client_for(fake).branch_heads(repository=SLUG)
    older = master_log(repo)[2]
    assert heads == {"feature/login": older, "master": repo.head(), "release/1.0": older}
    # Two pages of the listing and nothing else: no request per branch for its head.
    assert [r.path.rsplit("/", 1)[-1] for r in fake.api_requests()] == ["branches", "branches"]


@pytest.mark.parametrize(
    ("flavor", "path"),
    [
        ("cloud", "/2.0/repositories/acme/contact-us/commit/{sha}/statuses/build"),
        ("server", "/bitbucket/rest/api/latest/projects/PAY/repos/contact-us/commits/{sha}/builds"),
    ],
)
def test_build_status_is_posted_with_the_documented_body(
    flavor: str, path: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    status = BuildStatus(sha=repo.head(), state="INPROGRESS", key="fintech-release-ci", name="contact-us CI",
                         url="http://dagster.example/runs/abc", description="build and tests running")
    assert client_for(fake).publish_build_status(repository=SLUG, status=status) is True

    (posted,) = [r for r in fake.api_requests() if r.method == "POST"]
    assert posted.path == path.format(sha=repo.head())
    assert posted.headers["content-type"] == "application/json"
    assert posted.json() == {"key": "fintech-release-ci", "state": "INPROGRESS", "name": "contact-us CI",
                             "url": "http://dagster.example/runs/abc", "description": "build and tests running"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_username_and_app_password_use_basic_auth(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = bitbucket_factory(flavor, owner=owner_for(flavor), token="app-password", username="ci-bot")
    fake.add_repository(SLUG, repo.bare_path)
    client = client_for(fake, username="ci-bot", username_env="BB_USER")
    assert client.latest_commit(repository=SLUG, branch="master").sha == repo.head()
    assert fake.api_requests()[0].headers["authorization"] == "Basic Y2ktYm90OmFwcC1wYXNzd29yZA=="


@pytest.mark.parametrize("flavor", FLAVORS)
def test_rejected_credentials_name_the_variable_never_the_token(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    client = client_for(fake, token="wrong-token-value", token_env="ACME_BITBUCKET_TOKEN")
    with pytest.raises(ExternalSystemError, match=r"HTTP 401.*ACME_BITBUCKET_TOKEN") as raised:
        client.latest_commit(repository=SLUG, branch="master")
    assert "wrong-token-value" not in str(raised.value) and TOKEN not in str(raised.value)
    assert "wrong-token-value" not in repr(client)
    assert len(fake.api_requests()) == 1  # a 401 is not retried


@pytest.mark.parametrize("flavor", FLAVORS)
def test_not_found_names_the_repository_branch_or_commit(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory
) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    client = client_for(fake)
    owner = owner_for(flavor)
    with pytest.raises(ExternalSystemError, match=rf"branch 'release/9' of repository {owner}/{SLUG} not found"):
        client.latest_commit(repository=SLUG, branch="release/9")
    with pytest.raises(ExternalSystemError, match=rf"commit {'0' * 40} of repository {owner}/{SLUG} not found"):
        client.commit(repository=SLUG, sha="0" * 40, branch="master")
    with pytest.raises(ExternalSystemError, match=rf"branches of repository {owner}/billing not found"):
        client.branch_heads(repository="billing")


def test_a_path_instead_of_a_slug_is_a_config_error(tmp_path: Path) -> None:
    client = BitbucketCloudSource(owner="acme", token=TOKEN)
    with pytest.raises(ReleaseConfigError, match=r"services\[\]\.repository: .* is not a Bitbucket repository slug"):
        client.branch_heads(repository=str(tmp_path / "contact-us"))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_503_is_retried_then_succeeds(flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    fake.fail_next(503, times=2)
    assert list(client_for(fake).branch_heads(repository=SLUG)) == ["feature/login", "master", "release/1.0"]
    assert len(fake.api_requests()) == 2 + 2  # two failures, then both pages


def test_429_waits_for_retry_after(repo: GitBareRepo, bitbucket_factory: BitbucketFactory) -> None:
    fake = serve(bitbucket_factory, "cloud", repo)
    fake.fail_next(429, retry_after=1)
    started = time.monotonic()
    assert client_for(fake).latest_commit(repository=SLUG, branch="master").sha == repo.head()
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("flavor", FLAVORS)
def test_retries_are_bounded(flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    fake.fail_next(503, times=10)
    with pytest.raises(ExternalSystemError, match=r"did not answer .* after 3 attempts \(last answer HTTP 503\)"):
        client_for(fake, attempts=3).latest_commit(repository=SLUG, branch="master")
    assert len(fake.api_requests()) == 3


def test_a_server_that_does_not_answer_times_out(repo: GitBareRepo, bitbucket_factory: BitbucketFactory) -> None:
    fake = serve(bitbucket_factory, "server", repo)
    fake.delay_seconds = 10
    started = time.monotonic()
    with pytest.raises(ExternalSystemError, match=r"after 2 attempts \(no answer within 0\.3 s\)"):
        client_for(fake, timeout_seconds=0.3, attempts=2).latest_commit(repository=SLUG, branch="master")
    assert time.monotonic() - started < fake.delay_seconds  # gave up instead of waiting for the answer
    assert len(fake.api_requests()) == 2


def test_nothing_listening_is_a_clear_error() -> None:
    client = BitbucketServerSource(base_url=f"http://127.0.0.1:{free_port()}", owner="PAY", token=TOKEN,
                                   attempts=2, backoff_seconds=0.01)
    with pytest.raises(ExternalSystemError, match=r"did not answer .* after 2 attempts \(connection failed\)"):
        client.branch_heads(repository=SLUG)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_checkout_clones_over_http_with_the_credentials_in_a_header_only(
    flavor: str, repo: GitBareRepo, bitbucket_factory: BitbucketFactory, tmp_path: Path
) -> None:
    fake = serve(bitbucket_factory, flavor, repo)
    client = client_for(fake)
    older = master_log(repo)[1]
    tree = client.checkout(repository=SLUG, sha=older, destination=tmp_path / "wt")

    assert (tree / "change-3.txt").is_file() and not (tree / "change-4.txt").exists()
    git_requests = fake.git_requests()
    assert git_requests and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in git_requests)
    config = (tree / ".git" / "config").read_text()
    assert TOKEN not in config and "@" not in config  # no token, and no user name from Cloud's clone link
    assert client.checkout(repository=SLUG, sha=older, destination=tmp_path / "wt") == tree
    assert len(fake.git_requests()) == len(git_requests)  # the second checkout reused the tree
