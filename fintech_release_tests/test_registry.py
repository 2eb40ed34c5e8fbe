"""The registries' push contract: credentials, digests read back, and a tag that never names two images.

Runs against real registries: Debian's docker-registry on loopback, plain (the demo's) and over TLS with a
certificate from a throw-away CA and htpasswd logins, with the real Docker engine pushing (the CA is put
under /etc/docker/certs.d/<host:port>/ for the module and removed after). Google's token exchange is the
one stand-in: the OAuth 2.0 token endpoint and the metadata server on loopback (contract tests, see
fixtures_google_auth.py); the access token they hand out is the registry password of `oauth2accesstoken`,
as for Artifact Registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from fintech_release.errors import ExternalSystemError, ImageTagConflictError
from fintech_release.resources.google_auth import google_access_token
from fintech_release.resources.registry import GoogleRegistry, LocalRegistry
from fintech_release.resources.registry_api import MANIFEST_MEDIA_TYPES
from fintech_release_tests.components import RegistryServer, throwaway_ca, write_htpasswd
from fintech_release_tests.conftest import DOCKER_HOST
from fintech_release_tests.fixtures_google_auth import (  # noqa: F401 (fixtures)
    ACCESS_TOKEN,
    JWT_BEARER,
    SERVICE_ACCOUNT,
    GoogleStandIn,
    google_oauth,
    metadata_server,
)
from fintech_release_tests.release_setup import REPO_ROOT

pytestmark = pytest.mark.integration

USER, PASSWORD = "releaser", "s3cret-registry-password"
CERTS_D = Path("/etc/docker/certs.d")


@pytest.fixture(scope="module")
def secure_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_engine  # noqa: ANN001
) -> Iterator[RegistryServer]:
    """docker-registry over TLS (throw-away CA, trusted by the Docker engine for this module) with htpasswd logins."""
    folder = tmp_path_factory.mktemp("secure-registry")
    tls = throwaway_ca(folder / "tls")
    htpasswd = write_htpasswd(folder / "htpasswd", {USER: PASSWORD, "oauth2accesstoken": ACCESS_TOKEN})
    server = RegistryServer.start(folder, tls=tls, htpasswd=htpasswd)
    trusted = CERTS_D / server.host
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copy(tls.ca_certificate, trusted / "ca.crt")
    try:
        yield server
    finally:
        shutil.rmtree(trusted, ignore_errors=True)
        server.stop()


@pytest.fixture
def make_image(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator:  # noqa: ANN001
    """Build tiny distinct images (FROM scratch, one file); every image and tag made is removed at the end."""
    made: list[str] = []

    def make(content: str) -> str:
        folder = tmp_path / f"image-{len(made)}"
        folder.mkdir()
        (folder / "Dockerfile").write_text("FROM scratch\nCOPY content.txt /content.txt\n")
        (folder / "content.txt").write_text(content)
        reference = f"fintech-release-test/registry-check:{uuid.uuid4().hex[:12]}"
        image, _ = docker_client.images.build(path=str(folder), tag=reference, rm=True)
        made.append(image.id)
        return reference

    yield make
    for image_id in set(made):
        docker_client.images.remove(image_id, force=True)


def secure_local(server: RegistryServer, password: str = PASSWORD) -> LocalRegistry:
    return LocalRegistry(
        host=server.host, tls=True, ca_file=str(server.verify), username=USER, password=password,
        username_env="REGISTRY_USER", password_env="REGISTRY_PASSWORD", docker_host=DOCKER_HOST, retry_seconds=5,
    )


def served_digest(server: RegistryServer, repository: str, tag: str, auth: tuple[str, str] | None = None) -> str:
    """The digest the registry serves for repository:tag, read without the product's code."""
    response = requests.get(
        f"{server.url}/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_MEDIA_TYPES},
        auth=auth, verify=server.verify, timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def test_a_push_over_tls_with_htpasswd_reads_the_digest_back(
    secure_registry: RegistryServer, make_image  # noqa: ANN001
) -> None:
    pushed = secure_local(secure_registry).push(local_reference=make_image("one"), repository="svc-a", tag="1.0.0-1")

    assert pushed.reference == f"{secure_registry.host}/svc-a:1.0.0-1"
    assert pushed.digest == served_digest(secure_registry, "svc-a", "1.0.0-1", (USER, PASSWORD))
    assert pushed.pinned_reference == f"{secure_registry.host}/svc-a@{pushed.digest}"


def test_refused_credentials_are_one_line_naming_the_variables_never_the_password(
    secure_registry: RegistryServer, make_image  # noqa: ANN001
) -> None:
    with pytest.raises(ExternalSystemError) as refused:
        secure_local(secure_registry, password="wrong-password").push(
            local_reference=make_image("two"), repository="svc-b", tag="1"
        )
    message = str(refused.value)
    assert f"registry https://{secure_registry.host} refused" in message and "HTTP 401" in message
    assert "REGISTRY_USER" in message and "REGISTRY_PASSWORD" in message and "'releaser'" in message
    assert "wrong-password" not in message and "\n" not in message


def test_a_tag_that_names_another_image_is_never_overwritten(
    registry: RegistryServer, make_image  # noqa: ANN001
) -> None:
    """On the demo's plain local registry too."""
    local = LocalRegistry(host=registry.host, docker_host=DOCKER_HOST, retry_seconds=5)
    first = local.push(local_reference=make_image("first build"), repository="conflict-check", tag="1.0.0-1")
    again = local.push(local_reference=make_image("first build"), repository="conflict-check", tag="1.0.0-1")
    assert again == first  # the same content builds the same image: nothing to refuse

    rebuilt = make_image("rebuilt with another base image")
    with pytest.raises(ImageTagConflictError) as conflict:
        local.push(local_reference=rebuilt, repository="conflict-check", tag="1.0.0-1")

    message = str(conflict.value)
    rebuilt_id = docker.DockerClient(base_url=DOCKER_HOST).images.get(rebuilt).id
    assert f"{registry.host}/conflict-check:1.0.0-1 already names {first.digest}" in message
    assert f"not this build's image {rebuilt_id}" in message
    assert "nothing was pushed" in message and "build again to get a new version" in message
    assert served_digest(registry, "conflict-check", "1.0.0-1") == first.digest


def test_an_image_in_the_registry_is_copied_by_digest_under_the_immutable_rule(
    secure_registry: RegistryServer, make_image  # noqa: ANN001
) -> None:
    """What a remote builder (Cloud Build) leaves under the build namespace becomes the release tag."""
    registry = secure_local(secure_registry)
    built = registry.push(local_reference=make_image("remote build"), repository="builds/svc-c", tag="1.0.0-4")
    other = registry.push(local_reference=make_image("another build"), repository="builds/svc-c", tag="1.0.0-5")

    release = {"source_repository": "builds/svc-c", "repository": "svc-c", "tag": "1.0.0-4"}
    copied = registry.copy_image(digest=built.digest, **release)
    assert copied.reference == f"{secure_registry.host}/svc-c:1.0.0-4" and copied.digest == built.digest
    assert served_digest(secure_registry, "svc-c", "1.0.0-4", (USER, PASSWORD)) == built.digest
    again = registry.copy_image(digest=built.digest, **release)
    assert again == copied

    with pytest.raises(ImageTagConflictError, match=f"svc-c:1.0.0-4 already names {built.digest}.*{other.digest}"):
        registry.copy_image(digest=other.digest, **release)


# --- Google: Application Default Credentials (contract tests against the token stand-ins) -------------------------


@pytest.fixture
def no_ambient_google_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME and gcloud config with no credentials, and no metadata server where google-auth would look."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")  # discard port: nothing answers
    monkeypatch.setenv("GCE_METADATA_DETECT_RETRIES", "1")
    return home


