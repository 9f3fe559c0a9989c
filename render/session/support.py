"""Session features that are valid but not rendered yet: each is refused, never ignored.

The schema describes the whole of session format v1; the engine grows into it. Until a
feature renders, a session that uses it fails with a located "not rendered yet" error, so
nobody ships a mix that silently lacks the compressor they wrote. Remove an entry from this
module in the same change that makes the engine render it.
"""

from __future__ import annotations

from render.errors import Diagnostic
from render.session.checks import PCM_FORMATS, effects, mapping
from render.session.yaml_source import YamlDocument

_LATER = "not rendered yet by this version of render; remove it to render the session"


def unsupported_features(document: YamlDocument) -> list[Diagnostic]:
    """A located error for every feature of the session that this engine cannot render."""
    data = mapping(document.data)
    problems: list[Diagnostic] = []

    def refuse(path: tuple, what: str) -> None:
        problems.append(document.diagnostic(path, f"{what} {_LATER}", of_key=True))

    for path, name, parameters in effects(data):
        if path[0] == "mastering":
            continue  # refused as a whole below
        if name == "multiband":
            refuse(path, "the multiband compressor is")
        elif name == "eq" and parameters.get("phase") == "linear":
            refuse((*path, "phase"), "linear-phase EQ is")
    if "mastering" in data:
        refuse(("mastering",), "mastering is")
    output = mapping(data.get("output"))
    if "master" in output:
        refuse(("output", "master"), "a master deliverable is")
    written = output.get("mix", [])
    for index, deliverable in enumerate(written if isinstance(written, list) else [written]):
        path = ("output", "mix", index) if isinstance(written, list) else ("output", "mix")
        deliverable = mapping(deliverable)
        if deliverable.get("format", "wav") not in PCM_FORMATS:
            refuse((*path, "format"), f"a {deliverable.get('format')} mix is")
        if deliverable.get("dither") == "tpdf_shaped":
            refuse((*path, "dither"), "noise-shaped dither is")
    return problems
