"""Load release.yaml into a `ReleaseConfig`, or fail with one message naming file, line, field and value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fintech_release.config.models import ReleaseConfig
from fintech_release.errors import ReleaseConfigError

CONFIG_ENV_VAR = "FINTECH_RELEASE_CONFIG"


def default_config_path() -> Path:
    """`$FINTECH_RELEASE_CONFIG` if set, else release.yaml in the current directory."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or "release.yaml").resolve()


def load_release_config(path: Path | str | None = None) -> ReleaseConfig:
    """Read and validate release.yaml; raise `ReleaseConfigError` with a one-line reason."""
    path = Path(path).resolve() if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReleaseConfigError(
            f"{path}: cannot read release config ({exc.strerror}); "
            f"pass its path or set {CONFIG_ENV_VAR}"
        ) from None
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ReleaseConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ReleaseConfigError(f"{path}: the top level must be a mapping with 'services' and 'environments'")
    try:
        return ReleaseConfig.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise ReleaseConfigError(_describe_first_error(path, root, exc)) from None


def _describe_first_error(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{path}{_line_of(root, loc)}: {_dotted(loc)}: unknown key"
    if error["type"] == "missing":
        return f"{path}{_line_of(root, loc[:-1])}: {_dotted(loc)}: required field is missing"
    if not loc:  # a cross-field rule; its message already names the field
        return f"{path}: {message}"
    return f"{path}{_line_of(root, loc)}: {_dotted(loc)}: {message} (got {error.get('input')!r})"


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    """':LINE' of the YAML node at `loc`, or '' where the path leaves the document."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            return ""
    return f":{node.start_mark.line + 1}" if node is not None else ""
