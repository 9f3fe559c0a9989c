"""Render a session's graph to the stereo mix.

Tracks are independent until they reach a bus, so they render concurrently (threads: the
decoders, scipy filters and numba kernels release the GIL). Their outputs are summed into
each bus strictly in render order (``graph.plan``), whatever order threads finish in, so the
same session gives the same bits for every ``jobs``. At most ``jobs`` finished tracks wait to
be summed: memory grows with the number of buses, not with the number of tracks.

A strip (track or bus) runs: inserts → pre-fader taps → fader → pan → post-fader taps and out.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from render import audio_io
from render.chain import run_chain
from render.dsp.envelope import gain_envelope, linear_envelope
from render.dsp.levels import db_to_gain, fade_in_gains, pan_gains
from render.errors import AudioInputError
from render.graph import Node, RenderPlan, clip_span, plan
from render.session.model import MIX_BUS, Automation, Session, Track

SILENCE = 2.0**-25
"""Below a quarter of a 24-bit step: where ringing tails count as silent for the mix length."""


@dataclass(frozen=True)
class StripOutput:
    pre: np.ndarray | None  # panned, before the fader (only when a pre-fader send needs it)
    post: np.ndarray  # after fader and pan: what goes out and to post-fader sends


@dataclass(frozen=True)
class Mix:
    audio: np.ndarray  # float64[2, n]
    sample_rate: int
    tracks: tuple[str, ...]  # the tracks heard, in session order
    notes: tuple[str, ...]


def render_mix(session: Session, jobs: int) -> Mix:
    """Render every strip in order and sum the mix bus, ``jobs`` tracks at a time."""
    render_plan = plan(session)
    mixer = _Mixer(session, render_plan)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: deque[tuple[Node, Future[StripOutput]]] = deque()
        try:
            for node in render_plan.nodes:
                if not (node.audible or node.name in render_plan.key_sources):
                    continue
                needs_keys = any(e.sidechain is not None for e in node.chain)
                if not node.is_track or needs_keys or len(pending) >= jobs:
                    while pending and (not node.is_track or needs_keys or len(pending) >= jobs):
                        done, future = pending.popleft()
                        mixer.deliver(done, future.result())
                if node.is_track:
                    pending.append((node, pool.submit(mixer.render_track, node)))
                else:
                    mixer.deliver(node, mixer.render_bus(node))
            while pending:
                done, future = pending.popleft()
                mixer.deliver(done, future.result())
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    return mixer.finish()


class _Mixer:
    """The bus accumulators and sidechain keys of one render."""

    def __init__(self, session: Session, render_plan: RenderPlan) -> None:
        self.session = session
        self.plan = render_plan
        self.rate = session.sample_rate
        self.buses: dict[str, np.ndarray] = {}
        self.keys: dict[str, np.ndarray] = {}
        self.heard: list[str] = []
        self.notes: list[str] = []

    def render_track(self, node: Node) -> StripOutput:
        track = node.strip
        assert isinstance(track, Track)
        try:
            x, info = audio_io.read_stem(track.stem, self.rate)
        except AudioInputError as e:
            raise AudioInputError(f"{self.session.where(f'tracks.{track.name}.stem')}: {e}") from e
        if info.sample_rate != self.rate:
            self.notes.append(
                f"{track.name}: stem at {info.sample_rate} Hz resampled to "
                f"{self.rate} Hz (soxr, very high quality)"
            )
        return self._strip(node, self._place(track, x))

    def render_bus(self, node: Node) -> StripOutput:
        x = self.buses.pop(node.name, None)
        return self._strip(node, np.zeros((2, self.plan.length)) if x is None else x)

    def deliver(self, node: Node, output: StripOutput) -> None:
        """Sum a finished strip into the buses it feeds (called in render order only)."""
        if node.name in self.plan.key_sources:
            self.keys[node.name] = output.post
        if not node.audible:
            return
        if node.is_track:
            self.heard.append(node.name)
        for out in node.outputs:
            signal = output.pre if out.tap == "pre" else output.post
            assert signal is not None
            bus = self.buses.setdefault(out.target, np.zeros((2, self.plan.length)))
            if out.level_db == 0.0:
                bus += signal
            else:
                bus += signal * db_to_gain(out.level_db)

    def finish(self) -> Mix:
        mix = self.buses.pop(MIX_BUS, np.zeros((2, self.plan.length)))
        mix = run_chain(self.plan.mix_chain, mix, self.keys) * db_to_gain(self.session.mix.gain_db)
        audible = np.flatnonzero(np.max(np.abs(mix), axis=0) > SILENCE)
        end = max(self.plan.content_end, int(audible[-1]) + 1 if audible.size else 0)
        heard = [t.name for t in self.session.tracks if t.name in self.heard]
        return Mix(np.ascontiguousarray(mix[:, :end]), self.rate, tuple(heard), tuple(self.notes))

    def _place(self, track: Track, x: np.ndarray) -> np.ndarray:
        """The clip (trimmed, polarity, fades) at its place in a buffer of the plan's length."""
        first, last = clip_span(track, x.shape[1], self.rate)
        clip = x[:, first:last]
        envelope = np.full(clip.shape[1], -1.0 if track.polarity == "inverted" else 1.0)
        for fade, at_start in ((track.fade_in, True), (track.fade_out, False)):
            n = min(round(fade.length_s * self.rate), clip.shape[1])
            if n:
                ramp = fade_in_gains(n, fade.curve)
                envelope[:n] *= ramp if at_start else 1.0
                envelope[clip.shape[1] - n :] *= 1.0 if at_start else ramp[::-1]
        start = round(track.start_s * self.rate)
        placed = np.zeros((clip.shape[0], self.plan.length))
        end = min(start + clip.shape[1], self.plan.length)
        placed[:, start:end] = (clip * envelope)[:, : end - start]
        return placed

    def _strip(self, node: Node, x: np.ndarray) -> StripOutput:
        strip = node.strip
        x = run_chain(node.chain, x, self.keys)
        panned = self._pan(x, strip.pan, strip.automation)
        fader = self._fader(strip.gain_db, strip.automation, x.shape[1])
        pre = panned if any(out.tap == "pre" for out in node.outputs) else None
        return StripOutput(pre, panned * fader)

    def _pan(self, x: np.ndarray, pan: float, automation: Automation) -> np.ndarray:
        """Mono sources get the constant-power pan law, stereo ones balance (dsp.levels)."""
        if automation.pan:
            lane = [(p.at_s, p.value, p.curve) for p in automation.pan]
            left, right = pan_gains(linear_envelope(lane, x.shape[1], self.rate), x.shape[0])
        else:
            left, right = pan_gains(pan, x.shape[0])
        return np.stack([x[0] * left, x[-1] * right])

    def _fader(self, gain_db: float, automation: Automation, n: int) -> np.ndarray | float:
        if not automation.gain:
            return db_to_gain(gain_db)
        lane = [(p.at_s, p.value_db, p.curve) for p in automation.gain]
        return gain_envelope(lane, n, self.rate)
