"""Read a YAML file into plain data while keeping the line and column of every key and value.

pyyaml's composed node graph carries marks; we walk it ourselves (instead of letting pyyaml
construct objects) so that we can reject duplicate keys, cap alias expansion (a "billion
laughs" file would otherwise expand to gigabytes) and keep YAML 1.1 surprises out: ``4:1`` is
base-60 241 to pyyaml and a date is a ``datetime``; here both stay strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from render.errors import Diagnostic, SessionError

MAX_NODES = 100_000
"""Nodes a document may expand to, aliases counted at every use: far above any real session
(a 200-track session has about 20,000), far below what exhausts memory."""

KeyPath = tuple[str | int, ...]

_PLAIN_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in a source file."""

    line: int
    column: int


@dataclass(frozen=True)
class YamlDocument:
    """Plain data (dicts, lists, str, int, float, bool, None) with the marks of its nodes."""

    data: Any
    label: str
    value_marks: dict[KeyPath, Mark]
    key_marks: dict[KeyPath, Mark]

    def mark(self, path: KeyPath, *, of_key: bool = False) -> Mark:
        """Where ``path`` is written: its key (``of_key``) or its value; else its nearest parent."""
        marks = self.key_marks if of_key else self.value_marks
        for end in range(len(path), -1, -1):
            if (found := marks.get(path[:end])) is not None:
                return found
        return Mark(1, 1)

    def diagnostic(
        self, path: KeyPath, message: str, *, hint: str | None = None, of_key: bool = False
    ) -> Diagnostic:
        """A problem at ``path``, located in this file."""
        mark = self.mark(path, of_key=of_key)
        return Diagnostic(self.label, mark.line, mark.column, format_path(path), message, hint)


def format_path(path: KeyPath) -> str:
    """``("tracks", "kick", "inserts", 1)`` → ``tracks.kick.inserts[1]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where pyyaml was built with it: the same nodes, tags and marks, composed
about ten times faster than by the pure-Python parser."""


def load_yaml_file(path: Path, label: str) -> YamlDocument:
    """Read and parse ``path``; every problem becomes a ``SessionError`` naming ``label``."""
    if path.is_dir():
        message = "this is a folder; expected a session file (YAML), e.g. session.yaml inside it"
        raise SessionError([Diagnostic(label, None, None, "", message)])
    try:
        raw = path.read_bytes()
    except OSError as e:
        reason = e.strerror or str(e)
        message = f"cannot read the file: {reason}"
        raise SessionError([Diagnostic(label, None, None, "", message)]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        message = f"the file is not UTF-8 text (invalid byte at offset {e.start})"
        raise SessionError([Diagnostic(label, None, None, "", message)]) from None
    return parse_yaml(text, label)


def parse_yaml(text: str, label: str) -> YamlDocument:
    """Parse one YAML document from ``text``; ``label`` names it in messages."""
    try:
        root = yaml.compose(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        try:  # the pure-Python parser words the problem: its messages are the ones we test
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            raise SessionError([_syntax_diagnostic(e, label)]) from None
        except RecursionError:
            raise SessionError([_too_deep(label)]) from None
    if root is None:
        message = "the file is empty; a session needs at least `version` and `tracks`"
        raise SessionError([Diagnostic(label, 1, 1, "", message)])
    walker = _Walker(label)
    try:
        data = walker.walk(root, ())
    except RecursionError:
        raise SessionError([_too_deep(label)]) from None
    if walker.problems:
        raise SessionError(walker.problems)
    return YamlDocument(data, label, walker.value_marks, walker.key_marks)


def _too_deep(label: str) -> Diagnostic:
    return Diagnostic(label, None, None, "", "the YAML is nested too deeply to be a session")


def _syntax_diagnostic(error: yaml.MarkedYAMLError, label: str) -> Diagnostic:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or "malformed YAML"
    if error.context and error.context_mark and error.context_mark is not mark:
        problem += f" ({error.context} at line {error.context_mark.line + 1})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    return Diagnostic(label, line, column, "", f"YAML syntax error: {problem}")


def _mark_of(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    """Turns a composed node graph into plain data, recording marks and problems."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.value_marks: dict[KeyPath, Mark] = {}
        self.key_marks: dict[KeyPath, Mark] = {}
        self.problems: list[Diagnostic] = []
        self.nodes_seen = 0
        self._scalars = yaml.SafeLoader("")

    def problem(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        mark = _mark_of(node)
        self.problems.append(
            Diagnostic(self.label, mark.line, mark.column, format_path(path), message)
        )

    def walk(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > MAX_NODES:
            # Aliased nodes carry the marks of their anchor, not of their use: point at the
            # top-level key whose value expanded too far, which is where the reader can act.
            mark = self.key_marks.get(path[:1], _mark_of(node))
            message = (
                f"the document expands to more than {MAX_NODES:,} values; aliases (*name) that "
                "refer to aliases multiply, so this looks like an alias bomb. Expected a "
                "session of ordinary size"
            )
            location = Diagnostic(
                self.label, mark.line, mark.column, format_path(path[:1]), message
            )
            raise SessionError([location])
        self.value_marks.setdefault(path, _mark_of(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag in _PLAIN_SCALAR_TAGS and ":" not in node.value:
            return self._scalars.construct_object(node)
        return node.value

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key in result:
                first = self.key_marks[(*path, key)]
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key (first written at line {first.line}); "
                    "expected each key once per mapping",
                )
                continue
            self.key_marks[(*path, key)] = _mark_of(key_node)
            result[key] = self.walk(value_node, (*path, key))
        return {**merged, **result}

    def _merge(self, value_node: yaml.Node, path: KeyPath) -> dict[str, Any]:
        """``<<: *base`` (or a list of them): keys written beside it take precedence."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(source, path, "`<<` merges mappings; expected an alias to a mapping")
                continue
            for key, value in self._mapping(source, path).items():
                merged.setdefault(key, value)
        return merged
