"""How one strip's output is made: a track's stem decoded and run through its chain and
levels, whole or block by block (``render.streamed``), for the mix and for the earlier
signals that updated bus sums take out (``render.sum_cache``). Summing the outputs into the
buses is the mixer's (``render.mix``)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from render import audio_io, memory
from render.chain import run_chain, streams
from render.errors import AudioInputError
from render.graph import Node, RenderPlan
from render.session.model import Session, Track
from render.streamed import StreamedBus, StreamedTrack
from render.strip import Clip, Levels, StripOutput
from render.sum_cache import Prefetched, Rendered, Update

BLOCK = 1 << 16
"""Samples per streamed block (1.4 s at 48 kHz): large enough that per-call overhead is
negligible, small enough that a block of every track stays in the processor's caches."""


class StripRenderer:
    """The strips of one render of ``session``'s ``plan``; ``keys`` holds the sidechain
    keys rendered so far (the mixer fills it)."""

    def __init__(self, session: Session, plan: RenderPlan, keys: dict[str, np.ndarray]) -> None:
        self.session, self.plan, self.keys = session, plan, keys
        self.rate = session.sample_rate

    def levels(self, node: Node, channels: int) -> Levels:
        needs_pre = any(out.tap == "pre" for out in node.outputs)
        return Levels(node.strip, channels, self.plan.length, self.rate, needs_pre)

    def whole(self, node: Node) -> StripOutput:
        """A track's whole output, its stem decoded whole."""
        track = node.strip
        assert isinstance(track, Track)
        try:
            x, _ = audio_io.read_stem(track.stem, self.rate)
        except AudioInputError as e:
            raise self.located(track, e) from e
        clip = Clip(track, x.shape[1], self.rate)
        placed = memory.zeros((x.shape[0], self.plan.length))
        begin, end = clip.overlap(0, self.plan.length)
        at = clip.start + begin
        placed[:, at : at + end - begin] = x[:, clip.first + begin : clip.first + end]
        placed[:, at : at + end - begin] *= clip.gains(begin, end)
        x = run_chain(node.chain, placed, self.keys)
        return self.levels(node, x.shape[0]).apply(x, 0)

    def track(self, node: Node, info: audio_io.StemInfo) -> StreamedTrack:
        """A track rendered block by block from its stem (whose header is ``info``)."""
        where = self.session.where(f"tracks.{node.name}.stem")
        return StreamedTrack(node, info, self.levels(node, info.channels), self.rate, where)

    def bus(self, node: Node) -> StreamedBus:
        return StreamedBus(node, self.levels(node, 2))

    def removals(
        self, updates: dict[str, Update], pool: ThreadPoolExecutor, streamed: list[Prefetched]
    ) -> None:
        """Start rendering on ``pool`` the earlier signals that ``updates`` take out where no
        cache entry holds them (each once, for all the buses taking it out): block by block
        where the track can stream (added to ``streamed`` as they start, for the caller to
        close), else whole."""
        removals = [removal for update in updates.values() for removal in update.removals]
        takers = Counter(id(source) for _, source in removals if isinstance(source, Node))
        renders: dict[int, Prefetched | Rendered] = {}
        for update in updates.values():
            for index, (edge, source) in enumerate(update.removals):
                if isinstance(source, Node):
                    if id(source) not in renders:
                        render = self._earlier(source, pool, takers[id(source)])
                        if isinstance(render, Prefetched):
                            streamed.append(render)
                        renders[id(source)] = render
                    update.removals[index] = (edge, renders[id(source)])

    def _earlier(self, node: Node, pool: ThreadPoolExecutor, takers: int) -> Prefetched | Rendered:
        track = node.strip
        assert isinstance(track, Track)
        try:
            info = audio_io.probe(track.stem)
        except AudioInputError as e:
            raise self.located(track, e) from e
        if info.sample_rate != self.rate or not streams(node.chain, BLOCK):
            return Rendered(pool.submit(self.whole, node))
        return Prefetched(self.track(node, info), pool, self.plan.length, BLOCK, takers)

    def located(self, track: Track, error: AudioInputError) -> AudioInputError:
        """An error found while decoding, pointed at the session line naming the stem."""
        return AudioInputError(f"{self.session.where(f'tracks.{track.name}.stem')}: {error}")
