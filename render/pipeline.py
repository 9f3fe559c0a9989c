"""One song end to end: session → mix → master → deliverables on disk, and the figures to
report.

The only orchestrator: the command line calls ``render_session`` and prints its result.
"""

from __future__ import annotations

from dataclasses import dataclass

from render.deliver import Ceiling, Delivered, deliver
from render.errors import OutputError
from render.master import Master, master
from render.measure import integrated_loudness_lufs, sample_peak_dbfs
from render.mix import render_mix
from render.session.checks import master_file_stem, output_file_name
from render.session.model import Deliverable, Session


@dataclass(frozen=True)
class RenderResult:
    """What a render did and measured: data only; the command line words it."""

    session: Session
    tracks: tuple[str, ...]
    duration_s: float
    loudness_lufs: float  # of the mix
    peak_dbfs: float  # of the mix
    master: Master | None
    files: tuple[Delivered, ...]
    notes: tuple[str, ...]


def render_session(session: Session, jobs: int) -> RenderResult:
    """Render the mix of ``session`` and, if it has a mastering section, its master; write
    each deliverable of both."""
    mix = render_mix(session, jobs)
    peak_dbfs = sample_peak_dbfs(mix.audio)
    notes = list(mix.notes)
    if peak_dbfs > 0.0:
        notes.append(
            f"the mix peaks at {peak_dbfs:+.2f} dBFS and is clipped in fixed-point "
            "files; lower the track gains"
        )
    mastered = master(mix.audio, session) if session.mastering is not None else None
    out_dir = session.output.dir
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror})") from e
    try:
        files = [
            deliver(mix.audio, session.sample_rate, d, out_dir / _name(d, "mix"), session.seed)
            for d in session.output.mix
        ]
        if mastered is not None:
            ceiling = (
                Ceiling(mastered.ceiling_dbtp, mastered.limiter)
                if mastered.ceiling_dbtp is not None
                else None
            )
            stem = master_file_stem(session.title, session.path)
            files += [
                deliver(
                    mastered.audio,
                    session.sample_rate,
                    d,
                    out_dir / _name(d, stem),
                    session.seed,
                    ceiling,
                    verify=True,
                )
                for d in session.output.master or (Deliverable(),)
            ]
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
        master=mastered,
        files=tuple(files),
        notes=tuple(notes) + (mastered.notes if mastered else ()),
    )


def _name(deliverable: Deliverable, default_stem: str) -> str:
    return output_file_name(deliverable.name, default_stem, deliverable.format)
