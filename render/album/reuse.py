"""An album built before from the same inputs, kept in the render cache: what the build
reported and the size and sha256 of every file it wrote. Building it again with nothing
changed and every file still as written then renders and writes nothing, as an unchanged
session does; any other build renders the songs as usual (each from the cache where it
can).

The key covers the whole album as loaded (every song's session and settings, the loudness
target, the deliverables, the output folder) and each song's limiter input as the cache
keys it (its stems' bytes, every setting upstream, the renderer's code), so every input a
byte of the album depends on is in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from render.album.model import Album
from render.album.songs import SongJob
from render.cache import DEFAULT_DIR, Cache, CacheOptions
from render.digests import InputDigests
from render.errors import OutputError
from render.incremental import Account
from render.keys import sha256_json
from render.pipeline import premaster_key
from render.session.normalise import normalised

REUSED = "everything reused: nothing changed since the album was built"


@dataclass(frozen=True)
class Built:
    """Where an album build is kept (``key`` in ``cache``), and the hashes of files."""

    cache: Cache
    key: str
    digests: InputDigests

    @classmethod
    def of(cls, album: Album, jobs: Sequence[SongJob], caching: CacheOptions) -> Built | None:
        """The record of ``album`` (its songs as ``jobs``) in the cache; None without one."""
        if not caching.enabled:
            return None
        root = caching.folder or album.path.parent / DEFAULT_DIR
        try:
            cache = Cache(root, caching.max_bytes)
        except (OSError, OutputError):
            return None  # the songs' own renders say why, or fail, as they do alone
        songs = [premaster_key(job.session, job.caching) for job in jobs]
        if None in songs:
            return None
        document = {
            "album built": normalised(album, album.path.parent),
            "songs": songs,
            "sessions": [normalised(job.session, job.session.path.parent) for job in jobs],
            "folder": str(album.out_dir.resolve()),
        }
        return cls(cache, sha256_json(document), InputDigests(root))

    def found(self) -> tuple[Any, ...] | None:
        """What the build kept (its results, each song's level reported as reused), if every
        file it wrote is still there as written."""
        kept = self.cache.load(self.key)
        if kept is None:
            return None
        results, files = kept
        for name, size, sha256 in files:
            path = Path(name)
            with contextlib.suppress(OSError):
                if path.stat().st_size == size and self.digests.sha256(path) == sha256:
                    continue
            return None
        self.digests.save()
        levels, *rest = results
        return (tuple(replace(level, cache=Account(note=REUSED)) for level in levels), *rest)

    def keep(self, results: tuple[Any, ...], written: Sequence[Path]) -> None:
        """Keep the build's ``results`` and the size and sha256 of every file ``written``."""
        files = [(str(path), path.stat().st_size, self.digests.sha256(path)) for path in written]
        self.digests.save()
        self.cache.store(self.key, (results, files))
