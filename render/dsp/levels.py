"""Gain, pan and fades: the channel strip's static level math.

Pan laws: a mono source is placed with the constant-power sine/cosine law, so its power is
the same at every position and the centre is -3.01 dB per side (the common console law;
see e.g. Bartlett & Bartlett, "Practical Recording Techniques", on pan-pot laws). A stereo
source is balanced: the centre leaves both sides at unity, and turning towards one side
attenuates the other along the same sine/cosine curve, scaled so the near side stays at unity.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from render.dsp.kernel_math import DB_PER_NEPER, JIT, exp_each, expm1, expm1_each
from render.jit import njit

FadeCurve = Literal["linear", "equal_power", "exponential", "s_curve"]
_EXPONENTIAL_RANGE = math.log(1000.0)
"""The exponential fade spans 60 dB (a factor of 1000) before it is pinned to silence."""


def db_to_gain(level_db: float) -> float:
    """Decibels to a linear amplitude factor (``-inf`` dB is silence): the one conversion."""
    return 0.0 if level_db == -math.inf else 10.0 ** (level_db / 20.0)


def db_to_gain_each(level_db: np.ndarray) -> np.ndarray:
    """``db_to_gain`` of each element (a gain lane), with the same bits on every CPU
    (``kernel_math.exp_each``; ``-120 dB`` and above, the range of automation)."""
    return exp_each(np.asarray(level_db, dtype=np.float64) / DB_PER_NEPER)


def gain_to_db(gain: float) -> float:
    """A linear amplitude factor to decibels (silence is ``-inf``)."""
    return -math.inf if gain <= 0.0 else 20.0 * math.log10(gain)


def pan_gains(pan: float | np.ndarray, channels: int) -> tuple[Any, Any]:
    """Left and right gains for ``pan`` in [-1, 1] (-1 hard left; a number, or an array for
    automated pan) applied to a source of ``channels`` (1: constant-power pan; 2: balance)."""
    angle = (np.asarray(pan, dtype=np.float64) + 1.0) * (math.pi / 4.0)
    # cos(pi/2) is 6e-17, not 0: snap it, so that hard right is exactly silent on the left.
    left, right = (np.where(np.abs(g) < 1e-15, 0.0, g) for g in (np.cos(angle), np.sin(angle)))
    if channels == 2:
        left, right = (
            np.minimum(1.0, math.sqrt(2.0) * left),
            np.minimum(1.0, math.sqrt(2.0) * right),
        )
    return left, right


def pan_and_fade(
    x: np.ndarray, left: float, right: float, fader: float, pre: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """``x`` (``[1 or 2, n]``) panned by the gains ``left`` and ``right``, and that times
    ``fader``: ``(panned if pre else None, faded)``, both ``[2, n]``, in one pass (numpy's
    three took twice as long). The products are numpy's, to the bit."""
    source = np.ascontiguousarray(x, dtype=np.float64)
    faded = np.empty((2, source.shape[1]))
    panned = np.empty((2, source.shape[1])) if pre else np.empty((0, 0))
    _pan_and_fade(source, float(left), float(right), float(fader), panned, faded)
    return (panned if pre else None), faded


@njit(**JIT)
def _pan_and_fade(
    x: np.ndarray, left: float, right: float, fader: float, panned: np.ndarray, out: np.ndarray
) -> None:
    last = x.shape[0] - 1
    for channel in range(2):
        row = x[0] if channel == 0 else x[last]
        gain = left if channel == 0 else right
        into = out[channel]
        if panned.shape[0]:
            before = panned[channel]
            for i in range(row.size):
                before[i] = row[i] * gain
                into[i] = before[i] * fader
        else:
            for i in range(row.size):
                into[i] = row[i] * gain * fader


