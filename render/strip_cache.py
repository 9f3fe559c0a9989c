"""The cached outputs of a mix's strips: which can be reused, and recording the others.

A strip's output (post-fader, and pre-fader where a pre-fader send needs it) is recorded into
its cache entry block by block as it renders, so caching a streamed track needs no whole-song
copy of it. A recording becomes an entry only when the strip has rendered to its end; a
render that fails or is interrupted leaves none.

Only strips worth it are cached (``worth_caching``): a strip's output is 8 bytes per sample
and channel, 138 MB for 3 minutes of stereo, and a track with only light inserts renders
from its stem about as fast as it is read back, so writing it would cost more than it saves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import TracebackType

from render.cache import Cache
from render.cache_entry import Entry, Writer
from render.graph import Node, RenderPlan, input_count, input_edges, needed_strips
from render.keys import Ingredients, Stage, listed, sha256_json
from render.session.model import MIX_BUS, Delay, Eq, Multiband, Reverb, Saturation, Track
from render.strip import StripOutput
from render.sum_cache import (
    MIN_INPUTS,
    Edge,
    Recipes,
    Source,
    Update,
    covered_edges,
    plan_updates,
)

HEAVY = (Reverb, Delay, Saturation, Multiband)
"""Inserts that cost more than reading their output back (measured per 3 minutes of stereo:
convolution reverb 0.4-0.5 s, 4x oversampled saturation 0.7-1.7 s, multiband ~0.3 s, delay
0.2 s, against 0.1 s to read 138 MB back and check it; an EQ takes 0.1 s, a compressor
0.06 s)."""


def worth_caching(node: Node, plan: RenderPlan, sample_rate: int) -> bool:
    """Whether ``node``'s output is cached: a track whose stem is resampled or whose inserts
    are heavy (``heavy``), and a bus with fewer than ``MIN_INPUTS`` inputs (what feeds it
    then need not render at all). A bus with more keeps its input sum instead
    (``render.sum_cache``), which serves as well and can be updated when an input changes;
    its own chain runs again over it, unless it is heavy (``kept_while_unchanged``)."""
    if not isinstance(node.strip, Track):
        return input_count(plan, node.name) < MIN_INPUTS
    return plan.stems[node.name].sample_rate != sample_rate or heavy(node)


def kept_while_unchanged(node: Node, plan: RenderPlan) -> bool:
    """Whether ``node`` is a heavy bus that keeps its input sum: its output is cached too,
    but recorded only by a render that serves that sum unchanged (a change to another bus
    or the mix bus), never where an input changed. That is most often a strip being tuned,
    which the next render changes again, and the 138 MB written would be thrown away:
    writing the reverb's and the echo's cost the 16-track bench's one-EQ render ~0.9 s. As
    its earlier output is then not always there to take out, no sum covers it."""
    return (
        not isinstance(node.strip, Track)
        and input_count(plan, node.name) >= MIN_INPUTS
        and heavy(node)
    )


def heavy(node: Node) -> bool:
    """Whether ``node``'s inserts include a heavy effect or a linear-phase EQ."""
    return any(
        isinstance(e, HEAVY) or (isinstance(e, Eq) and e.phase == "linear")
        for e in node.strip.inserts
    )


class CachedStrip:
    """A strip's output served from its cache entry, for any block."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry

    def block(self, offset: int, n: int) -> StripOutput:
        """The block at ``offset``; raises ``DamagedEntry`` where the entry fails its CRC."""
        arrays = self.entry.block(offset, n)
        return StripOutput(arrays[1] if len(arrays) == 2 else None, arrays[0])

    def close(self) -> None:
        self.entry.close()


class Recording:
    """A strip's output blocks on their way into its cache entry."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def append(self, offset: int, output: StripOutput) -> None:
        arrays = (output.post,) if output.pre is None else (output.post, output.pre)
        self.writer.append(offset, *arrays)

    def finish(self) -> None:
        self.writer.finish()


