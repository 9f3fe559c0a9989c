"""Memory for audio: allocator settings and whole-song buffers that avoid page faults.

Page faults, not arithmetic, dominated renders on small virtual machines (~20-30 µs each,
serialised across threads), so memory is handled with care in two ways.

glibc returns freed memory to the kernel eagerly (its trim threshold follows the mmap
threshold, both tiny next to audio blocks), so each 1 MB block buffer a render frees and
allocates again is mapped afresh, page by page: on a 16-track bench that was ~870,000 page
faults and seconds of system time, serialised across threads. Blocks up to 32 MiB are
served from the heap and up to 256 MiB of free heap is kept for reuse; whole-song arrays
(over 32 MiB) are still mapped directly and returned when freed. See mallopt(3).

Whole-song buffers (bus accumulators, sidechain keys) come from ``zeros``: an anonymous map
marked for transparent huge pages, so touching 138 MB (3 minutes of stereo) costs ~70 faults
of 2 MiB instead of ~34,000 of 4 KiB (measured: 0.37 s down to 0.02 s). See madvise(2).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 256 << 20


def tune_allocator() -> bool:
    """Apply the settings where the C library is glibc; returns whether they were applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators need no help here
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    """A zero-filled float64 array backed by huge pages where the kernel offers them (Linux;
    elsewhere an ordinary ``np.zeros``). The mapping is released with the array."""
    size = int(np.prod(shape)) * 8
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or size == 0:
        return np.zeros(shape)
    buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buffer.madvise(advice)
    return np.frombuffer(buffer, dtype=np.float64).reshape(shape)


def first_columns(x: np.ndarray, n: int) -> np.ndarray:
    """``x[:, :n]`` of a C-contiguous 2-D ``x`` as a C-contiguous array in ``x``'s own memory:
    each row is moved down to follow the one before (``memmove``, which allows the overlap),
    so cutting a whole-song buffer to length costs no new buffer and no page faults. ``x``
    must not be used afterwards."""
    if not x.flags.c_contiguous or x.ndim != 2:
        raise ValueError(f"first_columns: expected a C-contiguous 2-D array, got {x.shape}")
    rows, length = x.shape
    n = max(0, min(n, length))
    if n == length:
        return x
    for row in range(1, rows):
        destination = x.ctypes.data + row * n * x.itemsize
        ctypes.memmove(destination, x[row].ctypes.data, n * x.itemsize)
    return x.reshape(-1)[: rows * n].reshape(rows, n)
