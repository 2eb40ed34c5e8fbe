"""Build the Java runtime base image locally.

No image can be pulled from a registry on the build machines, so the base image that the
service Dockerfiles start from (``FROM fintech-release/jre:17``) is assembled here: a JRE
cut down with ``jlink`` from the host's JDK, the glibc files it loads (found with ``ldd``),
a few files under /etc, written as a deterministic root-filesystem tarball and imported
into the Docker engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound

# What the services use (HTTP server and client, logging) plus what a JDBC driver and its
# pool need later: JDBC, JNDI, JMX, Kerberos/GSSAPI authentication, row sets, TLS with EC
# keys, DNS look-ups through JNDI and sun.misc.Unsafe. jlink adds what these require
# (java.xml, java.transaction.xa, java.security.sasl).
JRE_MODULES: tuple[str, ...] = (
    "java.base",
    "java.logging",
    "java.management",
    "java.naming",
    "java.net.http",
    "java.security.jgss",
    "java.sql",
    "java.sql.rowset",
    "jdk.crypto.ec",
    "jdk.httpserver",
    "jdk.naming.dns",
    "jdk.unsupported",
)

JAVA_HOME_IN_IMAGE = "/opt/java"
APP_UID = 10001
# The MariaDB JDBC driver Debian packages (libmariadb-java), at the path the services' jar manifests
# name in Class-Path: the base image carries it, so a driver update flows like a JDK update
# (rebuild the base image, every service image turns stale) and the services compile against java.sql only.
JDBC_DRIVER = Path("/usr/share/java/mariadb-java-client.jar")
JDBC_DRIVER_IN_IMAGE = "/opt/jdbc/mariadb-java-client.jar"

# Without a UTF-8 locale, Java 17 encodes standard output and file names as ASCII.
_LOCALE_DIR = Path("/usr/lib/locale/C.utf8")
_ETC_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"app:x:{APP_UID}:{APP_UID}:app:/app:/sbin/nologin\n"
    ),
    "etc/group": f"root:x:0:\napp:x:{APP_UID}:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}
_EMPTY_DIRS = {"app": 0o755, "tmp": 0o1777}
_IMAGE_CHANGES = (
    f"ENV PATH={JAVA_HOME_IN_IMAGE}/bin:/usr/bin:/bin",
    f"ENV JAVA_HOME={JAVA_HOME_IN_IMAGE}",
    "ENV LANG=C.UTF-8",
    "WORKDIR /app",
    f"USER {APP_UID}",
)
# What an imported base image was made from: the root filesystem's digest and the settings above. An image in the
# engine carrying the same value is that image, so importing again (a new image id) is not needed.
BASE_IMAGE_LABEL = "io.fintech-release.base-image"
_JLINK_TIMEOUT_S = 600
_LDD_TIMEOUT_S = 60
_ELF_MAGIC = b"\x7fELF"
# ldd lines: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)",
# "libjvm.so => not found" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
_LDD_RESOLVED = re.compile(r"^\s*(\S+) => (/\S+) \(0x[0-9a-f]+\)$")
_LDD_MISSING = re.compile(r"^\s*(\S+) => not found$")
_LDD_LOADER = re.compile(r"^\s*(/\S+) \(0x[0-9a-f]+\)$")


class BaseImageError(RuntimeError):
    """The base image could not be built or imported."""


def build_jre_rootfs(tar_path: Path, *, java_home: Path, modules: Sequence[str] = JRE_MODULES) -> str:
    """Write a root-filesystem tarball holding a jlink'ed JRE plus the glibc files it needs; return its sha256.

    The tarball is deterministic: the same JDK, modules and host libraries give the same bytes.
    """
    jlink = Path(java_home) / "bin" / "jlink"
    if not jlink.is_file():
        raise BaseImageError(f"jlink not found at {jlink}: JAVA_HOME must point to a JDK, not a JRE")
    ldd = shutil.which("ldd")
    if ldd is None:
        raise BaseImageError("ldd not found on PATH (Debian ships it in libc-bin)")
    if not modules:
        raise BaseImageError("no Java modules given to jlink")
    if not _LOCALE_DIR.is_dir():
        raise BaseImageError(f"{_LOCALE_DIR} is missing (Debian ships it in libc-bin)")
    if not JDBC_DRIVER.is_file():
        raise BaseImageError(f"{JDBC_DRIVER} is missing: install the MariaDB JDBC driver (apt-get install "
                             "libmariadb-java)")

    tar_path = Path(tar_path)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jre-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        java_dir = root / JAVA_HOME_IN_IMAGE.lstrip("/")
        java_dir.parent.mkdir(parents=True)
        _run(
            [str(jlink), "--strip-debug", "--no-header-files", "--no-man-pages", "--compress=2",
             "--add-modules", ",".join(modules), "--output", str(java_dir)],
            timeout=_JLINK_TIMEOUT_S,
        )
        for library in sorted(_shared_library_deps(java_dir, ldd)):
            target = root / library.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            # The real file (symlinks followed) at the path ldd named, keeping its mode: the
            # kernel refuses to run a dynamic loader without its execute bit.
            shutil.copy(library, target)
        shutil.copytree(_LOCALE_DIR, root / str(_LOCALE_DIR).lstrip("/"))
        driver = root / JDBC_DRIVER_IN_IMAGE.lstrip("/")
        driver.parent.mkdir(parents=True)
        shutil.copyfile(JDBC_DRIVER.resolve(), driver)
        for name, content in _ETC_FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content, encoding="utf-8")
        for name in _EMPTY_DIRS:
            (root / name).mkdir()

        partial = tar_path.with_name(tar_path.name + ".partial")
        try:
            _write_tarball(root, partial)
            os.replace(partial, tar_path)
        finally:
            partial.unlink(missing_ok=True)
    with tar_path.open("rb") as tarball:
        return hashlib.file_digest(tarball, "sha256").hexdigest()


def base_image_label(content_sha256: str) -> str:
    """The label value naming a base image made of this root filesystem and this code's image settings."""
    settings = hashlib.sha256("\n".join(_IMAGE_CHANGES).encode()).hexdigest()[:16]
    return f"sha256:{content_sha256} settings:{settings}"


