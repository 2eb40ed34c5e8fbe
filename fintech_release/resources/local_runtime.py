"""The local service runtime: each replica is a container on one Docker engine, bound to loopback.

An environment is not a Docker network here: it is a label scope on the engine plus a loopback
address. Every replica runs with host networking and listens on `BIND_ADDRESS:PORT`, both given
when it starts, so the environment's ingress reaches it at that endpoint and nothing leaves the
machine. Labels on each container record what it is, so the engine itself is the state.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing
from datetime import datetime
from typing import TYPE_CHECKING

import docker
import requests
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import Mount

from fintech_release.errors import ExternalSystemError, RegistryUnavailableError
from fintech_release.health.model import Readiness, ReplicaState, ReplicaStatus, ServiceHealth, assess
from fintech_release.resources._docker import DEFAULT_DOCKER_HOST, connect_docker
from fintech_release.resources.runtime import BackendsChanged, DeployOutcome, DeploySpec, ServiceRuntime

if TYPE_CHECKING:
    from docker.api.container import _RestartPolicy  # the stubs' shape of the engine's RestartPolicy

SCOPE_LABEL = "io.fintech-release.scope"
ENVIRONMENT_LABEL = "io.fintech-release.environment"
SERVICE_LABEL = "io.fintech-release.service"
IMAGE_LABEL = "io.fintech-release.image"
ENDPOINT_LABEL = "io.fintech-release.endpoint"
HEALTH_PATH_LABEL = "io.fintech-release.health-path"
SETTINGS_LABEL = "io.fintech-release.settings"  # a digest of the runtime settings, never the settings themselves
RESTART_POLICY: _RestartPolicy = {"Name": "on-failure", "MaximumRetryCount": 5}
READY_POLL_SECONDS = 0.25
HEALTH_POLL_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 1.0
LOG_TAIL_LINES = 3  # of a failing replica's output, in its problem line
LOG_TAIL_CHARACTERS = 300
DB_PASSWORD_PATH = "/run/secrets/db-password"  # where a replica finds its database password (read-only)
_PORTS_LOCK = threading.Lock()  # one pick of free ports at a time in this process (see _start)


class LocalDockerRuntime(ServiceRuntime):
    """Replicas as containers with host networking on the environment's loopback address."""

    docker_host: str = DEFAULT_DOCKER_HOST
    scope: str = "fintech-release"  # keeps two projects (or the suite and the demo) apart on one engine
    ready_timeout_seconds: float = 60
    stop_timeout_seconds: int = 5
    pull_timeout_seconds: float = 120

    def ensure_environment(self, *, environment: str, address: str) -> dict[str, str]:
        """Nothing to create: check the engine answers and report what the environment holds."""
        with closing(connect_docker(self.docker_host)) as client:
            running = client.containers.list(filters={"label": _selector(self.scope, environment)})
            return {
                "address": address,
                "label_selector": ",".join(_selector(self.scope, environment)),
                "docker_host": self.docker_host,
                "engine_version": str(client.version().get("Version", "unknown")),
                "running_replicas": str(len(running)),
            }

    def running_image(self, *, environment: str, service: str) -> str | None:
        """The image most running replicas of the service carry (they share one outside a rollout)."""
        with closing(connect_docker(self.docker_host)) as client:
            running = client.containers.list(filters={"label": _selector(self.scope, environment, service)})
            return _most_common([container.labels[IMAGE_LABEL] for container in running])

    def deploy(self, *, spec: DeploySpec, on_backends_changed: BackendsChanged) -> DeployOutcome:
        """Converge to `spec`: keep the replicas that already serve it, start the missing ones, retire the rest.

        A replica is kept when it runs `spec.image` with the same settings, is ready and never
        restarted; everything else (another image or settings, exited, restarting, left by an
        interrupted run) is retired once its replacements are ready. All new replicas start at
        once rather than one at a time: a rollout takes one start-up time instead of one per
        replica, and the old replicas serve until the new ones are all ready, so the brief doubling
        of replicas is the only cost. Whatever this call started is removed again when it fails or
        is interrupted (Ctrl-C, SIGTERM); what a killed process left is retired by the next call.
        """
        with closing(connect_docker(self.docker_host)) as client:
            current = [(c, _observe(c)) for c in _replicas(client, self.scope, spec.environment, spec.service)]
            previous_image = _most_common([status.image for _, status in current if status.state == "running"])
            settings = _settings_fingerprint(spec)
            fitting = [(c, s) for c, s in current if _fits(c, s, spec.image, settings)]
            keep = fitting[: spec.replicas]
            kept_ids = {container.id for container, _ in keep}
            retire = [(c, s) for c, s in current if c.id not in kept_ids]
            if len(keep) == spec.replicas and not retire:
                return DeployOutcome(
                    status="unchanged", image=spec.image, previous_image=previous_image,
                    health=self._assess(spec, [status for _, status in keep]),
                    detail=f"{spec.replicas} replicas already run {spec.image}",
                )
            started: list[Container] = []
            before = [_endpoint(status) for _, status in current if _serves(status)]
            announcing = False
            try:
                started = self._start(client, spec, spec.replicas - len(keep), settings)
                after = [*self._await_ready(started), *(status for _, status in keep)]
                health = self._assess(spec, after)
                serving = [_endpoint(status) for status in after]
                if health.healthy and started:
                    announcing = True
                    on_backends_changed([*serving, *(_endpoint(status) for _, status in retire if _serves(status))])
            except BaseException:
                if announcing:  # route back to what served before, then remove what this call started
                    on_backends_changed(before)
                _remove_all(started)
                raise
            if not health.healthy:
                _remove_all(started)
                return DeployOutcome(
                    status="failed", image=previous_image, previous_image=previous_image, health=health,
                    detail=f"{spec.image} never got ready, its {len(started)} new replicas were removed and the "
                    f"{len(current)} previous ones left as they were: " + "; ".join(health.problems),
                )
            if retire:
                on_backends_changed(serving)
            for container, _ in retire:
                self._stop(container)
            return DeployOutcome(
                status="deployed", image=spec.image, previous_image=previous_image, health=health,
                detail=f"{len(started)} replicas started, {len(retire)} removed: "
                f"{spec.replicas} replicas run {spec.image}",
            )

    def health(
        self, *, environment: str, service: str, desired_replicas: int, expected_image: str | None,
        window_seconds: float, since: datetime | None = None,
    ) -> ServiceHealth:
        """Poll the replicas for `window_seconds`; a crash, restart or exit ends the watch at once.

        A running replica's restarts count only when its last start was at or after `since` (None:
        all count): one that restarted once hours ago and serves since is healthy now.
        """
        deadline = time.monotonic() + window_seconds
        with closing(connect_docker(self.docker_host)) as client:
            while True:
                statuses = [
                    _restarts_since(_observe(container), since)
                    for container in _replicas(client, self.scope, environment, service)
                ]
                if any(_failing(status) for status in statuses) or time.monotonic() >= deadline:
                    return assess(
                        environment=environment, service=service, replicas=statuses,
                        desired_replicas=desired_replicas, expected_image=expected_image,
                    )
                time.sleep(HEALTH_POLL_SECONDS)

    def teardown(self, *, environment: str) -> list[str]:
        """Force-remove every container labelled with the environment; return their names."""
        with closing(connect_docker(self.docker_host)) as client:
            containers = client.containers.list(all=True, filters={"label": _selector(self.scope, environment)})
            _remove_all(containers)
            return sorted(_name(container) for container in containers)

    def _start(self, client: docker.DockerClient, spec: DeploySpec, count: int, settings: str) -> list[Container]:
        """Create and start `count` replicas, each on a free port of the environment's address.

        Raises with nothing left behind: whatever was created is removed when a start fails or is interrupted.
        """
        if count <= 0:
            return []
        self._ensure_image(client, spec.image)
        started: list[Container] = []
        try:
            # A replica between two restarts listens on nothing, but its port is taken all the same. Rollouts of
            # several services side by side (one deployment) pick ports one after another: a port is claimed by the
            # label of the container created on it, which the next pick sees, long before the replica listens.
            with _PORTS_LOCK:
                claimed = {
                    int(container.labels[ENDPOINT_LABEL].rsplit(":", 1)[1])
                    for container in client.containers.list(all=True, filters={"label": ENDPOINT_LABEL})
                    if container.labels[ENDPOINT_LABEL].rsplit(":", 1)[0] == spec.address
                }
                for port in _free_ports(spec.address, count, avoid=claimed):
                    database = spec.database
                    container = client.containers.create(
                        spec.image,
                        name=f"fr-{spec.environment}-{spec.service}-{secrets.token_hex(3)}",
                        network_mode="host",
                        environment={
                            **spec.env, "PORT": str(port), "BIND_ADDRESS": spec.address,
                            **(database.variables(DB_PASSWORD_PATH) if database else {}),
                        },
                        # The password reaches the replica only as this file: never an environment variable or label.
                        mounts=[Mount(DB_PASSWORD_PATH, database.password_file, type="bind", read_only=True)]
                        if database
                        else [],
                        labels={
                            SCOPE_LABEL: self.scope,
                            ENVIRONMENT_LABEL: spec.environment,
                            SERVICE_LABEL: spec.service,
                            IMAGE_LABEL: spec.image,
                            ENDPOINT_LABEL: f"{spec.address}:{port}",
                            HEALTH_PATH_LABEL: spec.health_path,
                            SETTINGS_LABEL: settings,
                        },
                        restart_policy=RESTART_POLICY,
                    )
                    started.append(container)
                    container.start()
        except DockerException as exc:
            _remove_all(started)
            raise ExternalSystemError(f"the Docker engine did not start a replica of {spec.image}: {exc}") from None
        except BaseException:
            _remove_all(started)
            raise
        return started

    def _ensure_image(self, client: docker.DockerClient, image: str) -> None:
        """Pull the pinned `image` unless the engine has it; give up after `pull_timeout_seconds`."""
        try:
            client.images.get(image)
            return
        except ImageNotFound:
            pass
        repository, _, digest = image.partition("@")
        deadline = time.monotonic() + self.pull_timeout_seconds
        try:
            for event in client.api.pull(repository, tag=digest, stream=True, decode=True):
                if "error" in event:
                    raise RegistryUnavailableError(f"pulling {image} failed: {event['error']}")
                if time.monotonic() > deadline:
                    raise RegistryUnavailableError(f"pulling {image} took over {self.pull_timeout_seconds:g}s")
        except (DockerException, requests.RequestException) as exc:
            raise RegistryUnavailableError(f"pulling {image} failed: {exc}") from None

    def _await_ready(self, containers: list[Container]) -> list[ReplicaStatus]:
        """Poll until every replica is ready, one fails, or `ready_timeout_seconds` pass; the last look.

        A replica still not ready at the deadline carries its last output, which says why (the services
        log why their database does not answer): it is removed right after, and its logs with it.
        """
        deadline = time.monotonic() + self.ready_timeout_seconds
        while True:
            statuses = [_observe(container) for container in containers]
            done = all(_serves(status) for status in statuses) or any(_failing(status) for status in statuses)
            if done or time.monotonic() >= deadline:
                return [
                    status.model_copy(update={"last_output": _last_output(container)})
                    if status.readiness == "not_ready" and status.last_output is None else status
                    for container, status in zip(containers, statuses, strict=True)
                ]
            time.sleep(READY_POLL_SECONDS)

    def _stop(self, container: Container) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after `stop_timeout_seconds`) and remove."""
        try:
            container.stop(timeout=self.stop_timeout_seconds)
            container.remove()
        except NotFound:
            pass

    @staticmethod
    def _assess(spec: DeploySpec, statuses: list[ReplicaStatus], desired: int | None = None) -> ServiceHealth:
        return assess(
            environment=spec.environment, service=spec.service, replicas=statuses,
            desired_replicas=spec.replicas if desired is None else desired, expected_image=spec.image,
        )


def _observe(container: Container) -> ReplicaStatus:
    """The replica as the engine sees it now; a running one is probed on its health path."""
    labels = container.labels
    endpoint = labels[ENDPOINT_LABEL]
    try:
        container.reload()
    except NotFound:
        return ReplicaStatus(
            name=_name(container), image=labels[IMAGE_LABEL], state="missing", readiness="unknown", endpoint=endpoint
        )
    state = container.attrs["State"]
    replica_state: ReplicaState
    if state["Restarting"]:
        replica_state = "restarting"
    elif state["Running"]:
        replica_state = "running"
    elif state["Status"] == "created":
        replica_state = "starting"
    else:
        replica_state = "exited"
    readiness: Readiness = "unknown"
    if replica_state == "running":
        readiness = "ready" if _answers(f"http://{endpoint}{labels[HEALTH_PATH_LABEL]}") else "not_ready"
    failing = replica_state in ("restarting", "exited") or container.attrs["RestartCount"] > 0
    return ReplicaStatus(
        name=_name(container),
        image=labels[IMAGE_LABEL],
        state=replica_state,
        readiness=readiness,
        restart_count=container.attrs["RestartCount"],
        exit_code=state["ExitCode"] if replica_state in ("restarting", "exited") else None,
        endpoint=endpoint,
        started_at=None if state["StartedAt"].startswith("0001-") else state["StartedAt"],
        reason="OOMKilled" if state["OOMKilled"] else state["Error"] or None,
        last_output=_last_output(container) if failing else None,
    )


def _last_output(container: Container) -> str | None:
    """The last lines the replica wrote (stdout and stderr), joined and shortened from the front for a one-line
    problem: the latest line says most (the error it crashed with, why it is not ready)."""
    try:
        raw = container.logs(tail=LOG_TAIL_LINES, stdout=True, stderr=True)
    except DockerException:
        return None
    lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    text = " | ".join(lines)
    return ("…" + text[-(LOG_TAIL_CHARACTERS - 1):] if len(text) > LOG_TAIL_CHARACTERS else text) or None


def _answers(url: str) -> bool:
    """True when `url` answers 200 (never through a proxy from the environment: it is loopback)."""
    with requests.Session() as http:
        http.trust_env = False
        try:
            return http.get(url, timeout=PROBE_TIMEOUT_SECONDS).status_code == 200
        except requests.RequestException:
            return False


def _fits(container: Container, status: ReplicaStatus, image: str, settings: str) -> bool:
    """Whether a replica already is what the spec asks for: its image and settings, serving, never restarted."""
    return (
        _serves(status) and status.restart_count == 0 and status.image == image
        and container.labels.get(SETTINGS_LABEL) == settings
    )


def _settings_fingerprint(spec: DeploySpec) -> str:
    """A digest of what a replica runs with besides its image, so a change of settings replaces replicas.

    The database part is the account, the file's path and the password's random revision, never the
    password: a rotation changes the revision, so replicas holding the old password are replaced.
    """
    settings: dict[str, object] = {"env": spec.env, "health_path": spec.health_path}
    if spec.database is not None:
        settings["database"] = spec.database.model_dump()
    document = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()[:16]


def _restarts_since(status: ReplicaStatus, since: datetime | None) -> ReplicaStatus:
    """The replica with restarts before `since` forgotten, when it has been running since before then."""
    if since is None or status.state != "running" or status.started_at is None or status.started_at >= since:
        return status
    return status.model_copy(update={"restart_count": 0})


def _name(container: Container) -> str:
    """A container's name (the engine names every container; the SDK types the name as optional)."""
    return container.name or str(container.id)


