"""True-peak detection: the largest of each sample and the values 4x interpolation puts after it.

ITU-R BS.1770-4 Annex 2 estimates the true (inter-sample) peak by 4x oversampling; the
interpolator here is ``scipy.signal.resample_poly(x, 4, 1)``'s own, so the detector agrees with
the resampler to rounding, but runs in one numba pass (``resample_poly`` itself takes 1.4 s on
3 minutes of stereo, this 0.13 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache

import numpy as np

from render.jit import njit

_BLOCK = 1024
"""Samples per block in the kernel: its buffers stay in the L1 cache."""


def true_peaks(x: np.ndarray) -> np.ndarray:
    """``float64[samples]``: per sample ``n``, the largest of ``|x_c[n]|`` and the three values
    4x interpolation puts after it, over every channel ``c`` of ``x`` (``float64[channels,
    samples]``); zeros outside ``x``, as ``resample_poly``."""
    return _true_peaks(np.ascontiguousarray(x, dtype=np.float64), *_interpolator())


def max_true_peak(x: np.ndarray) -> float:
    """``true_peaks(x).max()``, 0.0 without samples: one kernel call, no per-sample array.
    The meter reads each channel's true peak with it: a call per piece (136 for 3 minutes)
    had to win the GIL back each time, and beside the import of the plotting library the
    metering then took twice as long."""
    return _max_true_peak(np.ascontiguousarray(x, dtype=np.float64), *_interpolator())


def true_peak_chunks(row: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``true_peaks(row)`` (``[channels, samples]``: of one channel, or the largest over
    several) in consecutive pieces ``(start, peaks)``: each chunk is interpolated with
    ``CHUNK_CONTEXT`` neighbours either side, so the values are those of one call on the
    whole row, without its ``float64[samples]`` temporary (whose page faults cost more than
    the interpolation: 0.16 s against 0.10 s for 180 s of stereo)."""
    n = row.shape[1]
    for start in range(0, n, CHUNK_SAMPLES):
        stop = min(start + CHUNK_SAMPLES, n)
        lo, hi = max(start - CHUNK_CONTEXT, 0), min(stop + CHUNK_CONTEXT, n)
        yield start, true_peaks(row[:, lo:hi])[start - lo : stop - lo]


CHUNK_SAMPLES = 1 << 16
"""Samples per piece of ``true_peak_chunks``: 512 kB, cache-friendly."""
CHUNK_CONTEXT = 32
"""Neighbours interpolated into each piece: more than the interpolator's reach (10 samples
either side), so a piece's values equal the whole row's."""


