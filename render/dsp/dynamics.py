"""Dynamics: compressor and gate/expander (the limiter is ``render.dsp.limiter``).

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

Streaming: ``Compressor`` and ``Gate`` process consecutive blocks and carry every state (the
key high-pass, the RMS mean square, the smoothed gain, the hold count) from one block to the
next, so any split of a signal into blocks gives exactly the bytes of the whole; ``compress``
and ``gate`` are one block. Each block is one numba pass, the key high-pass included: per
slice of ``_CHUNK`` samples (held in the L1 cache) the per-sample functions, log and exp
among them, run as SIMD loops, the recursions as scalar loops, and the output is written
once. The log and exp are ``kernel_math``'s own, plain IEEE arithmetic, so the bytes do
not depend on the machine's libm either; the compressor takes them in float32, whose 24-bit
mantissa is far finer than any gain needs (-128 dB) and whose SIMD lanes are twice as many.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from render.dsp.filters import band_limit_sos
from render.dsp.kernel_math import (
    DB_PER_NEPER,
    DB_PER_NEPER_32,
    HUGE_32,
    JIT,
    TINY,
    TINY_32,
    exp,
    exp_32,
    finite_db,
    ln,
    ln_32,
    one_pole,
)
from render.dsp.levels import db_to_gain
from render.dsp.shapes import check_channels, checked_block
from render.jit import njit

Detector = Literal["peak", "rms"]

RMS_TIME_MS = 10.0
"""Time constant of the ``rms`` detector's exponential mean square, the one-pole RMS of
Zölzer (ed.), "DAFX", 2nd ed., ch. 4 (``xrms = (1 - tav) xrms + tav x^2``), set as a time so
it does not change with the sample rate. 10 ms is one period of 100 Hz: a 100 Hz tone's mean
square ripples by +-7.9 % (+-0.34 dB of level), 1 kHz by +-0.8 %, while a 30 ms drum hit is
still read at nearly its full level."""
_CHUNK = 512
"""Samples per slice inside a kernel: its scratch rows (a few kB) stay in the L1 cache."""


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


class _BlockProcessor:
    """What ``Compressor`` and ``Gate`` share: each block is checked, its detector input
    chosen (the key, or the signal itself), and the effect's kernel run on it with the key
    high-pass (``sos``; state ``zi[section, detector channel, 2]``) and the effect's own
    settings and state. The first block fixes the detector's channel count: the state is
    per detector channel."""

    def __init__(
        self,
        what: str,
        kernel: Callable[..., None],
        sample_rate: int,
        channels: int,
        highpass_hz: float | None,
        settings: tuple[float | int | bool, ...],
        state: tuple[np.ndarray, ...],
    ) -> None:
        check_channels(what, channels)
        self._what, self._kernel, self._channels = what, kernel, channels
        self._sos = band_limit_sos(sample_rate, highpass_hz, None)
        self._zi = np.zeros((len(self._sos), 2, 2))
        self._settings, self._state = settings, state
        self._sources = 0

    def process(self, x: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
        """The next block: ``x``, ``float64[channels, n]``, processed (never modified);
        ``key``, ``float64[1 or 2, n]`` or None, is what the detector listens to instead of
        ``x`` (ducking, keyed gating)."""
        x = checked_block(self._what, x, self._channels)
        if key is not None and (
            key.ndim != 2 or key.shape[0] not in (1, 2) or key.shape[1] != x.shape[1]
        ):
            raise ValueError(
                f"{self._what} key: got shape {key.shape}, expected (1 or 2, {x.shape[1]}): one "
                "or two channels as long as the signal"
            )
        source = x if key is None else np.ascontiguousarray(key, dtype=np.float64)
        if self._sources and source.shape[0] != self._sources:
            raise ValueError(
                f"{self._what} detector: got {source.shape[0]} channels, expected "
                f"{self._sources} as in the earlier blocks"
            )
        self._sources = source.shape[0]
        y = np.empty_like(x)
        self._kernel(x, source, self._sos, self._zi, y, *self._settings, *self._state)
        return y


class Compressor(_BlockProcessor):
    """Feed-forward compression, block by block ([GMR] §IV: log domain, level corrected).

    Parameters
    ----------
    sample_rate : int
        Samples per second, Hz.
    channels : int
        Channels of every block, 1 or 2.
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
    key_highpass_hz : float or None
        2nd-order Butterworth high-pass on the detector input (the key, or the signal), so
        the low end does not pump the compressor. Default ``None``: unfiltered.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
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
        key_highpass_hz: float | None = None,
    ) -> None:
        _check_curve(ratio, knee_db)
        if detector not in ("peak", "rms"):
            raise ValueError(f"compressor detector: got {detector!r}, expected 'peak' or 'rms'")
        for what, value in (("link", link), ("mix", mix)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"compressor {what}: got {value}, expected a fraction from 0 to 1")
        # Floats throughout (an int setting would compile the kernels again for it).
        settings = (
            detector == "rms",
            one_pole(RMS_TIME_MS, sample_rate, "compressor rms time"),
            float(link),
            float(finite_db("compressor threshold_db", threshold_db)),
            1.0 / ratio - 1.0,
            float(knee_db),
            _knee_floor(threshold_db, knee_db),
            one_pole(attack_ms, sample_rate, "compressor attack_ms"),
            one_pole(release_ms, sample_rate, "compressor release_ms"),
            float(makeup_db),
            float(mix),
        )
        self._one_drive = channels == 1 or link == 1.0  # one gain for all its channels
        # The mean square per detector channel, the smoothed reduction per gain (one gain
        # when linked).
        state = (np.zeros(2), np.zeros(2))
        super().__init__(
            "compressor", _compress_block, sample_rate, channels, key_highpass_hz, settings, state
        )

    def pairs_with(self, other: Compressor) -> bool:
        """Whether ``compress_pair`` can run this compressor and ``other`` side by side, each
        keyed by its own signal: each has one gain for all its channels, and as many
        channels as the other (and has only ever listened to its own signal)."""
        return (
            self._channels == other._channels
            and self._one_drive
            and other._one_drive
            and self._sources in (0, self._channels)
            and other._sources in (0, other._channels)
        )


