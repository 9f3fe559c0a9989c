"""Process-wide allocator settings that keep block processing free of page faults.

glibc returns freed memory to the kernel eagerly (its trim threshold follows the mmap
threshold, both tiny next to audio blocks), so each 1 MB block buffer a render frees and
allocates again is mapped afresh, page by page: on a 16-track bench that was ~870,000 page
faults and seconds of system time, serialised across threads. Blocks up to 32 MiB are
served from the heap and up to 256 MiB of free heap is kept for reuse; whole-song arrays
(over 32 MiB) are still mapped directly and returned when freed. See mallopt(3).
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
