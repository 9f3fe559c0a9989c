"""Render a session's graph to the stereo mix.

Tracks are independent until they reach a bus, so they render concurrently in threads (the
decoders, scipy filters and numba kernels release the GIL). Strips whose whole chain can
stream are rendered block by block (``render.streamed``): the workers process every
streamed track's block ``k`` and sum it into the buses' blocks ``k`` themselves (panned,
faded and summed in one pass), each worker into its own partial sums, so that no worker
waits for another; the main thread adds them up and queues each streamed bus's block ``k``
once its inputs are in, so bus accumulators are one block long, not one song, and the
caches stay warm. Where every input of the mix bus streams, its block ``k`` runs in a worker
too, once its buses' blocks ``k`` are done. The other strips render whole, in render order,
at most ``jobs`` tracks at a time. The sums are exact (``levels.accumulate``), so the bits
do not depend on the order in which the workers sum, and the same session gives the same
bits for every ``jobs``, streamed or not (a strip streams only if no bus it feeds has
already received a whole-rendered input, which keeps each bus's inputs in render order
too). With a render cache (``render.strip_cache``), a strip whose output is cached is served
from it in the place it would have rendered, and a strip that only feeds cached strips is
not rendered at all; a bus's input may be its cached sum, updated by the inputs that
changed (``render.sum_cache``), so that its unchanged inputs are not rendered either.

A strip runs: inserts → pre-fader taps → fader → pan → post-fader taps and out.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from render import memory
from render.cache_entry import Writer
from render.chain import BlockProcess, PreparedEffect, block_chain, run_chain, streams
from render.dsp.levels import accumulate_into, accumulate_pair_into, db_to_gain
from render.graph import Node, RenderPlan, needed_strips, plan
from render.samples import WithSamples
from render.session.model import MIX_BUS, Session, Track
from render.streamed import StreamedBus, StreamedPair, StreamedTrack
from render.strip import Levels, StripOutput
from render.strip_cache import CachedStrip, Recording, StripCache
from render.strip_render import BLOCK, StripRenderer
from render.sum_cache import Prefetched

_Partials = dict[tuple[str, int], dict[int, np.ndarray]]
"""Streamed buses' input blocks by (bus, offset): each worker's partial sum by its thread."""
_LAG_BLOCKS = 4
"""How many blocks the streamed buses' outputs may lag behind before the main thread waits
to sum them onwards, so a slow bus (a long reverb) overlaps the next blocks' tracks instead
of holding them up; each output waiting holds one block (1 MB)."""
SILENCE = 2.0**-25
"""Below a quarter of a 24-bit step: where ringing tails count as silent for the mix length."""


@dataclass(frozen=True)
class Mix(WithSamples):
    """The stereo mix (``audio``: float64[2, frames])."""

    sample_rate: int
    frames: int
    tracks: tuple[str, ...]  # the tracks heard, in session order
    notes: tuple[str, ...]


def render_mix(
    session: Session,
    jobs: int,
    render_plan: RenderPlan | None = None,
    strips: StripCache | None = None,
) -> Mix:
    """Render every strip and sum the mix bus, ``jobs`` threads at a time; with ``strips``,
    reuse the cached outputs it holds (and render nothing that only they need) and record
    the outputs of the strips rendered."""
    render_plan = render_plan or plan(session)
    mixer = _Mixer(session, render_plan, strips)
    # Which strips stream is decided as in a render without cache, so every bus sums its
    # inputs in the same order whether they are rendered or served.
    used = [n for n in render_plan.nodes if n.name in mixer.used]
    streamed = [n for n in mixer.streamed_nodes(used) if n.name in mixer.needed]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: deque[tuple[Node, Future[StripOutput]]] = deque()
        earlier: list[Prefetched] = []  # the earlier signals streamed for updated sums
        try:
            mixer.render.removals(mixer.updates, pool, earlier)
            mixer.stream(streamed, pool)
            for node in used:
                if node.name in mixer.streamed or node.name not in mixer.needed:
                    continue
                needs_keys = any(e.sidechain is not None for e in node.chain)
                while pending and (not node.is_track or needs_keys or len(pending) >= jobs):
                    done, future = pending.popleft()
                    mixer.deliver(done, future.result(), 0)
                if (cached := mixer.served(node)) is not None:
                    mixer.deliver_cached(node, cached)
                elif node.is_track:
                    pending.append((node, pool.submit(mixer.render_track, node)))
                else:
                    mixer.render_bus(node)
            while pending:
                done, future = pending.popleft()
                mixer.deliver(done, future.result(), 0)
            mixer.mix_input()
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
        finally:
            for streamed_earlier in earlier:
                streamed_earlier.close()
    return mixer.finish()


class _Mixer:
    """The bus accumulators and sidechain keys of one render."""

    def __init__(
        self, session: Session, render_plan: RenderPlan, strips: StripCache | None
    ) -> None:
        self.session = session
        self.plan = render_plan
        self.rate = session.sample_rate
        self.strips = strips
        self.cached = set(strips.entries) if strips else set()
        self.needed = strips.needed if strips else needed_strips(render_plan, set())
        self.updates = strips.updates if strips else {}  # bus inputs made from cached sums
        self.sum_writers: dict[str, Writer | None] = {}
        self.buses: dict[str, np.ndarray] = {}  # whole-song inputs of the buses rendered whole
        self.blocks: _Partials = {}  # streamed buses' inputs by block, a sum per worker
        self.recorded = strips.recorded if strips else set()  # buses whose sums are recorded
        self.covered = strips.covered if strips else {}  # the inputs each of their sums holds
        self.apart: dict[str, np.ndarray] = {}  # whole-song inputs they do not cover
        self.apart_blocks: _Partials = {}  # by block, streamed buses'
        self.streamed: set[str] = set()
        self.keys: dict[str, np.ndarray] = {}
        self._routing: dict[tuple[str, str], list[tuple[str, bool, float]]] = {}
        # Workers sum their blocks themselves: one lock guards making the buffers above,
        # and one per bus its sums.
        self._making = threading.Lock()
        self._summing = {node.name: threading.Lock() for node in render_plan.nodes}
        self._summing[MIX_BUS] = threading.Lock()
        self.render = StripRenderer(session, render_plan, self.keys)
        self.mix_gain = db_to_gain(session.mix.gain_db)
        self.notes: list[str] = list(render_plan.notes)
        self.used = {  # what a render without cache renders: heard, or keying a sidechain
            n.name for n in render_plan.nodes if n.audible or n.name in render_plan.key_sources
        }
        for track in session.tracks:
            rate = render_plan.stems[track.name].sample_rate
            if rate != self.rate and track.name in self.used:
                self.notes.append(
                    f"{track.name}: stem at {rate} Hz resampled to "
                    f"{self.rate} Hz (soxr, very high quality)"
                )

    def updated(self, name: str, offset: int, n: int) -> np.ndarray | None:
        """Bus ``name``'s updated cached sum's block at ``offset``, where it has one; taken
        on the main thread, since it may wait for earlier signals the workers render again.
        The writer that records the bus's sum is made here too, on first use."""
        if name not in self.sum_writers:
            self.sum_writers[name] = self.strips.record_sum(name) if self.strips else None
        update = self.updates.get(name)
        return None if update is None else update.block(offset, n)

    def bus_input(
        self,
        name: str,
        x: np.ndarray,
        offset: int,
        updated: np.ndarray | None,
        apart: np.ndarray | None,
    ) -> np.ndarray:
        """Bus ``name``'s input block at ``offset``: what this render summed into it (``x``),
        plus its updated cached sum's block (``updated``) where it has one, recorded where
        its sum is cached; then plus the inputs summed ``apart``, which the recorded sum
        does not cover."""
        if updated is not None:
            x += updated  # exact: both are sums on the same grid
        writer = self.sum_writers[name]
        if writer is not None:
            writer.append(offset, x)
            if offset + x.shape[1] == self.plan.length:
                writer.finish()
        if apart is not None:
            x += apart  # exact, as above
        return x

    def served(self, node: Node) -> CachedStrip | None:
        """The cached output of ``node``, if the render has a cache holding it."""
        return self.strips.served(node.name) if self.strips else None

    def recording(self, node: Node) -> Recording | None:
        """Where ``node``'s output is recorded for the cache (None: no cache, or a strip
        not worth caching)."""
        return self.strips.record(node.name, node) if self.strips else None

    def deliver_cached(self, node: Node, cached: CachedStrip) -> None:
        """Deliver a strip's cached output block by block, as rendering it would."""
        for offset in range(0, self.plan.length, BLOCK):
            self.deliver(node, cached.block(offset, self._block_length(offset)), offset)

    def streamable(self, node: Node) -> bool:
        """Whether a strip's own processing can stream: a track's when its stem needs no
        resampling and its chain streams without a sidechain (a key would have to be
        complete before the track starts); a bus's when its chain streams."""
        if not isinstance(node.strip, Track):
            return streams(node.chain, BLOCK)
        if any(e.sidechain for e in node.chain):
            return False
        return streams(node.chain, BLOCK) and self.plan.stems[node.name].sample_rate == self.rate

    def streamed_nodes(self, needed: list[Node]) -> list[Node]:
        """The strips of ``needed`` (in render order) that stream: those that can, whose
        inputs and sidechain keys all stream too, and none of whose buses has an earlier
        input rendered whole (whole renders are summed after the streamed ones, so that
        input would move out of render order)."""
        sources: dict[str, list[str]] = {}
        for node in needed:
            for out in node.outputs:
                sources.setdefault(out.target, []).append(node.name)
        fed_whole: set[str] = set()
        chosen = []
        for node in needed:
            inputs = sources.get(node.name, []) + [e.sidechain for e in node.chain if e.sidechain]
            if (
                self.streamable(node)
                and all(name in self.streamed for name in inputs)
                and not any(out.target in fed_whole for out in node.outputs)
            ):
                chosen.append(node)
                self.streamed.add(node.name)
            else:
                fed_whole.update(out.target for out in node.outputs)
        chain = self.plan.mix_chain
        if (
            chosen
            and MIX_BUS not in fed_whole
            and streams(chain, BLOCK)
            and not any(e.sidechain for e in chain)
        ):
            self.streamed.add(MIX_BUS)
        return chosen

    def stream(self, nodes: list[Node], pool: ThreadPoolExecutor) -> None:
        """Render ``nodes`` block by block in the workers, each block summed onwards by the
        worker that made it. A bus's block is queued once its inputs are summed and its
        previous block is done, and waited for only while more than ``_LAG_BLOCKS`` blocks
        of the buses are queued, so that the buses run beside the next blocks' tracks; only
        a bus that listens to another (an input or a key) waits for it."""
        tracks = _paired([self._streamed_strip(node) for node in nodes if node.is_track])
        buses: list[_Streamed] = []
        queued: deque[Future[None]] = deque()
        streamed = nodes or MIX_BUS in self.streamed  # (the mix: its inputs may be cached)
        offsets = range(0, self.plan.length, BLOCK) if streamed else range(0)
        futures: list[Future[None]] = []
        try:
            futures = [pool.submit(track.block, 0, self._block_length(0)) for track in tracks]
            # The buses are made while the workers start on the tracks: making a reverb's
            # impulse response would otherwise keep both cores waiting.
            for node in nodes:
                if not node.is_track:
                    buses.append(self._streamed_strip(node))  # closed below, even on failure
            names = {bus.node.name for bus in buses}
            fed = {out.target for bus in buses for out in bus.node.outputs}
            listens = {  # buses that need another bus's block first: as an input or as a key
                bus.node.name: bus.node.name in fed
                or any(e.sidechain in names for e in bus.node.chain)
                for bus in buses
            }
            last: dict[str, Future[None] | None] = dict.fromkeys([*names, MIX_BUS])
            # The mix bus streams too where all its inputs do: its block after theirs.
            mix = block_chain(self.plan.mix_chain, 2) if MIX_BUS in self.streamed else None
            mix_inputs = [
                bus.node.name for bus in buses if any(o.target == MIX_BUS for o in bus.node.outputs)
            ]
            for offset in offsets:
                following = offset + BLOCK
                for index, track in enumerate(tracks):
                    futures[index].result()  # this block summed (a track's blocks in order)
                    if following < self.plan.length:
                        n = self._block_length(following)
                        futures[index] = pool.submit(track.block, following, n)
                # The earlier blocks' buses that are done; a slow bus goes on beside this
                # block's tracks.
                _settle(queued, keep=_LAG_BLOCKS * (len(buses) + (mix is not None)))
                for bus in buses:
                    if listens[bus.node.name]:
                        _settle(queued)
                    name = bus.node.name
                    updated = self.updated(name, offset, self._block_length(offset))
                    x = self._streamed_input(name, offset, updated)
                    keys = self._keys(bus.node.chain, offset)
                    arguments = (offset, x, keys) if bus.takes_input else (offset, x.shape[1])
                    last[name] = _queue_after(pool, [last[name]], bus.block, *arguments)
                    queued.append(last[name])
                if mix is not None:
                    before = [last[MIX_BUS], *(last[name] for name in mix_inputs)]
                    updated = self.updated(MIX_BUS, offset, self._block_length(offset))
                    block = self._mix_block
                    last[MIX_BUS] = _queue_after(pool, before, block, mix, offset, updated)
                    queued.append(last[MIX_BUS])
            _settle(queued)
        finally:
            pending = futures + list(queued)
            for future in pending:
                future.cancel()
            wait(pending)  # a block still running may be reading its stem
            for strip in tracks + buses:
                strip.close()

    def _mix_block(
        self, stages: list[BlockProcess], offset: int, updated: np.ndarray | None
    ) -> None:
        """The streamed mix bus's block at ``offset``: its input (the workers' partial sums,
        through ``bus_input``), its chain and gain, into the whole-song mix: the bits
        ``finish`` gives the whole input."""
        x = self._streamed_input(MIX_BUS, offset, updated)
        mix = self._buffer(self.buses, MIX_BUS)
        self._through_mix(stages, x, offset, mix[:, offset : offset + x.shape[1]])

    def _streamed_input(self, name: str, offset: int, updated: np.ndarray | None) -> np.ndarray:
        """A streamed bus's input block at ``offset``: the workers' partial sums added up
        (silence where none came), through ``bus_input``."""
        x = self._take(self.blocks, name, offset)
        if x is None:
            x = np.zeros((2, self._block_length(offset)))
        apart = self._take(self.apart_blocks, name, offset)
        return self.bus_input(name, x, offset, updated, apart)

    def _take(self, partials: _Partials, name: str, offset: int) -> np.ndarray | None:
        """Bus ``name``'s input block at ``offset`` from ``partials``, once summed (or None):
        the workers' partial sums added up (exact, so the same bits in any order)."""
        with self._making:
            sums = list(partials.pop((name, offset), {}).values())
        for other in sums[1:]:
            sums[0] += other
        return sums[0] if sums else None

    def _block_length(self, offset: int) -> int:
        return min(BLOCK, self.plan.length - offset)

    def _streamed_strip(self, node: Node) -> _Streamed:
        """The block source of a streamed strip: its cache entry, or its rendering (recorded
        into the cache where there is one)."""
        cached = self.served(node)
        if cached is not None:
            return _Streamed(node, cached, None, self)
        strip: StreamedTrack | StreamedBus
        if node.is_track:
            strip = self.render.track(node, self.plan.stems[node.name])
        else:
            strip = self.render.bus(node)
        return _Streamed(node, strip, self.recording(node), self)

    def _keys(self, chain: Sequence[PreparedEffect], offset: int) -> list[np.ndarray | None]:
        """Each insert's sidechain key for the block at ``offset`` (None where it has none)."""
        return [
            None if e.sidechain is None else self.keys[e.sidechain][:, offset : offset + BLOCK]
            for e in chain
        ]

    def render_track(self, node: Node) -> StripOutput:
        output = self.render.whole(node)
        if (recording := self.recording(node)) is not None:
            for offset in range(0, self.plan.length, BLOCK):  # as it is served: in blocks
                pre = None if output.pre is None else output.pre[:, offset : offset + BLOCK]
                recording.append(offset, StripOutput(pre, output.post[:, offset : offset + BLOCK]))
            recording.finish()
        return output

    def render_bus(self, node: Node) -> None:
        """Process a bus over its summed input and deliver it, block by block where its chain
        streams (whole otherwise), so no new whole-song array is made for its output."""
        x = self._whole_input(node.name)
        if not streams(node.chain, BLOCK):
            x = run_chain(node.chain, x, self.keys)
            node = Node(node.name, node.strip, (), node.outputs, node.audible)
        bus = self.render.bus(node)
        recording = self.recording(node)
        for offset in range(0, self.plan.length, BLOCK):
            block = x[:, offset : offset + BLOCK]
            output = bus.block(offset, block, self._keys(node.chain, offset))
            if recording is not None:
                recording.append(offset, output)
            self.deliver(node, output, offset)
        if recording is not None:
            recording.finish()

    def deliver(self, node: Node, output: StripOutput, offset: int) -> None:
        """Sum a strip's block at ``offset`` into the buses it feeds (from any thread: the
        sums are exact, so the same bits in any order)."""
        if node.name in self.plan.key_sources:
            n = output.post.shape[1]
            self._buffer(self.keys, node.name)[:, offset : offset + n] = output.post
        for tap, signal in (("pre", output.pre), ("post", output.post)):
            self._sum(node, tap, signal, offset)

    def deliver_levels(
        self,
        nodes: Sequence[Node],
        levels: Sequence[Levels],
        blocks: Sequence[np.ndarray],
        offset: int,
    ) -> None:
        """``deliver`` of each strip's ``levels.apply(block, offset)`` (one strip, or two
        paired tracks): panned, faded and summed in one pass where the levels are static and
        no strip keys a sidechain, a bus that both feed from a tap summed from both at once."""
        statics = [strip_levels.static for strip_levels in levels]
        pans_and_faders = [static for static in statics if static is not None]
        if len(pans_and_faders) < len(statics) or any(
            node.name in self.plan.key_sources for node in nodes
        ):
            for node, strip_levels, x in zip(nodes, levels, blocks, strict=True):
                self.deliver(node, strip_levels.apply(x, offset), offset)
            return
        for tap in ("pre", "post"):
            sources = [
                _Source(x, pan, fader if tap == "post" else 1.0, self._fed(node, tap, offset, x))
                for node, x, (pan, fader) in zip(nodes, blocks, pans_and_faders, strict=True)
            ]
            self._sum_all(sources)

    def _sum(self, node: Node, tap: str, signal: np.ndarray | None, offset: int) -> None:
        """Sum ``signal`` into the buses that ``node`` feeds from ``tap``."""
        if signal is not None:
            self._sum_all([_Source(signal, (1.0, 1.0), 1.0, self._fed(node, tap, offset, signal))])

    def _fed(
        self, node: Node, tap: str, offset: int, signal: np.ndarray
    ) -> list[tuple[str, np.ndarray, float]]:
        """The buses ``node`` feeds from ``tap`` (``"pre"``, or ``"post"`` for the main out
        too) that need its block at ``offset``: each bus's name, its block, and the gain."""
        n = signal.shape[1]
        fed: list[tuple[str, np.ndarray, float]] = []
        for target, apart, gain in self._routes(node, tap):
            if target in self.streamed:
                bus = self._partial(self.apart_blocks if apart else self.blocks, target, offset, n)
            else:
                buffer = self._buffer(self.apart if apart else self.buses, target)
                bus = buffer[:, offset : offset + n]
            fed.append((target, bus, gain))
        return fed

    def _routes(self, node: Node, tap: str) -> list[tuple[str, bool, float]]:
        """The buses ``node`` feeds from ``tap`` that need its blocks: each bus's name,
        whether its input is summed apart, and the gain. Worked out on first use, since it
        does not change during a render (it was 0.1 ms of Python, holding the GIL, for every
        block of every strip)."""
        routes = self._routing.get((node.name, tap))
        if routes is not None:
            return routes
        routes = []
        for out in node.outputs if node.audible else ():
            if ("pre" if out.tap == "pre" else "post") != tap:
                continue
            if out.target not in self.needed or out.target in self.cached:
                continue  # its output is cached: what feeds it need not be summed
            edge = (node.name, out.tap, out.level_db)
            update = self.updates.get(out.target)
            if update is not None and edge in update.kept:
                continue  # in the bus's cached sum already
            # An input the bus's recorded sum does not cover is summed apart, added after.
            apart = out.target in self.recorded and edge not in self.covered[out.target]
            routes.append((out.target, apart, db_to_gain(out.level_db)))
        self._routing[(node.name, tap)] = routes
        return routes

    def _partial(self, partials: _Partials, target: str, offset: int, n: int) -> np.ndarray:
        """This worker's partial sum of the streamed bus ``target``'s input block at
        ``offset``, made (silent) on first use. Each worker sums into its own, so no worker
        waits for another (the buses' locks, of every track's out and sends, made the
        workers wait 0.3 s of a 2.8 s render), and ``_take`` adds them up."""
        worker = threading.get_ident()
        with self._making:
            sums = partials.setdefault((target, offset), {})
            if worker not in sums:
                sums[worker] = np.zeros((2, n))
            return sums[worker]

    def _sum_all(self, sources: list[_Source]) -> None:
        """Sum each source into the buses it feeds: into this worker's own sums of the
        streamed buses, then into the whole-song buffers, first those no other worker is
        summing into now. A worker waits for a buffer's lock only while it holds none, so
        none ever deadlocks."""
        targets = list(dict.fromkeys(target for source in sources for target, _, _ in source.fed))
        if own := [target for target in targets if target in self.streamed]:
            _accumulate(sources, own)
        targets = [target for target in targets if target not in self.streamed]
        while targets:
            free = [target for target in targets if self._summing[target].acquire(blocking=False)]
            if not free:
                self._summing[targets[0]].acquire()
                free = targets[:1]
            try:
                _accumulate(sources, free)
            finally:
                for target in free:
                    self._summing[target].release()
            targets = [target for target in targets if target not in free]

    def mix_input(self) -> None:
        """The mix bus's whole input (``bus_input``), before the pool that renders the
        earlier signals its cached sum may take out is shut (where it did not stream)."""
        if MIX_BUS not in self.streamed:
            self.buses[MIX_BUS] = self._whole_input(MIX_BUS)

    def _whole_input(self, name: str) -> np.ndarray:
        """A bus's whole-song input: ``bus_input`` block by block, in place."""
        x = self._buffer(self.buses, name)
        apart = self.apart.pop(name, None)
        for offset in range(0, self.plan.length, BLOCK):
            block = x[:, offset : offset + BLOCK]
            updated = self.updated(name, offset, block.shape[1])
            apart_block = None if apart is None else apart[:, offset : offset + BLOCK]
            self.bus_input(name, block, offset, updated, apart_block)
        return self.buses.pop(name)

    def finish(self) -> Mix:
        """The mix bus: its chain and gain (streamed already, or block by block in place
        where the chain streams), then cut where the last tail has died away."""
        mix = self.buses.pop(MIX_BUS, None)
        if mix is None:
            mix = memory.zeros((2, self.plan.length))
        if MIX_BUS not in self.streamed:  # else its blocks went through the chain as they came
            mix = self._mix_chain(mix)
        # Nothing before the end of the last clip is cut, so only the tails are searched.
        tail = np.max(np.abs(mix[:, self.plan.content_end :]), axis=0)
        audible = np.flatnonzero(tail > SILENCE)
        end = self.plan.content_end + (int(audible[-1]) + 1 if audible.size else 0)
        audible = {node.name for node in self.plan.nodes if node.audible}
        heard = tuple(t.name for t in self.session.tracks if t.name in audible)
        audio = memory.first_columns(mix, end)
        return Mix(audio, self.rate, audio.shape[1], heard, tuple(self.notes))

    def _mix_chain(self, mix: np.ndarray) -> np.ndarray:
        """The whole mix bus input through its chain and gain: block by block in place where
        the chain streams."""
        chain = self.plan.mix_chain
        stages = block_chain(chain, 2) if streams(chain, BLOCK) else None
        if stages is None:
            return run_chain(chain, mix, self.keys) * self.mix_gain
        for offset in range(0, self.plan.length, BLOCK):
            block = mix[:, offset : offset + BLOCK]
            self._through_mix(stages, block, offset, block)
        return mix

    def _through_mix(
        self, stages: list[BlockProcess], x: np.ndarray, offset: int, out: np.ndarray
    ) -> None:
        """The mix bus's input block ``x`` at ``offset`` through its chain's ``stages`` (each
        with its key) and the mix gain, into ``out`` (which may be ``x``)."""
        for stage, key in zip(stages, self._keys(self.plan.mix_chain, offset), strict=True):
            x = stage(x, key)
        np.multiply(x, self.mix_gain, out=out)

    def _buffer(self, buffers: dict[str, np.ndarray], name: str) -> np.ndarray:
        """The whole-song buffer ``name`` of ``buffers``, made (silent) on first use (workers
        make them too)."""
        with self._making:
            if name not in buffers:
                buffers[name] = memory.zeros((2, self.plan.length))
            return buffers[name]


