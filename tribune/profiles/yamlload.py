"""YAML loading that remembers where every value came from.

PyYAML's safe loader, changed in two ways: only `true`/`false` are booleans (YAML 1.1 would read
`on`/`off`/`yes`/`no` as booleans, which breaks `values: {on: "1", off: "0"}`), and the line of
every mapping key and sequence item is kept so errors can name it.

A hostile file is refused before it is built: at most `MAX_DEPTH` levels of nesting,
`MAX_VALUES` values once aliases are counted out (a "billion laughs" alias bomb is a few lines
that expand to billions), `MAX_SCALAR` characters in one value, and whole numbers within 64 bits.
The shipped profiles use 5 levels, 520 values and 100 characters at most.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tribune.errors import ConfigError

Path_ = tuple[str | int, ...]

MAX_TEXT = 256 * 1024
MAX_DEPTH = 16
MAX_VALUES = 10_000
MAX_SCALAR = 4096
MAX_INT = 2**63


class _Loader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


class LocatedDocument:
    """A parsed YAML document and the line of every value in it."""

    def __init__(self, data: Any, lines: dict[Path_, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def load_yaml(text: str, source: str) -> LocatedDocument:
    """Parse one YAML document; syntax errors and hostile shapes become `ConfigError` with file
    and line."""
    if len(text) > MAX_TEXT:
        raise ConfigError(f"{len(text)} characters; at most {MAX_TEXT}", path=source, line=1)
    try:
        _check_shape(text, source)  # before anything is built: the events, one pass
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax: {exc.problem or exc}", path=source, line=line) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(f"YAML: {exc.reason} (U+{code:04X})", path=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML: {exc}", path=source) from exc
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    doc = LocatedDocument(data, lines, source)
    _check_numbers(doc)
    return doc


def _check_shape(text: str, source: str) -> None:
    """Refuse deep nesting, too many values (aliases counted out), huge scalars and an alias
    inside its own anchor, from the parser's events: nothing is built, so a bomb costs one pass."""
    values = 0
    opened: list[list[Any]] = []  # per open collection: [anchor, values at start, deepest]
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) it stands for

    def refuse(message: str, event: yaml.Event) -> ConfigError:
        mark = event.start_mark
        return ConfigError(message, path=source, line=mark.line + 1 if mark else None)

    for event in yaml.parse(text, Loader=_Loader):
        depth = len(opened)
        if isinstance(event, yaml.AliasEvent):
            name = str(event.anchor)
            if any(entry[0] == name for entry in opened):
                raise refuse(f"alias *{name} inside its own anchor", event)
            size, levels = anchors.get(name, (1, 0))
            values += size
            if depth + levels > MAX_DEPTH:
                raise refuse(f"alias *{name} nests deeper than {MAX_DEPTH} levels", event)
            if opened:
                opened[-1][2] = max(opened[-1][2], depth + levels)
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if len(event.value) > MAX_SCALAR:
                size = len(event.value)
                raise refuse(f"a value of {size} characters (at most {MAX_SCALAR})", event)
            if event.anchor is not None:
                anchors[str(event.anchor)] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            values += 1
            if depth + 1 > MAX_DEPTH:
                raise refuse(f"nested deeper than {MAX_DEPTH} levels", event)
            opened.append([event.anchor, values, depth + 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, at_start, deepest = opened.pop()
            if anchor is not None:
                anchors[str(anchor)] = (values - at_start + 1, deepest - depth + 1)
            if opened:
                opened[-1][2] = max(opened[-1][2], deepest)
        if values > MAX_VALUES:
            raise refuse(f"more than {MAX_VALUES} values (aliases counted out)", event)


def _check_numbers(doc: LocatedDocument) -> None:
    """Refuse whole numbers beyond 64 bits (no field wants one; arithmetic on them is slow)."""
    stack: list[tuple[Path_, Any]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
            where = ".".join(map(str, path)) or "(top)"
            raise ConfigError(
                f"{where}: number too large (at most 64 bits)",
                path=doc.source,
                line=doc.line_of(path),
            )
