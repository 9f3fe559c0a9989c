"""Where numba keeps the compiled kernels: one folder per state of the package's sources.

numba checks a cached kernel against the size and modification time of its own module only
(numba's "Notes on caching": the index is invalidated when "the corresponding source file" is
modified; extending it to other files is numba PR #9563, unmerged). Yet a kernel compiles in
the kernels it calls and the constants it reads from other modules: after an update that
changed ``eq.py`` alone, the delay's cached kernel would still run the old filter, and two
installs of the same version could write different bytes. So the folder is named after the
size and modification time of every module of the package: a changed module sends numba to
a fresh folder (the first render after an update compiles again), and the ``KEPT_BUILDS``
folders used last are kept, so that switching between two versions compiles neither again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KEPT_BUILDS = 4
"""Kernel folders kept: the current sources' and the three used before them (a few MB each)."""
_PACKAGE = Path(__file__).resolve().parent


def sources_digest(package: Path = _PACKAGE) -> str:
    """16 hex digits from the relative path, size and modification time (ns) of every
    module under ``package``: numba's own test of a module, applied to all of them (a stat
    each, no reading: under a millisecond)."""
    stamps = []
    for folder, _, names in os.walk(package):
        for name in names:
            if name.endswith(".py"):
                stat = os.stat(os.path.join(folder, name))
                relative = os.path.relpath(os.path.join(folder, name), package)
                stamps.append(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    return hashlib.sha256("".join(sorted(stamps)).encode()).hexdigest()[:16]


def kernel_folder(root: Path, package: Path = _PACKAGE) -> Path:
    """``root / sources_digest(package)``, marked as just used; older folders in ``root``
    beyond the ``KEPT_BUILDS`` used last are removed. Nothing is created: numba makes the
    folder when it first saves a kernel. A folder that cannot be touched or removed (a
    read-only cache) is left as it is."""
    folder = root / sources_digest(package)
    try:
        if folder.is_dir():
            os.utime(folder)
        others = [entry for entry in root.iterdir() if entry.is_dir() and entry != folder]
    except OSError:
        return folder
    others.sort(key=_last_used, reverse=True)
    if len(others) >= KEPT_BUILDS:
        import shutil  # rarely needed: not at every start

        for stale in others[KEPT_BUILDS - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def _last_used(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0
