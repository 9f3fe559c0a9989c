"""The ``render`` command: parse arguments, run the pipeline, print, return an exit code.

It holds no logic of its own; every input mistake arrives as a ``RenderError`` and leaves
as one paragraph on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from rich.console import Console

from render import __version__
from render.album.load import is_album, load_album
from render.cache import DEFAULT_MAX_BYTES, CacheOptions, parse_size
from render.errors import (
    EXIT_OK,
    EXIT_QC_FAILURE,
    EXIT_VERIFY_MISMATCH,
    RenderError,
    UsageError,
)
from render.memory import tune_allocator
from render.report.terminal import (
    print_album,
    print_album_report,
    print_render,
    print_report,
    progress,
)
from render.session import LoadOptions, load_session

EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT"

DESCRIPTION = """\
Render a session file: validate it against the session schema, mix its stems, master the
mix to its loudness and true-peak target, and write both to the output folder, measuring
every master file as written. The same session and stems always give the same bytes.
An album file (one with a top-level `songs` list) renders every song's session, brings
them to album loudness, and writes track files, one album file with a CUE sheet and an
album QC report.
"""

EPILOG = """\
outputs:
  Files go to --out DIR, else the session's output.dir, else out/ beside the session file.
  The mix is written as mix.wav (24-bit, TPDF dither) unless output.mix says otherwise;
  with a mastering section, the master as "<title>.wav" unless output.master says otherwise.
  Every file is written to a temporary name and renamed when complete: an interrupted
  render leaves no partial file. An output folder may not contain or equal an input.

exit status:
  0  the session rendered (or, with --check, is valid)
  1  input error: the session, a stem or an output folder is wrong; every problem is
     listed as FILE:LINE:COLUMN: KEY: message
  2  usage error: the command line itself is wrong
  3  QC failure: a check failed (with --strict, or warned); see qc.json / qc.html
  4  --verify: a fresh render differs from the manifest (what differs is listed)
  130 interrupted (Ctrl-C or SIGTERM); nothing partial is left behind