def _settle(queued: deque[Future[None]], keep: int = 0) -> None:
    """Wait for the queued bus blocks (raising where one failed), in the order they were
    queued: all of them, or those done, waiting only while more than ``keep`` are left."""
    while queued and (len(queued) > keep or queued[0].done()):
        queued.popleft().result()


def _queue_after(
    pool: ThreadPoolExecutor,
    before: Sequence[Future[None] | None],
    block: Callable[..., None],
    *args: Any,
) -> Future[None]:
    """``block(*args)`` queued on ``pool`` once every future of ``before`` (the strip's
    previous block, and the mix bus's inputs' blocks; None for none) is done, so a strip's
    blocks run in order while no worker sits waiting for the one before on another worker.
    The future fails where one of ``before`` failed."""
    waiting = [future for future in before if future is not None]
    if not waiting:
        return pool.submit(block, *args)
    result: Future[None] = Future()
    # The count of futures left and the first failure, without a reference to the futures:
    # each holds this callback, which would make a cycle that only a full collection frees,
    # and keep every block's arguments (a megabyte each) until it came.
    left: list[Any] = [len(waiting), None]
    counting = threading.Lock()

    def start(done: Future[None]) -> None:
        with counting:
            left[0] -= 1
            left[1] = left[1] or _failure(done)
            if left[0]:
                return  # the last of them to finish starts the block
        if not result.set_running_or_notify_cancel():
            return  # cancelled while it waited
        if (failure := left[1]) is not None:
            result.set_exception(failure)
            return
        try:
            pool.submit(block, *args).add_done_callback(lambda done: _pass_on(result, done))
        except RuntimeError as error:  # the pool is shutting down
            result.set_exception(error)

    for future in waiting:
        future.add_done_callback(start)
    return result


