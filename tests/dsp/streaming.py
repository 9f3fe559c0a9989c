"""Helpers for the streaming tests: split a signal into blocks, run a block processor over
them, and hand back what it produced as one signal."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np


def edges_from_sizes(sizes: Sequence[int], n: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of ``sizes`` (as many as fit), the rest of the
    ``n`` samples in one last block."""
    stops = [int(stop) for stop in np.cumsum(sizes) if stop <= n]
    return list(itertools.pairwise([0, *stops, n]))


def process_in_blocks(
    process: Callable[[np.ndarray], np.ndarray], x: np.ndarray, edges: Sequence[tuple[int, int]]
) -> np.ndarray:
    """``process`` called on each block of ``x`` in turn; every output block must be as long
    as its input. The outputs joined into one signal."""
    blocks = [process(x[:, start:stop]) for start, stop in edges]
    assert [block.shape for block in blocks] == [
        (x.shape[0], stop - start) for start, stop in edges
    ]
    return np.concatenate(blocks, axis=1)
