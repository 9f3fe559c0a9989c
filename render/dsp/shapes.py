"""The shape checks every block processor applies: one place for the channel count and the
``[channels, samples]`` block, so every processor words a wrong input the same way."""

from __future__ import annotations

import numpy as np


def check_channels(what: str, channels: int) -> None:
    """Refuse a processor built for anything but mono or stereo."""
    if channels not in (1, 2):
        raise ValueError(f"{what} channels: got {channels}, expected 1 or 2")


def checked_block(what: str, x: np.ndarray, channels: int) -> np.ndarray:
    """``x`` as contiguous float64 (not copied if it is), once its shape is checked to be
    ``(channels, n)``."""
    if x.ndim != 2 or x.shape[0] != channels:
        raise ValueError(f"{what} block: got shape {x.shape}, expected ({channels}, samples)")
    return np.ascontiguousarray(x, dtype=np.float64)