def _pass_on(result: Future[None], done: Future[None]) -> None:
    """Give ``result`` (running) the outcome of ``done``."""
    if (failure := _failure(done)) is None:
        result.set_result(done.result())
    else:
        result.set_exception(failure)


def _failure(done: Future[None]) -> BaseException | None:
    """Why ``done`` (a finished future) failed, its cancelling included; None if it did not."""
    return CancelledError() if done.cancelled() else done.exception()


@dataclass(frozen=True)
class _Source:
    """One strip's block as it is summed from one tap: panned by ``pan`` (left and right
    gains) and faded by ``fader`` on the way, into the buses ``fed`` (name, block, gain)."""

    signal: np.ndarray
    pan: tuple[float, float]
    fader: float
    fed: list[tuple[str, np.ndarray, float]]


def _accumulate(sources: list[_Source], targets: list[str]) -> None:
    """Sum ``sources`` into their buses among ``targets`` (their locks held): in one pass
    from both of two sources where each feeds the bus once, else from each alone."""
    both: list[tuple[np.ndarray, float, float]] = []
    alone: list[list[tuple[np.ndarray, float]]] = [[] for _ in sources]
    for target in targets:
        entries = [[(bus, gain) for name, bus, gain in s.fed if name == target] for s in sources]
        if len(entries) == 2 and len(entries[0]) == len(entries[1]) == 1:
            (bus, first_gain), (_, second_gain) = entries[0][0], entries[1][0]
            both.append((bus, first_gain, second_gain))
        else:
            for source_entries, source in zip(alone, entries, strict=True):
                source_entries += source
    if both:
        first, second = sources
        accumulate_pair_into(
            [bus for bus, _, _ in both],
            (first.signal, second.signal),
            ([gain for _, gain, _ in both], [gain for _, _, gain in both]),
            (first.pan, second.pan),
            (first.fader, second.fader),
        )
    for source, entries in zip(sources, alone, strict=True):
        if entries:
            buses, gains = [bus for bus, _ in entries], [gain for _, gain in entries]
            accumulate_into(buses, source.signal, gains, source.pan, source.fader)


