"""Routing: the session's tracks and buses as a graph, in the order they must render.

A strip feeds the bus named by its ``out`` and the buses it sends to; a sidechain makes its
source render before the effect that listens to it. The order is topological and stable
(session order wherever the routing allows), so it is the same on every render: the mix
sums each bus's inputs in this order. The sums themselves are exact (``levels.accumulate``
rounds each input to a 2^-40 grid), so a bus holds the same bits whatever the order.

Latency: every chain removes the delay of its own effects (``chain.run_chain``), so every
path is aligned to time zero and signals meet at each bus sample-aligned, whatever effects
lie on the parallel paths.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from render import audio_io
from render.chain import PreparedEffect, chain_tail_keys, chain_tail_samples, prepare_chain
from render.errors import AudioInputError
from render.session.model import MIX_BUS, Bus, Session, Track
from render.strip import clip_span

MAX_TAIL_S = 60
"""The longest a render runs on after its last clip: a 1 s delay with 99 % feedback would
otherwise ring for 17 minutes (and need buffers as long). A minute covers any reverb."""


@dataclass(frozen=True)
class Output:
    """Where a strip's signal goes: the main out (``tap="out"``) or a send."""

    target: str  # a bus name or "mix"
    level_db: float
    tap: Literal["out", "pre", "post"]


@dataclass(frozen=True)
class Node:
    """A track or bus with its prepared insert chain and its outputs."""

    name: str
    strip: Track | Bus
    chain: tuple[PreparedEffect, ...]
    outputs: tuple[Output, ...]
    audible: bool  # False when muted, or silenced by another track's solo

    @property
    def is_track(self) -> bool:
        return isinstance(self.strip, Track)


@dataclass(frozen=True)
class RenderPlan:
    nodes: tuple[Node, ...]  # in render order
    mix_chain: tuple[PreparedEffect, ...]
    sample_rate: int
    content_end: int  # where the last clip ends; the mix is not cut shorter than this
    key_sources: frozenset[str]  # strips whose output a sidechain listens to
    stems: dict[str, audio_io.StemInfo]  # each track's stem header, read once per render
    known_tail: tuple[int, tuple[str, ...]] | None = None  # ``tail``, as noted before

    @property
    def length(self) -> int:
        """Samples in every buffer: the longest clip plus the longest tail."""
        return self.content_end + self.tail[0]

    @property
    def notes(self) -> tuple[str, ...]:
        """What the summary should say about the plan (a cut tail)."""
        return self.tail[1]

    @cached_property
    def length_recipe(self) -> dict[str, Any]:
        """What decides ``length``, as JSON, without working out the tails that take
        rendering (``chain.Tail``): where the last clip ends, and every chain's tails and
        where each strip goes, in render order."""
        return {
            "content_end": self.content_end,
            "sample_rate": self.sample_rate,
            "strips": [
                [node.name, chain_tail_keys(node.chain), [out.target for out in node.outputs]]
                for node in self.nodes
            ],
            "mix": chain_tail_keys(self.mix_chain),
            "max_tail_s": MAX_TAIL_S,
        }

    @cached_property
    def tail(self) -> tuple[int, tuple[str, ...]]:
        """The longest tail on any path to the mix, cut at ``MAX_TAIL_S``, and the note of
        the cut: ``known_tail`` where a plan of the same ``length_recipe`` worked it out
        before, else from every chain's tails (a synthetic reverb's makes its IR)."""
        if self.known_tail is not None:
            return self.known_tail
        tail = _longest_tail(list(self.nodes)) + chain_tail_samples(self.mix_chain)
        longest = MAX_TAIL_S * self.sample_rate
        if tail <= longest:
            return tail, ()
        note = (
            f"effect tails would ring for {tail / self.sample_rate:.0f} s after the "
            f"last clip (a long, high-feedback delay?); the render stops {MAX_TAIL_S} s "
            "after it"
        )
        return longest, (note,)


def plan(session: Session) -> RenderPlan:
    """Prepare every chain and fix the render order; the buffer length follows on first use
    (``RenderPlan.length``)."""
    soloed = any(track.solo for track in session.tracks)
    nodes = {
        track.name: Node(
            track.name,
            track,
            prepare_chain(track.inserts, f"tracks.{track.name}.inserts", session),
            _outputs(track),
            not track.mute and (track.solo or not soloed),
        )
        for track in session.tracks
    }
    for bus in session.buses:
        # Buses are solo-safe: a soloed track still reaches its reverb return.
        chain = prepare_chain(bus.inserts, f"buses.{bus.name}.inserts", session)
        nodes[bus.name] = Node(bus.name, bus, chain, _outputs(bus), not bus.mute)
    mix_chain = prepare_chain(session.mix.inserts, "mix.inserts", session)
    order = _render_order(list(nodes.values()))
    stems = {track.name: _probe(track, session) for track in session.tracks}
    content_end = max(
        _clip_end(track, stems[track.name], session.sample_rate) for track in session.tracks
    )
    return RenderPlan(
        nodes=tuple(order),
        mix_chain=mix_chain,
        sample_rate=session.sample_rate,
        stems=stems,
        content_end=content_end,
        key_sources=frozenset(
            effect.sidechain
            for node in order
            for effect in (*node.chain, *mix_chain)
            if effect.sidechain is not None
        ),
    )


