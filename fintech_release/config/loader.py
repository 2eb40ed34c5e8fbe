"""Load release.yaml into a `ReleaseConfig`, or fail with one message naming file, line, field and value."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fintech_release.config.formats import FieldError, shown
from fintech_release.config.models import ReleaseConfig
from fintech_release.config.yaml_reader import MAX_BYTES, YamlDocument, YamlReadError, read_yaml
from fintech_release.errors import ReleaseConfigError

CONFIG_ENV_VAR = "FINTECH_RELEASE_CONFIG"


def default_config_path() -> Path:
    """`$FINTECH_RELEASE_CONFIG` if set, else release.yaml in the current directory."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or "release.yaml").resolve()


def load_release_config(path: Path | str | None = None) -> ReleaseConfig:
    """Read and validate release.yaml; raise `ReleaseConfigError` with a one-line reason."""
    path = Path(path).resolve() if path is not None else default_config_path()
    try:
        document = read_yaml(_read_bytes(path))
    except YamlReadError as exc:
        raise ReleaseConfigError(_one_line(_where(path, exc.line, exc.loc) + exc.message)) from None
    raw = document.data
    if not isinstance(raw, dict):
        raise ReleaseConfigError(
            _one_line(f"{path}: the top level must be a mapping with 'services' and 'environments' (got {shown(raw)})")
        )
    if "source" in raw:  # the loader sets it to the file's own path
        raise ReleaseConfigError(_one_line(_where(path, document.line_of(("source",)), ("source",)) + "unknown key"))
    try:
        return ReleaseConfig.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise ReleaseConfigError(_one_line(_describe_first_error(path, document, exc))) from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (at most one more than read_yaml takes); one line naming the path when it cannot be read."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISREG(mode):
            with path.open("rb") as handle:
                return handle.read(MAX_BYTES + 1)
        reason = "it is a directory" if stat.S_ISDIR(mode) else "not a regular file"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise ReleaseConfigError(
        _one_line(f"{path}: cannot read release config ({reason}); pass its path or set {CONFIG_ENV_VAR}")
    )


def _describe_first_error(path: Path, document: YamlDocument, exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    loc = tuple(part for part in error["loc"] if part != "[key]")
    reason = (error.get("ctx") or {}).get("error")
    if isinstance(reason, FieldError):  # a rule that names a place below the field, with the value in its message
        loc += reason.loc
        return _where(path, document.line_of(loc), loc) + str(reason)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return _where(path, document.line_of(loc), loc) + "unknown key"
    if error["type"] == "missing":
        return _where(path, document.line_of(loc[:-1]), loc) + "required field is missing"
    return _where(path, document.line_of(loc), loc) + f"{message} (got {shown(error.get('input'))})"


def _where(path: Path, line: int | None, loc: tuple[Any, ...]) -> str:
    """'FILE:LINE: FIELD: ' with the parts that are known."""
    return f"{path}{f':{line}' if line else ''}: {f'{_dotted(loc)}: ' if loc else ''}"


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            name = part if isinstance(part, str) and re.fullmatch(r"[\w.-]{1,64}", part) else shown(part)
            text += f".{name}" if text else name
    return text


def _one_line(message: str) -> str:
    """The message with every line break or other control character escaped: an error is always one line."""
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", lambda match: repr(match.group())[1:-1], message)