class StripCache:
    """The strips of one mix render whose outputs are cached, the bus inputs made from cached
    sums (``render.sum_cache``), and the recordings of the rest.

    Use as a context manager: recordings finished by then become entries; the others (and all
    of them, if the render fails) are discarded."""

    def __init__(
        self,
        cache: Cache,
        stages: dict[str, Stage],
        plan: RenderPlan,
        cacheable: set[str],
        sums: Mapping[str, Stage] | None = None,
        before: Mapping[str, Ingredients] | None = None,
        recipes: Recipes | None = None,
    ) -> None:
        self.cache, self.stages, self.cacheable = cache, stages, cacheable
        self.sums, self.recipes = sums or {}, recipes
        self.entries: dict[str, Entry] = {}
        self.updates: dict[str, Update] = {}
        self._opened: list[Entry] = []  # the entries of the updates, closed on exit
        present = {name for name in cacheable if cache.has(stages[name].key)}
        self.covered = {bus: covered_edges(stage) for bus, stage in self.sums.items()}
        while True:  # open what the mix needs; a damaged entry is rendered (and so its inputs)
            self._plan_updates(present, before or {})
            only = {  # what feeds a bus besides what its cached sum holds
                bus: {edge[0] for edge in input_edges(plan, bus) if edge not in u.kept}
                for bus, u in self.updates.items()
            }
            self.needed = needed_strips(plan, present, only)
            self.updates = {bus: u for bus, u in self.updates.items() if bus in self.needed}
            damaged = set()
            for name in sorted(self.needed & present - set(self.entries)):
                entry = cache.open(stages[name].key, lazy=True)
                if entry is None or entry.blocks is None:
                    damaged.add(name)
                else:
                    self.entries[name] = entry
            if not damaged:
                break
            present -= damaged
        self.rendered: list[str] = []
        self._summed_anew = {  # buses kept_while_unchanged whose sum changes: not recorded
            node.name
            for node in plan.nodes
            if kept_while_unchanged(node, plan) and not self._served_unchanged(node.name)
        }
        self._writers = contextlib.ExitStack()

    def _served_unchanged(self, bus: str) -> bool:
        """Whether bus ``bus``'s input is its cached sum as it was (no input taken out or
        added)."""
        update = self.updates.get(bus)
        return update is not None and not update.added and not update.removals

    def _plan_updates(self, present: set[str], before: Mapping[str, Ingredients]) -> None:
        """The bus inputs made from cached sums, each earlier signal to take out served from
        its strip's entry or rendered again from its recipe, once for all the buses that
        take it out (else the bus is summed afresh).

        A sum updated for one strip only, changed since the last render (being tuned), is
        not written back: taking that strip out of the earlier sum again on the next render
        costs less than writing the whole sum (138 MB for 3 minutes of stereo), and the
        strip being tuned is most often the one changed next. A sum updated for more strips,
        or for a strip that this render did not change (another change needs the sum), is
        written back, so that later updates stay small."""
        for entry in self._opened:
            entry.close()
        self._opened, self.updates = [], {}
        planned, self.recorded = plan_updates(self.cache, self.sums, before, present)
        sources: dict[str, Source | Node | None] = {}
        for update in planned.values():
            self._opened.append(update.entry)
            for edge, stage_name, key in update.removed:
                if key not in sources:
                    sources[key] = self._earlier(
                        stage_name,
                        key,
                        edge[0],
                        [e for u in planned.values() for e, _, k in u.removed if k == key],
                    )
        tuned = {  # the strips this render changed
            name
            for name, stage in self.stages.items()
            if stage.name not in before or sha256_json(before[stage.name]) != stage.key
        }
        for bus, update in planned.items():
            removals = [(edge, sources[key]) for edge, _, key in update.removed]
            if not all(source is not None for _, source in removals):
                self.recorded.add(bus)
                continue
            self.updates[bus] = Update(update.entry, update.added, update.kept, removals)  # type: ignore[arg-type]
            touched = {edge[0] for edge, _ in removals} | {edge[0] for edge in update.added}
            if len(touched) == 1 and touched <= tuned:
                self.recorded.discard(bus)

    def _earlier(
        self, stage_name: str, key: str, name: str, edges: list[Edge]
    ) -> Source | Node | None:
        """The earlier output ``key`` of strip ``name``: its cache entry, or the node that
        renders it again (for ``edges``), or None."""
        entry = self.cache.open(key, lazy=True)
        if entry is not None and entry.blocks is not None:
            self._opened.append(entry)
            return CachedStrip(entry)
        if self.recipes is None or not stage_name.startswith("tracks."):
            return None
        return self.recipes.node(key, name, edges)

    def summing(self, name: str) -> str | None:
        """Why strip ``name``, not cached, rendered although it did not change: a cached sum
        it feeds held an earlier output of it, or none was there to update from (None: it
        feeds only buses summed afresh on every render)."""
        held = [
            _strip_name(bus)
            for bus, update in self.updates.items()
            if any(edge[0] == name for edge in update.added)
        ]
        if held:
            return f"replaced its earlier output in the cached input of {listed(held)}"
        afresh = [
            _strip_name(bus)
            for bus, edges in self.covered.items()
            if bus not in self.updates
            and len(edges) >= MIN_INPUTS
            and any(edge[0] == name for edge in edges)
        ]
        if afresh:
            return f"summed afresh into {listed(afresh)}: no cached input close enough to update"
        return None

    def served(self, name: str) -> CachedStrip | None:
        entry = self.entries.get(name)
        return None if entry is None else CachedStrip(entry)

    def record(self, name: str, node: Node) -> Recording | None:
        """Where the output of strip ``name``, about to render, is recorded (None: it is not
        worth caching; a track's recipe is kept instead)."""
        self.rendered.append(name)
        if name not in self.cacheable or name in self._summed_anew:
            if self.recipes is not None and isinstance(node.strip, Track):
                self.recipes.keep(self.stages[name], node.strip)
            return None
        return Recording(self._writers.enter_context(self.cache.writer(self.stages[name].key)))

    def record_sum(self, name: str) -> Writer | None:
        """Where bus ``name``'s summed input is recorded (None: not worth it, or cached)."""
        if name not in self.recorded:
            return None
        return self._writers.enter_context(self.cache.writer(self.sums[name].key))

    def __enter__(self) -> StripCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._writers.__exit__(kind, error, trace)
        for entry in [*self.entries.values(), *self._opened]:
            entry.close()
        if self.recipes is not None:
            self.recipes.close()


def _strip_name(bus: str) -> str:
    return "the mix" if bus == MIX_BUS else f"buses.{bus}"
