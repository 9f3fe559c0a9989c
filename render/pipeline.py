"""One song end to end: session → mix → master → deliverables on disk → QC report.

The only orchestrator: the command line calls ``render_session`` and prints its result.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from render import audio_io
from render.analysis import Analysis, analyse
from render.cache import CacheOptions
from render.deliver import Ceiling, Delivered, deliver, describe
from render.errors import OutputError
from render.graph import plan
from render.incremental import Account, Incremental
from render.keys import Stage as CacheStage
from render.manifest import FORMAT as MANIFEST_FORMAT
from render.manifest import NAME as MANIFEST
from render.manifest import (
    Difference,
    audio_sha256,
    build_manifest,
    compare,
    describe_inputs,
    problem_with,
    write_manifest,
)
from render.master import Master, limiter_input, master, master_at, plan_master
from render.mix import Mix, render_mix
from render.qc import FileReport, Report, assess
from render.report import page
from render.report.html import render_html
from render.report.json_report import report_json
from render.session.checks import master_file_stem, output_file_name
from render.session.model import Deliverable, Session
from render.translation import translate

Stage = Callable[[str], AbstractContextManager[object]]
"""Called with a stage's name ("mix", "master", a file name, "qc") around that stage's work,
so the command line can show progress; the pipeline itself prints nothing."""
QC_FILES = ("qc.json", "qc.html")
NO_CACHE = CacheOptions(enabled=False)
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
    account: Account  # what came from the cache, and what was rendered and why


def render_session(
    session: Session,
    jobs: int,
    stage: Stage = lambda name: nullcontext(),
    caching: CacheOptions = NO_CACHE,
) -> RenderResult:
    """Render the mix of ``session`` and, if it has a mastering section, its master; write
    each deliverable of both, then the QC report of what was written. With ``caching``,
    every stage whose inputs are unchanged since it was cached is reused."""
    rate = session.sample_rate
    reuse = Incremental(session, caching)
    # Hashing the inputs for the manifest and measuring the mix mostly release the GIL:
    # where more threads are allowed they run beside the rest (the hashing from the start,
    # where the mix's own start-up leaves a core idle; with a cache, the hashes are taken
    # before the mix, to find what it holds, and the manifest takes them from there).
    with ThreadPoolExecutor(max_workers=2) as side:
        if reuse.cache is None:
            inputs = _beside(side, jobs, describe_inputs, session)
        with stage("mix"):
            render_plan = reuse.planned(plan(session))
            mix, mix_stage = reuse.mix(
                render_plan,
                _loading_plots(
                    side,
                    jobs,
                    lambda strips: render_mix(session, jobs, render_plan, strips),
                    after=True,
                ),
            )
        if reuse.cache is not None:
            inputs = _beside(side, 1, describe_inputs, session, reuse.digests.sha256)
        measured = _value_beside(
            reuse,
            side,
            jobs,
            reuse.keys.derived("analysis of the mix", [mix_stage]),
            lambda: analyse(mix.audio, rate),
        )
        hashes = {"mix": _signal_hash(reuse, side, jobs, mix_stage, lambda: mix.audio)}
        mastered = devices = master_stage = None
        if session.mastering is not None:
            with stage("master"):
                master_stage = reuse.keys.master(mix_stage)
                mastered = reuse.with_samples(
                    master_stage, _loading_plots(side, jobs, lambda: master(mix.audio, session))
                )
                hashes["master"] = _signal_hash(
                    reuse, side, jobs, master_stage, lambda: mastered.audio
                )
                devices = reuse.value(
                    reuse.keys.derived("device translation", [master_stage]),
                    lambda: translate(mastered.audio, rate),
                )
        out_dir = session.output.dir
        with output_folder(out_dir):
            targets = [(d, _name(d, "mix")) for d in session.output.mix]
            files, file_stages = _write_files(
                reuse, stage, lambda: mix.audio, mix_stage, session, targets
            )
            masters: list[Delivered] = []
            if mastered is not None:
                assert master_stage is not None
                stem = master_file_stem(session.title, session.path)
                targets = [(d, _name(d, stem)) for d in session.output.master or (Deliverable(),)]
                masters, master_file_stages = _write_files(
                    reuse,
                    stage,
                    lambda: mastered.audio,
                    master_stage,
                    session,
                    targets,
                    mastered.ceiling,
                    verify=True,
                )
                file_stages += master_file_stages
            stages = {name: hashed() for name, hashed in hashes.items()}
            mix_figures: Analysis = measured()
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
                report_stage = reuse.keys.derived(
                    "QC report", file_stages, {"folder": str(out_dir), "notes": notes}
                )
                report, texts = reuse.value(
                    report_stage,
                    lambda: _report_with_texts(
                        assess(
                            session.title,
                            Path(session.path.name),
                            session.mastering.target if session.mastering else None,
                            mastered.limiting_db if mastered and mastered.limiter else None,
                            reports,
                            notes,
                        )
                    ),
                )
                report_files = write_texts(out_dir, texts, "the report")
            outputs = [("mix", d.path, d.description, mix_figures) for d in files]
            outputs += [("master", m.path, m.description, m.figures) for m in masters]
            outputs += [("report", path, "QC report", None) for path in report_files]
            manifest = build_manifest(
                session, inputs.result(), stages, outputs, reuse.output_sha256
            )
            manifest_path = write_manifest(manifest, out_dir)
    reuse.finish()
    return RenderResult(
        session=session,
        tracks=mix.tracks,
        duration_s=mix.frames / rate,
        master=mastered,
        files=tuple(files + masters),
        report=report,
        report_files=report_files,
        manifest=manifest_path,
        account=reuse.account,
    )


def _signal_hash(
    reuse: Incremental,
    pool: ThreadPoolExecutor,
    jobs: int,
    source: CacheStage,
    audio: Callable[[], np.ndarray],
) -> Callable[[], str]:
    """What gives the manifest's hash of the signal ``source`` made (0.08 s for 3 minutes of
    stereo): kept with the stage rather than taken again on every render (``audio`` is then
    never loaded)."""
    stage = reuse.keys.derived(f"hash of the {source.name}", [source])
    return _value_beside(reuse, pool, jobs, stage, lambda: audio_sha256(audio()))


def _value_beside(
    reuse: Incremental,
    pool: ThreadPoolExecutor,
    jobs: int,
    stage: CacheStage,
    make: Callable[[], T],
) -> Callable[[], T]:
    """What gives the value of ``stage``: from the cache, or made by ``make`` on a thread of
    ``pool`` meanwhile (where ``jobs`` allows) and stored when first asked for."""
    known = reuse.lookup(stage)
    if known is not None:
        return lambda: known  # type: ignore[no-any-return]
    making = _beside(pool, jobs, make)

    @functools.cache
    def made() -> T:
        reuse.keep(stage, making.result())
        return making.result()

    return made


def _write_files(
    reuse: Incremental,
    stage: Stage,
    audio: Callable[[], np.ndarray],
    source: CacheStage,
    session: Session,
    targets: list[tuple[Deliverable, str]],
    ceiling: Ceiling | None = None,
    *,
    verify: bool = False,
) -> tuple[list[Delivered], list[CacheStage]]:
    """Write ``audio()`` as each deliverable of ``targets`` in the output folder, from the cache
    where it holds the file; with ``verify`` (masters), measure each as written and hold it
    under ``ceiling``."""
    written, stages = [], []
    for deliverable, name in targets:
        path = session.output.dir / name
        stages.append(reuse.keys.output(name, deliverable, source, verified=verify))
        with stage(name):
            written.append(
                reuse.file(
                    stages[-1],
                    path,
                    lambda d=deliverable, path=path: deliver(
                        audio(), session.sample_rate, d, path, session.seed, ceiling, verify=verify
                    ),
                )
            )
    return written, stages


@contextmanager
def output_folder(out_dir: Path) -> Iterator[Path]:
    """``out_dir``, created if need be and cleared of the temporaries of a render that was
    killed outright; removed again if this render created it and fails before writing."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror})") from e
    audio_io.remove_stale_partials(out_dir)
    try:
        yield out_dir
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise


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
    if (wrong := problem_with(recorded)) is not None:
        raise OutputError(
            f"{recorded_path}: not a manifest render can verify against ({wrong}); expected "
            f"{MANIFEST_FORMAT} as a render writes it: render the session again to write one"
        )
    with tempfile.TemporaryDirectory(prefix="render-verify-") as scratch:
        elsewhere = replace(session, output=replace(session.output, dir=Path(scratch)))
        fresh = render_session(elsewhere, jobs, stage)  # no cache: everything is rendered
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


