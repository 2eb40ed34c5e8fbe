"""The formats release.yaml values must have to work where they go: git, Docker, Kubernetes, Helm, MySQL, SMTP, HTTP.

Each `check_*` returns the value or raises `ValueError` saying what is wrong; pydantic turns that into one line
naming the field and the value. The grammars are the tools' own: git's `check-ref-format --branch`
(refs.c), the image reference grammar of github.com/distribution/reference, RFC 1123 host names, the
Kubernetes quantity forms the microservice chart's schema accepts. `FieldError` names a place inside the
value (a key of a mapping, a field of a model) so the error points at that line.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import PurePosixPath
from urllib.parse import urlsplit

SHOWN_LENGTH = 200
# Set by the runtime in every replica (local containers and the microservice chart alike).
# The database contract: DB_PASSWORD_FILE names a read-only file holding the password (never the password itself).
DATABASE_VARIABLES = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD_FILE")
RUNTIME_VARIABLES = ("PORT", "BIND_ADDRESS", "APP_ENV", *DATABASE_VARIABLES)


class FieldError(ValueError):
    """A rule broken at `loc` below the value being validated, e.g. ('services', 2, 'database')."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def shown(value: object) -> str:
    """`repr(value)` cut to about 200 characters, so a value in an error message stays short and on one line."""
    text = repr(value)
    return text if len(text) <= SHOWN_LENGTH else f"{text[:SHOWN_LENGTH]}…"


# --- git ----------------------------------------------------------------------------------------------------------

# Characters refs.c refuses anywhere in a ref name: controls, space, ~ ^ : ? * [ \ and DEL.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_branch_name(value: str) -> str:
    """A name `git check-ref-format --branch` accepts: it can never be read as an option or a revision expression."""
    problem = _branch_problem(value)
    if problem:
        raise ValueError(f"not a git branch name: {problem}")
    return value


def _branch_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-'"
    if name in ("HEAD", "@"):
        return f"{name!r} is reserved"
    if forbidden := _REF_FORBIDDEN.search(name):
        return f"it contains {forbidden.group()!r}"
    for part in ("..", "@{", "//"):
        if part in name:
            return f"it contains {part!r}"
    if name.startswith("/") or name.endswith("/") or name.endswith("."):
        return "it starts or ends with '/', or ends with '.'"
    for component in name.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return f"the part {component!r} starts with '.' or ends with '.lock'"
    return None


def check_not_an_option(value: str) -> str:
    """A non-empty string that does not start with '-', so no command line can take it for an option."""
    if not value or value.startswith("-"):
        raise ValueError("must not be empty or start with '-'")
    return value


# --- names --------------------------------------------------------------------------------------------------------

ENVIRONMENT_NAME = re.compile(r"[a-z]([a-z0-9-]{0,19}[a-z0-9])?")


def check_environment_name(value: str) -> str:
    """An environment name that works everywhere it goes.

    It is an asset-key prefix, a Kubernetes and Docker label value, a Terraform state prefix and the start of
    MySQL database names; in Dagster names (jobs, ops, groups, sensors) its '-' becomes '_'
    (records/keys.py: dagster_name), which is why '_' itself is not allowed.
    """
    if not ENVIRONMENT_NAME.fullmatch(value):
        raise ValueError("must be 1-21 lowercase letters, digits and '-' (a letter first, no '-' last), e.g. pre-prod")
    return value


# --- hosts and URLs -----------------------------------------------------------------------------------------------


def check_ipv4_cidr(value: str) -> str:
    """An IPv4 network in CIDR form without host bits, e.g. 10.0.0.0/8 (what a NetworkPolicy ipBlock takes)."""
    try:
        network = IPv4Network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"must be an IPv4 network such as 10.0.0.0/8: {exc}") from None
    if "/" not in value or str(network) != value:
        raise ValueError(f"must be an IPv4 network in CIDR form such as 10.0.0.0/8 (did you mean {network}?)")
    return value


_DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def is_host(value: str) -> bool:
    """An IPv4 or IPv6 address or an RFC 1123 host name (underscores allowed, as resolvers do)."""
    for address in (IPv4Address, IPv6Address):
        try:
            address(value)
            return True
        except ValueError:
            pass
    labels = value.split(".")
    named = not all(label.isdigit() for label in labels)  # 999.1.1.1 is a bad address, not a name
    return named and 0 < len(value) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def check_host(value: str) -> str:
    """A host name or an IP address, e.g. 127.0.0.1 or smtp.bank.example."""
    if not is_host(value):
        raise ValueError("must be a host name or an IP address, e.g. 127.0.0.1 or smtp.bank.example")
    return value


