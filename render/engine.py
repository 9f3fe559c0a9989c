"""Which renderer this is: its version, the libraries that decide its bytes, its own code.

The manifest records ``renderer()`` so ``--verify`` can say an upgrade changed a render; the
cache keys every entry on ``code_sha256()`` too, so an edited renderer (a development
checkout between versions) never serves an entry an older one made.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import soundfile

from render import __version__

LIBRARIES = ("numpy", "scipy", "soundfile", "soxr", "numba", "matplotlib")
"""The libraries whose arithmetic or encoders decide the output bytes."""


@functools.cache
def renderer() -> dict[str, Any]:
    """The renderer's version and those of Python, the libraries, libsndfile and libc."""
    return {
        "version": __version__,
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES}
        | {
            "libsndfile": soundfile.__libsndfile_version__,
            "libc": " ".join(platform.libc_ver()),
        },
    }


@functools.cache
def code_sha256() -> str:
    """The hash of the package's own source files and schemas (about 0.3 MB, read once)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
