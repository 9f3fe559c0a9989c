"""Render a session's graph to the stereo mix.

Tracks are independent until they reach a bus, so they render concurrently in threads (the
decoders, scipy filters and numba kernels release the GIL). Tracks whose whole chain can
stream are rendered block by block: every track's block ``k`` is processed in parallel, then
summed into its buses in render order before block ``k + 1``; small reused buffers instead of
whole-song arrays keep memory low and the caches warm. The other strips render whole, in
render order, at most ``jobs`` tracks at a time. Either way each bus receives its inputs in
one fixed order, so the same session gives the same bits for every ``jobs``.

A strip runs: inserts → pre-fader taps → fader → pan → post-fader taps and out.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from render import audio_io, memory
from render.chain import BlockProcess, block_chain, run_chain, streams
from render.dsp.levels import accumulate, db_to_gain
from render.errors import AudioInputError
from render.graph import Node, RenderPlan, needed_strips, plan
from render.session.model import MIX_BUS, Session, Track
from render.strip import Clip, Levels, StripOutput
from render.strip_cache import CachedStrip, Recording, StripCache

BLOCK = 1 << 16
"""Samples per streamed block (1.4 s at 48 kHz): large enough that per-call overhead is
negligible, small enough that a block of every track stays in the processor's caches."""

SILENCE = 2.0**-25
"""Below a quarter of a 24-bit step: where ringing tails count as silent for the mix length."""


