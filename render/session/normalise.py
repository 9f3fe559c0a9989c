"""The session model as plain JSON: what the manifest records and the cache keys hash."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from render.session.model import Output, Session

_LOCATIONS = {(Session, "path"), (Output, "dir")}
"""Fields that say where files are, not what they hold: left out of the parameters."""


def normalised(value: Any, base: Path) -> Any:
    """``value`` (a model object, or any part of one) as JSON: paths relative to ``base``
    (the session's folder), where the outputs go left out (it decides no byte), non-finite
    numbers as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            field.name: normalised(getattr(value, field.name), base)
            for field in dataclasses.fields(value)
            if field.compare and (type(value), field.name) not in _LOCATIONS
        }
        if not isinstance(value, Session):
            fields = {"type": type(value).__name__, **fields}
        return fields
    if isinstance(value, Mapping):
        return {str(k): normalised(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalised(v, base) for v in value]
    if isinstance(value, Path):
        return relative(value, base)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # note values ("1/8.") and other small value types


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base``; outside it, its name alone, never a machine's path."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name
