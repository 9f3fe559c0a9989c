"""Render a session's tracks to the stereo mix.

Each track is independent until it reaches the mix bus, so tracks render concurrently
(threads: libsndfile and soxr release the GIL). They are summed strictly in session order,
whatever order they finish in, because floating-point addition is not associative: the same
session gives the same bits for every ``jobs``. At most ``jobs`` rendered tracks wait to be
summed, so memory grows with ``jobs``, not with the number of tracks.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from render import audio_io
from render.dsp.levels import db_to_gain, fade_in_gains, pan_gains
from render.errors import AudioInputError
from render.session.model import Session, Track


@dataclass(frozen=True)
class RenderedTrack:
    """A track's contribution to the mix: stereo audio placed at ``start`` samples."""

    name: str
    start: int
    audio: np.ndarray  # float64[2, n]
    note: str | None  # something the summary should tell (a resampled stem)


@dataclass(frozen=True)
class Mix:
    audio: np.ndarray  # float64[2, n]
    sample_rate: int
    tracks: tuple[str, ...]  # the tracks heard, in session order
    notes: tuple[str, ...]


def audible_tracks(session: Session) -> tuple[Track, ...]:
    """Console behaviour: muted tracks are silent; if any track is soloed, only soloed play."""
    soloed = any(track.solo for track in session.tracks)
    return tuple(t for t in session.tracks if not t.mute and (t.solo or not soloed))


def render_track(session: Session, track: Track) -> RenderedTrack:
    """Stem → trim → polarity → fades → fader → pan, as a channel strip does it."""
    sample_rate = session.sample_rate
    try:
        x, info = audio_io.read_stem(track.stem, sample_rate)
    except AudioInputError as e:
        raise AudioInputError(f"{session.where(f'tracks.{track.name}.stem')}: {e}") from e
    first = round(track.trim.start_s * sample_rate)
    last = x.shape[1] if track.trim.end_s is None else round(track.trim.end_s * sample_rate)
    x = x[:, first:last]
    gain = db_to_gain(track.gain_db) * (-1.0 if track.polarity == "inverted" else 1.0)
    envelope = np.full(x.shape[1], gain)
    fade_in = min(round(track.fade_in.length_s * sample_rate), x.shape[1])
    fade_out = min(round(track.fade_out.length_s * sample_rate), x.shape[1])
    if fade_in:
        envelope[:fade_in] *= fade_in_gains(fade_in, track.fade_in.curve)
    if fade_out:
        envelope[x.shape[1] - fade_out :] *= fade_in_gains(fade_out, track.fade_out.curve)[::-1]
    left, right = pan_gains(track.pan, x.shape[0])
    stereo = np.empty((2, x.shape[1]))
    np.multiply(x[0], envelope * left, out=stereo[0])
    np.multiply(x[-1], envelope * right, out=stereo[1])
    note = None
    if info.sample_rate != sample_rate:
        note = (
            f"{track.name}: stem at {info.sample_rate} Hz resampled to {sample_rate} Hz "
            "(soxr, very high quality)"
        )
    return RenderedTrack(track.name, round(track.start_s * sample_rate), stereo, note)


def render_mix(session: Session, jobs: int) -> Mix:
    """Sum every audible track into the mix bus, ``jobs`` tracks rendering at a time."""
    mix = np.zeros((2, 0))
    heard: list[str] = []
    notes: list[str] = []

    def add(rendered: RenderedTrack) -> None:
        nonlocal mix
        end = rendered.start + rendered.audio.shape[1]
        if end > mix.shape[1]:
            mix = np.pad(mix, ((0, 0), (0, end - mix.shape[1])))
        mix[:, rendered.start : end] += rendered.audio
        heard.append(rendered.name)
        notes.extend([rendered.note] if rendered.note else [])

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: deque[Future[RenderedTrack]] = deque()
        try:
            for track in audible_tracks(session):
                pending.append(pool.submit(render_track, session, track))
                if len(pending) >= jobs:
                    add(pending.popleft().result())
            while pending:
                add(pending.popleft().result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    mix *= db_to_gain(session.mix.gain_db)  # the mix-bus fader
    return Mix(mix, session.sample_rate, tuple(heard), tuple(notes))
