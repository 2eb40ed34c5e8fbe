"""Real external components the test suite starts and stops itself.

Covers the process management behind the fixtures in ``conftest.py``:

* a Docker engine (an already running one is reused; otherwise ``dockerd``
  is started for the session and stopped again at the end),
* a Docker registry (Debian's ``/usr/bin/docker-registry``) on a free
  127.0.0.1 port with throw-away storage; optionally over TLS with a
  certificate from a throw-away CA and with htpasswd (bcrypt) logins,
* throw-away git repositories (a work tree plus a bare clone acting as the
  "remote"), driven through the ``git`` command line with no dependency on
  the user's global or system git configuration.

Nothing here is a mock: every helper runs the real program. All network
traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TypeVar

import bcrypt
import docker
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCALHOST = "127.0.0.1"
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKERD_ARGS = ("--iptables=false", "--bridge=none", "--live-restore")
REGISTRY_BINARY = "/usr/bin/docker-registry"


class ComponentError(RuntimeError):
    """A component could not be started; the message says why and shows its log."""


# --------------------------------------------------------------------------- #
# Generic helpers
# --------------------------------------------------------------------------- #

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The socket is closed before returning, so the port is free but not
    reserved: another process could grab it before the caller binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def on_a_free_port(start: Callable[[int], T], attempts: int = 3) -> T:
    """`start(port)` on a free port, again on another when it fails (another process may take a free port first).

    `start` cleans up after itself when it raises ComponentError; the last error is raised after `attempts`.
    """
    last_error: ComponentError | None = None
    for _ in range(attempts):
        try:
            return start(free_port())
        except ComponentError as error:
            last_error = error
    assert last_error is not None
    raise last_error


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    """Answer the request `handler` serves with `body` as JSON (what every loopback stand-in API answers with)."""
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def log_tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a log file (or a note if it is missing)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    abort: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed.

    ``abort`` is checked between polls; when it returns true (e.g. the
    process we wait for has died) waiting stops early. Returns whether
    ``condition`` became true.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if (abort is not None and abort()) or time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class ManagedProcess:
    """A background process we started, with its output going to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start the process in its own session (so Ctrl-C in pytest does not hit it first)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exited(self) -> bool:
        """True once the process has terminated (or was never started)."""
        return self.popen is None or self.popen.poll() is not None

    def stop(self, timeout: float = 20.0) -> None:
        """Send SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def failure(self, what: str) -> ComponentError:
        """Build an error for a failed start that includes the log tail."""
        code = self.popen.poll() if self.popen else None
        state = f"exited with code {code}" if code is not None else "still running"
        return ComponentError(
            f"{what} ({self.name} {state}; pid {self.pid}).\n"
            f"Command: {' '.join(self.argv)}\n"
            f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )


def _local_http() -> requests.Session:
    """A requests session that ignores proxy settings from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


# --------------------------------------------------------------------------- #
# Docker engine
# --------------------------------------------------------------------------- #


