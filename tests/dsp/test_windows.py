"""The analysis window against scipy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from render.dsp.windows import hann


@pytest.mark.parametrize("n", [1, 2, 3, 255, 8192])
def test_hann_is_scipys_periodic_hann(n: int) -> None:
    assert np.array_equal(hann(n), scipy.signal.get_window("hann", n))
