"""Filter designs kept between runs, in the user's cache folder.

Some designs need ``scipy.signal`` (saturation's equiripple resampling filter: ``remez``),
whose import takes 0.6 s, more than a short render. A design is a pure function of its
arguments and of scipy's version, so its taps are kept as a ``.npy`` file named by the hash
of both (``user_cache_dir()/designs``) and loaded on later runs of any session. A file that
does not load, or does not hold a finite 1-D float64 array, is designed again and replaced;
a folder that cannot be written only costs the design. Writes are atomic (a temporary
renamed into place), so renders running at once never read half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from render import user_cache_dir


def kept(name: str, arguments: Mapping[str, Any], design: Callable[[], np.ndarray]) -> np.ndarray:
    """The taps ``design()`` makes from ``arguments`` (JSON-able: all that decides them but
    scipy's version), from the user's cache when an earlier run kept them."""
    folder = user_cache_dir()
    key = json.dumps({"name": name, "arguments": arguments, "scipy": metadata.version("scipy")})
    path = None
    if folder is not None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        path = folder / "designs" / f"{name}-{digest}.npy"
        taps = _load(path)
        if taps is not None:
            return taps
    taps = np.ascontiguousarray(design(), dtype=np.float64)
    if path is not None:
        _store(path, taps)
    return taps


def _load(path: Path) -> np.ndarray | None:
    try:
        taps = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    usable = taps.ndim == 1 and taps.dtype == np.float64 and taps.size and np.isfinite(taps).all()
    return taps if usable else None


def _store(path: Path, taps: np.ndarray) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npy")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, taps, allow_pickle=False)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
