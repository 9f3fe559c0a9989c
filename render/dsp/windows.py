"""Windows for spectral analysis and FIR design, without ``scipy.signal`` (0.6 s to import)."""

from __future__ import annotations

import math

import numpy as np


def hann(n: int) -> np.ndarray:
    """The periodic ("DFT-even") Hann window of ``n`` samples, ``0.5 - 0.5 cos(2 pi k / n)``:
    ``scipy.signal.get_window("hann", n)`` to the bit, by its own steps (the symmetric window
    of ``n + 1`` samples as ``0.5 + 0.5 cos`` of phases from -pi to pi, the last dropped),
    so a Welch average over 50 %-overlapping segments weighs every sample alike (F. J.
    Harris, "On the use of windows for harmonic analysis with the DFT", Proc. IEEE 66(1),
    1978)."""
    if n <= 1:
        return np.ones(max(n, 0))
    return (0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, n + 1)))[:-1]


def tukey(n: int, alpha: float) -> np.ndarray:
    """The symmetric Tukey (tapered cosine) window of ``n`` samples: flat but for a
    raised-cosine taper over ``alpha / 2`` of its length at each end (Harris 1978, §V.G).
    ``scipy.signal.windows.tukey(n, alpha)`` to the bit, by its own steps, for ``0 < alpha <
    1``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"tukey alpha: got {alpha}, expected 0 < alpha < 1")
    if n <= 1:
        return np.ones(max(n, 0))
    k = np.arange(0, n, dtype=np.float64)
    width = math.floor(alpha * (n - 1) / 2.0)
    rise, fall = k[: width + 1], k[n - width - 1 :]
    return np.concatenate(
        (
            0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * rise / alpha / (n - 1)))),
            np.ones(n - 2 * (width + 1)),
            0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * fall / alpha / (n - 1)))),
        )
    )
