"""YAML loading that remembers where every value came from.

PyYAML's safe loader, changed in two ways: only `true`/`false` are booleans (YAML 1.1 would read
`on`/`off`/`yes`/`no` as booleans, which breaks `values: {on: "1", off: "0"}`), and the line of
every mapping key and sequence item is kept so errors can name it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tribune.errors import ConfigError

Path_ = tuple[str | int, ...]


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
    """Parse one YAML document; syntax errors become `ConfigError` with file and line."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax: {exc.problem or exc}", path=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML: {exc}", path=source) from exc
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return LocatedDocument(data, lines, source)
