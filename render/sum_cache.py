"""Bus input sums kept in the render cache and brought up to date by what changed.

A bus's input is an exact sum (``levels.accumulate`` rounds each input to a 2^-40 grid), so
the sum an earlier render cached can be updated rather than summed again: each input that
changed is taken out with its earlier signal and summed in with its new one, and the inputs
that did not change are neither read nor rendered. The result is the same bits as a fresh
sum. An earlier signal comes from that strip's cache entry (buses, heavy tracks) or is
rendered again from the recipe kept for each track (its settings, and its stem by content:
the stem file while it still holds those bytes, else the hard link or copy the cache keeps).

The mix bus keeps its input sum like any bus. A sum covers only the inputs whose earlier
signals can be had (tracks, cached strips); the others, buses whose outputs are not cached,
are summed afresh beside it on every render. A bus is updated only where that is cheaper than
summing afresh: at least ``MIN_INPUTS`` covered inputs, of which at most a third changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from render import audio_io
from render.cache import Cache
from render.cache_entry import Entry
from render.chain import prepare_chain
from render.digests import InputDigests
from render.dsp.levels import accumulate, db_to_gain
from render.errors import OutputError
from render.graph import Node, Output
from render.keys import Ingredients, Stage, sha256_json
from render.session.model import Session, Track
from render.streamed import StreamedTrack
from render.strip import StripOutput

MIN_INPUTS = 3
"""Buses with fewer inputs are summed afresh: rendering the others costs about as much as
reading the cached sum and taking the old signal out."""
MAX_CHANGED_SHARE = 1 / 3
"""Buses with more of their inputs changed are summed afresh."""

Edge = tuple[str, str, float]
"""An input of a bus: the strip's name, its tap ("out", "pre", "post") and level in dB."""


class Source(Protocol):
    def block(self, offset: int, n: int) -> StripOutput: ...


class Update:
    """A bus's input made from its cached earlier sum: that sum minus the signals of the
    inputs taken out (``removals``: their sources, or the nodes that render them again, which
    the mixer replaces by their renders); the sum holds the ``kept`` inputs still, and the
    mixer sums every other input into it (the ``added`` ones, and those no sum covers)."""

    def __init__(
        self,
        entry: Entry,
        added: frozenset[Edge],
        kept: frozenset[Edge],
        removals: list[tuple[Edge, Source | Node]],
    ) -> None:
        self.entry, self.added, self.kept, self.removals = entry, added, kept, removals

    def block(self, offset: int, n: int) -> np.ndarray:
        """The earlier sum's block at ``offset`` with the removed inputs taken out (exactly:
        each is added with the opposite gain, which rounds to the opposite value)."""
        x: np.ndarray = self.entry.block(offset, n)[0]
        for (_, tap, level_db), source in self.removals:
            assert not isinstance(source, Node)
            output = source.block(offset, n)
            signal = output.pre if tap == "pre" else output.post
            assert signal is not None
            accumulate(x, signal, -db_to_gain(level_db))
        return x


@dataclass(frozen=True)
class Planned:
    """An update found possible from the stages alone: the earlier sum's entry, the edges
    to sum in, the edges it holds that stay, and the edges to take out with the stage name
    and key of their strip's earlier signal."""

    entry: Entry
    added: frozenset[Edge]
    kept: frozenset[Edge]
    removed: list[tuple[Edge, str, str]]


class Rendered:
    """An earlier output of a track rendered again from its recipe, served in blocks."""

    def __init__(self, output: Future[StripOutput]) -> None:
        self.output = output

    def block(self, offset: int, n: int) -> StripOutput:
        whole = self.output.result()
        pre = None if whole.pre is None else whole.pre[:, offset : offset + n]
        return StripOutput(pre, whole.post[:, offset : offset + n])


class Prefetched:
    """An earlier output of a track rendered again block by block on the workers, each block
    queuing the next when it is done, so it runs ahead of the buses that take it out
    (``takers``: how many sources of updates it is) wherever the workers have time; each
    block is kept until all of them have taken it."""

    def __init__(
        self, strip: StreamedTrack, pool: ThreadPoolExecutor, length: int, block: int, takers: int
    ) -> None:
        self.strip, self.pool, self.length, self.size = strip, pool, length, block
        self.takers = takers
        self.pending: dict[int, Future[StripOutput]] = {}
        self.kept: dict[int, tuple[StripOutput, int]] = {}  # block, takers still to take it
        self.closed = False
        self._queue(0)

    def block(self, offset: int, n: int) -> StripOutput:
        if offset in self.pending:  # queued by the block before, before that one was done
            self.kept[offset] = (self.pending.pop(offset).result(), self.takers)
        output, left = self.kept.pop(offset)
        if left > 1:
            self.kept[offset] = (output, left - 1)
        return output

    def close(self) -> None:
        """Stop rendering (after an error, or blocks no bus took) and close the stem."""
        self.closed = True
        for future in list(self.pending.values()):
            future.cancel()
        wait(list(self.pending.values()))  # a block still running may be reading the stem
        self.strip.close()

    def _queue(self, offset: int) -> None:
        if offset < self.length and not self.closed:
            self.pending[offset] = self.pool.submit(self._render, offset)

    def _render(self, offset: int) -> StripOutput:
        n = min(self.size, self.length - offset)
        output = self.strip.block(offset, n)
        self._queue(offset + n)
        return output