def fade_in_gains(n: int, curve: FadeCurve) -> np.ndarray:
    """Gain of each of the ``n`` samples of a fade-in, rising from exactly 0 towards 1.

    Sample ``k`` sits at ``t = k / n``; the first sample after the fade has gain 1. A fade-out
    is the same ramp reversed, so its last sample is 0.
    """
    t = np.arange(n, dtype=np.float64) / n
    if curve == "linear":
        return t
    if curve == "equal_power":
        return np.sin(t * (math.pi / 2.0))
    if curve == "s_curve":
        return 0.5 - 0.5 * np.cos(t * math.pi)
    return expm1_each(_EXPONENTIAL_RANGE * t) / expm1(_EXPONENTIAL_RANGE)


def crossfade_gains(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fade-out and fade-in gains of an ``n``-sample equal-power crossfade: cos and sin
    of the same phase, so their squares sum to 1 at every sample and the summed power of
    two uncorrelated signals stays constant through the fade. Sample ``k`` sits at
    ``t = (k + 1/2) / n``, symmetric about the middle, where both gains are sqrt(1/2)."""
    phase = (np.arange(n, dtype=np.float64) + 0.5) * (math.pi / 2.0 / n)
    return np.cos(phase), np.sin(phase)


SUM_STEP = 2.0**-40
"""The grid every input of a bus is rounded to before it is added (-241 dBFS)."""
_GRID = 1.5 * 2.0**12  # adding and subtracting it rounds |v| < 2^11 to multiples of 2^-40


@njit(**JIT)
def _accumulate(
    first: np.ndarray,
    second: np.ndarray,
    third: np.ndarray,
    count: int,
    values: np.ndarray,
    pan: float,
    fader: float,
    gains: np.ndarray,
) -> None:
    """The first ``count`` (1 to 3) of ``first``, ``second`` and ``third`` each +=
    ``(values * pan) * fader`` times its gain, rounded to the grid; one loop per count, so
    that each vectorises."""
    a, b, c = gains[0], gains[1], gains[2]
    if count == 1:
        for i in range(values.size):
            first[i] += (values[i] * pan * fader * a + _GRID) - _GRID
    elif count == 2:
        for i in range(values.size):
            v = values[i] * pan * fader
            first[i] += (v * a + _GRID) - _GRID
            second[i] += (v * b + _GRID) - _GRID
    else:
        for i in range(values.size):
            v = values[i] * pan * fader
            first[i] += (v * a + _GRID) - _GRID
            second[i] += (v * b + _GRID) - _GRID
            third[i] += (v * c + _GRID) - _GRID


def accumulate(destination: np.ndarray, source: np.ndarray, gain: float) -> None:
    """``destination += source * gain`` in one pass, without a temporary array and without
    holding the GIL: how every strip is summed into a bus (``[channels, n]`` both).

    Each product is first rounded to a multiple of ``SUM_STEP`` (``v + 1.5 * 2^12`` is
    rounded to that grid by the adder for ``|v| < 2^11``, and taking ``1.5 * 2^12`` off again
    is exact). Sums of such multiples are exact in float64 while below 2^13 in magnitude
    (+78 dBFS), so a bus's sum is the same bits in any order of its inputs, and one input
    can be taken out of it again exactly (added with ``-gain``). The rounding moves a sample
    by at most 2^-41 of full scale, 108 dB below the step of a 24-bit file."""
    accumulate_into([destination], source, [gain])


def accumulate_into(
    destinations: Sequence[np.ndarray],
    source: np.ndarray,
    gains: Sequence[float],
    pan: tuple[float, float] = (1.0, 1.0),
    fader: float = 1.0,
) -> None:
    """``accumulate`` of ``source`` into each destination (``[channels, n]``) with its gain,
    reading ``source`` once for up to three of them: a track's block feeds its bus and two
    sends, and a worker on the other core made it, so every reading of it came from that
    core's cache. With ``pan`` (the left and right gains) and ``fader``, what is summed is
    ``source`` panned and faded first, ``(x * pan) * fader`` as ``pan_and_fade`` makes it
    (a mono source feeds both sides): the same bits, without writing the faded block and
    reading it back. A factor of 1.0 changes no bit.

    The kernel sums one row at a time: a row of a block cut from a whole-song buffer is
    contiguous, and numba vectorises the loop only for an array it knows to be (a 2-D slice
    is typed as strided): 50 against 70 us per 65536-sample stereo block."""
    source = np.ascontiguousarray(source)
    for channel, rows, count, (factors,) in _rows(destinations, [gains]):
        row = source[min(channel, source.shape[0] - 1)]
        _accumulate(*rows, count, row, float(pan[channel]), float(fader), factors)


def accumulate_pair_into(
    destinations: Sequence[np.ndarray],
    sources: tuple[np.ndarray, np.ndarray],
    gains: tuple[Sequence[float], Sequence[float]],
    pans: tuple[tuple[float, float], tuple[float, float]],
    faders: tuple[float, float],
) -> None:
    """``accumulate_into`` of two sources, each with its gains, pan and fader, into the same
    destinations in one pass: the first source's term added, then the second's, the bits
    of two ``accumulate_into`` calls (which, the sums being exact, is any order of them),
    each destination read and written once instead of twice. Two paired tracks feed the
    same buses, and a bus block is a megabyte the caches do not hold for long."""
    contiguous = [np.ascontiguousarray(source) for source in sources]
    for channel, rows, count, factors in _rows(destinations, gains):
        values = [source[min(channel, source.shape[0] - 1)] for source in contiguous]
        levels = (float(pans[0][channel]), float(pans[1][channel]), *map(float, faders))
        _accumulate_pair(*rows, count, *values, *levels, *factors)


def _rows(
    destinations: Sequence[np.ndarray], gains: Sequence[Sequence[float]]
) -> Iterator[tuple[int, list[np.ndarray], int, list[np.ndarray]]]:
    """The destinations' rows three at a time (``count`` of them real, the rest placeholders
    the kernels leave alone), channel by channel, each with every source's gains into them."""
    for start in range(0, len(destinations), 3):
        group = destinations[start : start + 3]
        factors = [np.zeros(3) for _ in gains]
        for source, source_gains in zip(factors, gains, strict=True):
            source[: len(group)] = source_gains[start : start + 3]
        for channel in range(group[0].shape[0]):
            rows = [destination[channel] for destination in group]
            yield channel, rows + rows[:1] * (3 - len(rows)), len(group), factors