def compress_pair(first: Compressor, second: Compressor, x: np.ndarray) -> np.ndarray:
    """The next blocks of two compressors that pair (``Compressor.pairs_with``), each keyed
    by its own signal, in one kernel: ``x`` is ``float64[2 * channels, n]``, ``first``'s
    block above ``second``'s, and the result a new array of that shape. Each gets the bits
    its own ``process`` gives: only their smoothing recursions share a loop, each in a slot
    that one compressor alone spends on a copy of its other."""
    assert first.pairs_with(second)
    x = checked_block("compressor pair", x, 2 * first._channels)
    first._sources = second._sources = first._channels
    y = np.empty_like(x)
    pair = (first, second)
    _compress_pair_block(
        x,
        y,
        tuple(c._sos for c in pair),
        tuple(c._zi for c in pair),
        first._settings,
        second._settings,
        tuple(c._state[0] for c in pair),
        tuple(c._state[1] for c in pair),
    )
    return y


def compress(
    x: np.ndarray, sample_rate: int, *, key: np.ndarray | None = None, **settings: Any
) -> np.ndarray:
    """The whole of ``x`` (``float64[channels, samples]``) as one ``Compressor`` block, keyed
    by the whole ``key`` (or None); ``settings`` are the ``Compressor``'s keyword arguments."""
    return Compressor(sample_rate, x.shape[0], **settings).process(x, key)