def imported_base_image(client: docker.DockerClient, reference: str, content_sha256: str) -> str | None:
    """The id of the engine's `reference` when it already is the base image of this content, else None."""
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        return None
    except DockerException as exc:
        raise BaseImageError(f"reading {reference} from the Docker engine failed: {exc}") from exc
    return image.id if image.labels.get(BASE_IMAGE_LABEL) == base_image_label(content_sha256) else None


def import_base_image(
    client: docker.DockerClient, tar_path: Path, *, repository: str = "fintech-release/jre", tag: str = "17",
    content_sha256: str | None = None,
) -> str:
    """Import the tarball into the Docker engine as an image; return the image id.

    The image gets ENV PATH/JAVA_HOME/LANG, WORKDIR /app and USER 10001 (the "app" user in
    /etc/passwd), and, given the tarball's sha256, the label that `imported_base_image` recognizes;
    the tarball has no shell, so derived images can COPY but not RUN.
    """
    tar_path = Path(tar_path)
    # The SDK treats a string that is not an existing file as a URL for the engine to fetch.
    if not tar_path.is_file():
        raise BaseImageError(f"{tar_path} does not exist: build it with build_jre_rootfs() first")
    reference = f"{repository}:{tag}"
    label = [f'LABEL {BASE_IMAGE_LABEL}="{base_image_label(content_sha256)}"'] if content_sha256 else []
    try:
        output = client.api.import_image(
            src=str(tar_path), repository=repository, tag=tag, changes=[*_IMAGE_CHANGES, *label]
        )
        for line in output.splitlines():
            error = _stream_error(line)
            if error:
                raise BaseImageError(f"importing {tar_path} as {reference} failed: {error}")
        imported = client.images.get(reference).id
        if not imported:
            raise BaseImageError(f"importing {tar_path} as {reference}: the Docker engine reports no image id")
        return imported
    except DockerException as exc:
        raise BaseImageError(f"importing {tar_path} as {reference} failed: {exc}") from exc


def _stream_error(line: str) -> str | None:
    """The error in one line of the engine's JSON progress stream, if it reports one."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message.get("error") if isinstance(message, dict) else None


def _run(command: list[str], *, timeout: float) -> str:
    """Run a command and return its standard output; raise BaseImageError naming it if it fails."""
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
    except OSError as exc:
        raise BaseImageError(f"cannot run {shlex.join(command)}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BaseImageError(f"{shlex.join(command)} timed out after {timeout} s") from exc
    if result.returncode != 0:
        # jlink reports some errors, such as an unknown module, on standard output.
        output = result.stderr.strip() or result.stdout.strip()
        raise BaseImageError(f"{shlex.join(command)} failed with exit code {result.returncode}: {output}")
    return result.stdout


def _shared_library_deps(java_dir: Path, ldd: str) -> set[str]:
    """Absolute paths of the host libraries (and the dynamic loader) that the JRE's ELF files load."""
    java_dir = java_dir.resolve()
    bundled = {path.name for path in java_dir.rglob("*") if path.is_file()}
    deps: set[str] = set()
    for elf in sorted(path for path in java_dir.rglob("*") if _is_elf(path)):
        for line in _run([ldd, str(elf)], timeout=_LDD_TIMEOUT_S).splitlines():
            if resolved := _LDD_RESOLVED.match(line):
                library = resolved.group(2)
                if not Path(library).resolve().is_relative_to(java_dir):
                    deps.add(library)
            elif missing := _LDD_MISSING.match(line):
                # libjvm.so is found at run time: the launcher loads it before the other libraries.
                if missing.group(1) not in bundled:
                    raise BaseImageError(f"{elf} needs {missing.group(1)}, which ldd cannot find")
            elif loader := _LDD_LOADER.match(line):
                deps.add(loader.group(1))
    return deps


def _is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as file:
        return file.read(len(_ELF_MAGIC)) == _ELF_MAGIC


def _write_tarball(root: Path, tar_path: Path) -> None:
    """Tar up ``root`` with sorted entries, owner root and mtime 0, so equal trees give equal bytes."""
    paths: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        paths.extend(Path(directory, name) for name in dirnames + filenames)
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
            name = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isdir():
                info.mode = _EMPTY_DIRS.get(name, 0o755)
            elif info.isreg():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
            if info.isreg():
                with path.open("rb") as file:
                    tar.addfile(info, file)
            else:
                tar.addfile(info)
