"""One song end to end: session → mix → deliverables on disk, and the figures to report.

The only orchestrator: the command line calls ``render_session`` and prints its result.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render import audio_io
from render.errors import OutputError
from render.measure import integrated_loudness_lufs, sample_peak_dbfs
from render.mix import render_mix
from render.session.checks import output_file_name
from render.session.model import Deliverable, Session


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    description: str  # "WAV, 24-bit, 48000 Hz, TPDF dither"


@dataclass(frozen=True)
class RenderResult:
    """What a render did and measured: data only; the command line words it."""

    session: Session
    tracks: tuple[str, ...]
    duration_s: float
    loudness_lufs: float
    peak_dbfs: float
    files: tuple[WrittenFile, ...]
    notes: tuple[str, ...]


def render_session(session: Session, jobs: int) -> RenderResult:
    """Render the mix of ``session`` and write each of its mix deliverables."""
    mix = render_mix(session, jobs)
    peak_dbfs = sample_peak_dbfs(mix.audio)
    notes = list(mix.notes)
    if peak_dbfs > 0.0:
        notes.append(
            f"the mix peaks at {peak_dbfs:+.2f} dBFS and is clipped in fixed-point "
            "files; lower the track gains"
        )
    out_dir = session.output.dir
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror})") from e
    try:
        files = tuple(
            write_deliverable(
                mix.audio, session.sample_rate, deliverable, out_dir, "mix", session.seed
            )
            for deliverable in session.output.mix
        )
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return RenderResult(
        session=session,
        tracks=mix.tracks,
        duration_s=mix.audio.shape[1] / session.sample_rate,
        loudness_lufs=integrated_loudness_lufs(mix.audio, session.sample_rate),
        peak_dbfs=peak_dbfs,
        files=files,
        notes=tuple(notes),
    )


def write_deliverable(
    x: np.ndarray, sample_rate: int, deliverable: Deliverable, out_dir: Path, role: str, seed: int
) -> WrittenFile:
    """Convert ``x`` to the deliverable's rate and resolution, then write it atomically.

    Dither noise is seeded from the session seed and the file name, so every render of the
    same session writes the same bytes, and two deliverables never share a noise sequence.
    """
    name = output_file_name(deliverable.name, role, deliverable.format)
    rate = deliverable.sample_rate or sample_rate
    dither = "none" if deliverable.bit_depth == "float" else deliverable.dither or "tpdf"
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    frames, container, subtype = audio_io.encode(
        audio_io.resample(x, sample_rate, rate),
        deliverable.format,
        deliverable.bit_depth,
        rng,
        dither,
    )
    path = out_dir / name
    audio_io.write_audio(path, frames, rate, container, subtype)
    depth = "32-bit float" if deliverable.bit_depth == "float" else f"{deliverable.bit_depth}-bit"
    dithered = "TPDF dither" if dither == "tpdf" else "no dither"
    return WrittenFile(path, f"{container}, {depth}, {rate} Hz, {dithered}")
