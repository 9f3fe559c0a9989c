"""Mix-render benchmark (not a test): a 16-stem, 3-minute, 48 kHz session.

Builds the session once from the demo stems (looped and offset, seeded), with a typical
chain on every track (4-band EQ + compressor), drum and music sub-buses, a reverb and a
delay return, and a mix-bus compressor. Then it times, and prints x-realtime and peak RSS
for:

- ``mix``: the mix render, the work the pedalboard chain does: loading the session,
  decoding the stems, mixing, and writing the mix file (the engine's ``render_mix`` and
  ``deliver``, as ``render`` calls them);
- ``render``: the whole of what the command does for this session: the mix render, and
  beside and after it the QC analysis, the report with its plots, the stems' sha256 and the
  manifest;
- ``pedalboard``: the equivalent chain built with pedalboard, in the same run.

Each measurement runs in its own process, so peak RSS is that run's own.

    python bench/mix_bench.py [--jobs N] [--runs 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DEMO_STEMS = REPO / "sessions" / "demo" / "stems"
SAMPLE_RATE = 48_000
SECONDS = 180
STEM_ROLES = [
    "drums",
    "drums",
    "drums",
    "bass",
    "bass",
    "guitar",
    "guitar",
    "guitar",
    "pad",
    "pad",
    "pad",
    "lead",
    "lead",
    "lead",
    "guitar",
    "pad",
]
EQ = (
    "{highpass: 40 Hz, bands: [{low_shelf: 120 Hz, gain: -2 dB}, {peak: 400 Hz, gain: -3 dB, "
    "q: 1.4}, {peak: 3 kHz, gain: 2 dB}, {high_shelf: 10 kHz, gain: 1.5 dB}]}"
)
COMPRESSOR = "{threshold: -20 dB, ratio: 3, attack: 10 ms, release: 120 ms, knee: 6 dB}"


def build_session(folder: Path, seed: int = 16) -> Path:
    """Write 16 stems (24-bit WAV) and the session file into ``folder``; reuse if present."""
    session = folder / "session.yaml"
    if session.exists():
        return session
    rng = np.random.default_rng(seed)
    n = SECONDS * SAMPLE_RATE
    (folder / "stems").mkdir(parents=True, exist_ok=True)
    tracks = []
    for index, role in enumerate(STEM_ROLES):
        source, _ = sf.read(str(DEMO_STEMS / f"{role}.flac"), always_2d=True)
        offset = int(rng.integers(0, source.shape[0]))
        looped = np.resize(np.roll(source, -offset, axis=0), (n, source.shape[1]))
        looped *= 10 ** (rng.uniform(-4, 0) / 20)
        name = f"{role}{index:02d}"
        sf.write(str(folder / "stems" / f"{name}.wav"), looped, SAMPLE_RATE, subtype="PCM_24")
        bus = "drum_bus" if role == "drums" else "music_bus"
        pan = f"{rng.uniform(-0.6, 0.6):.2f}"
        tracks.append(
            f"  {name}:\n    stem: {name}.wav\n    pan: {pan}\n    gain: -6 dB\n    out: {bus}\n"
            f"    sends: {{plate: -18 dB, echo: -24 dB}}\n"
            f"    inserts:\n      - eq: {EQ}\n      - compressor: {COMPRESSOR}\n"
        )
    session.write_text(
        "version: 1\ntitle: Bench Sixteen\nsample_rate: 48000\nstems: stems\ntempo: 112\n"
        "tracks:\n" + "".join(tracks) + "buses:\n"
        "  drum_bus: {inserts: [{compressor: {threshold: -14 dB, ratio: 2, attack: 20 ms}}]}\n"
        "  music_bus: {inserts: [{compressor: {threshold: -16 dB, ratio: 1.5}}]}\n"
        "  plate: {inserts: [{reverb: {decay: 1.8 s, predelay: 20 ms}}]}\n"
        "  echo: {inserts: [{delay: {time: 1/8., feedback: 35%, lowpass: 6 kHz}}]}\n"
        "mix:\n  inserts: [{compressor: {threshold: -10 dB, ratio: 1.5, attack: 30 ms}}]\n"
    )
    return session


def start_engine(kernels: bool = True) -> None:
    """Import the renderer and, with ``kernels``, what a render loads on first use: numba's
    compiler (loading the first kernel from its cache takes ~0.3 s), outside the timing."""
    from render.dsp.kernel_math import exp_each
    from render.memory import tune_allocator
    from render.pipeline import render_session  # noqa: F401

    if kernels:
        exp_each(np.zeros(1))
    tune_allocator()  # as the command line does


def run_render(session: Path, jobs: int) -> dict[str, float]:
    from render.pipeline import render_session
    from render.session import LoadOptions, load_session

    start_engine()

    with tempfile.TemporaryDirectory() as out, Timed() as timed:
        loaded = load_session(session, LoadOptions(out_dir=Path(out)))
        render_session(loaded, jobs)
    return timed.figures


def run_mix(session: Path, jobs: int) -> dict[str, float]:
    from render.deliver import deliver
    from render.mix import render_mix
    from render.session import LoadOptions, load_session

    start_engine()

    with tempfile.TemporaryDirectory() as out, Timed() as timed:
        loaded = load_session(session, LoadOptions(out_dir=Path(out)))
        mix = render_mix(loaded, jobs)
        for index, deliverable in enumerate(loaded.output.mix):
            path = Path(out) / f"mix-{index}"
            deliver(mix.audio, loaded.sample_rate, deliverable, path, loaded.seed)
    return timed.figures


def run_pedalboard(session: Path, jobs: int) -> dict[str, float]:
    """The same graph with pedalboard's effects (its Freeverb stands in for our convolution
    reverb): decode, per-track EQ + compressor, buses, returns, mix compressor, write."""
    import pedalboard as pb
    from pedalboard.io import AudioFile

    def chain() -> pb.Pedalboard:
        return pb.Pedalboard(
            [
                pb.HighpassFilter(40),
                pb.LowShelfFilter(120, -2),
                pb.PeakFilter(400, -3, 1.4),
                pb.PeakFilter(3000, 2),
                pb.HighShelfFilter(10000, 1.5),
                pb.Compressor(-20, 3, 10, 120),
            ]
        )

    with Timed() as timed:
        n = SECONDS * SAMPLE_RATE
        buses = {name: np.zeros((2, n), np.float32) for name in ("drum", "music", "plate", "echo")}
        for stem in sorted((session.parent / "stems").glob("*.wav")):
            with AudioFile(str(stem)) as f:
                x = f.read(f.frames)
            y = chain()(x, SAMPLE_RATE)
            stereo = np.vstack([y, y]) * 0.7071 if y.shape[0] == 1 else y
            stereo *= 10 ** (-6 / 20)
            buses["drum" if stem.name.startswith("drums") else "music"] += stereo
            buses["plate"] += stereo * 10 ** (-18 / 20)
            buses["echo"] += stereo * 10 ** (-24 / 20)
        mix = pb.Compressor(-14, 2, 20)(buses["drum"], SAMPLE_RATE)
        mix += pb.Compressor(-16, 1.5)(buses["music"], SAMPLE_RATE)
        mix += pb.Reverb(room_size=0.6, wet_level=1.0, dry_level=0.0)(buses["plate"], SAMPLE_RATE)
        mix += pb.Delay(0.402, 0.35, 1.0)(buses["echo"], SAMPLE_RATE)
        mix = pb.Compressor(-10, 1.5, 30)(mix, SAMPLE_RATE)
        with (
            tempfile.TemporaryDirectory() as out,
            AudioFile(str(Path(out) / "mix.wav"), "w", SAMPLE_RATE, 2, bit_depth=24) as f,
        ):
            f.write(mix)
    return timed.figures


RUNS = {"mix": run_mix, "render": run_render, "pedalboard": run_pedalboard}


class Timed:
    """Wall time of a ``with`` block, and the processor time the hypervisor gave to other
    machines meanwhile (Linux's steal time, all CPUs): on a shared virtual machine a run
    that lost more than a few tenths of a second to steal measured the host, not the
    renderer."""

    def __enter__(self) -> Timed:
        self.figures: dict[str, float] = {}
        self._steal_s, self._started = host_steal_s(), time.perf_counter()
        return self

    def __exit__(self, *exception: object) -> None:
        self.figures["seconds"] = time.perf_counter() - self._started
        self.figures["steal_s"] = host_steal_s() - self._steal_s


def host_steal_s() -> float:
    """Steal time so far, summed over the CPUs (``/proc/stat``), in s; 0 where unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def peak_rss_mb() -> float:
    """This process's largest resident set, in MB: Linux's VmHWM, which starts afresh at
    exec. ``ru_maxrss`` does not: a child started by a parent holding 300 MB reports at least
    300 MB, whatever it uses itself (the cache bench's parent reads stems to replace them)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, session: Path, jobs: int) -> None:
    result = RUNS[kind](session, jobs)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure(kind: str, session: Path, jobs: int) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--folder",
            str(session.parent),
            "--jobs",
            str(jobs),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every benchmark of the 16-stem session takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "render-bench16"
    )
    return parser


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--child", choices=list(RUNS))
    args = parser.parse_args()
    session = build_session(args.folder)
    if args.child:
        child(args.child, session, args.jobs)
        return
    print(f"session: {session} (16 stems x {SECONDS} s at {SAMPLE_RATE} Hz), jobs={args.jobs}")
    best: dict[str, dict[str, float]] = {}
    for kind in RUNS:
        runs = [measure(kind, session, args.jobs) for _ in range(args.runs)]
        best[kind] = min(runs, key=lambda r: r["seconds"])
        figures = best[kind]
        print(
            f"{kind:>10}: {figures['seconds']:.2f} s  {SECONDS / figures['seconds']:.1f}x realtime"
            f"  peak RSS {figures['peak_rss_mb']:.0f} MB  (best of {args.runs};"
            f" steal {figures['steal_s']:.2f} s)"
        )
    ratio = best["pedalboard"]["seconds"] / best["mix"]["seconds"]
    print(f"the mix render is {ratio:.2f}x the speed of the pedalboard baseline")


if __name__ == "__main__":
    main()