def _paired(strips: list[_Streamed]) -> list[_Streamed | _Paired]:
    """``strips`` with those that pair (``StreamedPair.pairs``) in pairs, each pair where its
    first track was, each track with the first after it that it pairs with."""
    units: list[_Streamed | _Paired] = []
    waiting: list[_Streamed] = []  # rendered, not served or recorded: each may pair
    for strip in strips:
        source = strip.source
        if not isinstance(source, StreamedTrack) or strip.recording is not None:
            units.append(strip)
            continue
        partner = next((w for w in waiting if StreamedPair.pairs(w.source, source)), None)
        if partner is None:
            waiting.append(strip)
            units.append(strip)
        else:
            waiting.remove(partner)
            units[units.index(partner)] = _Paired(partner, strip)
    return units


class _Paired:
    """Two streamed tracks rendered side by side (``StreamedPair``), each block of each
    summed onwards by the ``mixer`` as a ``_Streamed`` sums its own."""

    def __init__(self, first: _Streamed, second: _Streamed) -> None:
        assert isinstance(first.source, StreamedTrack) and isinstance(second.source, StreamedTrack)
        self.strips = (first, second)
        self.pair = StreamedPair(first.source, second.source)

    def block(self, offset: int, n: int) -> None:
        levels = [strip.source.levels for strip in self.strips]  # type: ignore[union-attr]
        nodes = [strip.node for strip in self.strips]
        self.strips[0].mixer.deliver_levels(nodes, levels, self.pair.inserts(offset, n), offset)

    def close(self) -> None:
        self.pair.close()


