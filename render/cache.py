"""A content-addressed cache of intermediate renders, so a re-render reuses what is unchanged.

An entry is named by a key, the sha256 of everything that determines its content (see
``render.keys``), and holds a small Python object (figures, file bytes) and audio written in
blocks as it is rendered, so a track can be cached while it streams without a whole-song copy
in memory. Its layout, in one file::

    MAGIC | audio blocks | the object's arrays | trailer | trailer size (u64) | its XXH3 (u64)

Audio blocks are float64 in C order; the object is pickled (protocol 5) with its arrays
written out of band, so neither a block nor an array is ever copied into a pickle. The
trailer holds the pickled object, where each block lies and the checksums of everything
before it; the last 16 bytes let a reader find the trailer. A corrupt or truncated entry
fails one of the checks (the magic, the trailer's size or checksum, the payload's size or
checksum) and is deleted and rendered again, never used. The checksum is XXH3-64 (xxhash):
like a CRC it detects the accidental damage a cache meets (a full disk, a killed writer, a
bad sector), at 45 GB/s where zlib's CRC-32 ran at 3.7 GB/s, which cost 0.15 s of the main
thread to read four cached bus sums of a 3-minute song. Keys are sha256, so two contents
never share a name.

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
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from render import audio_io
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


MAGIC = b"RCACHE2\n"
_TAIL = struct.Struct("<QQ")  # trailer size, trailer checksum
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder is a cache of intermediate renders made by render; it can be deleted.\n"
)
"""The Cache Directory Tagging Specification's tag: backup tools skip a folder holding it."""
_CHUNK = 1 << 22


@dataclass(frozen=True)
class Blocks:
    """Where an entry's audio blocks lie: block ``i`` starts at timeline sample
    ``offsets[i]``, is ``lengths[i]`` samples long and holds ``arrays`` arrays (post-fader,
    then pre-fader where recorded) of ``channels`` rows each."""

    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    channels: int
    arrays: int


class DamagedEntry(Exception):
    """An entry whose audio failed its checksum while it was being served: it has been deleted;
    whatever was made from it must be made again without it."""


class Entry:
    """An entry whose trailer and object passed every check: its object, and its audio
    blocks, checked against their checksum as they are served in order (one pass over the file
    instead of two), or all at once before the first block served out of order."""

    def __init__(
        self,
        path: Path,
        value: Any,
        blocks: Blocks | None,
        handle: Any,
        blocks_checksum: int | None,
    ) -> None:
        self.path, self.value, self.blocks, self._handle = path, value, blocks, handle
        self._expected = blocks_checksum  # None: checked already
        self._checksum = xxhash.xxh3_64()
        self._next = 0  # the next block to read in order
        self._position = len(MAGIC)  # where that block starts in the file

    def block(self, offset: int, n: int) -> np.ndarray:
        """The recorded arrays of the block at ``offset`` of ``n`` samples, as
        ``float64[arrays, channels, n]``; raises ``DamagedEntry`` if the audio is damaged."""
        layout = self.blocks
        assert layout is not None
        index = self._next
        in_order = index < len(layout.offsets) and self._expected is not None
        if in_order and (layout.offsets[index], layout.lengths[index]) == (offset, n):
            out = np.empty((layout.arrays, layout.channels, n))
            self._handle.seek(self._position)
            if self._handle.readinto(out.data) != out.nbytes:
                self._damaged()
            self._checksum.update(out.data)
            self._next += 1
            self._position += out.nbytes
            if self._next == len(layout.offsets) and self._checksum.intdigest() != self._expected:
                self._damaged()
            return out
        self._check_all()
        return np.stack([self.read(offset, n, array) for array in range(layout.arrays)])

    def read(self, offset: int, n: int, array: int = 0) -> np.ndarray:
        """Samples ``[offset, offset + n)`` of recorded array ``array`` (0: the first
        recorded per block), as a fresh ``float64[channels, n]`` array (zeros where no
        block lies); the entry is checked whole first."""
        self._check_all()
        assert self.blocks is not None
        layout = self.blocks
        out = np.zeros((layout.channels, n))
        position = len(MAGIC)
        for start, length in zip(layout.offsets, layout.lengths, strict=True):
            size = layout.channels * length * 8
            begin, end = max(offset, start), min(offset + n, start + length)
            if begin < end:
                for row in range(layout.channels):
                    at = position + (array * layout.channels + row) * length * 8
                    self._handle.seek(at + (begin - start) * 8)
                    self._handle.readinto(out[row, begin - offset : end - offset].data)
            position += size * layout.arrays
        return out

    def close(self) -> None:
        self._handle.close()

    def _check_all(self) -> None:
        if self._expected is None:
            return
        assert self.blocks is not None
        self._handle.seek(len(MAGIC))
        if _checksum_of(self._handle, _audio_bytes(self.blocks)) != self._expected:
            self._damaged()
        self._expected = None

    def _damaged(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)
        raise DamagedEntry(self.path.name)


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
            value, blocks, blocks_checksum = _check(handle, lazy)
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
        ends after ``finish``; otherwise (an error, an interrupt) its temporary is removed."""
        target = self.path(key)
        with contextlib.suppress(_Unfinished), audio_io.atomic_path(target) as temporary:
            with open(temporary, "wb") as file:
                writer = Writer(file)
                yield writer
            if not writer.finished:
                raise _Unfinished
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
        for path in self.entries.iterdir():
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


class Writer:
    """Writes one entry: audio blocks as they come, then the object and the trailer."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.blocks_checksum = xxhash.xxh3_64()
        self.checksum = xxhash.xxh3_64()
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self.shape: tuple[int, int] | None = None  # (channels, arrays)
        self.finished = False
        file.write(MAGIC)

    def append(self, offset: int, *arrays: np.ndarray) -> None:
        """Record the block at timeline ``offset``: arrays of the same ``[channels, n]``."""
        channels, n = arrays[0].shape
        if self.shape is None:
            self.shape = (channels, len(arrays))
        assert self.shape == (channels, len(arrays))
        for x in arrays:
            data = np.ascontiguousarray(x, dtype=np.float64).data
            self.blocks_checksum.update(data)
            self.file.write(data)
        self.offsets.append(offset)
        self.lengths.append(n)

    def finish(self, value: Any = None) -> None:
        """Write ``value`` and the trailer: the entry is complete. The arrays inside
        ``value`` are written as they are, after the blocks, not copied into the pickle
        (pickle protocol 5's out-of-band buffers, PEP 574)."""
        buffers: list[pickle.PickleBuffer] = []
        pickled = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        sizes = []
        for buffer in buffers:
            data = buffer.raw()
            self.checksum.update(data)
            self.file.write(data)
            sizes.append(data.nbytes)
        blocks = None
        if self.shape is not None:
            blocks = Blocks(tuple(self.offsets), tuple(self.lengths), *self.shape)
        trailer = pickle.dumps(
            {
                "value": pickled,
                "buffers": sizes,
                "blocks": blocks,
                "blocks_checksum": self.blocks_checksum.intdigest(),
                "checksum": self.checksum.intdigest(),
            },
            protocol=5,
        )
        self.file.write(trailer)
        self.file.write(_TAIL.pack(len(trailer), xxhash.xxh3_64_intdigest(trailer)))
        self.finished = True


