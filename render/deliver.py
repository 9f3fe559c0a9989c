"""Deliverables: the mix or the master converted, encoded and written, and every master file
measured again as written.

Sample-rate conversion, dither and lossy encoders all move inter-sample peaks, so a master
that met its true-peak ceiling in memory can miss it on disk. Each master deliverable is
therefore decoded from the temporary file it was written to and measured (ITU-R BS.1770-4
loudness and true peak); if a conversion pushed it over the ceiling it is corrected (a
converted signal is limited again at its own rate; an encoded one is trimmed by its overshoot)
and written again, before it replaces any earlier file of that name.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render import audio_io, lossy
from render.analysis import Analysis, analyse
from render.dsp import limiter
from render.dsp.dither import Dither
from render.dsp.levels import db_to_gain, gain_to_db
from render.session.model import Deliverable, Limiter

DITHER_HEADROOM_DB = 0.01
"""Limiters hold this far under the ceiling, so that the dither and rounding of a
16-bit file (at most 1.5 LSB, 0.0005 dB at -1 dBTP) do not push a file over it."""
MAX_TRIMS = 4
"""Re-encodes allowed to bring a file under its ceiling: a lossy encoder's overshoot scales
with its input, so one trim nearly always suffices; the rest cover quantisation noise."""
TRIM_MARGIN_DB = 0.01
"""Trimmed below the ceiling by this much more than the overshoot measured, so the re-encoded
file does not land a hair over it again."""


@dataclass(frozen=True)
class Delivered:
    """One written file, its figures as written (masters) and what was done to meet them."""

    path: Path
    description: str  # "WAV, 24-bit, 48000 Hz, TPDF dither"
    figures: Analysis | None  # measured on the file as written; None for the mix
    corrections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ceiling:
    """The true peak a master's files must hold, and the limiter that set it (to limit a
    converted deliverable again at its own rate with the same settings)."""

    dbtp: float
    limiter: Limiter | None


def deliver(
    x: np.ndarray,
    sample_rate: int,
    deliverable: Deliverable,
    path: Path,
    seed: int,
    ceiling: Ceiling | None = None,
    *,
    verify: bool = False,
    finish: Callable[[Path], None] | None = None,
) -> Delivered:
    """Convert ``x`` to the deliverable's rate and resolution and write it to ``path``
    atomically; with ``verify``, measure the file as written and hold it under ``ceiling``.

    Dither noise is seeded from the session seed and the file name, so every render of the
    same session writes the same bytes, and two deliverables never share a noise sequence.
    ``finish`` (writing tags, say) runs on the complete file before it takes its name.
    """
    rate = deliverable.sample_rate or sample_rate
    dither = _dither(deliverable)
    converted = audio_io.resample(x, sample_rate, rate)
    corrections: list[str] = []
    if verify and ceiling is not None and ceiling.limiter is not None and rate != sample_rate:
        converted, note = relimit(converted, rate, ceiling.dbtp, ceiling.limiter, "conversion")
        corrections += note
    trim_db = 0.0
    identity = [seed, zlib.crc32(path.name.encode("utf-8"))]
    figures, over_db = None, -math.inf
    with audio_io.atomic_path(path) as temporary:
        for trims in range(MAX_TRIMS + 1):
            signal = converted if trim_db == 0.0 else converted * db_to_gain(trim_db)
            _write(temporary, signal, rate, deliverable, dither, identity)
            if not verify:
                break
            figures = analyse(
                audio_io.read_delivered(temporary)[0], rate, ceiling.dbtp if ceiling else None
            )
            peak = max(figures.loudness.true_peak_dbtp)
            over_db = peak - ceiling.dbtp if ceiling else -math.inf
            if over_db <= 0.0 or trims == MAX_TRIMS:
                break
            trim = over_db + TRIM_MARGIN_DB
            corrections.append(
                f"true peak {ceiling.dbtp + over_db:+.2f} dBTP as written, {over_db:.2f} dB "
                f"over the {ceiling.dbtp:g} dBTP ceiling: trimmed by {trim:.2f} dB"
            )
            trim_db -= trim
        if finish is not None:
            finish(temporary)
    if over_db > 0.0:
        corrections.append(f"still {over_db:.2f} dB over the ceiling after {MAX_TRIMS} trims")
    return Delivered(path, describe(deliverable, sample_rate), figures, tuple(corrections))


def _write(
    path: Path,
    x: np.ndarray,
    sample_rate: int,
    deliverable: Deliverable,
    dither: Dither,
    identity: list[int],
) -> None:
    """Encode ``x`` as the deliverable asks and write it to ``path``.

    ``identity`` (the session seed and the file name's CRC) seeds the dither and numbers an
    Ogg stream, so the same render writes the same bytes."""
    if deliverable.format in lossy.LOSSY_FORMATS:
        serial = zlib.crc32(repr(identity).encode("ascii"))
        lossy.write_lossy(
            path, x, deliverable.format, sample_rate, deliverable.bitrate_kbps, serial
        )
        return
    rng = np.random.default_rng(identity)
    audio_io.write_encoded(
        path, x, sample_rate, deliverable.format, deliverable.bit_depth, rng, dither
    )


def relimit(
    x: np.ndarray, sample_rate: int, ceiling_dbtp: float, settings: Limiter, cause: str
) -> tuple[np.ndarray, list[str]]:
    """``x`` limited again at its own rate, in place (the caller's own copy: a conversion or
    an assembled album file), when ``cause`` (a conversion: the interpolation between the old
    samples sits elsewhere at the new rate; a crossfade: two songs summed) raised its true
    peak over the ceiling. Away from the overs (beyond the lookahead and the release) the
    limiter's gain is exactly 1: only the stretches around them are limited
    (``limiter.limiter_gain_stretches``), the same bits as limiting the whole."""
    # ``limiter.limit`` of x padded with the latency in silence, its delay cut off, without
    # the padded copy or a second pass for the peaks.
    latency = limiter.limiter_latency_samples(sample_rate, settings.lookahead_ms)
    peaks = limiter.padded_peaks(x, latency)
    peak = float(np.max(peaks[: x.shape[1]], initial=0.0))
    if peak <= db_to_gain(ceiling_dbtp):
        return x, []
    stretches = limiter.limiter_gain_stretches(
        peaks,
        sample_rate,
        ceiling_db=ceiling_dbtp - DITHER_HEADROOM_DB,
        release_ms=settings.release_ms,
        lookahead_ms=settings.lookahead_ms,
    )
    for first, gain in stretches:  # output sample n plays x[n - latency]
        begin = max(first - latency, 0)
        x[:, begin : first - latency + gain.size] *= gain[begin - first + latency :]
    over_db = gain_to_db(peak) - ceiling_dbtp
    note = f"limited again at {sample_rate} Hz: {cause} raised the true peak {over_db:.2f} dB"
    return x, [note]


def describe(deliverable: Deliverable, session_rate: int) -> str:
    """``WAV, 24-bit, 48000 Hz, TPDF dither`` or ``MP3, 320 kbit/s, 44100 Hz``."""
    rate = deliverable.sample_rate or session_rate
    if deliverable.format in lossy.LOSSY_FORMATS:
        container = lossy.LOSSY_FORMATS[deliverable.format][0]
        quality = f"{deliverable.bitrate_kbps} kbit/s" if deliverable.bitrate_kbps else "default"
        return f"{container}, {quality}, {rate} Hz"
    depth = "32-bit float" if deliverable.bit_depth == "float" else f"{deliverable.bit_depth}-bit"
    dithered = {"tpdf": "TPDF dither", "tpdf_shaped": "noise-shaped TPDF dither"}
    return (
        f"{audio_io.WRITABLE_PCM[deliverable.format]}, {depth}, {rate} Hz, "
        f"{dithered.get(_dither(deliverable), 'no dither')}"
    )


def _dither(deliverable: Deliverable) -> Dither:
    """The deliverable's dither: its own choice, else TPDF for integer PCM, else none."""
    if deliverable.format in audio_io.WRITABLE_PCM and deliverable.bit_depth != "float":
        return deliverable.dither or "tpdf"
    return "none"
