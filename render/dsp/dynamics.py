"""Dynamics: compressor, gate/expander and lookahead brick-wall limiter.

The compressor follows Giannoulis, Massberg & Reiss, "Digital Dynamic Range Compressor Design —
A Tutorial and Analysis", JAES 60(6), 2012 ([GMR]): feed-forward, log domain, level corrected
(§IV, Fig. 7). The static curve (eq. 4) maps the detector level to an output level; their
difference, the gain reduction in dB, goes through the smooth branching peak detector (§III),
so attack and release act on the gain reduction itself, alike at every level and ratio.

Every smoother is the one-pole ``y[n] = x[n] + alpha (y[n-1] - x[n])``, ``alpha = exp(-1 /
(tau fs))`` ([GMR] §III): after ``tau`` a step has moved 1 - 1/e (63.2 %) of the way; 0 ms is
instantaneous. Attack/release (opening/closing) pick ``tau`` by the direction of the move.

Stereo: the compressor blends each channel's level with the louder one by ``link``; the gate
and the limiter are always linked (one gain for both channels: the image never shifts when
one side alone is loud). A mono key drives both channels alike; a stereo key on mono audio is
read as the louder of its channels. Every effect returns a new array shaped like ``x``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numba import njit
from scipy import signal

from render.dsp.filters import butterworth_sos
from render.dsp.levels import db_to_gain

Detector = Literal["peak", "rms"]

RMS_TIME_MS = 10.0
"""Time constant of the ``rms`` detector's exponential mean square, the one-pole RMS of
Zölzer (ed.), "DAFX", 2nd ed., ch. 4 (``xrms = (1 - tav) xrms + tav x^2``), set as a time so
it does not change with the sample rate. 10 ms is one period of 100 Hz: a 100 Hz tone's mean
square ripples by +-7.9 % (+-0.34 dB of level), 1 kHz by +-0.8 %, while a 30 ms drum hit is
still read at nearly its full level."""
_BLOCK = 1024
"""Samples per block in the true-peak kernel: its buffers stay in the L1 cache."""


def gain_computer_db(
    level_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float
) -> np.ndarray:
    """The static curve: output level in dB for each input ``level_db`` ([GMR] eq. 4).

    Below ``threshold_db - knee_db / 2`` the output is the input; above ``threshold_db +
    knee_db / 2`` it is ``threshold_db + (level_db - threshold_db) / ratio``; in between a
    quadratic joins the two with matching slopes. ``ratio`` may be ``math.inf`` (flat above
    the threshold: a limiting curve); ``knee_db`` 0 is a hard knee.
    """
    _check_curve(ratio, knee_db)
    levels = np.asarray(level_db, dtype=np.float64)
    return levels - _REDUCTIONS_DB(levels, threshold_db, 1.0 / ratio - 1.0, knee_db)


def compress(
    x: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float,
    ratio: float,
    knee_db: float,
    attack_ms: float,
    release_ms: float,
    makeup_db: float = 0.0,
    detector: Detector = "peak",
    link: float = 1.0,
    mix: float = 1.0,
    key: np.ndarray | None = None,
    key_highpass_hz: float | None = None,
) -> np.ndarray:
    """Feed-forward compression of ``x`` ([GMR] §IV: log domain, level corrected).

    Parameters
    ----------
    x : float64[channels, samples]
        The signal, 1 or 2 channels; never modified.
    sample_rate : int
        Samples per second, Hz.
    threshold_db, ratio, knee_db : float
        The static curve (``gain_computer_db``): threshold in dBFS, ratio >= 1 (``math.inf``
        limits), knee width >= 0 dB centred on the threshold.
    attack_ms, release_ms : float
        Time constants of the gain reduction, ms >= 0: after a level step the reduction in dB
        has made 63.2 % of its change after ``attack_ms`` (growing) or ``release_ms``
        (shrinking).
    makeup_db : float
        Gain after compression, dB. Default 0: never louder than the input unless asked.
    detector : {"peak", "rms"}
        The level fed to the curve: ``|x|`` per sample ("peak", [GMR] §IV: all the smoothing
        is in attack and release, so a peak is caught as fast as ``attack_ms`` allows) or the
        RMS over ``RMS_TIME_MS`` ("rms": follows loudness rather than transients).
    link : float
        Stereo link 0..1: channel ``c`` is driven by ``link * max(levels) + (1 - link) *
        level_c``, levels as amplitudes. Default 1: one gain for both channels.
    mix : float
        Wet share 0..1, ``(1 - mix) * x + mix * compressed`` (parallel compression). Default
        1: a plain insert.
    key : float64[1 or 2, samples] or None
        Sidechain, as long as ``x``: the detector listens to it instead of ``x`` (ducking).
    key_highpass_hz : float or None
        2nd-order Butterworth high-pass on the detector input (``key`` or ``x``), so the low
        end does not pump the compressor. Default ``None``: unfiltered.
    """
    _check_curve(ratio, knee_db)
    if detector not in ("peak", "rms"):
        raise ValueError(f"compressor detector: got {detector!r}, expected 'peak' or 'rms'")
    for what, value in (("link", link), ("mix", mix)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"compressor {what}: got {value}, expected a fraction from 0 to 1")
    source = _detector_input(x, key, key_highpass_hz, sample_rate, "compressor")
    if detector == "rms":
        pole = _pole(RMS_TIME_MS, sample_rate, "compressor rms time")
        levels = np.sqrt(signal.lfilter([1.0 - pole], [1.0, -pole], source * source))
    else:
        levels = np.abs(source)
    loudest = np.max(levels, axis=0, keepdims=True)
    if x.shape[0] == 2 and levels.shape[0] == 2 and link < 1.0:
        loudest = link * loudest + (1.0 - link) * levels
    with np.errstate(divide="ignore"):  # silence is -inf dB, below every knee
        log_gain = np.log10(loudest, out=loudest)
    attack = _pole(attack_ms, sample_rate, "compressor attack_ms")
    release = _pole(release_ms, sample_rate, "compressor release_ms")
    slope = 1.0 / ratio - 1.0
    for row in log_gain:
        _compressor_log_gain(row, threshold_db, slope, knee_db, attack, release, makeup_db)
    wet = x * np.exp(log_gain, out=log_gain)
    return wet if mix == 1.0 else (1.0 - mix) * x + mix * wet


def gate(
    x: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float,
    range_db: float,
    ratio: float | None,
    attack_ms: float,
    hold_ms: float,
    release_ms: float,
    key: np.ndarray | None = None,
    key_highpass_hz: float | None = None,
) -> np.ndarray:
    """Noise gate (``ratio`` None) or downward expander on ``x``, linked across channels.

    The detector is the fastest peak detector, ``max_c |key_c|`` per sample, so the gate opens
    on the very sample the key reaches the threshold. There the target gain is 1; below it,
    ``range_db`` (hard gate) or the expander curve ``(level - threshold) * (ratio - 1)`` dB,
    floored at ``range_db``. The gain, an amplitude, moves to the target with the opening
    (``attack_ms``) or closing (``release_ms``) time constant, so a release falls at a steady
    rate in dB like a natural decay. The gate starts closed, as after silence.

    Parameters
    ----------
    x, sample_rate
        As for ``compress``.
    threshold_db : float
        Opening level, dBFS.
    range_db : float
        Gain when closed, dB <= 0 (``-math.inf`` mutes).
    ratio : float or None
        Expansion ratio >= 1 below the threshold (2: each dB under it becomes 2 dB);
        ``None``: hard gate.
    attack_ms, release_ms : float
        Opening and closing time constants, ms >= 0.
    hold_ms : float
        How long the gate stays open after the level drops below the threshold before the
        release starts, ms >= 0. It also bridges the zero crossings of a held note: give it
        at least half a period of the lowest note (10 ms covers 50 Hz).
    key, key_highpass_hz
        Sidechain and its high-pass, as for ``compress``.
    """
    if not range_db <= 0.0:
        raise ValueError(f"gate range_db: got {range_db} dB, expected <= 0 dB")
    if ratio is not None and not ratio >= 1.0:
        raise ValueError(f"gate ratio: got {ratio}, expected a number >= 1 or None (hard gate)")
    if not hold_ms >= 0.0:
        raise ValueError(f"gate hold_ms: got {hold_ms} ms, expected >= 0 ms")
    threshold = db_to_gain(_finite("gate threshold_db", threshold_db))
    exponent = math.inf if ratio is None else ratio - 1.0
    floor = db_to_gain(range_db)
    # Below ``bottom`` the expander curve is under the floor (a hard gate: the threshold).
    bottom = threshold * floor ** (1.0 / exponent) if exponent > 0.0 else 0.0
    attack = _pole(attack_ms, sample_rate, "gate attack_ms")
    release = _pole(release_ms, sample_rate, "gate release_ms")
    source = _detector_input(x, key, key_highpass_hz, sample_rate, "gate")
    hold = round(hold_ms * sample_rate / 1000.0)
    gain = _gate_gain(source, threshold, bottom, exponent, floor, attack, release, hold)
    return x * gain


def limit(
    x: np.ndarray,
    sample_rate: int,
    *,
    ceiling_db: float,
    release_ms: float,
    lookahead_ms: float,
    true_peak: bool = True,
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
        Also hold inter-sample peaks: ``peak[n]`` is the largest of ``|x[n]|`` and the three
        values 4x interpolation puts after it (ITU-R BS.1770-4 Annex 2), with
        ``scipy.signal.resample_poly``'s interpolator. Default True: delivery specs (EBU R128,
        the streaming services) set their ceilings in dBTP.
    """
    ceiling = db_to_gain(_finite("limiter ceiling_db", ceiling_db))
    delay = limiter_latency_samples(sample_rate, lookahead_ms)
    release = _pole(release_ms, sample_rate, "limiter release_ms")
    source = np.ascontiguousarray(x, dtype=np.float64)
    peak = _true_peaks(source, *_INTERPOLATOR) if true_peak else np.max(np.abs(source), axis=0)
    gain = _lookahead_gain(peak, ceiling, delay, release)
    y = np.empty_like(source)
    y[:, :delay] = 0.0
    np.multiply(source[:, : max(source.shape[1] - delay, 0)], gain[delay:], out=y[:, delay:])
    return y


