"""Read a YAML file into plain Python data in one pass, remembering the line of every value.

The events come from libyaml's parser (PyYAML's `CSafeLoader`; the pure-Python parser where libyaml is
missing), and the data is built from them here, without recursion, so that nothing a file can say costs
more than its size: anchors and aliases are refused (a 1 KB "billion laughs" file cannot expand), and so
are nesting deeper than `MAX_DEPTH`, files over `MAX_BYTES`, bytes that are not UTF-8, tags other than
YAML's plain scalars, mappings and sequences, merge keys and more than one document. A key written twice
is an error naming both lines: with the last one silently winning, a second `services:` would drop every
service of the first. Scalars are read as `yaml.safe_load` reads them (YAML 1.1: `yes` is True, `0x1F` 31).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MERGE_TAG = f"{_TAG}merge"
_VALUE_TAG = f"{_TAG}value"  # a lone '=': read as the string it is
_COLLECTION_TAGS = {yaml.MappingStartEvent: f"{_TAG}map", yaml.SequenceStartEvent: f"{_TAG}seq"}
# What YAML accepts in a stream (the spec's c-printable), besides tab, LF and CR.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_resolver = Resolver()
_constructor = SafeConstructor()

Location = tuple[Any, ...]


class YamlReadError(Exception):
    """The text is not YAML this reader takes; `line` (1-based, if known) and `loc` say where."""

    def __init__(self, message: str, *, line: int | None = None, loc: Location = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.loc = message, line, loc


@dataclass(frozen=True)
class YamlDocument:
    """The data of a YAML file and the line of each value, by its path of keys and list indexes."""

    data: Any
    lines: dict[Location, int]

    def line_of(self, loc: Location) -> int | None:
        """The line of the value at `loc`, or of the closest value above it that the file holds."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


class _Open:
    """A mapping or sequence being filled, with where it is and (mappings) the key waiting for its value."""

    __slots__ = ("value", "loc", "key", "key_line", "key_lines")

    def __init__(self, value: dict | list, loc: Location) -> None:
        self.value, self.loc = value, loc
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.key_lines: dict[Any, int] = {}


_NO_KEY = object()


def read_yaml(raw: bytes) -> YamlDocument:
    """Parse `raw` (UTF-8) into plain data; `YamlReadError` with a one-line message when it cannot."""
    if len(raw) > MAX_BYTES:
        raise YamlReadError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    text = _decode(raw)
    parser = _Parser(text)
    try:
        return _build(parser)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlReadError(
            f"not valid YAML: {exc.problem or exc.context}", line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise YamlReadError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        parser.dispose()


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlReadError(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}; save the file as UTF-8", line=line
        ) from None
    if bad := _NOT_PRINTABLE.search(text):
        line = text.count("\n", 0, bad.start()) + 1
        raise YamlReadError(f"not valid YAML: control character U+{ord(bad.group()):04X} in the text", line=line)
    return text


def _build(parser: Any) -> YamlDocument:
    lines: dict[Location, int] = {}
    stack: list[_Open] = []
    root: Any = None
    documents = 0
    while True:
        event = parser.get_event()
        if isinstance(event, yaml.StreamEndEvent):
            return YamlDocument(root, lines)
        line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlReadError("more than one YAML document ('---'): the file holds one", line=line)
            continue
        if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            continue
        parent = stack[-1] if stack else None
        if isinstance(event, yaml.AliasEvent):
            raise YamlReadError(f"aliases (*{event.anchor}) are not allowed: write the value out", line=line)
        if event.anchor is not None:
            raise YamlReadError(f"anchors (&{event.anchor}) are not allowed: write each value out", line=line)
        opens = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
        if parent is not None and isinstance(parent.value, dict) and parent.key is _NO_KEY:
            if opens:
                raise YamlReadError("a mapping key must be a plain value", line=line, loc=parent.loc)
            _take_key(parent, _scalar(event, parent.loc), line)
            continue
        here = _next_location(parent)
        if opens:
            if event.tag not in (None, "!", _COLLECTION_TAGS[type(event)]):
                raise YamlReadError(f"the tag {event.tag} is not supported", line=line, loc=here)
            if len(stack) >= MAX_DEPTH:
                raise YamlReadError(f"nested deeper than {MAX_DEPTH} levels", line=line, loc=here)
            value: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        else:
            value = _scalar(event, here)
        _attach(parent, value, here, line, lines)
        if parent is None:
            root = value
        if opens:
            stack.append(_Open(value, here))


def _next_location(parent: _Open | None) -> Location:
    """Where the next value goes: at the waiting key of a mapping, or at the end of a list."""
    if parent is None:
        return ()
    return (*parent.loc, parent.key if isinstance(parent.value, dict) else len(parent.value))


def _take_key(mapping: _Open, key: Any, line: int) -> None:
    first = mapping.key_lines.get(key)
    if first is not None:
        raise YamlReadError(
            f"duplicate key (first on line {first}, again on line {line}); the last one would silently win",
            line=line,
            loc=(*mapping.loc, key),
        )
    mapping.key, mapping.key_line = key, line
    mapping.key_lines[key] = line


def _attach(parent: _Open | None, value: Any, loc: Location, line: int, lines: dict[Location, int]) -> None:
    if parent is not None:
        if isinstance(parent.value, dict):
            parent.value[parent.key] = value
            line = parent.key_line  # a mapping entry is where its key is
            parent.key = _NO_KEY
        else:
            parent.value.append(value)
    lines[loc] = line


def _scalar(event: Any, loc: Location) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
    line = event.start_mark.line + 1
    if tag == _MERGE_TAG:
        raise YamlReadError("merge keys ('<<') are not allowed: write each key out", line=line, loc=loc)
    if tag == _VALUE_TAG:
        return event.value
    if tag not in _SCALAR_TAGS:
        raise YamlReadError(f"the tag {tag} is not supported", line=line, loc=loc)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        value = _constructor.yaml_constructors[tag](_constructor, node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:  # e.g. 2024-13-45, or an int of 5,000 digits
        text = event.value if len(event.value) <= 60 else f"{event.value[:60]}…"
        message = f"cannot read {text!r} as {tag.removeprefix(_TAG)}: {' '.join(str(exc).split())[:200]}"
        raise YamlReadError(message, line=line, loc=loc) from None
    if isinstance(value, str) and "\x00" in value:
        raise YamlReadError("a NUL character (\\0) is not allowed in a value", line=line, loc=loc)
    return value
