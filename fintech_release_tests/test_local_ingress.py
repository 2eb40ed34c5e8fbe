"""`LocalNginxIngress` with a real nginx and real HTTP backends on loopback."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from fintech_release.errors import IngressConfigError, ToolNotFoundError
from fintech_release.resources import local_ingress
from fintech_release.resources.local_ingress import LocalNginxIngress
from fintech_release_tests.components import answer_json, free_port, wait_until

pytestmark = pytest.mark.integration

ADDRESS = "127.0.77.1"  # an environment's own loopback address, as release.yaml gives them


@dataclass
class Backend:
    """A tiny HTTP server on 127.0.0.1 that answers every GET with the path it received."""

    server: http.server.ThreadingHTTPServer
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend_factory() -> Iterator[Callable[[], Backend]]:
    started: list[Backend] = []

    def start() -> Backend:
        seen: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                seen.append({"path": self.path, "prefix": self.headers.get("X-Forwarded-Prefix", "")})
                answer_json(self, 200, {"path": self.path, "port": self.server.server_port})

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        backend = Backend(server, seen)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "ingress"


@pytest.fixture
def ingress(state_dir: Path, nginx_binary: str) -> Iterator[LocalNginxIngress]:
    resource = LocalNginxIngress(state_dir=str(state_dir), nginx_binary=nginx_binary)
    yield resource
    # Whatever a test left running is stopped: no nginx outlives the suite.
    if state_dir.exists():
        for environment in state_dir.iterdir():
            if environment.is_dir() and not environment.name.startswith("."):
                resource.remove(environment=environment.name)


@pytest.fixture
def port() -> int:
    return free_port()


def get(url: str) -> requests.Response:
    """A GET on a fresh connection (an old worker may keep serving a kept-alive one for a moment)."""
    with requests.Session() as http:
        http.trust_env = False
        return http.get(url, timeout=10, headers={"Connection": "close"})


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def test_ensure_starts_an_entry_point_on_the_environment_address_only(
    ingress: LocalNginxIngress, state_dir: Path, port: int
) -> None:
    info = ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us", "payments"])

    assert info.url == f"http://{ADDRESS}:{port}"
    assert info.routes == {"contact-us": [], "payments": []}
    for path in ("/", "/_ingress/health"):
        response = get(info.url + path)
        assert response.status_code == 200
        assert response.json()["environment"] == "ci"
    assert get(info.url + "/nothing-here").status_code == 404
    assert not port_open("127.0.0.1", port)  # bound to the environment's address, not to every address
    env_dir = state_dir / "ci"
    assert (env_dir / "run" / "nginx.pid").is_file()
    assert (env_dir / "current" / "routes" / "contact-us.conf").is_file()
    assert (env_dir / "logs" / "error.log").is_file()


def test_service_without_backends_answers_503(ingress: LocalNginxIngress, port: int) -> None:
    info = ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us"])

    response = get(info.url + "/contact-us/health")

    assert response.status_code == 503
    assert response.json() == {"environment": "ci", "error": "no backends", "service": "contact-us"}


def test_routes_rewrite_the_path_to_the_backend(
    ingress: LocalNginxIngress, backend_factory: Callable[[], Backend], port: int
) -> None:
    backend = backend_factory()
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["svc"])

    info = ingress.set_backends(environment="ci", service="svc", backends=[backend.address])

    assert info.routes == {"svc": [backend.address]}
    assert get(info.url + "/svc/hello?x=1").json()["path"] == "/hello?x=1"
    assert get(info.url + "/svc").json()["path"] == "/"
    assert backend.seen[0] == {"path": "/hello?x=1", "prefix": "/svc"}

    info = ingress.set_backends(environment="ci", service="svc", backends=[])
    assert info.routes == {"svc": []}
    assert get(info.url + "/svc/hello").status_code == 503


def test_a_backend_that_went_away_is_skipped(
    ingress: LocalNginxIngress, backend_factory: Callable[[], Backend], port: int
) -> None:
    staying, leaving = backend_factory(), backend_factory()
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["svc"])
    info = ingress.set_backends(environment="ci", service="svc", backends=[leaving.address, staying.address])
    leaving.stop()

    answers = [get(info.url + f"/svc/r{i}") for i in range(6)]

    assert [response.status_code for response in answers] == [200] * 6
    assert {response.json()["port"] for response in answers} == {staying.server.server_port}


def test_ensure_keeps_existing_backends_and_changes_nothing_when_called_again(
    ingress: LocalNginxIngress, backend_factory: Callable[[], Backend], state_dir: Path, port: int
) -> None:
    backend = backend_factory()
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us"])
    ingress.set_backends(environment="ci", service="contact-us", backends=[backend.address])
    live = os.readlink(state_dir / "ci" / "current")

    again = ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us"])
    assert os.readlink(state_dir / "ci" / "current") == live  # nothing to change: no new config, no reload

    more = ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us", "payments"])
    assert again.routes == {"contact-us": [backend.address]}
    assert more.routes == {"contact-us": [backend.address], "payments": []}
    assert get(more.url + "/contact-us/x").json()["path"] == "/x"
    assert get(more.url + "/payments/x").status_code == 503


def test_parallel_changes_to_one_environment_are_not_lost(
    ingress: LocalNginxIngress, backend_factory: Callable[[], Backend], port: int
) -> None:
    services = [f"svc{i}" for i in range(4)]
    backends = {service: backend_factory().address for service in services}
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=[])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: ingress.set_backends(environment="ci", service=s, backends=[backends[s]]), services))

    final = ingress.ensure(environment="ci", address=ADDRESS, port=port, services=[])
    assert final.routes == {service: [backends[service]] for service in services}
    for service in services:
        assert get(f"{final.url}/{service}/ok").status_code == 200


def test_a_configuration_nginx_rejects_leaves_the_running_one_alone(
    ingress: LocalNginxIngress,
    backend_factory: Callable[[], Backend],
    state_dir: Path,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend, other = backend_factory(), backend_factory()
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["svc"])
    info = ingress.set_backends(environment="ci", service="svc", backends=[backend.address])
    env_dir = state_dir / "ci"
    before = {path.relative_to(env_dir): path.read_text() for path in (env_dir / "current").rglob("*.conf")}
    live = os.readlink(env_dir / "current")
    # Every string we accept renders to a route nginx accepts, so to see nginx itself reject a
    # configuration the route renderer is made to emit a directive nginx does not know.
    render_route = local_ingress._render_route
    monkeypatch.setattr(
        local_ingress,
        "_render_route",
        lambda environment, service, backends: render_route(environment, service, backends).replace(
            "max_fails=0;", "max_fails=0;\n    keepalive_forever on;"
        ),
    )

    with pytest.raises(IngressConfigError) as caught:
        ingress.set_backends(environment="ci", service="svc", backends=[other.address])

    message = str(caught.value)
    assert "'ci'" in message and "'svc'" in message
    assert '[emerg] unknown directive "keepalive_forever"' in message
    assert "routes/svc.conf" in message
    assert os.readlink(env_dir / "current") == live
    assert {path.relative_to(env_dir): path.read_text() for path in (env_dir / "current").rglob("*.conf")} == before
    assert sorted(p.name for p in env_dir.glob("conf.*")) == [live]  # the candidate is gone
    assert get(info.url + "/svc/still").json()["port"] == backend.server.server_port


@pytest.mark.parametrize(
    "backend",
    ["10.0.0.5:8080", "127.0.0.1", "localhost:8080", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:80; include /etc"],
)
def test_backends_are_validated_before_anything_is_rendered(
    ingress: LocalNginxIngress, state_dir: Path, port: int, backend: str
) -> None:
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["svc"])
    live = os.readlink(state_dir / "ci" / "current")

    with pytest.raises(IngressConfigError, match=r"ingress 'ci', service 'svc': invalid backend"):
        ingress.set_backends(environment="ci", service="svc", backends=[backend])

    assert os.readlink(state_dir / "ci" / "current") == live


def test_listen_address_must_be_loopback_and_environment_must_exist(ingress: LocalNginxIngress, port: int) -> None:
    with pytest.raises(IngressConfigError, match="not a loopback address"):
        ingress.ensure(environment="ci", address="192.168.1.10", port=port, services=[])
    with pytest.raises(IngressConfigError, match="ensure it first"):
        ingress.set_backends(environment="staging", service="svc", backends=[])


def test_remove_stops_nginx_and_deletes_its_state(
    ingress: LocalNginxIngress, state_dir: Path, port: int
) -> None:
    ingress.ensure(environment="ci", address=ADDRESS, port=port, services=["contact-us"])
    pid = int((state_dir / "ci" / "run" / "nginx.pid").read_text())

    removed = ingress.remove(environment="ci")

    assert removed[0] == f"nginx master (pid {pid}) on {ADDRESS}:{port}"
    assert "route /contact-us/" in removed
    assert removed[-1] == str(state_dir / "ci")
    assert not (state_dir / "ci").exists()
    assert wait_until(lambda: not port_open(ADDRESS, port), timeout=5)
    assert ingress.remove(environment="ci") == []


def test_missing_nginx_says_how_to_install_it(tmp_path: Path, port: int) -> None:
    resource = LocalNginxIngress(state_dir=str(tmp_path / "ingress"), nginx_binary=str(tmp_path / "no-nginx"))

    with pytest.raises(ToolNotFoundError, match="apt-get install nginx-light"):
        resource.ensure(environment="ci", address=ADDRESS, port=port, services=[])
