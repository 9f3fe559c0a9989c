"""A channel strip's level stages, for the whole timeline or any block of it.

``Clip`` places a track's stem on the timeline (trim, start, polarity, fades); ``Levels``
applies pan and fader, static or automated. Both answer for any block ``[offset, offset+n)``
so a track can be rendered whole or streamed block by block with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from render.dsp.envelope import gain_envelope, linear_envelope
from render.dsp.levels import db_to_gain, fade_in_gains, pan_and_fade, pan_gains
from render.session.model import Bus, Track


@dataclass(frozen=True)
class StripOutput:
    pre: np.ndarray | None  # panned, before the fader (only when a pre-fader send needs it)
    post: np.ndarray  # after fader and pan: what goes out and to post-fader sends


def clip_span(track: Track, frames: int, sample_rate: int) -> tuple[int, int]:
    """The samples ``[first, last)`` of a stem of ``frames`` that the track's trim keeps."""
    first = round(track.trim.start_s * sample_rate)
    last = frames if track.trim.end_s is None else round(track.trim.end_s * sample_rate)
    return first, max(first, min(last, frames))


class Clip:
    """Where a track's trimmed stem sits on the timeline, and the gain its fades give it."""

    def __init__(self, track: Track, frames: int, sample_rate: int) -> None:
        self.first, last = clip_span(track, frames, sample_rate)  # in stem frames
        self.length = last - self.first
        self.start = round(track.start_s * sample_rate)  # on the timeline
        self.sign = -1.0 if track.polarity == "inverted" else 1.0
        fade_in = min(round(track.fade_in.length_s * sample_rate), self.length)
        fade_out = min(round(track.fade_out.length_s * sample_rate), self.length)
        self.fade_in = fade_in_gains(fade_in, track.fade_in.curve)
        self.fade_out = fade_in_gains(fade_out, track.fade_out.curve)[::-1]

    def overlap(self, offset: int, n: int) -> tuple[int, int]:
        """The part ``[begin, end)`` of the clip (clip-relative samples) inside a block."""
        begin = min(max(offset - self.start, 0), self.length)
        end = min(max(offset + n - self.start, 0), self.length)
        return begin, end

    def gains(self, begin: int, end: int) -> np.ndarray | float:
        """Polarity and fades for clip samples ``[begin, end)``: a scalar where no fade is."""
        out_start = self.length - self.fade_out.size
        if begin >= self.fade_in.size and end <= out_start:
            return self.sign
        gains = np.full(end - begin, self.sign)
        if begin < self.fade_in.size:
            stop = min(end, self.fade_in.size)
            gains[: stop - begin] *= self.fade_in[begin:stop]
        if end > out_start:
            start = max(begin, out_start)
            gains[start - begin :] *= self.fade_out[start - out_start : end - out_start]
        return gains


class Levels:
    """Pan (constant-power for mono sources, balance for stereo) and fader of one strip."""

    def __init__(
        self, strip: Track | Bus, channels: int, length: int, sample_rate: int, needs_pre: bool
    ) -> None:
        automation = strip.automation
        if automation.pan:
            lane = [(p.at_s, p.value, p.curve) for p in automation.pan]
            self.pan = pan_gains(linear_envelope(lane, length, sample_rate), channels)
        else:
            self.pan = pan_gains(strip.pan, channels)
        if automation.gain:
            lane = [(p.at_s, p.value_db, p.curve) for p in automation.gain]
            self.fader: np.ndarray | float = gain_envelope(lane, length, sample_rate)
        else:
            self.fader = db_to_gain(strip.gain_db)
        self.needs_pre = needs_pre
        # The pan's left and right gains and the fader, where neither is automated.
        self.static: tuple[tuple[float, float], float] | None = None
        if not automation.pan and not automation.gain:
            left, right = self.pan
            self.static = (float(left), float(right)), float(self.fader)

    def apply(self, x: np.ndarray, offset: int) -> StripOutput:
        """Pan and fade block ``x`` (``[channels, n]``) that starts at timeline ``offset``."""
        n = x.shape[1]
        left, right = (_window(g, offset, n) for g in self.pan)
        fader = _window(self.fader, offset, n)
        if isinstance(left, float) and isinstance(right, float) and isinstance(fader, float):
            return StripOutput(*pan_and_fade(x, left, right, fader, self.needs_pre))
        panned = np.empty((2, n))
        np.multiply(x[0], left, out=panned[0])
        np.multiply(x[-1], right, out=panned[1])
        if self.needs_pre:
            return StripOutput(panned, panned * fader)
        panned *= fader
        return StripOutput(None, panned)


def _window(values: np.ndarray | float, offset: int, n: int) -> np.ndarray | float:
    if isinstance(values, np.ndarray) and values.ndim:
        return values[offset : offset + n]
    return float(values)
