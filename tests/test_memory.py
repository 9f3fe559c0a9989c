"""Whole-song buffers: cutting one to length in place."""

from __future__ import annotations

import numpy as np
import pytest

from render import memory


@pytest.mark.parametrize("n", [0, 1, 4, 9, 10])
@pytest.mark.parametrize("rows", [1, 2, 3])
def test_first_columns_equals_a_copy_and_reuses_the_buffer(rows: int, n: int) -> None:
    """Rows move down over each other (n above half the length: source and destination
    overlap), and the result lives in the original memory."""
    x = memory.zeros((rows, 10))
    x[:] = np.arange(rows * 10.0).reshape(rows, 10)
    expected = x[:, :n].copy()
    y = memory.first_columns(x, n)
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, expected)
    assert n == 0 or np.shares_memory(x, y)


def test_first_columns_refuses_a_strided_array() -> None:
    with pytest.raises(ValueError, match="C-contiguous"):
        memory.first_columns(np.zeros((4, 2)).T, 1)
