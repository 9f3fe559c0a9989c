"""The plain high- and low-pass filters the time and colour effects share.

One design serves every place that trims a band (the reverb's wet signal, the delay's
feedback loop, the width's side channel and the reverb's crossover): a 2nd-order Butterworth
section from the bilinear transform with pre-warping (the EQ's ``pass_sos``; Oppenheim &
Schafer, "Discrete-Time Signal Processing", ch. 7, the bilinear transformation). Butterworth
because it is maximally flat in the passband, so a trim never adds a resonant bump; 2nd order
(12 dB per octave) because these are gentle tone trims. Its magnitude at the cutoff is
exactly 1/sqrt(2) (-3.01 dB) whatever the sample rate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from render.dsp.eq import pass_sos


def butterworth_sos(
    kind: Literal["highpass", "lowpass"], cutoff_hz: float, sample_rate: int
) -> np.ndarray:
    """One 2nd-order Butterworth section, ``float64[1, 6]`` (``scipy.signal.sosfilt`` form):
    the EQ's 12 dB/oct pass filter, so both share one design and one range check."""
    return pass_sos(kind, cutoff_hz, 12, sample_rate)


def band_limit_sos(
    sample_rate: int, highpass_hz: float | None, lowpass_hz: float | None
) -> np.ndarray:
    """The optional high-pass and low-pass in series, ``float64[sections, 6]``.

    ``None`` leaves that side open; with both open the result has zero sections (filtering
    with it is the identity, which callers test with ``len(sos) == 0``).
    """
    sections = [
        butterworth_sos(kind, cutoff_hz, sample_rate)
        for kind, cutoff_hz in (("highpass", highpass_hz), ("lowpass", lowpass_hz))
        if cutoff_hz is not None
    ]
    return np.vstack(sections) if sections else np.empty((0, 6))