def check_http_url(value: str) -> str:
    """An http(s) URL with a host, a valid port and no credentials (those come from *_env settings)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # e.g. a port out of range or not a number
        raise ValueError(f"must be an http(s) URL: {exc}") from None
    if re.search(r"[\s\x00-\x1f\x7f]", value) or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host, e.g. https://bitbucket.bank.example")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: put the secret in an environment variable (the *_env settings)")
    host = parts.hostname
    if not is_host(host) or port == 0:
        raise ValueError(f"must be an http(s) URL with a valid host and port (host {host!r}, port {port})")
    return value


# --- Docker image references --------------------------------------------------------------------------------------

# distribution/reference regexp.go, transcribed.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::(?P<port>[0-9]+))?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w is ASCII
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_REMOTE_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_DOMAIN_AND_PORT = re.compile(_DOMAIN)
_REMOTE_NAME_ONLY = re.compile(_REMOTE_NAME)
NAME_TOTAL_LENGTH_MAX = 255
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def image_reference_problem(value: str) -> str | None:
    """Why Docker would refuse `value` as an image reference (ParseNormalizedNamed), or None."""
    if re.fullmatch(r"[a-f0-9]{64}", value):
        return "a 64-character hexadecimal string is an image id, not a name"
    first, slash, rest = value.partition("/")
    domain_like = slash and (first == "localhost" or any(c in first for c in ".:") or first.lower() != first)
    remote = (rest if domain_like else value).split("@", 1)[0].split(":", 1)[0]
    if remote.lower() != remote:
        return f"the repository {remote!r} must be lowercase"
    match = _REFERENCE.fullmatch(value)
    if match is None:
        return "not an image reference: [host[:port]/]path[:tag][@sha256:digest], path parts like 'fintech-release/jre'"
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        return f"port {match['port']} is out of range (1-65535)"
    path = match["name"][len(match["domain"]) + 1 :] if match["domain"] else match["name"]
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        return f"the repository path is longer than {NAME_TOTAL_LENGTH_MAX} characters"
    if match["digest"]:
        algorithm, _, hex_digits = match["digest"].partition(":")
        if _DIGEST_HEX_LENGTHS.get(algorithm) != len(hex_digits) or hex_digits.lower() != hex_digits:
            return f"digest {match['digest'][:80]!r} is not sha256:<64 lowercase hex digits> (or sha384/sha512)"
    return None


def check_base_image(value: str) -> str:
    """`name:tag` Docker accepts and `fintech-release base-image` can tag: an explicit tag, no digest."""
    problem = image_reference_problem(value)
    if problem:
        raise ValueError(problem)
    match = _REFERENCE.fullmatch(value)
    if match is None or match["tag"] is None or match["digest"] is not None:
        raise ValueError("must be name:tag, e.g. fintech-release/jre:17 (the base image is built and tagged here)")
    return value


def check_registry_host(value: str) -> str:
    """`host[:port]` of a registry, in a form Docker reads as a registry (a '.', a ':' or localhost)."""
    match = _DOMAIN_AND_PORT.fullmatch(value)
    if match is None:
        raise ValueError("must be host[:port] without a scheme or path, e.g. 127.0.0.1:5000")
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        raise ValueError(f"port {match['port']} is out of range (1-65535)")
    if value != "localhost" and not any(c in value for c in ".:"):
        raise ValueError("Docker would read this as a Docker Hub namespace: add a port or a domain, e.g. registry:5000")
    return value


def check_image_path(value: str) -> str:
    """Repository path parts Docker accepts, e.g. fintech-release or team/releases."""
    if not _REMOTE_NAME_ONLY.fullmatch(value):
        raise ValueError("must be lowercase path parts like fintech-release or team/releases ('.', '_', '-' inside)")
    return value


# --- Kubernetes, the chart, the runtime ---------------------------------------------------------------------------

# The microservice chart's schema (deploy/charts/microservice/values.schema.json), amounts above zero.
CPU_QUANTITY = re.compile(r"[0-9]+m|[0-9]+(?:\.[0-9]+)?")
MEMORY_QUANTITY = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|K|M|G|T)?")


def check_cpu(value: str) -> str:
    """A CPU amount: millicores (250m) or cores (0.5, 2)."""
    if not CPU_QUANTITY.fullmatch(value) or not float(value.rstrip("m")):
        raise ValueError("must be a CPU amount above zero, e.g. 250m or 0.5")
    return value


def check_memory(value: str) -> str:
    """A memory amount: bytes with an optional Ki/Mi/Gi/Ti or K/M/G/T suffix."""
    if not MEMORY_QUANTITY.fullmatch(value) or not float(value.rstrip("KMGTi")):
        raise ValueError("must be a memory amount above zero, e.g. 256Mi or 1Gi")
    return value


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Environment variable names in the POSIX form, none of the ones the runtime sets itself."""
    for name in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise FieldError((name,), f"{shown(name)} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
        if name in RUNTIME_VARIABLES:
            raise FieldError((name,), f"{name} is set by the runtime itself ({', '.join(RUNTIME_VARIABLES)})")
    return env


def check_http_path(value: str) -> str:
    """An absolute URL path a probe can request: '/', then unreserved, sub-delims, ':', '@', '%' and '/'."""
    if not re.fullmatch(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", value):
        raise ValueError("must be a URL path starting with '/', without spaces, e.g. /health")
    return value


def check_relative_path(value: str) -> str:
    """A path inside the service's repository: relative, without '..'."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a path inside the repository: relative and without '..'")
    return value


# --- mail and Java ------------------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9_.-]+")


def check_email_address(value: str) -> str:
    """One mail address, optionally with a display name: releases@bank.example or 'Releases <r@bank.example>'."""
    addresses = getaddresses([value])
    if "\r" in value or "\n" in value or len(addresses) != 1 or not _ADDRESS.fullmatch(addresses[0][1]):
        raise ValueError("must be one mail address, e.g. releases@bank.example")
    return value


def check_owner(value: str) -> str:
    """Who owns an asset, as the Dagster catalog shows it: a plain mail address or `team:<name>`."""
    if value.startswith("team:"):
        if not re.fullmatch(r"team:[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}", value):
            raise ValueError("must be team:<name> (letters, digits, space, _ . -), e.g. team:payments")
        return value
    if not _ADDRESS.fullmatch(value):
        raise ValueError("must be a plain mail address (alice@bank.example) or team:<name>")
    return value


def check_java_module(value: str) -> str:
    """A Java module name, e.g. java.sql (what jlink --add-modules takes)."""
    if not re.fullmatch(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", value):
        raise ValueError("must be a Java module name, e.g. java.sql")
    return value
