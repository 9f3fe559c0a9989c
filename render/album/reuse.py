"""An album built before from the same inputs, kept in the render cache: what the build
reported and the size and sha256 of every file it wrote (``Built``). Building it again with
nothing changed and every file still as written then renders and writes nothing, as an
unchanged session does; any other build renders the songs as usual, each from the cache
where it can, and a song whose goal and files did not change is not finished again
(``KeptSong``).

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
from typing import TYPE_CHECKING, Any

import numpy as np

from render.album.model import Album
from render.cache import Cache, CacheOptions
from render.digests import InputDigests
from render.errors import OutputError
from render.incremental import Account, cache_too_small, owner_name
from render.keys import sha256_json
from render.session.normalise import normalised

if TYPE_CHECKING:
    from render.album.songs import SongJob

REUSED = "everything reused: nothing changed since the album was built"


@dataclass(frozen=True)
class Built:
    """Where an album build is kept (``key`` in ``cache``), and the hashes of files."""

    cache: Cache
    key: str
    digests: InputDigests
    album: Path  # its file

    @classmethod
    def of(cls, album: Album, jobs: Sequence[SongJob], caching: CacheOptions) -> Built | None:
        """The record of ``album`` (its songs as ``jobs``) in the cache; None without one."""
        if not caching.enabled:
            return None
        root = caching.root(album.path.parent)
        try:
            cache = Cache(root, caching.max_bytes)
        except (OSError, OutputError):
            return None  # the songs' own renders say why, or fail, as they do alone
        songs = [job.limiter_input_key for job in jobs]
        if None in songs:
            return None
        document = {
            "album built": normalised(album, album.path.parent),
            "songs": songs,
            "sessions": [normalised(job.session, job.session.path.parent) for job in jobs],
            "folder": str(album.out_dir.resolve()),
        }
        return cls(cache, sha256_json(document), InputDigests(root), album.path)

    def found(self) -> tuple[Any, ...] | None:
        """What the build kept (its results, each song's level reported as reused), if every
        file it wrote is still there as written."""
        kept = self.cache.load(self.key)
        if kept is None:
            return None
        results, files = kept
        if not _intact(files, self.digests):
            return None
        levels, finished, *rest = results
        return (
            tuple(replace(level, cache=Account(note=REUSED)) for level in levels),
            tuple(replace(done, kept=True) for done in finished),
            *rest,
        )

    def keep(self, results: tuple[Any, ...], written: Sequence[Path]) -> None:
        """Keep the build's ``results`` and the size and sha256 of every file ``written``."""
        self.cache.store(self.key, (results, _hashed(written, self.digests)))
        self.cache.pin(owner_name(self.album, "album"), [self.key])


@dataclass(frozen=True)
class KeptSong:
    """A song of an album finished before at the same goal into the same files: what it
    measured, the size and sha256 of its track files, and its master at the album file's
    rate, kept in the song's render cache. When another song of the album changed but the
    album's loudness did not move this one's goal, its files are left as they are."""

    cache: Cache
    key: str
    digests: InputDigests
    session: Path  # the song's session file

    @classmethod
    def of(cls, job: SongJob, settings: Any) -> KeptSong | None:
        """The record of ``job``'s song finished with ``settings`` (goal, deliverables, file
        names, tags, the album file's rate); None without a cache."""
        if job.limiter_input_key is None:
            return None
        root = job.caching.root(job.session.path.parent)
        cache = Cache(root, job.caching.max_bytes)  # its limiter input's key came from it
        document = {
            "song finished": settings,
            "seed": job.session.seed,
            "from": job.limiter_input_key,
        }
        return cls(cache, sha256_json(document), InputDigests(root), job.session.path)

    def found(self) -> tuple[Any, np.ndarray | None] | None:
        """The finished song and its kept master (None if it keeps none), if every track
        file is still as written."""
        kept = self.cache.load(self.key)
        if kept is None:
            return None
        finished, files, kept_master = kept
        if not _intact(files, self.digests):
            return None
        if not kept_master:
            return finished, None
        master = self.cache.load(_master_key(self.key))
        return None if master is None else (finished, master)

    def keep(self, finished: Any, written: Sequence[Path], master: np.ndarray | None) -> None:
        """Keep ``finished``, the files it ``written`` and its ``master`` (if any)."""
        if master is not None:
            self.cache.store(_master_key(self.key), master)
        self.cache.store(self.key, (finished, _hashed(written, self.digests), master is not None))
        self.cache.pin(owner_name(self.session, "album song"), [self.key, _master_key(self.key)])


def bound_caches(album: Album, jobs: Sequence[SongJob], caching: CacheOptions) -> list[str]:
    """Evict each render cache the album's songs used down to its bound, once every song is
    kept (the songs' renders leave it to this, so none evicts what another just pinned);
    the warning of each that could not keep all that was pinned."""
    if not caching.enabled:
        return []
    roots = {caching.root(job.session.path.parent) for job in jobs}
    warnings = []
    for root in sorted(roots):
        with contextlib.suppress(OSError, OutputError):  # the songs' renders said why
            eviction = Cache(root, caching.max_bytes).evict(owner_name(album.path, "album"))
            warning = cache_too_small(eviction, caching.max_bytes)
            if warning is not None:
                warnings.append(warning if len(roots) == 1 else f"{root}: {warning}")
    return warnings


def _master_key(key: str) -> str:
    return sha256_json({"master of": key})


def _intact(files: Sequence[tuple[str, int, str]], digests: InputDigests) -> bool:
    """Whether every file of ``files`` (path, size, sha256) is still there as written."""
    for name, size, sha256 in files:
        path = Path(name)
        with contextlib.suppress(OSError):
            if path.stat().st_size == size and digests.sha256(path) == sha256:
                continue
        return False
    digests.save()
    return True


def _hashed(paths: Sequence[Path], digests: InputDigests) -> list[tuple[str, int, str]]:
    """Each of ``paths`` with its size and sha256 (remembered for the next check)."""
    files = [(str(path), path.stat().st_size, digests.sha256(path)) for path in paths]
    digests.save()
    return files