class Gate(_BlockProcessor):
    """Noise gate (``ratio`` None) or downward expander, block by block, linked across channels.

    The detector is the fastest peak detector, ``max_c |key_c|`` per sample, so the gate opens
    on the very sample the key reaches the threshold. There the target gain is 1; below it,
    ``range_db`` (hard gate) or the expander curve ``(level - threshold) * (ratio - 1)`` dB,
    floored at ``range_db``. The gain, an amplitude, moves to the target with the opening
    (``attack_ms``) or closing (``release_ms``) time constant, so a release falls at a steady
    rate in dB like a natural decay. The gate starts closed, as after silence.

    Parameters
    ----------
    sample_rate, channels
        As for ``Compressor``.
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
    key_highpass_hz
        High-pass on the detector input, as for ``Compressor``.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        threshold_db: float,
        range_db: float,
        ratio: float | None,
        attack_ms: float,
        hold_ms: float,
        release_ms: float,
        key_highpass_hz: float | None = None,
    ) -> None:
        if not range_db <= 0.0:
            raise ValueError(f"gate range_db: got {range_db} dB, expected <= 0 dB")
        if ratio is not None and not ratio >= 1.0:
            raise ValueError(f"gate ratio: got {ratio}, expected a number >= 1 or None (hard gate)")
        if not hold_ms >= 0.0:
            raise ValueError(f"gate hold_ms: got {hold_ms} ms, expected >= 0 ms")
        threshold = db_to_gain(finite_db("gate threshold_db", threshold_db))
        exponent = math.inf if ratio is None else ratio - 1.0
        floor = db_to_gain(range_db)
        # Below ``bottom`` the expander curve is under the floor (a hard gate: the threshold).
        bottom = threshold * floor ** (1.0 / exponent) if exponent > 0.0 else 0.0
        settings = (
            threshold,
            bottom,
            exponent,
            floor,
            one_pole(attack_ms, sample_rate, "gate attack_ms"),
            one_pole(release_ms, sample_rate, "gate release_ms"),
            round(hold_ms * sample_rate / 1000.0),
        )
        # 1 - gain, smoothed (closed at the start), and the samples of hold left.
        state = (np.array([1.0 - floor]), np.zeros(1, dtype=np.int64))
        super().__init__(
            "gate", _gate_block, sample_rate, channels, key_highpass_hz, settings, state
        )


def gate(
    x: np.ndarray, sample_rate: int, *, key: np.ndarray | None = None, **settings: Any
) -> np.ndarray:
    """The whole of ``x`` as one ``Gate`` block, keyed by the whole ``key`` (or None);
    ``settings`` are the ``Gate``'s keyword arguments."""
    return Gate(sample_rate, x.shape[0], **settings).process(x, key)


def _check_curve(ratio: float, knee_db: float) -> None:
    if not ratio >= 1.0:
        raise ValueError(f"compressor ratio: got {ratio}, expected a number >= 1 (inf limits)")
    if not 0.0 <= knee_db < math.inf:
        raise ValueError(f"compressor knee_db: got {knee_db} dB, expected a finite width >= 0 dB")


def _knee_floor(threshold_db: float, knee_db: float) -> float:
    """An amplitude below which the static curve surely gives no reduction: the knee's foot
    ``threshold_db - knee_db / 2``, less a millionth (9e-6 dB, far beyond the log's 1-ulp
    error), so a sample under it yields exactly the 0 dB its level in dB would."""
    return 10.0 ** min((threshold_db - knee_db / 2.0) / 20.0, 300.0) * (1.0 - 1e-6)


@njit(**JIT)
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


@njit(**JIT)
def _smooth(target: float, state: float, up: float, down: float) -> float:
    """One step of the branching one-pole, ``target + alpha (state - target)`` with ``alpha =
    up`` when the target is above the state, ``down`` otherwise; rearranged so that both
    candidates are ready before the comparison picks one: the loop-carried path is then one
    multiply and one add (7 cycles a sample rather than 10)."""
    rise = up * state + (1.0 - up) * target
    fall = down * state + (1.0 - down) * target
    return rise if target > state else fall


