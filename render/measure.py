"""Level and loudness figures of rendered audio.

Integrated loudness follows ITU-R BS.1770-4 (K-weighting, 400 ms blocks with 75 % overlap,
absolute gate at -70 LUFS and relative gate at -10 LU) via pyloudnorm, using its "DeMan"
filter class, whose coefficients are derived for any sample rate and match the standard's
48 kHz values.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyloudnorm

from render.dsp.levels import gain_to_db

BLOCK_S = 0.4
"""The gating block of BS.1770-4 §2.1: audio shorter than this has no integrated loudness."""


def integrated_loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of ``x`` (``[channels, samples]``); ``-inf`` for silence or for
    audio shorter than one 400 ms gating block."""
    if x.shape[1] < BLOCK_S * sample_rate:
        return -math.inf
    meter = pyloudnorm.Meter(sample_rate, filter_class="DeMan")
    with warnings.catch_warnings():
        # pyloudnorm warns about samples beyond full scale; a mix may legitimately have them.
        warnings.filterwarnings("ignore", category=UserWarning, module="pyloudnorm")
        return float(meter.integrated_loudness(x.T))


def sample_peak_dbfs(x: np.ndarray) -> float:
    """The largest absolute sample value, in dB relative to full scale."""
    return gain_to_db(float(np.max(np.abs(x)))) if x.size else -math.inf
