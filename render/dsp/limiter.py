"""Lookahead brick-wall limiter: no output sample (or, with ``true_peak``, no 4x-interpolated
value) exceeds the ceiling. Its output is delayed by ``limiter_latency_samples``; the engine
removes that delay (``render.chain``)."""

from __future__ import annotations

import math

import numpy as np

from render.dsp.kernel_math import finite_db, one_pole
from render.dsp.levels import db_to_gain
from render.dsp.true_peak import CHUNK_CONTEXT, true_peak_chunks, true_peaks
from render.jit import njit


def limit(
    x: np.ndarray,
    sample_rate: int,
    *,
    ceiling_db: float,
    release_ms: float,
    lookahead_ms: float,
    true_peak: bool = True,
    peaks: np.ndarray | None = None,
) -> np.ndarray:
    """Brick-wall limiting with lookahead: no output sample exceeds ``ceiling_db``.

    ``y[:, n] = x[:, n - D] * gain[n]`` (0 for n < D), ``D = limiter_latency_samples(...)``,
    one gain for all channels. Sample ``n`` needs ``g_req[n] = min(1, ceiling / peak[n])``; a
    running minimum of ``g_req`` over ``D + 1`` samples, then a moving average as long (G.
    Luff, "Designing a straightforward limiter", Signalsmith Audio, 2022,
    https://signalsmith-audio.co.uk/writing/2022/limiter/), ramps the gain down over the
    lookahead: when delayed sample ``n`` plays, every term of that average is <= ``g_req[n]``,
    so the ramp arrives exactly on time. A one-pole release (``release_ms``) lets the gain
    rise again, never above the average; a final ``min`` with ``g_req`` removes rounding, so
    ``|y| <= ceiling`` holds to the last bit.

    Parameters
    ----------
    x, sample_rate
        As for ``compress``. The last ``D`` samples of ``x`` are not in the output: pad ``x``
        with ``D`` zeros to keep them.
    ceiling_db : float
        Highest output peak, dBFS (dBTP when ``true_peak``).
    release_ms : float
        Time constant of the gain's recovery, ms >= 0.
    lookahead_ms : float
        Length of the gain ramp and of the delay, ms >= 0 (0: instant attack, no delay).
    true_peak : bool
        Also hold inter-sample peaks (``render.dsp.true_peak``, ITU-R BS.1770-4 Annex 2).
        Default True: delivery specs (EBU R128, the streaming services) set their ceilings
        in dBTP.
    peaks : numpy.ndarray, optional
        ``limiter_peaks(x, true_peak)``, when already known.
    """
    source = np.ascontiguousarray(x, dtype=np.float64)
    peak = limiter_peaks(source, true_peak) if peaks is None else peaks
    gain = limiter_gain(
        peak, sample_rate, ceiling_db=ceiling_db, release_ms=release_ms, lookahead_ms=lookahead_ms
    )
    delay = limiter_latency_samples(sample_rate, lookahead_ms)
    y = np.empty_like(source)
    y[:, :delay] = 0.0
    np.multiply(source[:, : max(source.shape[1] - delay, 0)], gain[delay:], out=y[:, delay:])
    return y


def limiter_gain(
    peaks: np.ndarray,
    sample_rate: int,
    *,
    ceiling_db: float,
    release_ms: float,
    lookahead_ms: float,
) -> np.ndarray:
    """``limit``'s gain for each output sample, from the input's ``limiter_peaks``: output
    sample ``n`` is input sample ``n - limiter_latency_samples(...)`` times ``gain[n]``.

    A caller trying several input gains ``g`` on one signal needs the peaks once: the gain
    for ``g * x`` is this gain computed with ``ceiling_db`` lowered by ``g`` in dB."""
    ceiling = db_to_gain(finite_db("limiter ceiling_db", ceiling_db))
    delay = limiter_latency_samples(sample_rate, lookahead_ms)
    release = one_pole(release_ms, sample_rate, "limiter release_ms")
    return _lookahead_gain(np.ascontiguousarray(peaks, dtype=np.float64), ceiling, delay, release)


