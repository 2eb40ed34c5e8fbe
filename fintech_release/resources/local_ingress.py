"""`LocalNginxIngress`: one nginx per environment, listening on the environment's loopback address.

Layout under ``<state_dir>/<environment>/`` (the platform's own state; nothing else keeps it)::

    current -> conf.7            the live configuration (a symlink, swapped atomically)
    conf.7/nginx.conf            the entry point: listen, health, one location per service
    conf.7/routes/<service>.conf the service's backends (an nginx `upstream`), or "none"
    run/nginx.pid                the master's pid
    logs/error.log, access.log
    tmp/…                        nginx's temporary directories

The routes files *are* the state: `ensure` and `set_backends` read them back, change one thing,
render the whole configuration into a new ``conf.<generation>`` directory, check it with
``nginx -t``, and only then point ``current`` at it (``rename`` of a symlink: atomic) and tell
the master to reload (SIGHUP; the master is started when none runs). A configuration nginx
rejects raises `IngressConfigError` with nginx's own message, and the candidate directory is
deleted: the live files and the running nginx are untouched. Changes to one environment are
serialised with a lock file, so parallel deployments of two services cannot lose an update.

After a change the call waits (bounded) until the entry point answers with the new
configuration's generation on ``/_ingress/health``, so a caller that stops an old backend right
after `set_backends` returns knows no new request is routed to it. Requests to a backend that
goes away are retried on the next one (``proxy_next_upstream error timeout http_502 http_503``;
non-idempotent requests such as POST are never sent twice, as nginx does by default).

nginx may run as root or as a normal user. As root the master keeps root and the workers run as
nginx's default unprivileged user (no ``user`` directive); the configuration keeps request and
response bodies in memory (``proxy_request_buffering off``, ``proxy_max_temp_file_size 0``), so
the workers never need to write under a state directory they may not be able to reach.
"""

from __future__ import annotations

import fcntl
import functools
import ipaddress
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from fintech_release.errors import IngressConfigError
from fintech_release.resources._process import run_tool
from fintech_release.resources.ingress import Ingress, IngressInfo

NGINX_INSTALL_HINT = "Install it with `apt-get install nginx-light` (or `nginx`); `make demo` and `make test` do it."
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
# Characters nginx's configuration syntax (or its variables, in log paths) would interpret.
UNSAFE_PATH = re.compile(r"[\"'\\$;{}#\x00-\x1f]")  # paths are quoted, so spaces are fine
HEADER_PREFIX = "# fintech-release: "
SERVER_LINE = re.compile(r"^\s*server\s+(\S+?)(?:\s|;)")
CONF_DIR = re.compile(r"^conf\.(\d+)$")
# Temporary-path directives and the module each one belongs to (a build may leave modules out).
TEMP_PATHS = {
    "client_body_temp_path": None,
    "proxy_temp_path": "http_proxy",
    "fastcgi_temp_path": "http_fastcgi",
    "uwsgi_temp_path": "http_uwsgi",
    "scgi_temp_path": "http_scgi",
}


@dataclass
class IngressState:
    """What one environment's configuration says: where it listens, what it routes, its generation."""

    environment: str
    address: str
    port: int
    routes: dict[str, list[str]] = field(default_factory=dict)
    generation: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def info(self) -> IngressInfo:
        return IngressInfo(
            environment=self.environment,
            url=self.url,
            routes={service: list(backends) for service, backends in sorted(self.routes.items())},
        )


@dataclass(frozen=True)
class EnvironmentPaths:
    """The files of one environment's nginx."""

    root: Path

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "nginx.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def error_log(self) -> Path:
        return self.logs / "error.log"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def conf_dir(self, generation: int) -> Path:
        return self.root / f"conf.{generation}"


