"""Loading a session file: YAML with line marks → schema → semantic checks → typed model.

``load_session`` is the only entry point; it either returns a ``Session`` or raises a
``SessionError`` listing every problem found, each with file, line, column and key path.
"""

from __future__ import annotations

from pathlib import Path

from render.errors import SessionError
from render.session.build import build_session
from render.session.checks import LoadOptions, SessionChecks, resolve_output_dir
from render.session.model import Session
from render.session.validate import validate
from render.session.yaml_source import format_path, load_yaml_file

SESSION_SCHEMA = "session.schema.json"

__all__ = ["LoadOptions", "Session", "load_session"]


def load_session(path: Path, options: LoadOptions | None = None) -> Session:
    """Read, validate and model the session at ``path`` (as the user wrote it, for messages)."""
    options = options or LoadOptions()
    document = load_yaml_file(path, str(path))
    problems = validate(document, SESSION_SCHEMA)
    problems += SessionChecks(document, path, options).run()
    if problems:
        raise SessionError(problems)
    marks = {
        format_path(key): f"{document.label}:{mark.line}:{mark.column}"
        for key, mark in document.value_marks.items()
    }
    return build_session(document.data, path, resolve_output_dir(document, path, options), marks)