def limiter_gain_stretches(
    peaks: np.ndarray,
    sample_rate: int,
    *,
    ceiling_db: float,
    release_ms: float,
    lookahead_ms: float,
) -> list[tuple[int, np.ndarray]]:
    """``limiter_gain(peaks, ...)`` where it is not exactly 1, as ``(first index, gains)``
    per stretch of overs; elsewhere the gain is exactly 1.

    Each stretch starts a lookahead before its first over, where the limiter is at rest, and
    ends where it is at rest again after its last: a lookahead while the running minimum
    holds the over, another while the moving average does (then its total is exactly 0),
    and the release's decay from at most 1 to at most 2**-54, below which ``1 - reduction``
    is exactly 1. Overs closer than that share a stretch. Computed from rest, a stretch has
    the bits of the whole signal's gain: the state it starts from is the one at rest."""
    ceiling = db_to_gain(finite_db("limiter ceiling_db", ceiling_db))
    w = limiter_latency_samples(sample_rate, lookahead_ms) + 1
    release = one_pole(release_ms, sample_rate, "limiter release_ms")
    decay = 0 if release == 0.0 else math.ceil(54.0 * math.log(2.0) / -math.log(release)) + 1
    settle = 2 * w + decay
    overs = np.flatnonzero(peaks > ceiling)
    if not overs.size:
        return []
    spans, begin, last = [], max(int(overs[0]) - w, 0), int(overs[0])
    for over in overs[1:].tolist():
        if over - last > settle + w:
            spans.append((begin, last + settle))
            begin = over - w
        last = over
    spans.append((begin, min(last + settle, peaks.size)))
    settings = {"ceiling_db": ceiling_db, "release_ms": release_ms, "lookahead_ms": lookahead_ms}
    return [(a, limiter_gain(peaks[a:b], sample_rate, **settings)) for a, b in spans]


def limiter_peaks(x: np.ndarray, true_peak: bool) -> np.ndarray:
    """Per sample, the peak the limiter holds under its ceiling: the largest channel's true
    peak (``true_peak``) or sample peak."""
    return true_peaks(x) if true_peak else np.max(np.abs(x), axis=0)


def padded_peaks(x: np.ndarray, silence: int) -> np.ndarray:
    """``limiter_peaks(..., True)`` of ``x`` followed by ``silence`` zero samples, without
    forming that copy of ``x``: its true peaks piece by piece (``true_peak_chunks``, the same
    values) into one array, then those of its last samples ringing into the silence."""
    n = x.shape[1]
    peaks = np.empty(n + silence)
    for start, chunk in true_peak_chunks(x):
        peaks[start : start + chunk.size] = chunk
    context = min(n, CHUNK_CONTEXT)
    tail = np.zeros((x.shape[0], context + silence))
    tail[:, :context] = x[:, n - context :]
    peaks[n:] = true_peaks(tail)[context:]
    return peaks


def limiter_latency_samples(sample_rate: int, lookahead_ms: float) -> int:
    """The limiter's delay in whole samples: ``round(lookahead_ms * sample_rate / 1000)``."""
    if not lookahead_ms >= 0.0:
        raise ValueError(f"limiter lookahead_ms: got {lookahead_ms} ms, expected >= 0 ms")
    return round(lookahead_ms * sample_rate / 1000.0)


@njit(nogil=True, cache=True)
def _lookahead_gain(peak: np.ndarray, ceiling: float, delay: int, release: float) -> np.ndarray:
    """Gain for output sample ``i`` (playing input ``i - delay``): the running minimum of
    ``g_req`` over ``delay + 1`` samples, its moving average over as many, instant attack,
    one-pole release, and a final ``min`` with ``g_req[i - delay]`` against rounding.

    The minimum comes from a monotone queue on the peaks clipped at the ceiling (the loudest
    peak needs the least gain; all peaks under the ceiling need none), so passages without
    overs cost one comparison per sample."""
    n = peak.size
    w = delay + 1
    mask = 1
    while mask < w:
        mask *= 2
    queue = np.empty(mask, np.int64)  # indices of falling peaks; the front is the loudest
    front = back = 0
    mask -= 1  # a power of two minus 1: ``k & mask`` wraps the queue's ring buffer
    # Reductions (1 - gain) rather than gains: sums of zeros stay exactly zero, and a
    # release ends at exactly unity gain. Once the window holds zeros only, its total is set
    # to exactly zero too (the additions and subtractions of an over can leave a rounding
    # residue): the state after a settled over is then the state at rest, so a stretch of
    # the signal can be limited on its own (``deliver.relimit``).
    window = np.empty(w)  # the last w largest reductions; before the start, silence
    for k in range(w):  # a loop: np.zeros compiles several times slower
        window[k] = 0.0
    slot = 0
    total = 0.0
    nonzero = 0  # reductions in the window that are not 0
    reduction = 0.0
    gain = np.empty(n)
    for i in range(n):
        if back > front and queue[front & mask] <= i - w:
            front += 1
        clipped = max(peak[i], ceiling)
        while back > front and max(peak[queue[(back - 1) & mask]], ceiling) <= clipped:
            back -= 1
        queue[back & mask] = i
        back += 1
        loudest = peak[queue[front & mask]]
        deepest = 1.0 - ceiling / loudest if loudest > ceiling else 0.0
        total += deepest - window[slot]
        nonzero += (deepest != 0.0) - (window[slot] != 0.0)
        if nonzero == 0:
            total = 0.0
        window[slot] = deepest
        slot = slot + 1 if slot < delay else 0
        average = max(total / w, 0.0)
        reduction = average if average > reduction else average + release * (reduction - average)
        gain[i] = 1.0 - reduction
        if i >= delay and peak[i - delay] > ceiling:
            gain[i] = min(gain[i], ceiling / peak[i - delay])
    return gain