def docker_engine_answers(base_url: str) -> bool:
    """True if a Docker engine answers ``ping`` at ``base_url``."""
    import docker

    try:
        client = docker.DockerClient(base_url=base_url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False
    finally:
        client.close()


@dataclass
class DockerEngine:
    """A Docker engine the suite talks to, and the ``dockerd`` we started (if any)."""

    base_url: str
    process: ManagedProcess | None = None

    @property
    def started_by_us(self) -> bool:
        return self.process is not None

    @classmethod
    def ensure_running(
        cls,
        log_path: Path,
        *,
        base_url: str | None = None,
        extra_args: tuple[str, ...] = (),
        timeout: float = 60.0,
    ) -> DockerEngine:
        """Reuse a running engine, or start ``dockerd`` and wait for it.

        ``base_url`` defaults to ``DOCKER_HOST`` if set (that engine must
        already run: we cannot start a remote one), else the default unix
        socket. When nothing answers on a unix socket, ``dockerd
        --iptables=false --bridge=none [extra_args]`` is started (needs
        root); pass ``--host``/``--data-root``/``--exec-root``/``--pidfile``
        in ``extra_args`` to run a private engine next to the system one.
        """
        docker_host = os.environ.get("DOCKER_HOST")
        if base_url is None and docker_host:
            if docker_engine_answers(docker_host):
                return cls(base_url=docker_host)
            raise ComponentError(f"DOCKER_HOST={docker_host} is set but no Docker engine answers there.")

        base_url = base_url or DEFAULT_DOCKER_SOCKET
        if docker_engine_answers(base_url):
            return cls(base_url=base_url)

        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not Path(dockerd).exists():
            raise ComponentError(
                "No Docker engine is running and dockerd is not installed (apt-get install docker.io)."
            )
        if os.geteuid() != 0:
            raise ComponentError(
                f"No Docker engine answers at {base_url} and starting dockerd needs root. "
                "Start Docker (e.g. `make test` does it) and run the tests again."
            )

        process = ManagedProcess("dockerd", [dockerd, *DOCKERD_ARGS, *extra_args], log_path).start()
        if wait_until(lambda: docker_engine_answers(base_url), timeout=timeout, interval=0.5, abort=process.exited):
            return cls(base_url=base_url, process=process)
        if process.exited() and docker_engine_answers(base_url):
            # Someone else started an engine at the same moment; ours lost the race.
            return cls(base_url=base_url)
        process.stop()
        raise process.failure(f"dockerd did not answer at {base_url} within {timeout:.0f}s")

    def stop(self) -> None:
        """Stop ``dockerd`` only if this object started it."""
        if self.process is not None:
            self.process.stop(timeout=30)


# --------------------------------------------------------------------------- #
# Docker registry
# --------------------------------------------------------------------------- #


def registry_config(
    port: int, storage_dir: Path, *, tls: RegistryTls | None = None, htpasswd: Path | None = None
) -> str:
    """Return a docker-registry (distribution 2.x) config for 127.0.0.1:``port``, with TLS and htpasswd if given."""
    config = (
        "version: 0.1\n"
        "log:\n"
        "  level: info\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {storage_dir}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: {LOCALHOST}:{port}\n"
    )
    if tls is not None:
        config += f"  tls:\n    certificate: {tls.certificate}\n    key: {tls.key}\n"
    if htpasswd is not None:
        config += f"auth:\n  htpasswd:\n    realm: fintech-release-test\n    path: {htpasswd}\n"
    return config


def registry_answers(url: str, verify: str | bool = True) -> bool:
    """True if a registry answers ``GET /v2/`` at ``url`` with 200, or 401 when it wants credentials."""
    try:
        with _local_http() as http:
            return http.get(f"{url}/v2/", timeout=2, verify=verify).status_code in (200, 401)
    except requests.RequestException:
        return False


@dataclass(frozen=True)
class RegistryTls:
    """A throw-away CA and the registry certificate it signed for 127.0.0.1 (PEM files)."""

    ca_certificate: Path
    certificate: Path
    key: Path


def throwaway_ca(folder: Path) -> RegistryTls:
    """A CA made here, and a server certificate for 127.0.0.1 signed by it; valid for one day."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fintech-release test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOCALHOST)])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOCALHOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = RegistryTls(folder / "ca.crt", folder / "registry.crt", folder / "registry.key")
    tls.ca_certificate.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """An htpasswd file with bcrypt hashes (the only kind docker-registry accepts)."""
    hashed = {user: bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=4)).decode() for user, secret in users.items()}
    lines = [f"{user}:{digest}" for user, digest in hashed.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class RegistryServer:
    """A ``docker-registry serve`` process on 127.0.0.1 with its own storage; TLS and htpasswd when asked."""

    port: int
    workdir: Path
    process: ManagedProcess | None = None
    tls: RegistryTls | None = None
    htpasswd: Path | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form used in image references."""
        return f"{LOCALHOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def verify(self) -> str | bool:
        """What requests verifies the registry's certificate with."""
        return str(self.tls.ca_certificate) if self.tls else True

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "storage"

    @classmethod
    def start(
        cls, workdir: Path, timeout: float = 30.0, attempts: int = 3, *,
        tls: RegistryTls | None = None, htpasswd: Path | None = None,
    ) -> RegistryServer:
        """Start a registry on a free port, retrying if the port was taken meanwhile."""
        if not Path(REGISTRY_BINARY).exists():
            raise ComponentError(f"{REGISTRY_BINARY} is missing (apt-get install docker-registry).")

        def launch(port: int) -> RegistryServer:
            server = cls(port=port, workdir=workdir / f"port-{port}", tls=tls, htpasswd=htpasswd)
            server._launch(timeout)
            return server

        return on_a_free_port(launch, attempts)

    def _launch(self, timeout: float) -> None:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(registry_config(self.port, self.storage_dir, tls=self.tls, htpasswd=self.htpasswd))
        # docker-registry reads every REGISTRY_* variable as a config override.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.process = ManagedProcess(
            "docker-registry", [REGISTRY_BINARY, "serve", str(config)], self.workdir / "registry.log"
        ).start(env=env)
        if wait_until(lambda: registry_answers(self.url, self.verify), timeout=timeout, abort=self.process.exited):
            return
        self.process.stop()
        raise self.process.failure(f"registry did not answer at {self.url}/v2/ within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)


# --------------------------------------------------------------------------- #
# Git repositories
# --------------------------------------------------------------------------- #

# A fixed starting point for commit dates; each commit is one minute later.
_GIT_EPOCH = 1_700_000_000


def git_env(author_name: str, author_email: str, timestamp: int) -> dict[str, str]:
    """Environment for deterministic git commands that ignore global/system config."""
    date = f"{timestamp} +0000"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=author_name,
        GIT_AUTHOR_EMAIL=author_email,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_NAME=author_name,
        GIT_COMMITTER_EMAIL=author_email,
        GIT_COMMITTER_DATE=date,
    )
    return env


