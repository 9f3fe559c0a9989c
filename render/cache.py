"""A content-addressed cache of intermediate renders, so a re-render reuses what is unchanged.

An entry is named by a key, the sha256 of everything that determines its content (see
``render.keys``), so two contents never share a name; its file format is
``render.cache_entry``'s.

Entries are written to a temporary name in the cache and renamed when complete (atomic on
POSIX): two renders of the same session at once never see each other's half-written entry,
and a render killed mid-write leaves only a temporary, cleared on the next open. No fsync: a
power loss can at worst leave a damaged entry, which the checksum catches.

The cache is bounded: after a render, entries are deleted until it fits ``max_bytes``: first
those the render neither used nor names for the next one, least recently used first (a hit
touches its entry's mtime), and only then, with a warning, those it does. Like the installed
code, a cache folder is trusted: its trailers are pickles, so never point ``--cache`` at a
folder others can write to.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render import audio_io
from render.cache_entry import Entry, Writer, failure_reason, read_entry
from render.errors import OutputError

DEFAULT_DIR = ".render-cache"
DEFAULT_MAX_BYTES = 4 * 10**9
"""4 GB: a 16-track, 3-minute session's strips, mix and master take about 1.5 GB, so the
default keeps two such sessions (or one album's worth of short songs) warm."""


@dataclass(frozen=True)
class CacheOptions:
    """Where the cache lives (None: beside the session, ``.render-cache/``) and its bound;
    ``enabled=False`` renders everything and reads or writes no cache."""

    enabled: bool = True
    folder: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES

    def root(self, beside: Path) -> Path:
        """The cache folder for a file in folder ``beside``: ``folder``, or the default."""
        return self.folder or beside / DEFAULT_DIR


CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder is a cache of intermediate renders made by render; it can be deleted.\n"
)
"""The Cache Directory Tagging Specification's tag: backup tools skip a folder holding it."""


@dataclass(frozen=True)
class Eviction:
    """What ``Cache.evict`` deleted, in bytes: in all; of what the owner pinned (``lost``:
    rendered again on its next render), and all it pinned; of what other owners pinned, and
    all that every owner pinned."""

    freed_bytes: int
    lost_bytes: int
    pinned_bytes: int
    others_lost_bytes: int
    all_pinned_bytes: int