class _Streamed:
    """A streamed strip's blocks: rendered (``StreamedTrack``, ``StreamedBus``) or served
    from the cache (``CachedStrip``), recorded into the cache as they are rendered, and
    summed onwards by the ``mixer``."""

    def __init__(
        self,
        node: Node,
        source: StreamedTrack | StreamedBus | CachedStrip,
        recording: Recording | None,
        mixer: _Mixer,
    ) -> None:
        self.node, self.source, self.recording, self.mixer = node, source, recording, mixer
        self.takes_input = isinstance(source, StreamedBus)  # a bus's summed input block

    def block(self, offset: int, *arguments: Any) -> None:
        """Make the block at ``offset`` and sum it into the buses it feeds; panned, faded and
        summed in one pass where no recording needs it whole."""
        source = self.source
        if self.recording is None and not isinstance(source, CachedStrip):
            x = source.inserts(offset, *arguments)
            self.mixer.deliver_levels((self.node,), (source.levels,), (x,), offset)
            return
        output = source.block(offset, *arguments)
        if self.recording is not None:
            self.recording.append(offset, output)
            if offset + output.post.shape[1] == self.mixer.plan.length:
                self.recording.finish()
        self.mixer.deliver(self.node, output, offset)

    def close(self) -> None:
        if not isinstance(self.source, StreamedBus):
            self.source.close()
