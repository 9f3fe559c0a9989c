"""Incremental re-render benchmark (not a test): the 16-stem, 3-minute session of
``mix_bench.py``, rendered cold into an empty cache, then again with nothing changed, after
changing one track's EQ, after replacing one stem file by a new one, after overwriting
another stem file in place, and after changing only the mix bus's compressor. Prints each
time and its ratio to the cold render (targets: <= 10 %, <= 35 %, <= 35 %), and the cold
render without a cache for reference. Each render runs in its own process, timed after the
imports (numba's start included, where a render needs it), and the whole process too: what a
user of the command waits.

The mix bus change renders no track: every bus input comes from the cache, and what runs is
what any change that reaches the mix must run again: numba's start, the returns' effects
(the render before changed their input, as an EQ or stem change does, so their output is
not kept yet), the mix bus, and the mix's file, analysis and report. It is the floor under
the EQ and stem figures, which add only the changed track.

    python bench/cache_bench.py [--jobs N] [--runs 3]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from mix_bench import SECONDS, arguments, build_session, peak_rss_mb, start_engine

CHANGED_TRACK_EQ = ("{peak: 400 Hz, gain: -3 dB", "{peak: 420 Hz, gain: -3 dB")
CHANGED_MIX_BUS = ("{compressor: {threshold: -10 dB,", "{compressor: {threshold: -11 dB,")


def child(session: Path, jobs: int, cache: str) -> None:
    from render.cache import CacheOptions
    from render.pipeline import render_session
    from render.session import LoadOptions, load_session

    start_engine(kernels=False)  # numba's start is timed: an unchanged render needs none
    caching = CacheOptions(enabled=cache != "none", folder=None if cache == "none" else Path(cache))
    started = time.perf_counter()
    loaded = load_session(session, LoadOptions(out_dir=session.parent / "out"))
    result = render_session(loaded, jobs, caching=caching)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mb": peak_rss_mb(),
                "reused": len(result.account.reused),
                "rendered": len(result.account.rendered),
            }
        )
    )


def measure(session: Path, jobs: int, cache: str) -> dict[str, float]:
    """One render's figures, and the wall time of its whole process (``command_seconds``):
    what a user of the command waits, start-up and imports (~1.5 s here) included."""
    command = [sys.executable, __file__, "--child", str(session), "--jobs", str(jobs)]
    started = time.perf_counter()
    output = subprocess.run(
        [*command, "--cache", cache], check=True, capture_output=True, text=True
    ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return {**figures, "command_seconds": time.perf_counter() - started}


def edit(session: Path, change: tuple[str, str]) -> None:
    """Replace the first occurrence of ``change[0]`` in the session file by ``change[1]``."""
    text = session.read_text()
    assert change[0] in text, change
    session.write_text(text.replace(*change, 1))


def replace_stem(session: Path, index: int, in_place: bool) -> None:
    """Write stem ``index`` (in name order) again, 1 dB quieter: as a new file renamed over
    it (as git, rsync and most exports do) or ``in_place`` over its bytes (as ``cp`` does)."""
    stem = sorted((session.parent / "stems").glob("*.wav"))[index]
    x, rate = sf.read(str(stem), always_2d=True)
    target = stem if in_place else stem.with_suffix(".new.wav")
    sf.write(str(target), x * 10 ** (-1 / 20), rate, subtype="PCM_24", format="WAV")
    target.replace(stem)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path)
    parser.add_argument("--cache", default="none")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.jobs, args.cache)
        sys.stdout.flush()
        os._exit(0)  # as the command ends (render.cli.run): without the interpreter's teardown
    source = build_session(args.folder)
    print(f"session: {source} (16 stems x {SECONDS} s), jobs={args.jobs}, best of {args.runs}")
    best: dict[str, dict[str, float]] = {}

    def keep(name: str, figures: dict[str, float]) -> None:
        if name not in best or figures["seconds"] < best[name]["seconds"]:
            best[name] = figures

    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="render-cache-bench-") as scratch:
            work = Path(scratch) / "song"
            shutil.copytree(source.parent, work, ignore=shutil.ignore_patterns("out"))
            session, cache = work / "session.yaml", str(Path(scratch) / "cache")
            keep("cold, no cache", measure(session, args.jobs, "none"))
            keep("cold, empty cache", measure(session, args.jobs, cache))
            keep("nothing changed", measure(session, args.jobs, cache))
            edit(session, CHANGED_TRACK_EQ)  # the first track's 400 Hz cut to 420 Hz
            keep("one track's EQ changed", measure(session, args.jobs, cache))
            replace_stem(session, -1, in_place=False)
            keep("one stem replaced", measure(session, args.jobs, cache))
            replace_stem(session, -2, in_place=True)
            keep("one stem overwritten", measure(session, args.jobs, cache))
            edit(session, CHANGED_MIX_BUS)
            keep("mix bus only changed", measure(session, args.jobs, cache))
    cold = best["cold, empty cache"]
    print("render timed after the imports; in brackets the whole process, start-up included")
    for name, figures in best.items():
        seconds, whole = figures["seconds"], figures["command_seconds"]
        print(
            f"{name:>24}: {seconds:6.2f} s  {seconds / cold['seconds']:6.1%} of cold"
            f"  ({whole:.2f} s, {whole / cold['command_seconds']:.1%})"
            f"  ({SECONDS / seconds:.0f}x realtime, peak RSS "
            f"{figures['peak_rss_mb']:.0f} MB, {figures['reused']:.0f} stages reused, "
            f"{figures['rendered']:.0f} rendered)"
        )


if __name__ == "__main__":
    main()
