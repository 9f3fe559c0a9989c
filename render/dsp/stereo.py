"""Mid/side stereo width, with an optional mono low end.

Mid/side is Blumlein's sum and difference (British Patent 394,325, 1933):
``M = (L + R) / 2`` and ``S = (L - R) / 2``, so ``L = M + S`` and ``R = M - S`` exactly.
Width scales ``S`` only, so the mono sum (what a mono radio or club system plays) never
changes, whatever the amount.
"""

from __future__ import annotations

import numpy as np

from render.dsp.eq import sosfiltfilt
from render.dsp.filters import butterworth_sos


def width(
    x: np.ndarray, sample_rate: int, *, amount: float, bass_mono_hz: float | None = None
) -> np.ndarray:
    """Scale the side signal of a stereo ``x`` by ``amount``; optionally make the lows mono.

    Parameters
    ----------
    x : float64[channels, samples]
        The signal. A mono signal has no side to scale and is returned unchanged (a copy),
        whatever ``amount`` and ``bass_mono_hz``.
    sample_rate : int
        Samples per second, Hz.
    amount : float
        Side gain: 0 folds to mono (``L == R == (L + R) / 2``), 1 leaves the image as it is,
        2 doubles the side (+6.02 dB).
    bass_mono_hz : float or None
        Below this frequency the side signal is removed. The side is high-passed with a
        2nd-order Butterworth run forwards and backwards (``eq.sosfiltfilt``): the
        magnitude is the Butterworth's squared, the same as a 4th-order Linkwitz-Riley
        high-pass (-6.02 dB at the cutoff, 24 dB per octave; Linkwitz, JAES 24(1), 1976),
        but with zero phase. A causal Linkwitz-Riley turns the side by 41 degrees at four
        times the cutoff, which shifts the image of everything just above it; zero phase
        keeps the side in step with the mid, and because the squared Butterworth low- and
        high-pass magnitudes sum to exactly 1, the side that is kept plus the side that is
        removed is the original side. Both passes start from the filter's steady state for
        the first sample (no padding), so any length works and a signal that starts and ends
        in silence is filtered as if silent beyond. ``None`` (default) keeps the full side.

    Returns
    -------
    float64[channels, samples]
        A new array; the mid ``(L + R) / 2`` is the input's, to rounding.
    """
    if x.shape[0] == 1 or x.shape[-1] == 0:
        return x.copy()
    mid = 0.5 * (x[0] + x[1])
    side = 0.5 * (x[0] - x[1])
    if bass_mono_hz is not None:
        side = sosfiltfilt(butterworth_sos("highpass", bass_mono_hz, sample_rate), side)
    side *= amount
    out = np.empty_like(x)
    np.add(mid, side, out=out[0])
    np.subtract(mid, side, out=out[1])
    return out
