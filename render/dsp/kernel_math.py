"""Numeric building blocks of the dynamics kernels: vectorisable log and exp, one-pole
coefficients, level checks, and the numba options every kernel compiles with; and the
elementwise exp, expm1, log10 and tanh the renderer uses instead of numpy's.

numpy's float64 ``exp``, ``log10``, ``expm1``, ``power`` and ``tanh`` give different last bits
on different CPUs: numpy picks at run time Intel's SVML code on AVX-512 machines, its own
SIMD code (``tanh``) on AVX2 ones, and the C library elsewhere, and glibc in turn picks FMA
variants. Measured on a million arguments, 1 to 26 % of the results differ by an ulp between
an AVX-512 machine and one without (``NPY_DISABLE_CPU_FEATURES``), enough to move a sample of a
24-bit master by one step. The functions here are built from ``+ - * /`` only, compiled without
fastmath (so without FMA contraction), and give the same bits on every CPU."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from render.jit import njit

JIT = {"nogil": True, "cache": True, "fastmath": False, "error_model": "numpy"}
"""numba options of every kernel: ``error_model="numpy"`` drops the zero-division checks
that would keep a loop with a division from vectorising; no fastmath, so the SIMD and
scalar remainders of a loop round alike and the bytes do not depend on the block split."""


def one_pole(time_ms: float, sample_rate: int, what: str) -> float:
    """The one-pole coefficient ``exp(-1 / (tau * fs))`` of a time constant; 0 ms gives 0."""
    if not time_ms >= 0.0:
        raise ValueError(f"{what}: got {time_ms} ms, expected >= 0 ms")
    return math.exp(-1000.0 / (time_ms * sample_rate)) if time_ms > 0.0 else 0.0


def finite_db(what: str, level_db: float) -> float:
    if not math.isfinite(level_db):
        raise ValueError(f"{what}: got {level_db} dB, expected a finite level in dBFS")
    return level_db


# Natural log and exp that LLVM vectorises (libm's are opaque calls: 17 ns a sample for the
# two, against 2 ns here), each within 1 ulp of the truth. The log is fdlibm's e_log.c (Sun,
# 1993; musl's log until 2018): mantissa reduced to [sqrt(1/2), sqrt(2)), log(1 + f) = 2s +
# s R(s^2) with s = f / (2 + f) and R its 7-term minimax. The exp is Cody & Waite's ("Software
# Manual for the Elementary Functions", 1980, ch. 6): y = k ln2 + r with ln2 in two parts,
# |r| <= ln2 / 2, e^r to degree 13 (Taylor: the remainder r^14 / 14! is under 4e-18), 2^k
# added to the exponent bits.
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SQRT_HALF_BITS = np.int64(0x3FE6A09E667F3BCD)
_MANTISSA = np.int64(0x000FFFFFFFFFFFFF)
_LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)
_INVERSE_FACTORIALS = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))
_ROUNDER = 1.5 * 2.0**52  # adding and subtracting it rounds to the nearest integer
TINY = np.finfo(np.float64).tiny  # -6153 dBFS: quieter amplitudes are read as this one
DB_PER_NEPER = 20.0 / math.log(10.0)
_INVERSE_LN2 = 1.0 / math.log(2.0)


@njit(**JIT)
def ln(x: float) -> float:
    """Natural log of a normal ``x`` > 0 (callers clamp at ``_TINY``)."""
    bits = np.float64(x).view(np.int64) - _SQRT_HALF_BITS
    k = np.float64(bits >> 52)
    f = np.int64((bits & _MANTISSA) + _SQRT_HALF_BITS).view(np.float64) - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    r += w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    half_square = 0.5 * f * f
    return s * (half_square + r) + k * _LN2_LO - half_square + f + k * _LN2_HI


@njit(**JIT)
def exp(y: float) -> float:
    """``e^y``, ``y`` clamped to [-708, 709] (the normal range: 2^k is built from bits)."""
    y = min(max(y, -708.0), 709.0)
    k = (y * _INVERSE_LN2 + _ROUNDER) - _ROUNDER
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = 0.0
    for coefficient in _INVERSE_FACTORIALS:
        p = p * r + coefficient
    return np.int64(np.float64(p).view(np.int64) + (np.int64(k) << 52)).view(np.float64)


# Single-precision twins for per-sample gains, where 24 bits of mantissa are plenty (a
# relative error under 4e-7, -128 dB) and twice the SIMD lanes make them 3-4x faster. The
# log is fdlibm's e_logf.c (its 4-term minimax, float constants); the exp is Cody & Waite's
# again, to degree 7 (remainder (ln2/2)^8 / 8! < 6e-9). Every constant is a float32, so no
# step is widened to float64 behind the code's back.
_F32 = np.float32
_LN2_HI_32, _LN2_LO_32 = _F32(6.9313812256e-01), _F32(9.0580006145e-06)
_SQRT_HALF_BITS_32 = np.int32(0x3F3504F3)
_MANTISSA_32 = np.int32(0x007FFFFF)
_LG_32 = (
    _F32(6.6666662693e-01),
    _F32(4.0000972152e-01),
    _F32(2.8498786688e-01),
    _F32(2.4279078841e-01),
)
_INVERSE_FACTORIALS_32 = tuple(_F32(1.0 / math.factorial(k)) for k in range(7, -1, -1))
_ROUNDER_32 = _F32(1.5 * 2.0**23)
_INVERSE_LN2_32 = _F32(1.0 / math.log(2.0))
TINY_32 = _F32(np.finfo(np.float32).tiny)  # -759 dBFS
DB_PER_NEPER_32 = _F32(20.0 / math.log(10.0))
HUGE_32 = _F32(1e38)


@njit(**JIT)
def ln_32(x: np.float32) -> np.float32:
    """Natural log of a normal float32 ``x`` > 0 (callers clamp to ``TINY_32 .. HUGE_32``)."""
    bits = np.float32(x).view(np.int32) - _SQRT_HALF_BITS_32
    k = np.float32(bits >> 23)
    f = np.int32((bits & _MANTISSA_32) + _SQRT_HALF_BITS_32).view(np.float32) - _F32(1.0)
    s = f / (_F32(2.0) + f)
    z = s * s
    w = z * z
    r = z * (_LG_32[0] + w * _LG_32[2]) + w * (_LG_32[1] + w * _LG_32[3])
    half_square = _F32(0.5) * f * f
    return k * _LN2_HI_32 - ((half_square - (s * (half_square + r) + k * _LN2_LO_32)) - f)


@njit(**JIT)
def exp_32(y: np.float32) -> np.float32:
    """``e^y`` in float32, ``y`` clamped to [-86, 88] (where 2^k stays a normal exponent)."""
    y = min(max(y, _F32(-86.0)), _F32(88.0))
    k = (y * _INVERSE_LN2_32 + _ROUNDER_32) - _ROUNDER_32
    r = (y - k * _LN2_HI_32) - k * _LN2_LO_32
    p = _F32(0.0)
    for coefficient in _INVERSE_FACTORIALS_32:
        p = p * r + coefficient
    return np.int32(np.float32(p).view(np.int32) + (np.int32(k) << 23)).view(np.float32)


_LOG10_E = 1.0 / math.log(10.0)
_EXPM1_SERIES_LIMIT = 0.5 * math.log(2.0)
_EXPM1_INVERSE_FACTORIALS = tuple(1.0 / math.factorial(k) for k in range(14, 0, -1))
_TANH_SATURATED = 19.1
"""tanh is 1.0 in float64 from atanh(1 - 2^-54) = 19.06 on."""


@njit(**JIT)
def expm1(y: float) -> float:
    """``e^y - 1``, ``y`` clamped as in ``exp``, within a few ulp also near 0: below
    ``ln(2) / 2`` the Taylor series to degree 14 (remainder under ``2e-17`` relative),
    elsewhere ``exp(y) - 1``, which loses less than 2 bits there. Both are evaluated and
    one is selected, so a loop over an array stays branch-free and vectorises."""
    small = min(max(y, -_EXPM1_SERIES_LIMIT), _EXPM1_SERIES_LIMIT)
    p = 0.0
    for coefficient in _EXPM1_INVERSE_FACTORIALS:
        p = (p + coefficient) * small
    large = exp(y) - 1.0
    return p if abs(y) < _EXPM1_SERIES_LIMIT else large


def exp_each(y: ArrayLike) -> Any:
    """``e^y`` of each element (``exp``; ``y`` clamped to [-708, 709])."""
    return _each(_EXP, y)


def expm1_each(y: ArrayLike) -> Any:
    """``e^y - 1`` of each element (``expm1``)."""
    return _each(_EXPM1, y)


def log10_each(x: ArrayLike) -> Any:
    """``log10(x)`` of each element: ``-inf`` at 0, NaN below; subnormals read as ``TINY``."""
    return _each(_LOG10, x)


def tanh_each(u: ArrayLike) -> Any:
    """``tanh(u)`` of each element (``tanh``)."""
    return _each(_TANH, u)


_EXP, _EXPM1, _LOG10, _TANH = range(4)


def _each(kind: int, x: ArrayLike) -> Any:
    """The scalar kernel ``kind`` names of each element of ``x`` (``elementwise``)."""
    return elementwise(lambda flat, out: _each_into(kind, flat, out), x)


def elementwise(into: Callable[[np.ndarray, np.ndarray], None], x: ArrayLike) -> Any:
    """``into(flat, out)``, a loop kernel writing a scalar function of each element of
    ``flat`` into ``out`` (both 1-D float64), applied to ``x`` as a ufunc would be: an array
    of ``x``'s shape, or a scalar for a scalar. A loop kernel, not a numba ufunc: building a
    ufunc on its first call took 0.04-0.05 s even from numba's cache, where loading a cached
    kernel takes 0.005 s, and the renders paid it for each function on the way in."""
    array = np.asarray(x, dtype=np.float64)
    out = np.empty(array.shape)
    into(np.ascontiguousarray(array).reshape(-1), out.reshape(-1))
    return out if out.ndim else out[()]


@njit(**JIT)
def _each_into(kind: int, x: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = the scalar kernel ``kind`` of ``x[i]``: one loop per kernel, picked
    outside it, so that each vectorises."""
    if kind == _EXP:
        for i in range(x.size):
            out[i] = exp(x[i])
    elif kind == _EXPM1:
        for i in range(x.size):
            out[i] = expm1(x[i])
    elif kind == _LOG10:
        for i in range(x.size):
            out[i] = _log10(x[i])
    else:
        for i in range(x.size):
            out[i] = tanh(x[i])


@njit(**JIT)
def _log10(x: float) -> float:
    """``log10(x)``: ``-inf`` at 0, NaN below; subnormals read as ``TINY``."""
    if not x > 0.0:
        return -np.inf if x == 0.0 else np.nan
    if x == np.inf:
        return np.inf
    return ln(max(x, TINY)) * _LOG10_E


@njit(**JIT)
def tanh(u: float) -> float:
    """``tanh(u)`` as ``e / (e + 2)`` with ``e = expm1(2 |u|)``: no cancellation near 0,
    where tanh(u) ~ u."""
    e = expm1(2.0 * min(abs(u), _TANH_SATURATED))
    t = e / (e + 2.0)
    return t if u >= 0.0 else -t


def sum_of_squares(x: np.ndarray) -> float:
    """``sum(x ** 2)`` over every element, without BLAS: ``np.dot`` and ``np.vdot`` hand this
    to OpenBLAS, whose kernel (picked for the CPU) and thread count (it splits vectors over
    10,000 elements across threads) change the order of the additions and so the last bits.
    ``einsum`` adds in the same order on every machine and needs no temporary array."""
    flat = np.ascontiguousarray(x).reshape(-1)
    return float(np.einsum("i,i->", flat, flat))
