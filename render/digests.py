"""The sha256 of input files (stems, impulse responses), each read once.

The cache keys every stage on the hashes of the files it reads, and the manifest records
them; a 3-minute stereo stem is 30-100 MB, so hashing every stem on every render would cost
a good part of a re-render. Hashes are remembered by each file's identity on disk, as git's
index does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from render import audio_io
from render.errors import OutputError

INPUTS = "inputs.json"
RACY_NS = 2 * 10**9
"""A file changed less than 2 s before it was hashed is not remembered: it could change
again within the same timestamp tick and look unchanged (git's "racy clean" problem)."""


LEARNING_THREADS = 2
"""Files hashed at once when a render learns its inputs: hashing is bound by one core each."""


class InputDigests:
    """sha256 of input files, remembered by their identity on disk (size, mtime, ctime,
    inode), as git's index does, so an unchanged 100 MB stem is not read again to learn that
    it is unchanged. ctime cannot be set by a user, so a file rewritten in place, even with
    its mtime put back, is hashed again."""

    def __init__(self, root: Path | None) -> None:
        self.path = None if root is None else root / INPUTS
        self.known: dict[str, list[Any]] = {}
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError):
                known = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(known, dict):  # else damaged: every file is read again
                    self.known = {name: v for name, v in known.items() if _well_formed(v)}
        self.changed = False
        self.this_render: dict[str, str] = {}

    def sha256(self, path: Path) -> str:
        """The file's sha256: as hashed earlier in this render (once a render has hashed a
        file it keeps that hash, which its cache keys and manifest then share, even though
        the render's own hard link to a stem changes the stem's ctime), else remembered by
        its identity, else read."""
        name = str(path.resolve())
        if name in self.this_render:
            return self.this_render[name]
        status = path.stat()
        identity = file_identity(status)
        remembered = self.known.get(name)
        if remembered is not None and remembered[:4] == identity:
            digest = str(remembered[4])
        else:
            digest = file_sha256(path)
            if time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS:
                self.known[name] = [*identity, digest]
                self.changed = True
        self.this_render[name] = digest
        return digest

    def linked(self, path: Path, before: os.stat_result) -> None:
        """``path`` (``before`` its status) was just given a hard link: only its ctime and
        link count changed, so a remembered hash carries over to its new identity (the
        next render would read the whole file again otherwise). A write in between would
        have moved its mtime or size, and then nothing carries over."""
        name = str(path.resolve())
        remembered = self.known.get(name)
        if remembered is None or remembered[:4] != file_identity(before):
            return
        with contextlib.suppress(OSError):
            after = file_identity(path.stat())
            if after[:2] + after[3:] == remembered[:2] + remembered[3:4]:
                self.known[name] = [*after, remembered[4]]
                self.changed = True

    def learn(self, paths: Iterable[Path]) -> None:
        """Hash the files of ``paths`` not remembered yet, ``LEARNING_THREADS`` at a time:
        hashlib releases the GIL, so a cold render's stems (830 MB for 16 three-minute
        stereo stems) hash in about half the time."""
        with ThreadPoolExecutor(LEARNING_THREADS, thread_name_prefix="digest") as pool:
            for _ in pool.map(self.sha256, dict.fromkeys(paths)):
                pass

    def save(self) -> None:
        """Write what was learnt, forgetting files that are gone. A cache folder that takes
        no write (a full disk) only costs reading the files again next time."""
        if self.path is not None and self.changed:
            self.known = {name: v for name, v in self.known.items() if os.path.exists(name)}
            with contextlib.suppress(OSError, OutputError), audio_io.atomic_path(self.path) as part:
                part.write_text(json.dumps(self.known, sort_keys=True), encoding="utf-8")
            self.changed = False


def _well_formed(remembered: Any) -> bool:
    """Whether a remembered entry is an identity and a hash, as ``save`` writes them."""
    return (
        isinstance(remembered, list)
        and len(remembered) == 5
        and all(isinstance(field, int) for field in remembered[:4])
        and isinstance(remembered[4], str)
    )


def file_identity(status: os.stat_result) -> list[int]:
    """What tells a file changed, short of reading it: size, mtime, ctime, inode."""
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
