"""The Cloud Build image builder (`build.builder: cloud_build`): a contract test against a loopback stand-in of
the Cloud Storage JSON API upload and the Cloud Build v1 REST API (not the real services).

The stand-in answers in the documented shapes (https://cloud.google.com/storage/docs/json_api/v1/objects/insert,
https://cloud.google.com/build/docs/api/reference/rest/v1/projects.locations.builds): the upload returns the
object with its generation; `builds.create` returns a long-running Operation whose metadata is a
`BuildOperationMetadata` with the queued build; `builds.get` walks the build through QUEUED, WORKING and the
end state. Every build the client sends is parsed into the API's own `Build` message with unknown fields
refused, so a misspelt field fails the test. The real google-cloud-build client (REST transport) and the real
google-auth talk to it; the access token comes from the OAuth stand-in (fixtures_google_auth.py).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from google.cloud.devtools import cloudbuild_v1

from fintech_release.errors import ToolFailedError
from fintech_release.resources.cloud_build import CloudBuildImageBuilder
from fintech_release_tests.components import LOCALHOST, answer_json
from fintech_release_tests.fixtures_google_auth import ACCESS_TOKEN, GoogleStandIn, google_oauth  # noqa: F401

PROJECT, LOCATION, BUCKET = "acme-prod", "europe-west2", "acme-prod-builds"
REPOSITORY = "europe-west2-docker.pkg.dev/acme-prod/releases"
DIGEST = "sha256:" + "d" * 64


class CloudBuildStandIn(ThreadingHTTPServer):
    """Cloud Storage upload + Cloud Build builds.create / builds.get on loopback."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOCALHOST, 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.builds: list[cloudbuild_v1.Build] = []
        self.end_state: dict[str, Any] = {"status": "SUCCESS"}
        self.polls = 0
        self.tokens: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.server_address[1]}"

    def build_document(self) -> dict[str, Any]:
        """builds.get: QUEUED, WORKING, then the end state with the pushed image's digest."""
        self.polls += 1
        sent = json.loads(cloudbuild_v1.Build.to_json(self.builds[-1]))
        document = {**sent, "id": "b-1", "projectId": PROJECT, "logUrl": "https://console.cloud.google.com/b-1"}
        if self.polls < 3:
            return {**document, "status": ["QUEUED", "WORKING"][self.polls - 1]}
        images = [{"name": name, "digest": DIGEST} for name in sent.get("images", [])]
        return {**document, **self.end_state, "results": {"images": images} if self.end_state["status"] == "SUCCESS"
                else {}}


class _Handler(BaseHTTPRequestHandler):
    server: CloudBuildStandIn

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urlsplit(self.path)
        self.server.tokens.add(self.headers.get("Authorization", ""))
        if split.path == f"/upload/storage/v1/b/{BUCKET}/o":
            name = parse_qs(split.query)["name"][0]
            self.server.objects[name] = body
            self._json(200, {"kind": "storage#object", "bucket": BUCKET, "name": name, "generation": "1700000000000001",
                             "size": str(len(body))})
        elif split.path == f"/v1/projects/{PROJECT}/locations/{LOCATION}/builds":
            build = cloudbuild_v1.Build.from_json(body, ignore_unknown_fields=False)
            self.server.builds.append(build)
            queued = {**json.loads(body), "id": "b-1", "status": "QUEUED", "projectId": PROJECT}
            self._json(200, {
                "name": f"projects/{PROJECT}/locations/{LOCATION}/operations/op-1",
                "metadata": {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                             "build": queued},
            })
        else:
            self._json(404, {"error": {"code": 404, "message": f"no {split.path}", "status": "NOT_FOUND"}})

    def do_GET(self) -> None:  # noqa: N802
        if re.fullmatch(rf"/v1/projects/{PROJECT}/locations/{LOCATION}/builds/b-1", urlsplit(self.path).path):
            self._json(200, self.server.build_document())
        else:
            self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

    def _json(self, status: int, body: Any) -> None:
        answer_json(self, status, body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the tests read what the stand-in kept."""


@pytest.fixture
def cloud_build(
    google_oauth: GoogleStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> Iterator[CloudBuildStandIn]:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", google_oauth.adc_file(tmp_path))
    server = CloudBuildStandIn()
    thread = threading.Thread(target=server.serve_forever, name="cloud-build-stand-in", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "payments"
    (folder / "build" / "libs").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/master\n")
    (folder / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG JAR_FILE\nCOPY ${JAR_FILE} /app.jar\n")
    (folder / "build" / "libs" / "payments-1.0.0-7.jar").write_bytes(b"PK\x03\x04 not really a jar")
    return folder


def builder(stand_in: CloudBuildStandIn) -> CloudBuildImageBuilder:
    return CloudBuildImageBuilder(
        project=PROJECT, location=LOCATION, staging_bucket=BUCKET, image_repository=REPOSITORY, poll_seconds=0.01,
        api_endpoint=stand_in.endpoint, storage_endpoint=stand_in.endpoint,
    )


def build(stand_in: CloudBuildStandIn, context_dir: Path) -> Any:
    return builder(stand_in).build(
        context_dir=context_dir, dockerfile="Dockerfile", reference="fintech-release/payments:1.0.0-7",
        base_image=f"{REPOSITORY}/jre:17", build_args={"JAR_FILE": "build/libs/payments-1.0.0-7.jar"},
        labels={"org.opencontainers.image.version": "1.0.0-7"},
    )


def test_a_build_uploads_its_context_runs_docker_build_and_returns_the_pushed_digest(
    cloud_build: CloudBuildStandIn, context_dir: Path
) -> None:
    built = build(cloud_build, context_dir)

    target = f"{REPOSITORY}/fintech-release/payments:1.0.0-7"
    assert (built.reference, built.image_id, built.registry_digest) == (target, DIGEST, DIGEST)
    (name, archive), = cloud_build.objects.items()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "build/libs/payments-1.0.0-7.jar"]  # no .git
    (sent,) = cloud_build.builds
    assert (sent.source.storage_source.bucket, sent.source.storage_source.object_) == (BUCKET, name)
    assert sent.source.storage_source.generation == 1700000000000001
    (step,) = sent.steps
    assert step.name == "gcr.io/cloud-builders/docker" and list(sent.images) == [target]
    assert list(step.args[:6]) == ["build", "--network=cloudbuild", "-f", "Dockerfile", "-t", target]
    assert f"--build-arg=BASE_IMAGE={REPOSITORY}/jre:17" in step.args
    assert "--build-arg=JAR_FILE=build/libs/payments-1.0.0-7.jar" in step.args
    assert "--label=org.opencontainers.image.version=1.0.0-7" in step.args
    assert cloud_build.polls == 3 and cloud_build.tokens == {f"Bearer {ACCESS_TOKEN}"}


def test_a_failed_build_names_its_status_detail_and_log(cloud_build: CloudBuildStandIn, context_dir: Path) -> None:
    detail = "Build step 0 \"gcr.io/cloud-builders/docker\" failed"
    cloud_build.end_state = {"status": "FAILURE", "statusDetail": detail}

    with pytest.raises(ToolFailedError) as failed:
        build(cloud_build, context_dir)

    assert str(failed.value) == (
        f"Cloud Build b-1 of {REPOSITORY}/fintech-release/payments:1.0.0-7 ended FAILURE: Build step 0 "
        "\"gcr.io/cloud-builders/docker\" failed; its log: https://console.cloud.google.com/b-1"
    )