class Cache:
    """The entries in ``root``, bounded to ``max_bytes``: what a render uses is kept longest,
    the rest by least-recent use."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root, self.max_bytes = root, max_bytes
        self.used: set[str] = set()  # keys found or written through this object: kept longest
        self.unstored: list[str] = []  # why entries could not be written (a full disk)
        self.entries = root / "entries"
        self.pins = root / "pins"  # per owner, the keys its next render reuses
        self.entries.mkdir(parents=True, exist_ok=True)
        tag = root / "CACHEDIR.TAG"
        if not tag.exists():
            with audio_io.atomic_path(tag) as temporary:
                temporary.write_text(CACHEDIR_TAG, encoding="utf-8")
        audio_io.remove_stale_partials(self.entries)  # left by writers killed outright

    def open(self, key: str, *, lazy: bool = False) -> Entry | None:
        """The entry ``key`` if it is there and whole; a damaged one is deleted. With
        ``lazy``, its audio blocks are checked as they are served (``Entry.block``)."""
        path = self.path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115  (the Entry owns and closes it)
        except FileNotFoundError:
            return None
        try:
            value, blocks, blocks_checksum = read_entry(handle, lazy)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError):
            handle.close()
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least-recently-used order
        self.used.add(key)
        return Entry(path, value, blocks, handle, blocks_checksum)

    def has(self, key: str) -> bool:
        """Whether an entry ``key`` is there (``open`` checks that it is whole)."""
        found = self.path(key).is_file()
        if found:
            self.used.add(key)
        return found

    def load(self, key: str) -> Any | None:
        """The object of entry ``key`` (no audio blocks), or None."""
        entry = self.open(key)
        if entry is None:
            return None
        entry.close()
        return entry.value

    def store(self, key: str, value: Any) -> None:
        """Write an entry holding ``value`` only."""
        with self.writer(key) as writer:
            writer.finish(value)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[Writer]:
        """A writer of entry ``key``: it becomes visible under its name only if the block
        ends after ``finish``; otherwise (an error, an interrupt) its temporary is removed.
        A folder that takes no new file, or a write that fails (a full disk), leaves the
        entry out and the render going: the reason is kept in ``unstored``."""
        publishing = False
        try:
            with contextlib.suppress(_Unfinished), contextlib.ExitStack() as stack:
                try:
                    temporary = stack.enter_context(audio_io.atomic_path(self.path(key)))
                    writer = Writer(open(temporary, "wb"))  # noqa: SIM115  (closed below)
                except (OSError, OutputError) as e:  # the folder takes no new file
                    writer = Writer(None, failure_reason(e))
                stack.callback(writer.close)
                yield writer
                writer.close()
                if writer.failure is not None:
                    self.unstored.append(writer.failure)
                if not writer.finished:
                    raise _Unfinished
                publishing = True  # the temporary takes the entry's name as the stack closes
        except OSError as e:
            if not publishing:
                raise  # the render's own error, raised in the block
            self.unstored.append(failure_reason(e))  # the cache's folder went away
            return
        if publishing:
            self.used.add(key)

    def pin(self, owner: str, keys: Iterable[str]) -> None:
        """Note that ``owner`` (a session, an album song) reuses the entries ``keys`` on its
        next render, replacing what it noted before: eviction keeps them over the others."""
        with contextlib.suppress(OSError, OutputError):
            self.pins.mkdir(exist_ok=True)
            with audio_io.atomic_path(self.pins / f"{owner}.json") as temporary:
                temporary.write_text(json.dumps(sorted(keys)), encoding="utf-8")

    def evict(self, owner: str) -> Eviction:
        """Delete entries until the cache fits. First those nobody pinned and this render did
        not use, least recently used first; then those it used; then those other owners
        pinned; last those ``owner`` pinned. A pin whose entries are all gone is dropped."""
        own, others = set(), set()
        for pinned in sorted(self.pins.glob("*.json")) if self.pins.is_dir() else ():
            with contextlib.suppress(OSError, ValueError, TypeError):  # damaged: pins nothing
                keys = {str(key) for key in json.loads(pinned.read_text(encoding="utf-8"))}
                if not any(self.path(key).exists() for key in keys):
                    pinned.unlink()
                (own if pinned.stem == owner else others).update(keys)
        found = []
        try:
            paths = list(self.entries.iterdir())
        except OSError:  # the folder went away during the render: nothing left to bound
            paths = []
        for path in paths:
            if path.name.startswith("."):
                continue  # a writer's temporary
            with contextlib.suppress(FileNotFoundError):
                status = path.stat()
                # A stem kept as a hard link takes no space while the stem itself is there:
                # deleting it would free nothing, and lose the earlier bytes that a stem
                # replaced by a new file is updated from (its mtime is the stem's own, so
                # it would always look least recently used).
                if status.st_nlink == 1:
                    name = path.name
                    tier = 3 if name in own else 2 if name in others else int(name in self.used)
                    found.append((tier, status.st_mtime_ns, name, status.st_size, path))
        total = sum(size for *_, size, _ in found)
        freed, lost = 0, [0, 0, 0, 0]
        for tier, _, _, size, path in sorted(found):
            if total - freed <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            freed += size
            lost[tier] += size
        pinned = [sum(size for tier, *_, size, _ in found if tier == t) for t in (2, 3)]
        return Eviction(freed, lost[3], pinned[1], lost[2], pinned[0] + pinned[1])

    def path(self, key: str) -> Path:
        """Where entry ``key`` lies (or a raw file kept under that key, like a stem's copy:
        counted and evicted with the entries)."""
        return self.entries / key


class _Unfinished(Exception):
    """A writer left without ``finish``: its entry is incomplete and is not published."""


def parse_size(text: str) -> int:
    """``"2GB"``, ``"500 MB"``, ``"1.5GiB"`` or a number of bytes, in bytes (GB = 10^9 bytes,
    GiB = 2^30, as IEC 80000-13 has them)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(?:([KMGT])(I?)B?|B?)\s*", text, re.IGNORECASE)
    if found is None:
        raise ValueError(f"expected a size like 2GB or 500MB, got {text!r}")
    number, prefix, binary = found.groups()
    power = "KMGT".index(prefix.upper()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)
