"""The independent reference meter: ffmpeg's ``ebur128`` filter (libavfilter's own
BS.1770-4 / EBU R 128 implementation), run on a file as written.

ffmpeg prints one decimal place, so a comparison with it can never be tighter than 0.1.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg


@dataclass(frozen=True)
class Ebur128Summary:
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float  # the largest of the channels


def ffmpeg_ebur128(path: Path) -> Ebur128Summary:
    """ffmpeg's summary of ``path``: integrated loudness, loudness range and true peak
    (``ebur128=peak=true``: 4x oversampled)."""
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = result.stderr[result.stderr.rindex("Summary:") :]

    def figure(label: str, unit: str) -> float:
        match = re.search(rf"{label}:\s+(-?[\d.]+|-inf) {unit}", summary)
        assert match, f"no {label} in ffmpeg's summary:\n{summary}"
        return float(match.group(1))

    return Ebur128Summary(figure("I", "LUFS"), figure("LRA", "LU"), figure("Peak", "dBFS"))