def _loading_plots(
    pool: ThreadPoolExecutor, jobs: int, make: Callable[..., T], after: bool = False
) -> Callable[..., T]:
    """``make``, which renders a new signal (so the report is drawn anew), with the plotting
    library imported on a thread of ``pool`` meanwhile, where ``jobs`` allows one; ``after``
    ``make`` has returned, for the mix: the import is Python that holds the GIL for 0.4 s,
    and beside the mix's stream it cost the strips' workers more than that (3.3 against 2.9
    s to stream the 16-track bench), where beside the mix's encoding and metering, which
    hold no GIL, it costs about nothing."""

    def made(*args: Any) -> T:
        if jobs > 1 and not after:
            pool.submit(page.preload)
        result = make(*args)
        if jobs > 1 and after:
            pool.submit(page.preload)
        return result

    return made


def write_report(report: Report, out_dir: Path) -> tuple[Path, ...]:
    """``qc.json`` and ``qc.html`` in ``out_dir``, each replaced atomically."""
    return write_texts(out_dir, _report_with_texts(report)[1], "the report")


def _report_with_texts(report: Report) -> tuple[Report, tuple[tuple[str, str], ...]]:
    """The report and its files: (name, text) of qc.json and qc.html."""
    texts = (report_json(report), render_html(report))
    return report, tuple(zip(QC_FILES, texts, strict=True))


