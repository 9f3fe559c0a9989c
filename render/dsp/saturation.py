"""Waveshaping saturation: drive into a memoryless curve, oversampled so it does not alias.

Level: ``drive_db`` is input gain into a curve whose slope at 0 is 1 and whose output never
passes full scale, as on an analogue gain stage or pedalboard's ``Distortion`` (tanh after
``drive_db``). So quiet material comes out ``drive_db + output_db`` louder and loud material
is held under 0 dBFS; ``output_db`` is the trim that compensates. No automatic ``1/drive``
compensation: it would turn loud passages down by up to the drive (a tanh driven by 12 dB and
divided by 4 peaks at -12 dBFS). ``output_db`` scales the saturated path, before the dry/wet
blend, so a parallel blend stays balanced and ``mix = 0`` returns the input untouched.

Aliasing: the curve makes harmonics above Nyquist, which a plain sampled shaper folds back
as inharmonic tones. The curve runs at ``oversample`` times the rate between two zero-phase
polyphase resamplers (``scipy.signal.resample_poly``'s, fused with the curve into one numba
pass over each block: 2-3x faster than the two calls), so those harmonics are filtered off
instead and nothing is delayed: at ``oversample`` k, a harmonic lands in the audio band only
from above ``(2k - 1)`` times Nyquist (7 x 24 kHz at 4x from 48 kHz). The resampling filter is
an equiripple FIR (Parks & McClellan, IEEE Trans. Circuit Theory 19(2), 1972): passband to
``PASSBAND_EDGE`` of the output Nyquist frequency, stopband from Nyquist itself (where
folding starts), ``20 * k + 1`` taps (Bellanger's estimate, "Digital Processing of Signals",
``N = 2/3 log10(1 / (10 d1 d2)) fs / df``, for 0.2 dB ripple and 60 dB over a quarter-Nyquist
transition) with the stopband weighted 30 to 1, which gives at least ``ALIAS_REJECTION_DB``.
Equiripple needs two thirds of the taps of a Kaiser window for the same specification, and
the taps are the cost: resampling is nearly all the time spent.

Only the curve's departure from a straight line, ``curve(u) - u`` (the harmonics and the gain
reduction), is resampled; the linear part ``u`` is added back at the input rate, so the
filters' ripple and roll-off cannot colour the signal itself: a quiet signal comes out as
``drive_db + output_db`` of gain at every frequency, up to the curve's own cubic term.

Peaks: the curve never exceeds full scale, but band-limiting its harmonics can: a high tone
clipped towards a square keeps only its fundamental, whose peak is up to 4/pi (+2.1 dB) of
the clipped wave's. With ``oversample = 1`` the output stays within full scale.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from render.dsp.kernel_math import JIT, elementwise, tanh, tanh_each
from render.dsp.levels import db_to_gain
from render.jit import njit

Curve = Literal["tanh", "soft_clip"]
ALIAS_REJECTION_DB = 60.0
"""Stopband attenuation: folded harmonics end 60 dB under the harmonics that made them, and
those are already below the fundamental, so aliases sit near a 16-bit noise floor."""
PASSBAND_EDGE = 0.75
"""Fraction of Nyquist up to which harmonics pass (18 kHz at 48 kHz); harmonics above it,
barely audible, fade out over the transition band, which keeps the filter short."""
CHUNK_SAMPLES = 1 << 15
"""Input samples per oversampled block (1 MiB per channel at 4x): the oversampled signal never
exists at full length (550 MB for 3 minutes of stereo at 48 kHz), which also made it faster."""
_STOPBAND_WEIGHT = 30.0
_TAPS_PER_FACTOR = 20


def saturate(
    x: np.ndarray,
    *,
    drive_db: float,
    curve: Curve,
    mix: float = 1.0,
    output_db: float = 0.0,
    oversample: int = 4,
    resampler: np.ndarray | None = None,
) -> np.ndarray:
    """Saturate ``x``: ``(1 - mix) * x + mix * output * curve(drive * x)``.

    Parameters
    ----------
    x : float64[channels, samples]
        The signal.
    drive_db : float
        Gain into the curve, dB; more drive, more harmonics.
    curve : {"tanh", "soft_clip"}
        ``tanh``: ``tanh(u)``, a gradual onset. ``soft_clip``: the cubic soft clipper
        ``f(v) = v - v**3 / 3`` clamped at ``|v| = 1`` (J. O. Smith, "Physical Audio Signal
        Processing", "Soft Clipping"), scaled by 3/2 on both axes, i.e.
        ``u - 4 * u**3 / 27`` for ``|u| <= 3/2`` and ``sign(u)`` beyond: slope 1 at 0 and a
        ceiling of 1 like tanh, so the two are interchangeable at equal drive, but the cubic
        stays straighter at low level and bends harder near full scale.
    mix : float
        Share of the saturated signal, 0..1 (default 1; lower for parallel saturation).
    output_db : float
        Gain of the saturated path after the curve, dB (default 0); the drive compensation.
    oversample : int
        Rate factor for the curve (default 4: harmonics up to 7 times Nyquist, 168 kHz at
        48 kHz, are filtered instead of folded, which covers the strong low-order harmonics
        of the whole audio band at moderate drive); 1 runs it at the input rate.
    resampler : float64[taps], optional
        ``resampling_filter(oversample)``, designed here when not given (the engine passes
        the taps it keeps between runs: ``render.designs``).

    Returns
    -------
    float64[channels, samples]
        A new array shaped like ``x``, with no latency.
    """
    if curve not in ("tanh", "soft_clip"):
        raise ValueError(f"saturation curve: got {curve!r}, expected 'tanh' or 'soft_clip'")
    if oversample < 1:
        raise ValueError(f"saturation oversample: got {oversample}, expected an integer >= 1")
    if mix == 0.0:
        return x.copy()
    driven = db_to_gain(drive_db) * x
    if oversample == 1:
        shaped = _shape(driven, curve)
    else:
        if resampler is None:
            resampler = resampling_filter(oversample)
        shaped = driven + _oversampled_departure(driven, curve, oversample, resampler)
    return (1.0 - mix) * x + (mix * db_to_gain(output_db)) * shaped


def _shape(u: np.ndarray, curve: Curve) -> np.ndarray:
    """The memoryless curve, slope 1 at 0 and bounded by 1."""
    return tanh_each(u) if curve == "tanh" else _soft_clip_each(u)


@njit(**JIT)
def _soft_clip(v: float) -> float:
    """The cubic soft clip ``v - 4 v^3 / 27`` of ``v`` clamped to +-1.5 (1 there, slope 0)."""
    clamped = min(max(v, -1.5), 1.5)
    return clamped - (4.0 / 27.0) * (clamped * clamped * clamped)


def _soft_clip_each(v: np.ndarray) -> np.ndarray:
    """``_soft_clip`` of each element."""
    return elementwise(_soft_clip_into, v)  # type: ignore[no-any-return]


@njit(**JIT)
def _soft_clip_into(v: np.ndarray, out: np.ndarray) -> None:
    for i in range(v.size):
        out[i] = _soft_clip(v[i])


def _oversampled_departure(u: np.ndarray, curve: Curve, factor: int, h: np.ndarray) -> np.ndarray:
    """``curve(u) - u`` computed at ``factor`` times the rate, back at the input rate, with
    the resampling filter ``h``.

    Blocks of ``CHUNK_SAMPLES`` carry ``reach`` samples of context either side (the span of
    the up- and the down-sampling filter), so each block equals the same stretch of a whole
    signal that is silent outside ``u``.
    """
    reach = 2 * ((len(h) // 2) // factor + 1)
    n = u.shape[-1]
    padded = np.pad(u, ((0, 0), (reach, reach)))
    out = np.zeros_like(u)
    for start in range(0, n, CHUNK_SAMPLES):
        stop = min(start + CHUNK_SAMPLES, n)
        for row in range(u.shape[0]):
            _departure_block(
                padded[row, start : stop + 2 * reach],
                h,
                factor,
                curve == "soft_clip",
                reach,
                out[row, start:stop],
            )
    return out


@njit(**JIT)
def _departure_block(
    segment: np.ndarray,
    h: np.ndarray,
    factor: int,
    soft_clip: bool,
    reach: int,
    out: np.ndarray,
) -> None:
    """Add to ``out`` the departure of ``segment[reach : reach + out.size]``, as
    ``resample_poly(curve(v) - v, 1, factor, window=h)`` of ``v = resample_poly(segment,
    factor, 1, window=h)`` (zero outside the segment), in one pass.

    Polyphase (R. E. Crochiere and L. R. Rabiner, "Multirate Digital Signal Processing",
    1983, ch. 3): with ``half = (len(h) - 1) / 2``, phase ``p`` of the fast signal is
    ``v[F m + p] = F sum_k h[p + half + F k] x[m - k]`` and the output is ``y[n] = sum_p
    sum_k h[F k + half - p] d_p[n - k]``, ``d_p`` the phase's departure; only the taps
    that exist are summed. Each loop runs over samples for one tap at a time, the taps
    always in the same order, so it vectorises and every sample's sum is added in the same
    order on every CPU.
    """
    length = segment.size
    half = (h.size - 1) // 2
    taps = half // factor + 1
    phases = np.empty((factor, length))  # np.empty and a loop: np.zeros compiles slowly
    for p in range(factor):
        fast = phases[p]
        for m in range(length):
            fast[m] = 0.0
        for k in range(-taps, taps + 1):
            j = p + half + factor * k
            if 0 <= j < h.size:
                c = h[j] * factor
                lo, hi = max(0, k), min(length, length + k)
                into, source = fast[lo:hi], segment[lo - k : hi - k]
                for m in range(hi - lo):
                    into[m] += c * source[m]
        for m in range(length):
            v = fast[m]
            fast[m] = (_soft_clip(v) if soft_clip else tanh(v)) - v
    for p in range(factor):
        departure = phases[p]
        for k in range(-taps, taps + 1):
            j = factor * k + half - p
            if 0 <= j < h.size:
                c = h[j]
                source = departure[reach - k : reach - k + out.size]
                for n in range(out.size):
                    out[n] += c * source[n]


def resampler_design(factor: int) -> dict[str, Any]:
    """The arguments of ``scipy.signal.remez`` that design the resampling filter for
    ``factor`` (all that decides its taps, with scipy's version)."""
    return {
        "numtaps": _TAPS_PER_FACTOR * factor + 1,
        "bands": [0.0, PASSBAND_EDGE, 1.0, float(factor)],
        "desired": [1.0, 0.0],
        "weight": [1.0, _STOPBAND_WEIGHT],
        "fs": 2.0 * factor,
    }


def resampling_filter(factor: int) -> np.ndarray:
    """The low-pass both resamplers share, at ``factor`` times the rate (odd length, so zero
    phase is a whole-sample shift); frequencies in units of the output Nyquist."""
    from scipy import signal  # on use: see the package docstring

    return np.asarray(signal.remez(**resampler_design(factor)), dtype=np.float64)
