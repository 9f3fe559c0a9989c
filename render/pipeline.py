"""One song end to end: session → mix → master → deliverables on disk → QC report.

The only orchestrator: the command line calls ``render_session`` and prints its result.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from render import audio_io
from render.analysis import analyse
from render.deliver import Ceiling, Delivered, deliver, describe
from render.errors import OutputError
from render.manifest import NAME as MANIFEST
from render.manifest import (
    Difference,
    audio_sha256,
    build_manifest,
    compare,
    describe_inputs,
    write_manifest,
)
from render.master import Master, master
from render.mix import render_mix
from render.qc import FileReport, Report, assess
from render.report.html import render_html
from render.report.json_report import report_json
from render.session.checks import master_file_stem, output_file_name
from render.session.model import Deliverable, Session
from render.translation import translate

Stage = Callable[[str], AbstractContextManager[object]]
"""Called with a stage's name ("mix", "master", a file name, "qc") around that stage's work,
so the command line can show progress; the pipeline itself prints nothing."""
QC_FILES = ("qc.json", "qc.html")
T = TypeVar("T")


@dataclass(frozen=True)
class RenderResult:
    """What a render did and measured: data only; the command line words it."""

    session: Session
    tracks: tuple[str, ...]
    duration_s: float
    master: Master | None
    files: tuple[Delivered, ...]
    report: Report
    report_files: tuple[Path, ...]
    manifest: Path


def render_session(
    session: Session, jobs: int, stage: Stage = lambda name: nullcontext()
) -> RenderResult:
    """Render the mix of ``session`` and, if it has a mastering section, its master; write
    each deliverable of both, then the QC report of what was written."""
    rate = session.sample_rate
    # Hashing the inputs for the manifest and measuring the mix mostly release the GIL:
    # where more threads are allowed they run beside the rest (the hashing from the start,
    # where the mix's own start-up leaves a core idle).
    with ThreadPoolExecutor(max_workers=2) as side:
        inputs = _beside(side, jobs, describe_inputs, session)
        with stage("mix"):
            mix = render_mix(session, jobs)
        measured = _beside(side, jobs, analyse, mix.audio, rate)
        mastered = devices = None
        if session.mastering is not None:
            with stage("master"):
                mastered = master(mix.audio, session)
                devices = translate(mastered.audio, rate)
        out_dir = session.output.dir
        created = not out_dir.exists()
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror})") from e
        audio_io.remove_stale_partials(out_dir)  # left by a render that was killed outright
        try:
            files: list[Delivered] = []
            for d in session.output.mix:
                with stage(_name(d, "mix")):
                    files.append(
                        deliver(mix.audio, rate, d, out_dir / _name(d, "mix"), session.seed)
                    )
            masters: list[Delivered] = []
            if mastered is not None:
                ceiling = (
                    Ceiling(mastered.ceiling_dbtp, mastered.limiter)
                    if mastered.ceiling_dbtp is not None
                    else None
                )
                stem = master_file_stem(session.title, session.path)
                for d in session.output.master or (Deliverable(),):
                    path = out_dir / _name(d, stem)
                    with stage(path.name):
                        masters.append(
                            deliver(
                                mastered.audio, rate, d, path, session.seed, ceiling, verify=True
                            )
                        )
            # Hashed while the mix's analysis may still be running beside.
            stages = {"mix": audio_sha256(mix.audio)}
            if mastered is not None:
                stages["master"] = audio_sha256(mastered.audio)
            mix_figures = measured.result()
            notes = list(mix.notes)
            if (peak_dbfs := max(mix_figures.loudness.sample_peak_dbfs)) > 0.0:
                notes.append(
                    f"the mix peaks at {peak_dbfs:+.2f} dBFS and is clipped in fixed-point "
                    "files; lower the track gains"
                )
            notes += mastered.notes if mastered is not None else []
            reports = [FileReport("mix", files[0].path, files[0].description, mix_figures, (), ())]
            reports += [
                FileReport(
                    "master",
                    written.path,
                    written.description,
                    written.figures,  # type: ignore[arg-type]  # verified files carry figures
                    devices if index == 0 and devices else (),
                    written.corrections,
                )
                for index, written in enumerate(masters)
            ]
            with stage("qc"):
                report = assess(
                    session.title,
                    Path(session.path.name),
                    session.mastering.target if session.mastering else None,
                    mastered.limiting_db if mastered and mastered.limiter else None,
                    reports,
                    notes,
                )
                report_files = write_report(report, out_dir)
            outputs = [("mix", d.path, d.description, mix_figures) for d in files]
            outputs += [("master", m.path, m.description, m.figures) for m in masters]
            outputs += [("report", path, "QC report", None) for path in report_files]
            hashed = inputs.result()
            manifest = write_manifest(build_manifest(session, hashed, stages, outputs), out_dir)
        except BaseException:
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise
    return RenderResult(
        session=session,
        tracks=mix.tracks,
        duration_s=mix.audio.shape[1] / rate,
        master=mastered,
        files=tuple(files + masters),
        report=report,
        report_files=report_files,
        manifest=manifest,
    )


def report_outputs(
    session: Session, stage: Stage = lambda name: nullcontext()
) -> tuple[Report, tuple[Path, ...]]:
    """Measure the outputs a render of ``session`` wrote (the first mix file and every
    master) as they are on disk, and write the QC report again; render nothing.

    What only the render knows (the limiter's gain reduction, the corrections made to a
    file) is absent from such a report."""
    out_dir = session.output.dir
    ceiling = session.mastering.target.ceiling_dbtp if session.mastering else None
    stem = master_file_stem(session.title, session.path)
    expected = [("mix", session.output.mix[0], "mix")]
    if session.mastering is not None:
        expected += [("master", d, stem) for d in session.output.master or (Deliverable(),)]
    reports: list[FileReport] = []
    for role, deliverable, default_stem in expected:
        path = out_dir / _name(deliverable, default_stem)
        if not path.is_file():
            raise OutputError(
                f"{path}: no such output; expected the files of an earlier render "
                "(--report-only measures them again): render the session first"
            )
        with stage(path.name):
            audio, rate = audio_io.read_delivered(path)
            figures = analyse(audio, rate, ceiling if role == "master" else None)
            first_master = role == "master" and not any(r.role == "master" for r in reports)
            devices = translate(audio, rate) if first_master else ()
        description = describe(deliverable, session.sample_rate)
        reports.append(FileReport(role, path, description, figures, devices, ()))  # type: ignore[arg-type]
    with stage("qc"):
        target = session.mastering.target if session.mastering else None
        report = assess(session.title, Path(session.path.name), target, None, reports)
        return report, write_report(report, out_dir)


def verify_session(
    session: Session, jobs: int, stage: Stage = lambda name: nullcontext()
) -> tuple[list[Difference], int]:
    """Render ``session`` again into a temporary folder and compare it with the manifest of
    its last render: the differences in signal order (none: the same bytes), and how many
    output files were compared. The session's own output folder is not touched."""
    recorded_path = session.output.dir / MANIFEST
    try:
        recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(
            f"{recorded_path}: no manifest to verify against; expected the output of an "
            "earlier render: render the session first"
        ) from None
    except (OSError, ValueError) as e:
        raise OutputError(f"{recorded_path}: cannot read the manifest ({e})") from e
    with tempfile.TemporaryDirectory(prefix="render-verify-") as scratch:
        elsewhere = replace(session, output=replace(session.output, dir=Path(scratch)))
        fresh = render_session(elsewhere, jobs, stage)
        manifest = json.loads(fresh.manifest.read_text(encoding="utf-8"))
    return compare(recorded, manifest), len(manifest["outputs"])


def _beside(pool: ThreadPoolExecutor, jobs: int, work: Callable[..., T], *args: Any) -> Future[T]:
    """``work(*args)`` on a thread of ``pool`` where ``jobs`` allows more than one thread;
    otherwise done at once, here."""
    if jobs > 1:
        return pool.submit(work, *args)
    done: Future[T] = Future()
    done.set_result(work(*args))
    return done


def write_report(report: Report, out_dir: Path) -> tuple[Path, ...]:
    """``qc.json`` and ``qc.html`` in ``out_dir``, each replaced atomically."""
    written = []
    for name, text in zip(QC_FILES, (report_json(report), render_html(report)), strict=True):
        path = out_dir / name
        with audio_io.atomic_path(path) as temporary:
            try:
                temporary.write_text(text, encoding="utf-8")
            except OSError as e:
                raise OutputError(f"{path}: cannot write the report ({e.strerror})") from e
        written.append(path)
    return tuple(written)


def _name(deliverable: Deliverable, default_stem: str) -> str:
    return output_file_name(deliverable.name, default_stem, deliverable.format)