def write_texts(out_dir: Path, texts: Iterable[tuple[str, str]], what: str) -> tuple[Path, ...]:
    """Each ``(name, text)`` as the UTF-8 file ``out_dir/name``, replaced atomically."""
    written = []
    for name, text in texts:
        path = out_dir / name
        with audio_io.atomic_path(path) as temporary:
            try:
                temporary.write_text(text, encoding="utf-8")
            except OSError as e:
                raise OutputError(f"{path}: cannot write {what} ({e.strerror})") from e
        written.append(path)
    return tuple(written)


def _name(deliverable: Deliverable, default_stem: str) -> str:
    return output_file_name(deliverable.name, default_stem, deliverable.format)


def premaster(
    session: Session,
    jobs: int,
    caching: CacheOptions = NO_CACHE,
    own_level: bool = False,
    own_goal_lufs: float | None = None,
) -> tuple[Mix, np.ndarray, float, Account]:
    """The mix of ``session`` and its mastering chain up to the final limiter: what an album
    measures before it knows every song's loudness goal (``master.master_at`` finishes it);
    with ``own_level``, also the loudness of the master at ``own_goal_lufs`` (the song's own
    level; NaN without); with ``caching``, each from the render cache where it holds them.
    The cache is left over its bound: the album bounds it once all its songs are kept."""
    reuse = Incremental(session, caching)
    render_plan = reuse.planned(plan(session))
    mix, mix_stage = reuse.mix(
        render_plan, lambda strips: render_mix(session, jobs, render_plan, strips)
    )
    master_plan = plan_master(session)
    before_stage = reuse.keys.limiter_input(mix_stage)
    before = reuse.value(before_stage, lambda: limiter_input(master_plan, mix.audio, session))
    loudness = math.nan
    if own_level:
        loudness = reuse.value(
            reuse.keys.derived("own level", [before_stage], {"goal": own_goal_lufs}),
            lambda: master_at(master_plan, before, session, own_goal_lufs).loudness_lufs,
        )
    reuse.finish(evict=False)
    return mix, before, loudness, reuse.account


def premaster_key(session: Session, caching: CacheOptions) -> str | None:
    """The cache key of ``premaster``'s limiter input, from the session and the hashes of
    its inputs alone (nothing is rendered, nothing is kept of this); None without a cache."""
    reuse = Incremental(session, caching)
    if reuse.cache is None:
        return None
    _, mix_stage = reuse.keys.strips(reuse.planned(plan(session)))
    reuse.digests.save()  # the stems it hashed: the render does not read them again
    return reuse.keys.limiter_input(mix_stage).key
