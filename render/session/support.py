"""Session features that are valid but not rendered yet: each is refused, never ignored.

The schema describes the whole of session format v1; the engine grows into it. Until a
feature renders, a session that uses it fails with a located "not rendered yet" error, so
nobody ships a mix that silently lacks the compressor they wrote. Remove an entry from this
module in the same change that makes the engine render it.
"""

from __future__ import annotations

from render.errors import Diagnostic
from render.session.checks import effects, mapping
from render.session.yaml_source import YamlDocument

_LATER = "not rendered yet by this version of render; remove it to render the session"


def unsupported_features(document: YamlDocument) -> list[Diagnostic]:
    """A located error for every feature of the session that this engine cannot render."""
    data = mapping(document.data)
    problems: list[Diagnostic] = []

    def refuse(path: tuple, what: str) -> None:
        problems.append(document.diagnostic(path, f"{what} {_LATER}", of_key=True))

    for path, name, parameters in effects(data):
        if name == "eq" and parameters.get("phase") == "linear":
            refuse((*path, "phase"), "linear-phase EQ is")
    return problems
