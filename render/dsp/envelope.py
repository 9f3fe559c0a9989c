"""Breakpoint automation: a list of (time, value, curve) points to one value per sample.

Between two points the value ramps with the later point's curve; before the first point and
after the last it holds. A ramp starts at the earlier point's sample and reaches the later
point's value at the later point's sample, so automation is sample-accurate. Two points at
the same time would be an instantaneous step, which clicks; such a step is spread over
``STEP_S`` instead (the shortest ramp that is inaudible as a click on full-scale material).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from render.dsp.levels import db_to_gain, db_to_gain_each

Curve = Literal["linear", "exponential"]
STEP_S = 0.001
EXPONENTIAL_FLOOR_DB = -120.0
"""Where an exponential ramp towards or from silence starts or ends: 120 dB down is below
any converter's noise floor, and dB interpolation cannot start at -inf."""


def breakpoints(
    points: Sequence[tuple[float, float, Curve]], n: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions and values of ``points`` (``(time_s, value, curve)``), with steps
    widened to ``STEP_S``; returns ``(positions, values)`` as arrays."""
    step = max(1, round(STEP_S * sample_rate))
    positions: list[int] = []
    for time_s, _, _ in points:
        position = min(round(time_s * sample_rate), n)
        if positions and position <= positions[-1]:
            position = positions[-1] + step
        positions.append(position)
    return np.asarray(positions), np.asarray([value for _, value, _ in points])


def gain_envelope(
    points: Sequence[tuple[float, float, Curve]], n: int, sample_rate: int
) -> np.ndarray:
    """Amplitude per sample for a fader lane of points in dB.

    ``linear`` ramps the amplitude (a straight line on a gain scale, reaching silence
    smoothly); ``exponential`` ramps the level in dB at a constant rate (equal loudness
    steps per second, the natural shape for long fades).
    """
    positions, values_db = breakpoints(points, n, sample_rate)
    curves = [curve for _, _, curve in points]
    envelope = np.empty(n)
    envelope[: positions[0]] = db_to_gain(values_db[0])
    for i in range(1, len(points)):
        start, end = positions[i - 1], positions[i]
        if end <= start or start >= n:
            continue
        t = np.arange(end - start) / (end - start)
        if curves[i] == "exponential":
            low, high = (max(v, EXPONENTIAL_FLOOR_DB) for v in values_db[i - 1 : i + 1])
            segment = db_to_gain_each(low + (high - low) * t)
        else:
            low, high = db_to_gain(values_db[i - 1]), db_to_gain(values_db[i])
            segment = low + (high - low) * t
        envelope[start:end] = segment[: n - start]
    envelope[min(positions[-1], n) :] = db_to_gain(values_db[-1])
    return envelope


def linear_envelope(
    points: Sequence[tuple[float, float, Curve]], n: int, sample_rate: int
) -> np.ndarray:
    """Value per sample for a lane that ramps linearly between points (pan positions)."""
    positions, values = breakpoints(points, n, sample_rate)
    return np.interp(np.arange(n), positions, values)