def _endpoint(status: ReplicaStatus) -> str:
    """Where a replica serves: every replica observed here carries its endpoint label."""
    if status.endpoint is None:
        raise ExternalSystemError(f"replica {status.name} has no {ENDPOINT_LABEL} label")
    return status.endpoint


def _serves(status: ReplicaStatus) -> bool:
    return status.state == "running" and status.readiness == "ready"


def _failing(status: ReplicaStatus) -> bool:
    """A back-off state: waiting longer will not make this replica healthy."""
    return status.state in ("restarting", "exited", "missing") or status.restart_count > 0


def _free_ports(address: str, count: int, *, avoid: set[int]) -> list[int]:
    """`count` distinct ports nothing listens on at `address` and not in `avoid` (held open while picking)."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((address, 0))
            port = sock.getsockname()[1]
            if port not in avoid:
                ports.append(port)
        return ports


def _remove_all(containers: list[Container]) -> None:
    for container in containers:
        try:
            container.remove(force=True)
        except NotFound:
            pass


def _selector(scope: str, environment: str, service: str | None = None) -> list[str]:
    labels = [f"{SCOPE_LABEL}={scope}", f"{ENVIRONMENT_LABEL}={environment}"]
    return labels + [f"{SERVICE_LABEL}={service}"] if service else labels


def _replicas(client: docker.DockerClient, scope: str, environment: str, service: str) -> list[Container]:
    """The service's containers in any state, oldest first."""
    found = client.containers.list(all=True, filters={"label": _selector(scope, environment, service)})
    return sorted(found, key=lambda container: container.attrs["Created"])


def _most_common(images: list[str]) -> str | None:
    return Counter(images).most_common(1)[0][0] if images else None