def test_adc_credentials_are_exchanged_for_an_access_token(
    google_oauth: GoogleStandIn, no_ambient_google_credentials: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", google_oauth.adc_file(no_ambient_google_credentials))

    assert google_access_token("pushing to europe-west2-docker.pkg.dev/acme-prod/releases") == ACCESS_TOKEN
    (method, path, form), = google_oauth.requests
    assert (method, path, form["grant_type"]) == ("POST", "/token", [JWT_BEARER])
    (claims,) = google_oauth.claims  # the signature verified with the account's key
    assert claims["iss"] == SERVICE_ACCOUNT and claims["aud"] == "https://oauth2.googleapis.com/token"  # as documented
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"


def test_refused_or_missing_credentials_are_one_line_without_secrets(
    google_oauth: GoogleStandIn, no_ambient_google_credentials: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    with pytest.raises(ExternalSystemError) as missing:
        google_access_token("pushing to gcr.io/acme-prod")
    assert str(missing.value).startswith("pushing to gcr.io/acme-prod: no usable Google credentials")
    assert "gcloud auth application-default login" in str(missing.value)

    adc = google_oauth.adc_file(no_ambient_google_credentials, client_email="deleted@acme-prod.iam.gserviceaccount.com")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", adc)
    with pytest.raises(ExternalSystemError) as refused:
        google_access_token("pushing to gcr.io/acme-prod")
    message = str(refused.value)
    assert "could not be turned into an access token" in message and "invalid_grant" in message
    assert "PRIVATE KEY" not in message and "\n" not in message


def test_workload_identity_takes_the_token_from_the_metadata_server(
    metadata_server: GoogleStandIn, no_ambient_google_credentials: Path  # noqa: F811
) -> None:
    """In a separate process: google-auth reads GCE_METADATA_HOST once, when it is imported."""
    env = {**os.environ, "GCE_METADATA_HOST": metadata_server.address, "GCE_METADATA_IP": metadata_server.address,
           "PYTHONPATH": str(REPO_ROOT)}
    program = "from fintech_release.resources.google_auth import google_access_token as t; print(t('in a pod'))"
    completed = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ACCESS_TOKEN
    paths = [path for _, path, _ in metadata_server.requests]
    assert "/" in paths and any(path.endswith("/token") for path in paths)


def test_artifact_registry_pushes_with_the_adc_token(
    secure_registry: RegistryServer, google_oauth: GoogleStandIn, no_ambient_google_credentials: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, make_image,  # noqa: ANN001
) -> None:
    """The real registry stands in for LOCATION-docker.pkg.dev: its htpasswd knows oauth2accesstoken's token."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", google_oauth.adc_file(no_ambient_google_credentials))
    artifact_registry = GoogleRegistry(
        host=secure_registry.host, path="acme-prod/releases", ca_file=str(secure_registry.verify),
        docker_host=DOCKER_HOST, retry_seconds=5,
    )

    pushed = artifact_registry.push(local_reference=make_image("on gke"), repository="payments", tag="1.0.0-15")

    assert pushed.reference == f"{secure_registry.host}/acme-prod/releases/payments:1.0.0-15"
    assert pushed.digest == served_digest(
        secure_registry, "acme-prod/releases/payments", "1.0.0-15", ("oauth2accesstoken", ACCESS_TOKEN)
    )
    assert [path for _, path, _ in google_oauth.requests] == ["/token"]