def needed_strips(
    render_plan: RenderPlan, cached: set[str], only: Mapping[str, set[str]] | None = None
) -> set[str]:
    """The strips the mix needs (and the mix bus itself): what feeds it, what keys its
    sidechains, and so on upstream, stopping at strips whose output is ``cached``; of a bus
    in ``only``, only those inputs (the rest are in its cached sum already)."""
    inputs: dict[str, list[str]] = {}
    keys: dict[str, list[str]] = {}
    for node in render_plan.nodes:
        keys[node.name] = [e.sidechain for e in node.chain if e.sidechain is not None]
        if node.audible:
            for out in node.outputs:
                inputs.setdefault(out.target, []).append(node.name)
    only = only or {}
    mix_keys = [e.sidechain for e in render_plan.mix_chain if e.sidechain is not None]
    needed: set[str] = set()
    waiting = [MIX_BUS, *mix_keys]
    while waiting:
        name = waiting.pop()
        if name not in needed:
            needed.add(name)
            if name not in cached:
                feeding = inputs.get(name, [])
                if name in only:
                    feeding = [source for source in feeding if source in only[name]]
                waiting += keys.get(name, []) + feeding
    return needed


def input_edges(render_plan: RenderPlan, target: str) -> list[tuple[str, str, float]]:
    """What is summed into ``target``, in summing order: (strip, tap, level in dB) of each
    audible strip output routed there."""
    return [
        (node.name, out.tap, out.level_db)
        for node in render_plan.nodes
        if node.audible
        for out in node.outputs
        if out.target == target
    ]


def input_count(render_plan: RenderPlan, target: str) -> int:
    """How many audible strip outputs are summed into ``target``."""
    return len(input_edges(render_plan, target))


def _outputs(strip: Track | Bus) -> tuple[Output, ...]:
    sends = tuple(Output(bus, send.level_db, send.tap) for bus, send in strip.sends.items())
    return (Output(strip.out, 0.0, "out"), *sends)


def _probe(track: Track, session: Session) -> audio_io.StemInfo:
    try:
        return audio_io.probe(track.stem)
    except AudioInputError as e:  # the stem changed since the session was loaded
        raise AudioInputError(f"{session.where(f'tracks.{track.name}.stem')}: {e}") from e


def _clip_end(track: Track, info: audio_io.StemInfo, sample_rate: int) -> int:
    """The sample where a track's clip ends on the timeline (from the stem's header)."""
    first, last = clip_span(
        track, audio_io.resampled_length(info.frames, info.sample_rate, sample_rate), sample_rate
    )
    return round(track.start_s * sample_rate) + max(0, last - first)


def _render_order(nodes: list[Node]) -> list[Node]:
    """Kahn's algorithm, always taking the earliest ready strip in session order (tracks
    first), so the order is deterministic and tracks can start before any bus."""
    index = {node.name: position for position, node in enumerate(nodes)}
    after: dict[str, list[str]] = {node.name: [] for node in nodes}
    for node in nodes:
        for output in node.outputs:
            if output.target != MIX_BUS:
                after[node.name].append(output.target)
        for effect in node.chain:
            if effect.sidechain is not None:
                after[effect.sidechain].append(node.name)
    waiting = {node.name: 0 for node in nodes}
    for targets in after.values():
        for target in targets:
            waiting[target] += 1
    ready = [index[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for target in after[node.name]:
            waiting[target] -= 1
            if waiting[target] == 0:
                heapq.heappush(ready, index[target])
    return order  # complete: the loader has rejected every cycle


def _longest_tail(order: list[Node]) -> int:
    """The longest sum of chain tails along any path to the mix bus (reverb after delay
    rings for both)."""
    ringing: dict[str, int] = {}
    for node in order:
        own = ringing.get(node.name, 0) + chain_tail_samples(node.chain)
        for output in node.outputs:
            ringing[output.target] = max(ringing.get(output.target, 0), own)
        ringing[node.name] = own
    return ringing.get(MIX_BUS, 0)
