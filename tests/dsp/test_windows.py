"""The spectral and design windows against scipy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from render.dsp.windows import hann, tukey


@pytest.mark.parametrize("n", [1, 2, 3, 255, 8192])
def test_hann_is_scipys_periodic_hann(n: int) -> None:
    assert np.array_equal(hann(n), scipy.signal.get_window("hann", n))


@pytest.mark.parametrize("n", [2, 3, 127, 4095])
@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_tukey_is_scipys(n: int, alpha: float) -> None:
    assert np.array_equal(tukey(n, alpha), scipy.signal.windows.tukey(n, alpha))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_tukey_refuses_the_degenerate_tapers(alpha: float) -> None:
    with pytest.raises(ValueError, match="expected 0 < alpha < 1"):
        tukey(9, alpha)
