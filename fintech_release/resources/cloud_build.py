"""Image builds on Google Cloud Build, for runs that are pods without a Docker engine (deploy/dagster).

Why Cloud Build and not BuildKit: Debian packages neither buildkitd nor buildctl, so a BuildKit builder could
neither be installed by this project's own scripts nor tested here for real; Cloud Build needs nothing in the
pod but its client library and the pod's Workload Identity.

A build: the context folder (the service's checkout with its jar; `.git`, `.gradle` left out) goes as a tar.gz
to the staging bucket (Cloud Storage JSON API, media upload), then `CreateBuild` runs one `docker build` step on
it with the same build arguments and OCI labels as the local engine, and pushes the result to the build
namespace of the registry (`<registry>/<image namespace>/<service>:<version>`). The build is followed through
`GetBuild` until it ends (bounded by `timeout_seconds`); its digest comes from the build's results. The
release tag (`<registry>/<service>:<version>`) is made later by registry/image, by copying that digest
(ImageRegistry.copy), so only the release branch's push tags a release and the immutable-tag rule holds.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

import google.oauth2.credentials
import requests
from google.api_core.exceptions import GoogleAPICallError
from google.cloud.devtools import cloudbuild_v1
from google.protobuf import duration_pb2

from fintech_release.errors import ExternalSystemError, ToolFailedError
from fintech_release.resources.google_auth import google_access_token
from fintech_release.resources.images import BuiltImage, ImageBuilder

LEFT_OUT = {".git", ".gradle"}
DOCKER_STEP = "gcr.io/cloud-builders/docker"
ENDED_WELL = cloudbuild_v1.Build.Status.SUCCESS
RUNNING = (
    cloudbuild_v1.Build.Status.PENDING, cloudbuild_v1.Build.Status.QUEUED, cloudbuild_v1.Build.Status.WORKING,
    cloudbuild_v1.Build.Status.STATUS_UNKNOWN,
)


class CloudBuildImageBuilder(ImageBuilder):
    """Cloud Build in `project` / `location`, staging contexts in `staging_bucket`, pushing to `image_repository`."""

    project: str
    location: str = "global"
    staging_bucket: str
    image_repository: str  # the registry's host/path, e.g. europe-west2-docker.pkg.dev/acme-prod/releases
    timeout_seconds: int = 1200
    poll_seconds: float = 3
    request_timeout_seconds: float = 30
    api_endpoint: str = "https://cloudbuild.googleapis.com"
    storage_endpoint: str = "https://storage.googleapis.com"

    def build(
        self,
        *,
        context_dir: Path,
        dockerfile: str,
        reference: str,
        base_image: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
    ) -> BuiltImage:
        if not (context_dir / dockerfile).is_file():
            raise ToolFailedError(f"{context_dir / dockerfile} does not exist (service Dockerfile)")
        target = f"{self.image_repository}/{reference}"
        token = google_access_token(f"building {target} on Cloud Build in {self.project}")
        source = self._upload(context_dir, reference, token)
        arguments = [f"--build-arg={k}={v}" for k, v in {"BASE_IMAGE": base_image, **build_args}.items()]
        arguments += [f"--label={k}={v}" for k, v in labels.items()]
        build = cloudbuild_v1.Build(
            source=cloudbuild_v1.Source(storage_source=source),
            steps=[cloudbuild_v1.BuildStep(
                name=DOCKER_STEP,
                args=["build", "--network=cloudbuild", "-f", dockerfile, "-t", target, *arguments, "."],
            )],
            images=[target],
            timeout=duration_pb2.Duration(seconds=self.timeout_seconds),
            tags=["fintech-release"],
        )
        client = self._client(token)
        parent = f"projects/{self.project}/locations/{self.location}"
        try:
            operation = client.create_build(
                request=cloudbuild_v1.CreateBuildRequest(parent=parent, build=build),  # the regional form
                timeout=self.request_timeout_seconds,
            )
            build_id = operation.metadata.build.id
            finished = self._wait(client, f"{parent}/builds/{build_id}", target)
        except GoogleAPICallError as error:
            raise ExternalSystemError(f"Cloud Build in {self.project} refused the build of {target}: {error}") from None
        if finished.status != ENDED_WELL:
            status = cloudbuild_v1.Build.Status(finished.status).name
            raise ToolFailedError(
                f"Cloud Build {build_id} of {target} ended {status}: {finished.status_detail or 'no detail'}; "
                f"its log: {finished.log_url}"
            )
        digest = next((image.digest for image in finished.results.images if image.name == target), "")
        if not digest.startswith("sha256:"):
            raise ToolFailedError(f"Cloud Build {build_id} succeeded but names no digest for {target}")
        return BuiltImage(image_id=digest, reference=target, size_bytes=0, labels=dict(labels), registry_digest=digest)

    def holds(self, *, reference: str, image_id: str) -> bool:
        """False: this builder does not read the build namespace back, so every image of a jar is built anew."""
        return False

    def _upload(self, context_dir: Path, reference: str, token: str) -> cloudbuild_v1.StorageSource:
        """The context as a tar.gz object in the staging bucket, named by its content."""
        archive = _tar_gz(context_dir)
        name = f"fintech-release/{reference.replace(':', '/')}-{hashlib.sha256(archive).hexdigest()[:16]}.tgz"
        try:
            response = requests.post(
                f"{self.storage_endpoint}/upload/storage/v1/b/{self.staging_bucket}/o",
                params={"uploadType": "media", "name": name}, data=archive,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
                timeout=self.request_timeout_seconds,
            )
        except requests.RequestException as error:
            raise ExternalSystemError(f"uploading the build context to gs://{self.staging_bucket}: {error}") from None
        if response.status_code != 200:
            raise ExternalSystemError(
                f"uploading the build context to gs://{self.staging_bucket} failed (HTTP {response.status_code}): "
                f"the builder's service account needs roles/storage.objectCreator on the bucket"
            )
        stored = response.json()
        return cloudbuild_v1.StorageSource(
            bucket=self.staging_bucket, object_=stored["name"], generation=int(stored.get("generation", 0))
        )

    def _client(self, token: str) -> cloudbuild_v1.CloudBuildClient:
        return cloudbuild_v1.CloudBuildClient(
            credentials=google.oauth2.credentials.Credentials(token),
            transport="rest",
            client_options={"api_endpoint": self.api_endpoint},
        )

    def _wait(self, client: cloudbuild_v1.CloudBuildClient, name: str, target: str) -> cloudbuild_v1.Build:
        """Follow the build until it ends; a build still running past its own timeout (plus a minute) is an error."""
        deadline = time.monotonic() + self.timeout_seconds + 60
        while True:
            request = cloudbuild_v1.GetBuildRequest(name=name)
            build = client.get_build(request=request, timeout=self.request_timeout_seconds)
            if build.status not in RUNNING:
                return build
            if time.monotonic() >= deadline:
                raise ToolFailedError(f"Cloud Build {build.id} of {target} still runs after {self.timeout_seconds} s")
            time.sleep(self.poll_seconds)


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if relative.parts[0] in LEFT_OUT or not path.is_file():
                continue
            archive.add(path, arcname=str(relative), recursive=False)
    return buffer.getvalue()