class LocalNginxIngress(Ingress):
    """An nginx per environment on its loopback address, configured from files it validates first."""

    state_dir: str  # absolute; one subdirectory per environment
    nginx_binary: str = "nginx"
    connect_timeout_seconds: float = 1
    read_timeout_seconds: float = 60
    next_upstream_tries: int = 3
    command_timeout_seconds: float = 30
    ready_timeout_seconds: float = 15
    stop_timeout_seconds: float = 15

    # ------------------------------------------------------------------ interface

    def ensure(self, *, environment: str, address: str, port: int, services: list[str]) -> IngressInfo:
        _check_environment(environment)
        address = _check_listen(environment, address, port)
        for service in services:
            _check_service(environment, service)
        paths = self._paths(environment)
        with self._locked(environment):
            current = _read_state(environment, paths)
            routes = dict(current.routes) if current else {}
            for service in services:
                routes.setdefault(service, [])  # a new service answers 503 until it has backends
            wanted = IngressState(environment, address, port, routes, current.generation if current else 0)
            self._apply(paths, current, wanted, what=f"services {sorted(services)}")
            return wanted.info()

    def set_backends(self, *, environment: str, service: str, backends: list[str]) -> IngressInfo:
        _check_environment(environment)
        _check_service(environment, service)
        checked = list(dict.fromkeys(_check_backend(environment, service, backend) for backend in backends))
        paths = self._paths(environment)
        with self._locked(environment):
            current = _read_state(environment, paths)
            if current is None:
                raise IngressConfigError(
                    f"ingress {environment!r}: no entry point is configured under {paths.root}; ensure it first"
                )
            wanted = IngressState(
                environment, current.address, current.port, {**current.routes, service: checked}, current.generation
            )
            self._apply(paths, current, wanted, what=f"service {service!r}")
            return wanted.info()

    def remove(self, *, environment: str) -> list[str]:
        _check_environment(environment)
        paths = self._paths(environment)
        with self._locked(environment):
            if not paths.root.exists():
                return []
            current = _read_state(environment, paths)
            removed: list[str] = []
            pid = self._master_pid(paths)
            if pid is not None:
                self._stop(paths, pid)
                where = f" on {current.address}:{current.port}" if current else ""
                removed.append(f"nginx master (pid {pid}){where}")
            if current is not None:
                removed += [f"route /{service}/" for service in sorted(current.routes)]
            shutil.rmtree(paths.root)
            removed.append(str(paths.root))
            return removed

    # ------------------------------------------------------------------ changes

    def _apply(self, paths: EnvironmentPaths, current: IngressState | None, wanted: IngressState, *, what: str) -> None:
        """Make `wanted` live: validate, swap and reload, unless it is what already runs."""
        running = self._master_pid(paths)
        settings = self._settings()
        if current is not None and _render(wanted, paths, settings) == _render(current, paths, settings):
            if running is None:
                self._start(paths, wanted)
            self._wait_live(paths, wanted)
            return
        wanted.generation = _next_generation(paths, current)
        candidate = paths.conf_dir(wanted.generation)
        if candidate.exists():
            shutil.rmtree(candidate)
        for directory in (paths.root / "run", paths.logs, paths.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            _write_files(candidate, _render(wanted, paths, settings))
            self._validate(paths, candidate, wanted.environment, what)
        except BaseException:
            shutil.rmtree(candidate, ignore_errors=True)
            raise
        _swap_current(paths, candidate)
        _remove_old_conf_dirs(paths, keep=candidate)
        if running is None:
            self._start(paths, wanted)
            self._wait_live(paths, wanted)
        else:
            old_workers = _workers_of(running)
            os.kill(running, signal.SIGHUP)  # what `nginx -s reload` sends
            self._wait_live(paths, wanted, old_workers)

    def _validate(self, paths: EnvironmentPaths, candidate: Path, environment: str, what: str) -> None:
        completed = run_tool(
            [self._nginx(), "-t", "-q", "-e", "stderr", "-p", f"{paths.root}/", "-c", str(candidate / "nginx.conf")],
            tool="nginx",
            install_hint=NGINX_INSTALL_HINT,
            timeout_seconds=self.command_timeout_seconds,
            check=False,
        )
        if completed.returncode != 0:
            raise IngressConfigError(
                f"ingress {environment!r}, {what}: nginx rejected the new configuration, the running one was kept: "
                f"{_nginx_error(completed.stdout + completed.stderr)}"
            )

    def _start(self, paths: EnvironmentPaths, state: IngressState) -> None:
        completed = run_tool(
            [self._nginx(), "-e", "stderr", "-p", f"{paths.root}/", "-c", str(paths.current / "nginx.conf")],
            tool="nginx",
            install_hint=NGINX_INSTALL_HINT,
            timeout_seconds=self.command_timeout_seconds,
            check=False,
        )
        if completed.returncode != 0:
            raise IngressConfigError(
                f"ingress {state.environment!r}: nginx did not start on {state.address}:{state.port}: "
                f"{_nginx_error(completed.stdout + completed.stderr)}"
            )

    def _wait_live(
        self, paths: EnvironmentPaths, state: IngressState, old_workers: frozenset[int] = frozenset()
    ) -> None:
        """Wait until only `state`'s configuration takes new connections (a reload is asynchronous).

        The new workers answer `/_ingress/health` with the new generation; the old ones are told to
        quit after that, and stop accepting connections as they do ("worker process is shutting down").
        """
        deadline = time.monotonic() + self.ready_timeout_seconds
        last = "no answer"
        with requests.Session() as http:
            http.trust_env = False  # loopback: never through a proxy from the environment
            while True:
                try:
                    response = http.get(f"{state.url}/_ingress/health", timeout=2, headers={"Connection": "close"})
                    generation = response.json().get("generation") if response.status_code == 200 else None
                    accepting = sorted(pid for pid in old_workers if _still_accepting(pid))
                    if generation == state.generation and not accepting:
                        return
                    last = f"HTTP {response.status_code}, generation {generation} (want {state.generation})"
                    if accepting:
                        last += f", old workers {accepting} still accept connections"
                except (requests.RequestException, ValueError) as error:
                    last = type(error).__name__
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        raise IngressConfigError(
            f"ingress {state.environment!r}: {state.url} did not serve configuration generation {state.generation} "
            f"within {self.ready_timeout_seconds:.0f}s ({last}). Last lines of {paths.error_log}:\n"
            f"{_log_tail(paths.error_log)}"
        )

    def _stop(self, paths: EnvironmentPaths, pid: int) -> None:
        """Graceful quit (SIGQUIT), then fast shutdown (SIGTERM), then SIGKILL; each bounded."""
        for sig, share in ((signal.SIGQUIT, 0.6), (signal.SIGTERM, 0.3), (signal.SIGKILL, 0.1)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + max(1.0, self.stop_timeout_seconds * share)
            while time.monotonic() < deadline:
                if not _is_our_master(pid, paths):
                    return
                time.sleep(0.05)
        raise IngressConfigError(f"nginx master {pid} of {paths.root} did not stop")

    # ------------------------------------------------------------------ helpers

    def _paths(self, environment: str) -> EnvironmentPaths:
        root = Path(self.state_dir)
        if not root.is_absolute():
            raise IngressConfigError(f"state_dir must be an absolute path, not {self.state_dir!r}")
        if UNSAFE_PATH.search(str(root)):
            raise IngressConfigError(f"state_dir {self.state_dir!r} has characters an nginx configuration cannot hold")
        return EnvironmentPaths(root / environment)

    @contextmanager
    def _locked(self, environment: str) -> Iterator[None]:
        """An exclusive lock per environment, across threads and processes (it outlives `remove`)."""
        locks = Path(self.state_dir) / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{environment}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _master_pid(self, paths: EnvironmentPaths) -> int | None:
        """The pid of this environment's running nginx master, if one runs."""
        try:
            pid = int(paths.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_master(pid, paths) else None

    def _nginx(self) -> str:
        return _resolve_binary(self.nginx_binary)

    def _settings(self) -> RenderSettings:
        return RenderSettings(
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            next_upstream_tries=self.next_upstream_tries,
            temp_paths=tuple(_temp_path_directives(self._nginx(), self.command_timeout_seconds)),
        )


# ---------------------------------------------------------------------- validation


def _check_environment(environment: str) -> None:
    if not ENVIRONMENT_NAME.match(environment):
        raise IngressConfigError(f"invalid environment name {environment!r} (lowercase letters, digits, -)")


def _check_service(environment: str, service: str) -> None:
    if not SERVICE_NAME.match(service):
        raise IngressConfigError(
            f"ingress {environment!r}: invalid service name {service!r} (lowercase letters, digits, -; a letter first)"
        )


def _check_listen(environment: str, address: str, port: int) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise IngressConfigError(f"ingress {environment!r}: {address!r} is not an IPv4 address") from None
    if not ip.is_loopback:
        raise IngressConfigError(f"ingress {environment!r}: {address} is not a loopback address (127.0.0.0/8)")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise IngressConfigError(f"ingress {environment!r}: invalid port {port!r}")
    return str(ip)


def _check_backend(environment: str, service: str, backend: str) -> str:
    """`host:port` with a loopback IP literal (IPv6 as `[::1]:port`); returned normalised."""
    problem = f"ingress {environment!r}, service {service!r}: invalid backend {backend!r}"
    match = re.fullmatch(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>\d{1,5})", backend.strip())
    if match is None:
        raise IngressConfigError(f"{problem}: expected address:port with an IP address, e.g. 127.0.2.1:8081")
    try:
        ip = ipaddress.ip_address(match["v6"] or match["v4"])
    except ValueError:
        raise IngressConfigError(f"{problem}: not an IP address") from None
    if not ip.is_loopback:
        raise IngressConfigError(f"{problem}: not a loopback address; local environments never leave the machine")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise IngressConfigError(f"{problem}: port out of range")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


# ---------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderSettings:
    connect_timeout_seconds: float
    read_timeout_seconds: float
    next_upstream_tries: int
    temp_paths: tuple[str, ...]


def _upstream_name(service: str) -> str:
    return f"svc_{service}"


def _render(state: IngressState, paths: EnvironmentPaths, settings: RenderSettings) -> dict[str, str]:
    """Every file of `state`'s configuration: relative path -> text."""
    files = {"nginx.conf": _render_main(state, paths, settings)}
    for service, backends in sorted(state.routes.items()):
        files[f"routes/{service}.conf"] = _render_route(state.environment, service, backends)
    return files


def _json_body(payload: dict[str, object]) -> str:
    """A JSON body for nginx's `return`, as a single-quoted nginx string (names are validated: no quotes)."""
    return "'" + json.dumps(payload, separators=(",", ":")) + "\\n'"


def _render_main(state: IngressState, paths: EnvironmentPaths, settings: RenderSettings) -> str:
    header = json.dumps(
        {"environment": state.environment, "address": state.address, "port": state.port, "generation": state.generation}
    )
    health = _json_body({"environment": state.environment, "generation": state.generation, "status": "ok"})
    temp = "\n".join(
        f'    {directive} "{paths.tmp / directive.removesuffix("_temp_path")}";' for directive in settings.temp_paths
    )
    locations = "\n".join(_render_location(state.environment, s, bool(b)) for s, b in sorted(state.routes.items()))
    return f"""{HEADER_PREFIX}{header}
# The {state.environment} entry point, written by fintech-release: every change renders this whole
# directory anew, checks it with `nginx -t` and swaps it in. Edits by hand are overwritten.
daemon on;
worker_processes 1;
pid "{paths.pid_file}";
error_log "{paths.error_log}" warn;

events {{
    worker_connections 512;
}}

http {{
    access_log "{paths.logs / 'access.log'}";
{temp}
    server_tokens off;
    default_type application/octet-stream;
    client_max_body_size 10m;

    # Bodies stay in memory: the workers never write below the state directory.
    proxy_request_buffering off;
    proxy_max_temp_file_size 0;
    # One connection per request to the backends: the JDK's HTTP server resets reused keep-alive
    # connections now and then, and on loopback a fresh connection costs next to nothing.
    proxy_http_version 1.1;
    proxy_set_header Connection close;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_connect_timeout {_seconds(settings.connect_timeout_seconds)};
    proxy_read_timeout {_seconds(settings.read_timeout_seconds)};
    proxy_send_timeout {_seconds(settings.read_timeout_seconds)};
    # A backend that goes away (or is restarting) is skipped; POST and other non-idempotent
    # requests are never sent twice.
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries {settings.next_upstream_tries};
    proxy_next_upstream_timeout {_seconds(settings.connect_timeout_seconds * settings.next_upstream_tries + 5)};

    include routes/*.conf;

    server {{
        listen {state.address}:{state.port};
        server_name _;

        location = / {{
            default_type application/json;
            return 200 {health};
        }}
        location = /_ingress/health {{
            default_type application/json;
            return 200 {health};
        }}
{locations}
        location / {{
            default_type application/json;
            return 404 {_json_body({"environment": state.environment, "error": "no such route"})};
        }}
    }}
}}
"""


def _render_location(environment: str, service: str, has_backends: bool) -> str:
    if has_backends:
        target = f"""            proxy_pass http://{_upstream_name(service)}/;
            proxy_set_header X-Forwarded-Prefix /{service};"""
    else:
        target = f"""            default_type application/json;
            add_header Retry-After 5 always;
            return 503 {_json_body({"environment": environment, "error": "no backends", "service": service})};"""
    # `/svc/x` -> backend `/x` (the location prefix is replaced by proxy_pass's `/`); `/svc` -> `/`.
    return f"""        location /{service}/ {{
{target}
        }}
        location = /{service} {{
{target}
        }}"""


def _render_route(environment: str, service: str, backends: list[str]) -> str:
    head = f"# /{service}/ in {environment}: the backends of {service}, written by fintech-release.\n"
    if not backends:
        return head + "# backends: none (the entry point answers 503)\n"
    # max_fails=0: a transient error never takes every backend out at once; a failed attempt moves
    # on to the next backend (proxy_next_upstream), and backends leave only when the runtime says so.
    servers = "".join(f"    server {backend} max_fails=0;\n" for backend in backends)
    return head + f"upstream {_upstream_name(service)} {{\n{servers}}}\n"


def _seconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


# ---------------------------------------------------------------------- reading state


def _read_state(environment: str, paths: EnvironmentPaths) -> IngressState | None:
    """The live configuration's state, read back from its files (None when there is none)."""
    main = paths.current / "nginx.conf"
    try:
        first_line = main.read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        return None
    if not first_line.startswith(HEADER_PREFIX):
        raise IngressConfigError(f"ingress {environment!r}: {main} was not written by fintech-release")
    header = json.loads(first_line.removeprefix(HEADER_PREFIX))
    routes: dict[str, list[str]] = {}
    for route in sorted((paths.current / "routes").glob("*.conf")):
        routes[route.stem] = [
            match.group(1) for line in route.read_text().splitlines() if (match := SERVER_LINE.match(line))
        ]
    return IngressState(environment, header["address"], int(header["port"]), routes, int(header["generation"]))


def _next_generation(paths: EnvironmentPaths, current: IngressState | None) -> int:
    """One more than any configuration directory there is (a failed candidate's number is not reused)."""
    numbers = [int(m.group(1)) for p in paths.root.glob("conf.*") if (m := CONF_DIR.match(p.name))]
    return max([current.generation if current else 0, *numbers]) + 1


def _write_files(directory: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _swap_current(paths: EnvironmentPaths, candidate: Path) -> None:
    """Point `current` at `candidate` in one atomic rename."""
    link = paths.root / f".current.{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(candidate.name)
    os.replace(link, paths.current)


def _remove_old_conf_dirs(paths: EnvironmentPaths, keep: Path) -> None:
    for directory in paths.root.glob("conf.*"):
        if directory != keep and CONF_DIR.match(directory.name):
            shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------- processes


def _is_our_master(pid: int, paths: EnvironmentPaths) -> bool:
    """True if `pid` is a live (not zombie) nginx master started for `paths`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False
    return state != "Z" and "nginx: master process" in cmdline and f"{paths.root}/" in cmdline


def _resolve_binary(name: str) -> str:
    if "/" in name:
        return name
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or name


def _workers_of(master: int) -> frozenset[int]:
    """The pids of `master`'s children (its workers)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if int(fields[1]) == master:
            children.add(int(stat.parent.name))
    return frozenset(children)


def _still_accepting(worker: int) -> bool:
    """True while an old worker has not yet begun its graceful shutdown (it may accept connections)."""
    try:
        cmdline = Path(f"/proc/{worker}/cmdline").read_bytes().decode(errors="replace")
        state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False
    return state != "Z" and "nginx: worker process" in cmdline and "shutting down" not in cmdline


@functools.lru_cache(maxsize=8)
def _temp_path_directives(nginx: str, timeout: float) -> list[str]:
    """The temporary-path directives this nginx build knows (e.g. nginx-light may lack uwsgi)."""
    completed = run_tool([nginx, "-V"], tool="nginx", install_hint=NGINX_INSTALL_HINT, timeout_seconds=timeout)
    build = completed.stdout + completed.stderr
    return [
        directive
        for directive, module in TEMP_PATHS.items()
        if module is None or f"--without-{module}_module" not in build
    ]


def _nginx_error(output: str) -> str:
    """nginx's own error lines ([emerg]/[alert]/[crit]); the output's tail when there are none."""
    lines = [
        # "2024/01/01 12:00:00 [emerg] 123#123: unknown directive …" -> "[emerg] unknown directive …"
        re.sub(r"^.*?(\[(?:emerg|alert|crit)\])(?: \d+#\d+:)?", r"\1", line.strip())
        for line in output.splitlines()
        if re.search(r"\[(emerg|alert|crit)\]", line)
    ]
    return " | ".join(lines) if lines else (output.strip() or "(no output)")


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except FileNotFoundError:
        return f"(no log at {path})"


__all__ = ["IngressState", "LocalNginxIngress"]