def limiter_latency_samples(sample_rate: int, lookahead_ms: float) -> int:
    """The limiter's delay in whole samples: ``round(lookahead_ms * sample_rate / 1000)``."""
    if not lookahead_ms >= 0.0:
        raise ValueError(f"limiter lookahead_ms: got {lookahead_ms} ms, expected >= 0 ms")
    return round(lookahead_ms * sample_rate / 1000.0)


def _interpolator() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``resample_poly(x, 4, 1)``'s fractional phases, folded by their symmetry.

    Its filter is ``h = 4 firwin(81, 1/4, window=("kaiser", 5.0))``, ``u[4n + p] = sum_j x[j]
    h[4(n - j) + p + 40]``: for p = 1..3 the taps on ``x[n + d]``, d = -9..10, are ``h[40 + p
    - 4d]`` (phase 0 is the sample). ``h`` is linear phase: phase 3 is phase 1 reversed and
    phase 2 symmetric, so with ``s_k, t_k = x_k +- x_{19-k}`` (k < 10), ``u1, u3 = E +- O``
    (``E = sum even_k s_k``, ``O = sum odd_k t_k``) and ``u2 = sum middle_k s_k``: half the
    products. (``resample_poly`` itself takes 1.4 s on 3 minutes of stereo, this 0.13 s.)
    """
    up, half = 4, 40  # 4x: ITU-R BS.1770-4 Annex 2; half length 10 * up: resample_poly's
    h = signal.firwin(2 * half + 1, 1.0 / up, window=("kaiser", 5.0)) * up
    offsets = np.arange(1 - half // up, half // up + 1)
    first, middle = (h[half + p - up * offsets] for p in (1, 2))
    pairs = offsets.size // 2
    even = (first[:pairs] + first[::-1][:pairs]) / 2.0
    odd = (first[:pairs] - first[::-1][:pairs]) / 2.0
    return even, odd, np.ascontiguousarray(middle[:pairs]), int(-offsets[0])


_INTERPOLATOR = _interpolator()


def _detector_input(
    x: np.ndarray, key: np.ndarray | None, highpass_hz: float | None, sample_rate: int, what: str
) -> np.ndarray:
    """What the detector listens to: ``key`` (checked against ``x``) or ``x``, high-passed."""
    if key is not None and (
        key.ndim != 2 or key.shape[0] not in (1, 2) or key.shape[1] != x.shape[1]
    ):
        raise ValueError(
            f"{what} key: got shape {key.shape}, expected (1 or 2, {x.shape[1]}): one or two "
            "channels as long as the signal"
        )
    source = x if key is None else key
    if highpass_hz is not None:
        source = signal.sosfilt(butterworth_sos("highpass", highpass_hz, sample_rate), source)
    return np.ascontiguousarray(source, dtype=np.float64)


def _pole(time_ms: float, sample_rate: int, what: str) -> float:
    """The one-pole coefficient ``exp(-1 / (tau * fs))`` of a time constant; 0 ms gives 0."""
    if not time_ms >= 0.0:
        raise ValueError(f"{what}: got {time_ms} ms, expected >= 0 ms")
    return math.exp(-1000.0 / (time_ms * sample_rate)) if time_ms > 0.0 else 0.0


def _check_curve(ratio: float, knee_db: float) -> None:
    if not ratio >= 1.0:
        raise ValueError(f"compressor ratio: got {ratio}, expected a number >= 1 (inf limits)")
    if not 0.0 <= knee_db < math.inf:
        raise ValueError(f"compressor knee_db: got {knee_db} dB, expected a finite width >= 0 dB")


def _finite(what: str, level_db: float) -> float:
    if not math.isfinite(level_db):
        raise ValueError(f"{what}: got {level_db} dB, expected a finite level in dBFS")
    return level_db


@njit(nogil=True, cache=True)
def _reduction_db(level_db: float, threshold_db: float, slope: float, knee_db: float) -> float:
    """Input minus output level of [GMR] eq. (4), ``slope = 1 / ratio - 1``, without branches:
    with ``k`` the level's way into the knee (clipped to 0..W), the reduction is ``-slope *
    (k^2 / 2W + max(0, over - W/2))``; a hard knee (W = 0) keeps only the second term. -inf dB
    (silence) gives 0."""
    over = level_db - threshold_db
    into_knee = min(max(over + knee_db / 2.0, 0.0), knee_db)
    curve = into_knee * into_knee / (2.0 * knee_db) if knee_db > 0.0 else 0.0
    return -slope * (curve + max(over - knee_db / 2.0, 0.0))


# The same curve for the public function: the kernel's own Python code, element by element.
_REDUCTIONS_DB = np.vectorize(_reduction_db.py_func, otypes=[np.float64])


@njit(nogil=True, cache=True)
def _compressor_log_gain(
    level: np.ndarray,
    threshold_db: float,
    slope: float,
    knee_db: float,
    attack: float,
    release: float,
    makeup_db: float,
) -> None:
    """In place: ``log10`` of the detector level in, natural log of the gain out (for one
    ``np.exp``): static curve, then the smooth branching peak detector on the reduction."""
    db_to_ln = math.log(10.0) / 20.0
    reduction = 0.0
    for i in range(level.size):
        target = _reduction_db(20.0 * level[i], threshold_db, slope, knee_db)
        alpha = attack if target > reduction else release
        reduction = target + alpha * (reduction - target)
        level[i] = (makeup_db - reduction) * db_to_ln


@njit(nogil=True, cache=True)
def _gate_gain(
    source: np.ndarray,
    threshold: float,
    bottom: float,
    exponent: float,
    floor: float,
    attack: float,
    release: float,
    hold: int,
) -> np.ndarray:
    """Gate gain per sample: open (1) at the threshold and for ``hold`` samples after,
    ``(level / threshold) ** exponent`` down to ``bottom``, ``floor`` below it."""
    channels, n = source.shape
    gain = np.empty(n)
    shut = 1.0 - floor  # the smoother runs on 1 - gain, so an open gate reaches exactly 1
    held = 0
    for i in range(n):
        level = 0.0
        for c in range(channels):
            level = max(level, abs(source[c, i]))
        if level >= threshold:
            target = 0.0
            held = hold
        elif held > 0:
            target = 0.0
            held -= 1
        else:
            target = 1.0 - ((level / threshold) ** exponent if level > bottom else floor)
        alpha = attack if target < shut else release
        shut = target + alpha * (shut - target)
        gain[i] = 1.0 - shut
    return gain


@njit(nogil=True, cache=True)
def _true_peaks(
    x: np.ndarray, even: np.ndarray, odd: np.ndarray, middle: np.ndarray, past: int
) -> np.ndarray:
    """``max_c max(|x_c[n]|, |u_c[4n + 1]|, |u_c[4n + 2]|, |u_c[4n + 3]|)`` per sample, with
    the folded phases of ``_interpolator`` (zeros outside ``x``, as ``resample_poly``)."""
    channels, n = x.shape
    pairs = even.size
    taps = 2 * pairs
    peak = np.empty(n)
    local = np.empty(_BLOCK + taps - 1)
    acc = np.empty((3, _BLOCK))
    for c in range(channels):
        for start in range(0, n, _BLOCK):
            m = min(_BLOCK, n - start)
            lo = start - past
            if lo < 0 or lo + m + taps - 1 > n:
                local[:] = 0.0
            first, last = max(lo, 0), min(lo + m + taps - 1, n)
            local[first - lo : last - lo] = x[c, first:last]
            out = peak[start : start + m]
            for i in range(m):
                out[i] = abs(local[past + i]) if c == 0 else max(out[i], abs(local[past + i]))
            e, o, h = acc[0, :m], acc[1, :m], acc[2, :m]
            e[:] = 0.0
            o[:] = 0.0
            h[:] = 0.0
            for k in range(pairs):
                a, b = local[k : k + m], local[taps - 1 - k : taps - 1 - k + m]
                for i in range(m):
                    s = a[i] + b[i]
                    e[i] += even[k] * s
                    o[i] += odd[k] * (a[i] - b[i])
                    h[i] += middle[k] * s
            for i in range(m):
                out[i] = max(out[i], abs(e[i] + o[i]), abs(e[i] - o[i]), abs(h[i]))
    return peak


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
    # release ends at exactly unity gain.
    window = np.zeros(w)  # the last w largest reductions; before the start, silence
    slot = 0
    total = 0.0
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
        window[slot] = deepest
        slot = slot + 1 if slot < delay else 0
        average = max(total / w, 0.0)
        reduction = average if average > reduction else average + release * (reduction - average)
        gain[i] = 1.0 - reduction
        if i >= delay and peak[i - delay] > ceiling:
            gain[i] = min(gain[i], ceiling / peak[i - delay])
    return gain