@dataclass(frozen=True)
class Mix:
    audio: np.ndarray  # float64[2, n]
    sample_rate: int
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
    needed = [n for n in render_plan.nodes if n.name in mixer.needed]
    streamed = [node for node in needed if mixer.streamable(node)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        mixer.stream(streamed, pool)
        pending: deque[tuple[Node, Future[StripOutput]]] = deque()
        try:
            for node in needed:
                if node in streamed:
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
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
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
        self.buses: dict[str, np.ndarray] = {}
        self.keys: dict[str, np.ndarray] = {}
        self.cached = set(strips.entries) if strips else set()
        self.needed = strips.needed if strips else needed_strips(render_plan, set())
        self.notes: list[str] = list(render_plan.notes)
        used = {n.name for n in render_plan.nodes if n.audible or n.name in render_plan.key_sources}
        for track in session.tracks:
            rate = render_plan.stems[track.name].sample_rate
            if rate != self.rate and track.name in used:
                self.notes.append(
                    f"{track.name}: stem at {rate} Hz resampled to "
                    f"{self.rate} Hz (soxr, very high quality)"
                )

    def served(self, node: Node) -> CachedStrip | None:
        """The cached output of ``node``, if the render has a cache holding it."""
        return self.strips.served(node.name) if self.strips else None

    def recording(self, node: Node) -> Recording | None:
        """Where ``node``'s output is recorded for the cache (None: no cache)."""
        return self.strips.record(node.name) if self.strips else None

    def deliver_cached(self, node: Node, cached: CachedStrip) -> None:
        """Deliver a strip's cached output block by block, as rendering it would."""
        for offset in range(0, self.plan.length, BLOCK):
            self.deliver(node, cached.block(offset, min(BLOCK, self.plan.length - offset)), offset)

    def streamable(self, node: Node) -> bool:
        """A track streams when its stem needs no resampling and its chain streams without a
        sidechain (a key would have to be complete before the track starts)."""
        if not isinstance(node.strip, Track) or any(e.sidechain for e in node.chain):
            return False
        return streams(node.chain) and self.plan.stems[node.name].sample_rate == self.rate

    def stream(self, nodes: list[Node], pool: ThreadPoolExecutor) -> None:
        """Render ``nodes`` block by block, summing each block into the buses in order."""
        tracks = [self.served(node) or _StreamedTrack(self, node) for node in nodes]
        futures: list[Future[StripOutput]] = []
        try:
            for offset in range(0, self.plan.length, BLOCK):
                n = min(BLOCK, self.plan.length - offset)
                futures = [pool.submit(track.block, offset, n) for track in tracks]
                for node, future in zip(nodes, futures, strict=True):
                    self.deliver(node, future.result(), offset)
        finally:
            for future in futures:
                future.cancel()
            wait(futures)  # a worker may still be reading its stem: close nothing under it
            for track in tracks:
                track.close()

    def render_track(self, node: Node) -> StripOutput:
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
        output = self._strip(node, placed)
        if (recording := self.recording(node)) is not None:
            for offset in range(0, self.plan.length, BLOCK):  # as it is served: in blocks
                pre = None if output.pre is None else output.pre[:, offset : offset + BLOCK]
                recording.append(offset, StripOutput(pre, output.post[:, offset : offset + BLOCK]))
            recording.finish()
        return output

    def render_bus(self, node: Node) -> None:
        """Process a bus over its summed input and deliver it, block by block where its chain
        streams (whole otherwise), so no new whole-song array is made for its output."""
        x = self.buses.pop(node.name, None)
        if x is None:
            x = memory.zeros((2, self.plan.length))
        stages = block_chain(node.chain, 2)
        if stages is None:
            x = run_chain(node.chain, x, self.keys)
        levels = self.levels(node, 2)
        recording = self.recording(node)
        for offset in range(0, self.plan.length, BLOCK):
            block = x[:, offset : offset + BLOCK]
            for effect, stage in zip(node.chain, stages or (), strict=False):
                key = self.keys.get(effect.sidechain) if effect.sidechain else None
                block = stage(block, None if key is None else key[:, offset : offset + BLOCK])
            output = levels.apply(block, offset)
            if recording is not None:
                recording.append(offset, output)
            self.deliver(node, output, offset)
        if recording is not None:
            recording.finish()

    def deliver(self, node: Node, output: StripOutput, offset: int) -> None:
        """Sum a strip's block at ``offset`` into the buses it feeds (in render order only)."""
        n = output.post.shape[1]
        if node.name in self.plan.key_sources:
            self._buffer(self.keys, node.name)[:, offset : offset + n] = output.post
        if not node.audible:
            return
        for out in node.outputs:
            if out.target not in self.needed or out.target in self.cached:
                continue  # its output is cached: what feeds it need not be summed
            signal = output.pre if out.tap == "pre" else output.post
            assert signal is not None
            bus = self._buffer(self.buses, out.target)
            accumulate(bus[:, offset : offset + n], signal, db_to_gain(out.level_db))

    def finish(self) -> Mix:
        mix = self.buses.pop(MIX_BUS, memory.zeros((2, self.plan.length)))
        mix = run_chain(self.plan.mix_chain, mix, self.keys) * db_to_gain(self.session.mix.gain_db)
        audible = np.flatnonzero(np.max(np.abs(mix), axis=0) > SILENCE)
        end = max(self.plan.content_end, int(audible[-1]) + 1 if audible.size else 0)
        audible = {node.name for node in self.plan.nodes if node.audible}
        heard = tuple(t.name for t in self.session.tracks if t.name in audible)
        return Mix(np.ascontiguousarray(mix[:, :end]), self.rate, heard, tuple(self.notes))

    def _buffer(self, buffers: dict[str, np.ndarray], name: str) -> np.ndarray:
        """The whole-song buffer ``name`` of ``buffers``, made (silent) on first use."""
        if name not in buffers:
            buffers[name] = memory.zeros((2, self.plan.length))
        return buffers[name]

    def levels(self, node: Node, channels: int) -> Levels:
        needs_pre = any(out.tap == "pre" for out in node.outputs)
        return Levels(node.strip, channels, self.plan.length, self.rate, needs_pre)

    def _strip(self, node: Node, x: np.ndarray) -> StripOutput:
        x = run_chain(node.chain, x, self.keys)
        return self.levels(node, x.shape[0]).apply(x, 0)

    def located(self, track: Track, error: AudioInputError) -> AudioInputError:
        """An error found while decoding, pointed at the session line naming the stem."""
        return AudioInputError(f"{self.session.where(f'tracks.{track.name}.stem')}: {error}")


class _StreamedTrack:
    """One track rendered block by block: stem reader, chain state, levels."""

    def __init__(self, mixer: _Mixer, node: Node) -> None:
        track = node.strip
        assert isinstance(track, Track)
        info = mixer.plan.stems[track.name]
        self.mixer, self.node, self.track = mixer, node, track
        self.clip = Clip(track, info.frames, mixer.rate)
        self.channels = info.channels
        stages = block_chain(node.chain, info.channels)
        assert stages is not None
        self.stages: list[BlockProcess] = stages
        self.levels = mixer.levels(node, info.channels)
        self.reader: audio_io.StemReader | None = None
        self.recording = mixer.recording(node)

    def block(self, offset: int, n: int) -> StripOutput:
        x = np.zeros((self.channels, n))
        begin, end = self.clip.overlap(offset, n)
        if end > begin:
            if self.reader is None:
                self.reader = self._open()
            at = self.clip.start + begin - offset
            try:
                x[:, at : at + end - begin] = self.reader.read(end - begin)
            except AudioInputError as e:
                raise self.mixer.located(self.track, e) from e
            x[:, at : at + end - begin] *= self.clip.gains(begin, end)
        for stage in self.stages:
            x = stage(x, None)
        output = self.levels.apply(x, offset)
        if self.recording is not None:
            self.recording.append(offset, output)
            if offset + n == self.mixer.plan.length:
                self.recording.finish()
        return output

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def _open(self) -> audio_io.StemReader:
        try:
            return audio_io.StemReader(self.track.stem, self.clip.first)
        except AudioInputError as e:
            raise self.mixer.located(self.track, e) from e