def _check(handle: Any, lazy: bool) -> tuple[Any, Blocks | None, int | None]:
    """The object and block layout of an entry file after every integrity check, and the
    checksum its audio blocks must have if ``lazy`` left them unchecked (else None)."""
    size = os.fstat(handle.fileno()).st_size
    if size < len(MAGIC) + _TAIL.size or handle.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a cache entry")
    handle.seek(size - _TAIL.size)
    trailer_size, trailer_checksum = _TAIL.unpack(handle.read(_TAIL.size))
    payload_end = size - _TAIL.size - trailer_size
    if payload_end < len(MAGIC):
        raise ValueError("truncated")
    handle.seek(payload_end)
    trailer = handle.read(trailer_size)
    if xxhash.xxh3_64_intdigest(trailer) != trailer_checksum:
        raise ValueError("damaged trailer")
    fields = pickle.loads(trailer)
    blocks: Blocks | None = fields["blocks"]
    audio = 0 if blocks is None else _audio_bytes(blocks)
    if payload_end - len(MAGIC) != audio + sum(fields["buffers"]):
        raise ValueError("truncated payload")
    handle.seek(len(MAGIC))
    if not lazy and _checksum_of(handle, audio) != fields["blocks_checksum"]:
        raise ValueError("damaged audio")
    handle.seek(len(MAGIC) + audio)
    buffers, checksum = [], xxhash.xxh3_64()
    for buffer_size in fields["buffers"]:
        buffer = bytearray(buffer_size)
        handle.readinto(buffer)
        checksum.update(buffer)
        buffers.append(buffer)
    if checksum.intdigest() != fields["checksum"]:
        raise ValueError("damaged object")
    value = pickle.loads(fields["value"], buffers=buffers)
    return value, blocks, fields["blocks_checksum"] if lazy and blocks is not None else None


def _audio_bytes(blocks: Blocks) -> int:
    return sum(blocks.lengths) * blocks.channels * blocks.arrays * 8


def _checksum_of(handle: Any, size: int) -> int:
    """The checksum of the next ``size`` bytes of ``handle`` (fewer if it ends first: the
    entry is then damaged, and the checksum says so)."""
    checksum = xxhash.xxh3_64()
    while size > 0:
        chunk = handle.read(min(_CHUNK, size))
        if not chunk:
            break
        checksum.update(chunk)
        size -= len(chunk)
    return checksum.intdigest()


def parse_size(text: str) -> int:
    """``"2GB"``, ``"500 MB"``, ``"1.5GiB"`` or a number of bytes, in bytes (GB = 10^9 bytes,
    GiB = 2^30, as IEC 80000-13 has them)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(?:([KMGT])(I?)B?|B?)\s*", text, re.IGNORECASE)
    if found is None:
        raise ValueError(f"expected a size like 2GB or 500MB, got {text!r}")
    number, prefix, binary = found.groups()
    power = "KMGT".index(prefix.upper()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)