class Recipes:
    """What it takes to render a track's output of an earlier render again: the track as it
    was (kept in the cache under its stage's key) and its stem's bytes, kept in the cache as
    a hard link to the stem file (a copy, in the background, where the cache lies on another
    file system). A stem replaced by a new file (as git, rsync or ``mv`` do) stays there; one
    overwritten in place changes its link too, which its hash then tells, and the bus is
    summed afresh."""

    def __init__(self, cache: Cache, session: Session, digests: InputDigests) -> None:
        self.cache, self.session, self.digests = cache, session, digests
        self._copies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stem_copy")

    def keep(self, stage: Stage, track: Track) -> None:
        """Keep the recipe of ``track`` as rendered for ``stage`` (and a copy of its stem)."""
        sha256 = self.digests.sha256(track.stem)
        recipe_key = _recipe_key(stage.key)
        if not self.cache.has(recipe_key):
            self.cache.store(recipe_key, (track, sha256))
        kept = self.cache.path(_stem_key(sha256))
        if not kept.exists():
            before = track.stem.stat()
            try:
                os.link(track.stem, kept)
            except FileExistsError:
                pass  # another render kept it first
            except OSError:
                self._copies.submit(_copy, track.stem, kept)
            else:
                self.digests.linked(track.stem, before)

    def node(self, stage_key: str, name: str, edges: list[Edge]) -> Node | None:
        """The node that renders track ``name`` as it was for ``stage_key``, feeding ``edges``;
        None where its recipe or its stem's bytes are gone, or it listens to a key."""
        recipe = self.cache.load(_recipe_key(stage_key))
        if recipe is None:
            return None
        track, sha256 = recipe
        stem = self._stem(track.stem, sha256)
        if stem is None:
            return None
        track = dataclasses.replace(track, stem=stem)
        chain = prepare_chain(track.inserts, f"tracks.{name}.inserts", self.session)
        if any(effect.sidechain for effect in chain):
            return None
        outputs = tuple(Output("", level_db, tap) for _, tap, level_db in edges)  # type: ignore[arg-type]
        return Node(name, track, chain, outputs, True)

    @staticmethod
    def held(cache: Cache, sums: list[Ingredients]) -> set[str]:
        """The keys of the recipes of the track outputs that ``sums`` (their ingredients)
        hold, and of those recipes' stem copies: what takes a track out of them."""
        recipes = {
            _recipe_key(key)
            for ingredients in sums
            for stage_name, key in ingredients["upstream"].items()
            if stage_name.startswith("tracks.")
        }
        stems = set()
        for recipe_key in recipes:
            recipe = cache.load(recipe_key)
            if recipe is not None:
                stems.add(_stem_key(recipe[1]))
        return recipes | stems

    def close(self) -> None:
        self._copies.shutdown(wait=True)

    def _stem(self, path: Path, sha256: str) -> Path | None:
        """A file holding the stem bytes ``sha256``: ``path`` itself or the cache's copy."""
        for candidate in (path, self.cache.path(_stem_key(sha256))):
            with contextlib.suppress(OSError):
                if candidate.is_file() and self.digests.sha256(candidate) == sha256:
                    return candidate
        return None


def plan_updates(
    cache: Cache, sums: Mapping[str, Stage], before: Mapping[str, Ingredients], skip: set[str]
) -> tuple[dict[str, Planned], set[str]]:
    """The buses of ``sums`` (but ``skip``) whose input can be made from a cached sum: the
    very sum, or an earlier one of the same song and engine from which at most a third of
    the inputs changed. Also the buses whose sums are worth recording (those not cached)."""
    updates, recorded = {}, set()
    for bus, stage in sums.items():
        now = _edges(stage.ingredients)
        if bus in skip or sum(now.values()) < MIN_INPUTS:
            continue
        entry = cache.open(stage.key, lazy=True)
        if entry is not None:  # the very sum: no input is summed
            updates[bus] = Planned(entry, frozenset(), frozenset(e[:3] for e in now), [])
            continue
        recorded.add(bus)
        old = before.get(stage.name)
        same = ("engine", "song")
        if old is None or any(old.get(part) != stage.ingredients[part] for part in same):
            continue
        then = _edges(old)
        removed = list((then - now).elements())
        if not removed or len(removed) > MAX_CHANGED_SHARE * sum(now.values()):
            continue
        entry = cache.open(sha256_json(old), lazy=True)
        if entry is not None:
            added = frozenset(edge[:3] for edge in (now - then).elements())
            kept = frozenset(edge[:3] for edge in (now & then).elements())
            updates[bus] = Planned(entry, added, kept, [(e[:3], e[3], e[4]) for e in removed])
    return updates, recorded


def covered_edges(stage: Stage) -> set[Edge]:
    """The inputs a bus's sum covers (the others are summed afresh on every render)."""
    return {edge[:3] for edge in _edges(stage.ingredients)}


def _edges(ingredients: Ingredients) -> Counter[tuple[Any, ...]]:
    """A sum's inputs as (strip, tap, level, stage name, key), counted."""
    upstream = ingredients["upstream"]
    return Counter(
        (stage_name.split(".", 1)[1], tap, level, stage_name, upstream[stage_name])
        for stage_name, tap, level in ingredients["settings"]["inputs"]
    )


def _recipe_key(stage_key: str) -> str:
    return sha256_json({"recipe of": stage_key})


def _stem_key(sha256: str) -> str:
    return sha256_json({"stem": sha256})


def _copy(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` by way of a temporary; a copy that fails is dropped
    (the stem then cannot be taken out of a sum once it is replaced, which only costs time)."""
    with contextlib.suppress(OSError, OutputError), audio_io.atomic_path(target) as part:
        shutil.copyfile(source, part)
