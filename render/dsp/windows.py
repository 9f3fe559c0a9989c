"""Spectral-analysis windows, without ``scipy.signal`` (0.6 s to import)."""

from __future__ import annotations

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