examples:
  render sessions/demo/session.yaml
  render sessions/demo-album/album.yaml --jobs 2   songs rendered two at a time
  render --check sessions/*/session.yaml     validate, e.g. in a pre-commit hook
  render song.yaml --out build/ --jobs 2 --quiet
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="render",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sessions",
        metavar="SESSION",
        nargs="+",
        type=Path,
        help="session or album file(s) (YAML, format version 1)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write outputs to DIR instead of the session's output folder",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="validate only: report every problem, render nothing, touch no file",
    )
    mode.add_argument(
        "--report-only",
        action="store_true",
        help="render nothing: measure the outputs of an earlier render again and rewrite "
        "the QC report",
    )
    mode.add_argument(
        "--verify",
        action="store_true",
        help="render again into a temporary folder and compare with the manifest of the last "
        "render: exit 0 if every output is identical, 4 with what differs",
    )
    parser.add_argument(
        "--strict", action="store_true", help="a QC warning fails the render too (exit 3)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--jobs",
        metavar="N",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="tracks (of an album: songs) rendered at once (default: the number of CPU "
        "cores); the output is identical for every N",
    )
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument(
        "--cache",
        metavar="DIR",
        type=Path,
        help="keep the render cache in DIR (default: .render-cache/ beside each session)",
    )
    caching.add_argument(
        "--no-cache",
        action="store_true",
        help="render every stage and neither read nor write the render cache",
    )
    parser.add_argument(
        "--cache-max",
        metavar="SIZE",
        type=_size,
        default=DEFAULT_MAX_BYTES,
        help="bound the cache to SIZE (like 2GB or 500MB; default 4GB), dropping first the "
        "least recently used entries that no session's next render reuses; a render warns "
        "when it had to drop those too",
    )
    parser.add_argument(
        "--allow-outside-paths",
        action="store_true",
        help="let stems and files referenced by a session lie outside the session's folder",
    )
    parser.add_argument("--version", action="version", version=f"render {__version__}")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.out is not None and len(args.sessions) > 1:
        print(
            "render: --out takes one session; got several (their outputs would collide)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    tune_allocator()
    status = EXIT_OK
    console = Console(highlight=False, soft_wrap=True)
    for session_path in args.sessions:
        try:
            status = max(status, _run_one(session_path, args, console))
        except RenderError as e:
            print(e, file=sys.stderr)
            status = max(status, e.exit_code)
        except KeyboardInterrupt:
            print(
                f"render: interrupted while rendering {session_path}; no partial output was left",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    return status


def run() -> NoReturn:
    """The ``render`` command: ``main``, then the process ends at once with its status.

    When ``main`` returns, a render has finished all its work (files written and renamed,
    cache entries stored, its threads' results waited for), and an interrupted one has
    removed what it left half-written on its way out. What remains is the interpreter's
    teardown, which clears every loaded module (matplotlib, scipy, numba: 0.2 s of a render
    command), so it is skipped once the output streams are flushed. Usage errors (argparse)
    exit through ``SystemExit`` as before."""
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that has gone (``render ... | head``)
            stream.flush()
    os._exit(status)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_one(session_path: Path, args: argparse.Namespace, console: Console) -> int:
    """Check, render or re-measure one session; the exit status its QC verdict earns."""
    options = LoadOptions(allow_outside_paths=args.allow_outside_paths, out_dir=args.out)
    if is_album(session_path):
        return _run_album(session_path, options, args, console)
    session = load_session(session_path, options)
    if args.check:
        if not args.quiet:
            count = len(session.tracks)
            console.print(f"{session_path}: valid ({count} track{'s' if count != 1 else ''})")
        return EXIT_OK
    # The engine is imported only once there is something to render: its libraries take
    # seconds to load, which validating a session (--check) need not wait for.
    from render.pipeline import render_session, report_outputs, verify_session

    started = time.perf_counter()
    if args.verify:
        with progress(console if not args.quiet else Console(quiet=True)) as stage:
            differences, compared = verify_session(session, args.jobs, stage)
        for difference in differences:
            print(
                f"{session_path}: differs: {difference.stage}: {difference.what}", file=sys.stderr
            )
        if not differences and not args.quiet:
            console.print(
                f"{session_path}: verified: {compared} outputs identical to the manifest",
                highlight=False,
                markup=False,
            )
        return EXIT_VERIFY_MISMATCH if differences else EXIT_OK
    with progress(console if not args.quiet else Console(quiet=True)) as stage:
        if args.report_only:
            report, written = report_outputs(session, stage)
        else:
            result = render_session(session, args.jobs, stage, _caching(args))
            report, written = result.report, result.report_files
    if not args.quiet:
        if args.report_only:
            console.print(f"{session.title} ({session_path})", highlight=False, markup=False)
            print_report(console, report, written)
        else:
            print_render(console, session_path, result, time.perf_counter() - started)
    return _qc_exit(report.status, args.strict)


def _qc_exit(status: str, strict: bool) -> int:
    """Exit 3 when a QC check failed (or, ``strict``, warned)."""
    failing = ("fail", "warn") if strict else ("fail",)
    return EXIT_QC_FAILURE if status in failing else EXIT_OK


def _run_album(
    album_path: Path, options: LoadOptions, args: argparse.Namespace, console: Console
) -> int:
    """Check or render one album file."""
    album = load_album(album_path, options)
    if args.check:
        if not args.quiet:
            console.print(f"{album_path}: valid album ({len(album.songs)} songs)")
        return EXIT_OK
    if args.verify or args.report_only:
        option = "--verify" if args.verify else "--report-only"
        raise UsageError(
            f"render: {option} takes session files; {album_path} is an album. Expected a "
            "session file, or no such option to render the album"
        )
    from render.album.build import render_album  # the engine, as in _run_one

    started = time.perf_counter()
    with progress(console if not args.quiet else Console(quiet=True)) as stage:
        result = render_album(album, args.jobs, stage, _caching(args))
    if not args.quiet:
        print_album(console, album_path, result, time.perf_counter() - started)
        print_album_report(console, result.report, result.report_files)
    return _qc_exit(result.report.status, args.strict)


def _caching(args: argparse.Namespace) -> CacheOptions:
    return CacheOptions(not args.no_cache, args.cache, args.cache_max)