@njit(**JIT)
def _detect(
    source: np.ndarray, start: int, stop: int, sos: np.ndarray, zi: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``start:stop`` of the detector input, ``source`` channel 0 and its last channel
    (channel 0 again when mono, so no caller branches on the count): views of ``source``, or
    with a high-pass (``sos``, state ``zi``) ``rows[0]`` and ``rows[1]``, filtered. The filter
    is ``scipy.signal.sosfilt``'s transposed direct form II with its operations in its order,
    so the two agree to the bit."""
    last = source.shape[0] - 1
    a, b = source[0, start:stop], source[last, start:stop]
    first, second = rows[0, : stop - start], rows[1, : stop - start]
    for k in range(sos.shape[0]):
        b0, b1, b2, a1, a2 = sos[k, 0], sos[k, 1], sos[k, 2], sos[k, 4], sos[k, 5]
        p, q = zi[k, 0], zi[k, last]
        p0, p1, q0, q1 = p[0], p[1], q[0], q[1]
        for i in range(stop - start):  # two independent recursions in a loop: they overlap
            u, v = a[i], b[i]
            filtered_u, filtered_v = b0 * u + p0, b0 * v + q0
            first[i], second[i] = filtered_u, filtered_v
            p0 = b1 * u - a1 * filtered_u + p1
            q0 = b1 * v - a1 * filtered_v + q1
            p1 = b2 * u - a2 * filtered_u
            q1 = b2 * v - a2 * filtered_v
        p[0], p[1], q[0], q[1] = p0, p1, q0, q1
        a, b = first, second
    return a, b


@njit(**JIT)
def _compress_block(
    x: np.ndarray,
    source: np.ndarray,
    sos: np.ndarray,
    zi: np.ndarray,
    y: np.ndarray,
    rms: bool,
    rms_pole: float,
    link: float,
    threshold_db: float,
    slope: float,
    knee_db: float,
    quiet: float,
    attack: float,
    release: float,
    makeup_db: float,
    mix: float,
    mean_square: np.ndarray,
    reduction_db: np.ndarray,
) -> None:
    """One block of the compressor into ``y``; ``zi``, ``mean_square`` and ``reduction_db``
    carry its state.

    Per slice of ``_CHUNK`` samples: the target reductions (``_targets_db``), their
    smoothing, and the gains applied (``_apply``). Two recursions of the same kind share a
    loop (one drive, or a mono detector: the same row twice), so their latencies overlap."""
    channels, n = x.shape
    last = source.shape[0] - 1
    drives = 2 if channels == 2 and last == 1 and link < 1.0 else 1
    rows = np.empty((2, _CHUNK))  # the detector's two channels, filtered or mean squares
    work = np.empty((2, _CHUNK))  # per drive: the target reduction, then smoothed
    gains = np.empty((2, _CHUNK), dtype=np.float32)  # per drive: the level, then the gain
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        curve = (rms, rms_pole, link, threshold_db, slope, knee_db, quiet)
        _targets_db(source, start, stop, sos, zi, rows, work, gains, drives, curve, mean_square)
        reduction_db[0], reduction_db[drives - 1] = _smooth_both(
            work[0, :m],
            work[drives - 1, :m],
            (reduction_db[0], reduction_db[drives - 1]),
            (attack, release, attack, release),
        )
        _apply(x, y, start, stop, work, gains, drives, makeup_db, mix)


@njit(**JIT)
def _compress_pair_block(
    x: np.ndarray,
    y: np.ndarray,
    sos: tuple[np.ndarray, np.ndarray],
    zi: tuple[np.ndarray, np.ndarray],
    first_settings: tuple[Any, ...],
    second_settings: tuple[Any, ...],
    mean_square: tuple[np.ndarray, np.ndarray],
    reduction_db: tuple[np.ndarray, np.ndarray],
) -> None:
    """One block of two compressors of one drive each (``Compressor.pairs_with``), keyed by
    their own signals, into ``y``: ``x`` holds the first's channels above the second's. The
    bits of ``_compress_block`` for each, with the two smoothing recursions in one loop,
    where each alone would leave the loop's second slot to a copy of its first. The
    settings are each ``Compressor``'s, in the order ``_compress_block`` takes them."""
    channels, n = x.shape[0] // 2, x.shape[1]
    parts = (x[:channels], x[channels:])
    outputs = (y[:channels], y[channels:])
    attack_1, release_1, makeup_1, mix_1 = first_settings[7:]
    attack_2, release_2, makeup_2, mix_2 = second_settings[7:]
    rows = np.empty((2, _CHUNK))
    work = np.empty((2, _CHUNK))  # per compressor: the target reduction, then smoothed
    gains = np.empty((2, _CHUNK), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        _targets_db(
            parts[0], start, stop, sos[0], zi[0], rows, work[:1], gains[:1], 1,
            first_settings[:7], mean_square[0],
        )  # fmt: skip
        _targets_db(
            parts[1], start, stop, sos[1], zi[1], rows, work[1:], gains[1:], 1,
            second_settings[:7], mean_square[1],
        )  # fmt: skip
        reduction_db[0][0], reduction_db[1][0] = _smooth_both(
            work[0, :m],
            work[1, :m],
            (reduction_db[0][0], reduction_db[1][0]),
            (attack_1, release_1, attack_2, release_2),
        )
        _apply(parts[0], outputs[0], start, stop, work[:1], gains[:1], 1, makeup_1, mix_1)
        _apply(parts[1], outputs[1], start, stop, work[1:], gains[1:], 1, makeup_2, mix_2)


@njit(**JIT)
def _smooth_both(
    first: np.ndarray,
    second: np.ndarray,
    states: tuple[float, float],
    times: tuple[float, float, float, float],
) -> tuple[float, float]:
    """``first`` and ``second`` (target reductions) smoothed in place (``_smooth``) from
    ``states``, each with its attack and release (``times``: the first's, then the
    second's); returns their last states. The two recursions share the loop, so their
    latencies overlap."""
    first_state, second_state = states
    first_attack, first_release, second_attack, second_release = times
    for i in range(first.size):
        first_state = _smooth(first[i], first_state, first_attack, first_release)
        second_state = _smooth(second[i], second_state, second_attack, second_release)
        first[i], second[i] = first_state, second_state
    return first_state, second_state


@njit(**JIT)
def _targets_db(
    source: np.ndarray,
    start: int,
    stop: int,
    sos: np.ndarray,
    zi: np.ndarray,
    rows: np.ndarray,
    work: np.ndarray,
    gains: np.ndarray,
    drives: int,
    curve: tuple[bool, float, float, float, float, float, float],
    mean_square: np.ndarray,
) -> None:
    """The target reduction in dB of samples ``start:stop`` into ``work[d]`` for each drive
    ``d``, ``gains[d]`` its scratch; ``rows`` the detector's. ``curve`` holds the first seven
    of the compressor's settings, in ``_compress_block``'s order.

    Per sample: each detector channel's level (``|s|``, or the root of the one-pole mean
    square, ``scipy.signal.lfilter([1 - p], [1, -p], s^2)`` to the bit), the link blend,
    and the static curve of that level in dB. A slice whose levels all stay under the knee
    (``quiet``, an amplitude) has no reduction to compute: its logs are skipped, which
    halves the curve's cost on typical tracks."""
    rms, rms_pole, link, threshold_db, slope, knee_db, quiet = curve
    m = stop - start
    last = source.shape[0] - 1
    a, b = _detect(source, start, stop, sos, zi, rows)
    if rms:
        first, second = rows[0, :m], rows[1, :m]
        first_state, second_state = mean_square[0], mean_square[last]
        for i in range(m):
            first_state = (1.0 - rms_pole) * (a[i] * a[i]) + rms_pole * first_state
            second_state = (1.0 - rms_pole) * (b[i] * b[i]) + rms_pole * second_state
            first[i], second[i] = first_state, second_state
        mean_square[0], mean_square[last] = first_state, second_state
        for i in range(m):
            first[i], second[i] = math.sqrt(first[i]), math.sqrt(second[i])
        a, b = first, second
    loud = 0  # samples that may reach the knee (a count, so the loop vectorises)
    for i in range(m):
        loud += not (abs(a[i]) < quiet and abs(b[i]) < quiet)
    for d in range(drives):
        own, reduction = a if d == 0 else b, work[d, :m]
        if loud == 0:  # below the knee throughout: no reduction, no log to take
            for i in range(m):  # a loop: a slice assignment compiles 10x slower
                reduction[i] = 0.0
            continue
        # In float32, the level, then in dB. A loop from float64 into float32 and one within
        # float32 each vectorise, where the log and the exp inside a float64 loop did not:
        # 55 instead of 74 ms for 3 minutes of stereo, the same bits.
        level_db = gains[d, :m]
        for i in range(m):
            drive = max(abs(a[i]), abs(b[i]))
            if drives == 2:
                drive = link * drive + (1.0 - link) * abs(own[i])
            level_db[i] = np.float32(min(max(drive, TINY_32), HUGE_32))
        for i in range(m):
            level_db[i] = DB_PER_NEPER_32 * ln_32(level_db[i])
        for i in range(m):
            reduction[i] = _reduction_db(level_db[i], threshold_db, slope, knee_db)


@njit(**JIT)
def _apply(
    x: np.ndarray,
    y: np.ndarray,
    start: int,
    stop: int,
    smoothed: np.ndarray,
    gains: np.ndarray,
    drives: int,
    makeup_db: float,
    mix: float,
) -> None:
    """Samples ``start:stop`` of ``y``: ``x * 10^((makeup - reduction) / 20)`` mixed with
    ``x``, the reduction ``smoothed[d]`` per drive, ``gains`` the gains' scratch (float32)."""
    m = stop - start
    for d in range(drives):
        reduction, gain = smoothed[d, :m], gains[d, :m]
        for i in range(m):
            gain[i] = np.float32((makeup_db - reduction[i]) * (1.0 / DB_PER_NEPER))
        for i in range(m):
            gain[i] = exp_32(gain[i])
    for c in range(x.shape[0]):
        gain, dry, out = gains[min(c, drives - 1), :m], x[c, start:stop], y[c, start:stop]
        for i in range(m):
            wet = dry[i] * gain[i]
            out[i] = wet if mix == 1.0 else (1.0 - mix) * dry[i] + mix * wet


@njit(**JIT)
def _gate_block(
    x: np.ndarray,
    source: np.ndarray,
    sos: np.ndarray,
    zi: np.ndarray,
    y: np.ndarray,
    threshold: float,
    bottom: float,
    exponent: float,
    floor: float,
    attack: float,
    release: float,
    hold: int,
    shut: np.ndarray,
    held: np.ndarray,
) -> None:
    """One block of the gate into ``y``; ``zi``, ``shut`` (1 - gain, smoothed, so an open
    gate reaches exactly 1) and ``held`` (hold samples left) carry its state. The target gain
    is 1 at the threshold and for ``hold`` samples after, ``(level / threshold) ** exponent``
    down to ``bottom``, ``floor`` below it."""
    channels, n = x.shape
    rows = np.empty((2, _CHUNK))  # the detector's two channels, filtered; the louder
    work = np.empty(_CHUNK)  # 1 - the target gain below the threshold, then the gain
    state, left = shut[0], held[0]
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        a, b = _detect(source, start, stop, sos, zi, rows)
        loudest, below = rows[0, :m], work[:m]
        for i in range(m):
            loudest[i] = max(abs(a[i]), abs(b[i]))
        if bottom < threshold:  # an expander: its curve spans bottom to threshold
            for i in range(m):
                curve = exp(exponent * ln(max(loudest[i], TINY) / threshold))
                below[i] = 1.0 - (curve if loudest[i] > bottom else floor)
        else:
            for i in range(m):
                below[i] = 1.0 - floor
        for i in range(m):
            target = below[i]
            if loudest[i] >= threshold:
                target = 0.0
                left = hold
            elif left > 0:
                target = 0.0
                left -= 1
            state = _smooth(target, state, release, attack)
            below[i] = 1.0 - state
        for c in range(channels):
            dry, out = x[c, start:stop], y[c, start:stop]
            for i in range(m):
                out[i] = dry[i] * below[i]
    shut[0], held[0] = state, left