def run_git(args: list[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Run ``git ARGS`` in ``cwd`` and return stdout; raise with stderr on failure."""
    result = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ComponentError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class GitBareRepo:
    """A bare repository (the "remote") plus the work tree that pushes to it."""

    bare_path: Path
    work_path: Path
    author_name: str
    branch: str = "master"
    _commits: int = 0

    def _env(self, author_email: str, author_name: str | None) -> dict[str, str]:
        self._commits += 1
        return git_env(author_name or self.author_name, author_email, _GIT_EPOCH + 60 * self._commits)

    def commit(
        self,
        files: Mapping[str, str],
        message: str,
        author_email: str,
        author_name: str | None = None,
    ) -> str:
        """Write ``files`` (path relative to the repo root -> text), commit, push; return the sha."""
        for relative, content in files.items():
            target = self.work_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        env = self._env(author_email, author_name)
        run_git(["add", "-A"], self.work_path, env)
        run_git(["commit", "-q", "--allow-empty", "-m", message], self.work_path, env)
        run_git(["push", "-q", "origin", f"HEAD:{self.branch}"], self.work_path, env)
        return self.head()

    def head(self) -> str:
        """The commit sha the bare repository's branch points to."""
        return run_git(["rev-parse", self.branch], self.bare_path, git_env(self.author_name, "", _GIT_EPOCH))

    @classmethod
    def create(
        cls,
        root: Path,
        source: Path | None,
        *,
        author_name: str,
        author_email: str,
        message: str,
        name: str = "repo",
    ) -> GitBareRepo:
        """Copy ``source`` into a fresh work tree under ``root``, commit it, and make a bare clone."""
        work = root / f"{name}-work"
        bare = root / f"{name}.git"
        if source is not None:
            shutil.copytree(source, work, ignore=shutil.ignore_patterns("build", ".gradle", ".git"))
        else:
            work.mkdir(parents=True)
        repo = cls(bare_path=bare, work_path=work, author_name=author_name)
        env = repo._env(author_email, author_name)
        run_git(["init", "-q", "-b", repo.branch], work, env)
        run_git(["add", "-A"], work, env)
        run_git(["commit", "-q", "--allow-empty", "-m", message], work, env)
        run_git(["clone", "-q", "--bare", str(work), str(bare)], root, env)
        run_git(["remote", "add", "origin", str(bare)], work, env)
        return repo


def remove_images(client: docker.DockerClient, reference_matches: Callable[[str], bool]) -> None:
    """Remove every tag and repository digest for which `reference_matches` is true.

    By reference, not by image id: builds are reproducible, so another session on the same engine
    may hold the same image under its own tags, and may be running it (then the image stays).
    """
    for image in client.images.list():
        for reference in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if reference_matches(reference):
                try:
                    client.images.remove(reference, force=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
