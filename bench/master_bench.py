"""Mastering benchmark (not a test): master and measure a 3-minute, 48 kHz stereo mix.

The mix is the demo session's own mix, rendered once and looped to 3 minutes; the chain and
target are the demo's (mid/side EQ, glue compressor, true-peak limiter, -14 LUFS / -1 dBTP).
Timed: the mastering chain and the loudness search (``render.master``), then writing the
24-bit master and measuring it again as written (``render.deliver``), best of ``--runs``,
after one warm-up that compiles the numba kernels.

    python bench/master_bench.py [--runs 3] [--seconds 180]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from render.deliver import Ceiling, deliver
from render.master import master
from render.mix import render_mix
from render.session import LoadOptions, load_session
from render.session.model import Deliverable

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "demo"
        shutil.copytree(REPO / "sessions" / "demo", folder, ignore=shutil.ignore_patterns("out"))
        session = load_session(folder / "session.yaml", LoadOptions())
        rate = session.sample_rate
        song = render_mix(session, jobs=2).audio
        mix = np.tile(song, (1, int(np.ceil(args.seconds * rate / song.shape[1]))))
        mix = np.ascontiguousarray(mix[:, : round(args.seconds * rate)])
        out = Path(scratch) / "master.wav"
        run(mix[:, : 5 * rate], session, out)  # warm-up: numba compiles
        timings = [run(mix, session, out) for _ in range(args.runs)]
    best = min(timings, key=lambda t: t["total"])
    print(f"master + measure of {args.seconds:.0f} s stereo at {rate} Hz, best of {args.runs}:")
    for stage, seconds in best.items():
        print(f"  {stage:<8} {seconds:6.2f} s")
    print(f"  speed    {args.seconds / best['total']:.0f}x realtime")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def run(mix: np.ndarray, session, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    mastered = master(mix, session)
    chained = time.perf_counter()
    assert mastered.ceiling_dbtp is not None
    written = deliver(
        mastered.audio,
        session.sample_rate,
        Deliverable(),
        out,
        session.seed,
        Ceiling(mastered.ceiling_dbtp, mastered.limiter),
        verify=True,
    )
    done = time.perf_counter()
    assert written.figures is not None
    return {"master": chained - started, "deliver": done - chained, "total": done - started}


if __name__ == "__main__":
    main()