@cache
def _interpolator() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``resample_poly(x, 4, 1)``'s fractional phases, folded by their symmetry.

    Its filter is ``h = 4 firwin(81, 1/4, window=("kaiser", 5.0))`` (``_kaiser_lowpass``),
    ``u[4n + p] = sum_j x[j] h[4(n - j) + p + 40]``: for p = 1..3 the taps on ``x[n + d]``,
    d = -9..10, are ``h[40 + p - 4d]`` (phase 0 is the sample). ``h`` is linear phase: phase
    3 is phase 1 reversed and phase 2 symmetric, so with ``s_k, t_k = x_k +- x_{19-k}``
    (k < 10), ``u1, u3 = E +- O`` (``E = sum even_k s_k``, ``O = sum odd_k t_k``) and
    ``u2 = sum middle_k s_k``: half the products.
    """
    up, half = 4, 40  # 4x: ITU-R BS.1770-4 Annex 2; half length 10 * up: resample_poly's
    h = _kaiser_lowpass(half, 1.0 / up, beta=5.0) * up
    offsets = np.arange(1 - half // up, half // up + 1)
    first, middle = (h[half + p - up * offsets] for p in (1, 2))
    pairs = offsets.size // 2
    even = (first[:pairs] + first[::-1][:pairs]) / 2.0
    odd = (first[:pairs] - first[::-1][:pairs]) / 2.0
    return even, odd, np.ascontiguousarray(middle[:pairs]), int(-offsets[0])


@njit(nogil=True, cache=True)
def _true_peaks(
    x: np.ndarray, even: np.ndarray, odd: np.ndarray, middle: np.ndarray, past: int
) -> np.ndarray:
    """``max_c max(|x_c[n]|, |u_c[4n + 1]|, |u_c[4n + 2]|, |u_c[4n + 3]|)`` per sample, with
    the folded phases of ``_interpolator`` (zeros outside ``x``, as ``resample_poly``)."""
    n = x.shape[1]
    peak = np.empty(n)
    local, acc = _scratch(even.size)
    for start in range(0, n, _BLOCK):
        _block_peaks(x, start, even, odd, middle, past, local, acc, peak[start : start + _BLOCK])
    return peak


@njit(nogil=True, cache=True)
def _max_true_peak(
    x: np.ndarray, even: np.ndarray, odd: np.ndarray, middle: np.ndarray, past: int
) -> float:
    """``_true_peaks(x).max()`` (0 without samples) in one pass that keeps no per-sample
    array, so a caller holds the GIL once for the whole signal."""
    n = x.shape[1]
    block = np.empty(_BLOCK)
    local, acc = _scratch(even.size)
    best = 0.0
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        _block_peaks(x, start, even, odd, middle, past, local, acc, block[:m])
        best = max(best, block[:m].max())
    return best


@njit(nogil=True, cache=True)
def _scratch(pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """A block's samples with the interpolator's reach either side, and its three phases."""
    return np.empty(_BLOCK + 2 * pairs - 1), np.empty((3, _BLOCK))


@njit(nogil=True, cache=True)
def _block_peaks(
    x: np.ndarray,
    start: int,
    even: np.ndarray,
    odd: np.ndarray,
    middle: np.ndarray,
    past: int,
    local: np.ndarray,
    acc: np.ndarray,
    out: np.ndarray,
) -> None:
    """The true peaks of samples ``start:start + out.size`` of ``x`` over its channels, into
    ``out``. Buffers are filled by loops, not slice assignments: numba compiles those through
    its generic broadcasting code, which took 2.4 of the 3.5 s this kernel took to compile on
    a first render."""
    channels, n = x.shape
    m = out.size
    pairs = even.size
    taps = 2 * pairs
    lo = start - past
    for c in range(channels):
        for j in range(m + taps - 1):
            local[j] = x[c, lo + j] if 0 <= lo + j < n else 0.0
        for i in range(m):
            out[i] = abs(local[past + i]) if c == 0 else max(out[i], abs(local[past + i]))
        e, o, h = acc[0, :m], acc[1, :m], acc[2, :m]
        for i in range(m):
            e[i] = o[i] = h[i] = 0.0
        for k in range(pairs):
            a, b = local[k : k + m], local[taps - 1 - k : taps - 1 - k + m]
            for i in range(m):
                s = a[i] + b[i]
                e[i] += even[k] * s
                o[i] += odd[k] * (a[i] - b[i])
                h[i] += middle[k] * s
        for i in range(m):
            out[i] = max(out[i], abs(e[i] + o[i]), abs(e[i] - o[i]), abs(h[i]))


def _kaiser_lowpass(half: int, cutoff: float, beta: float) -> np.ndarray:
    """``scipy.signal.firwin(2 half + 1, cutoff, window=("kaiser", beta))`` (``cutoff`` a
    fraction of Nyquist): the windowed ideal low-pass ``cutoff sinc(cutoff m)``, ``m = -half
    .. half``, scaled to unit gain at DC. Designed here with Python's floats (the Kaiser
    window's I0 by its power series, Abramowitz & Stegun 9.6.12), since importing
    ``scipy.signal`` takes 0.6 s of a render's start; it agrees with ``firwin`` to rounding."""
    taps = []
    for m in range(-half, half + 1):
        ideal = cutoff if m == 0 else math.sin(math.pi * cutoff * m) / (math.pi * m)
        window = _bessel_i0(beta * math.sqrt(1.0 - (m / half) ** 2)) / _bessel_i0(beta)
        taps.append(ideal * window)
    h = np.array(taps)
    return h / math.fsum(taps)


def _bessel_i0(x: float) -> float:
    """The modified Bessel function I0 by its series ``sum ((x/2)^k / k!)^2``, summed until a
    term no longer changes the double (|x| <= 5 here: 25 terms)."""
    total, term, k = 1.0, 1.0, 0
    while total + term != total:
        k += 1
        term *= (x / (2.0 * k)) ** 2
        total += term
    return total