@njit(**JIT)
def _accumulate_pair(
    first: np.ndarray,
    second: np.ndarray,
    third: np.ndarray,
    count: int,
    values: np.ndarray,
    others: np.ndarray,
    pan: float,
    other_pan: float,
    fader: float,
    other_fader: float,
    gains: np.ndarray,
    other_gains: np.ndarray,
) -> None:
    """``_accumulate`` of ``values`` and then of ``others``, each with its pan, fader and
    gains, in one loop."""
    a, b, c = gains[0], gains[1], gains[2]
    d, e, f = other_gains[0], other_gains[1], other_gains[2]
    if count == 1:
        for i in range(values.size):
            v, w = values[i] * pan * fader, others[i] * other_pan * other_fader
            first[i] = (first[i] + ((v * a + _GRID) - _GRID)) + ((w * d + _GRID) - _GRID)
    elif count == 2:
        for i in range(values.size):
            v, w = values[i] * pan * fader, others[i] * other_pan * other_fader
            first[i] = (first[i] + ((v * a + _GRID) - _GRID)) + ((w * d + _GRID) - _GRID)
            second[i] = (second[i] + ((v * b + _GRID) - _GRID)) + ((w * e + _GRID) - _GRID)
    else:
        for i in range(values.size):
            v, w = values[i] * pan * fader, others[i] * other_pan * other_fader
            first[i] = (first[i] + ((v * a + _GRID) - _GRID)) + ((w * d + _GRID) - _GRID)
            second[i] = (second[i] + ((v * b + _GRID) - _GRID)) + ((w * e + _GRID) - _GRID)
            third[i] = (third[i] + ((v * c + _GRID) - _GRID)) + ((w * f + _GRID) - _GRID)
