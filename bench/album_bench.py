"""Album benchmark (not a test): render a 10-song album of 3-minute songs, each its own
session, with --jobs 1 and --jobs 2.

The songs are generated and seeded (the same bytes on every run): three mono stems each (a
chord pad, a bass line and noise-burst percussion at a tempo of its own), an EQ and a
compressor per track, a mastering chain (EQ, compressor, true-peak limiter) with its own
loudness target. The album: mode album to -14 LUFS / -1 dBTP, pre-gaps and one crossfade,
a 24-bit FLAC per track and one continuous 16-bit 44.1 kHz FLAC with its CUE sheet. Timed:
``render album.yaml --no-cache`` as a user runs it (a fresh process, wall clock; every song
rendered in full, as on a first build), best of ``--runs``, after one warm-up render that
compiles the numba kernels.

    python bench/album_bench.py [--runs 3] [--songs 10] [--seconds 180]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 48_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--songs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        album = write_album(Path(scratch), args.songs, args.seconds)
        render(album, Path(scratch) / "warm-up", 2)
        audio_s = args.songs * args.seconds
        print(
            f"album of {args.songs} songs x {args.seconds:.0f} s at {RATE} Hz, best of {args.runs}:"
        )
        for jobs in (1, 2):
            seconds = min(
                render(album, Path(scratch) / f"out-{jobs}", jobs) for _ in range(args.runs)
            )
            print(f"  --jobs {jobs}  {seconds:6.1f} s  ({audio_s / seconds:.0f}x realtime)")
    # The largest resident set of any render process (a worker or the main one), in MB.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  peak RSS {peak_mb:.0f} MB (the largest of the render processes)")


def render(album: Path, out: Path, jobs: int) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "render", str(album), "--jobs", str(jobs), "--quiet"]
    command.append("--no-cache")  # every song's mix rendered in full, as on a first build
    subprocess.run([*command, "--out", str(out)], check=True)
    return time.perf_counter() - started


def write_album(folder: Path, songs: int, seconds: float) -> Path:
    rng = np.random.default_rng(20261202)
    entries = []
    for number in range(1, songs + 1):
        song = folder / f"song{number:02d}"
        write_stems(song / "stems", rng, seconds)
        target = -14.0 - float(rng.integers(0, 5))
        (song / "session.yaml").write_text(SESSION.format(number=number, target=target))
        options = [f"session: song{number:02d}/session.yaml"]
        options += ["gap_before: 2 s"] if number > 1 and number != 6 else []
        options += ["crossfade: 3 s"] if number == 5 else []  # into song 6
        entries.append(f"  - {{{', '.join(options)}}}")
    path = folder / "album.yaml"
    path.write_text(ALBUM + "\n".join(entries) + "\n")
    return path


def write_stems(folder: Path, rng: np.random.Generator, seconds: float) -> None:
    folder.mkdir(parents=True)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    root_hz = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    beat_hz = float(rng.uniform(1.5, 2.2))
    chord = sum(np.sin(2 * np.pi * root_hz * ratio * t) for ratio in (2.0, 2.5, 3.0)) / 3
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / 8.0)
    bass = np.sin(2 * np.pi * root_hz / 2 * t) * (0.5 + 0.5 * (np.sin(2 * np.pi * beat_hz * t) > 0))
    hits = np.exp(-30.0 * ((t * beat_hz) % 1.0) / beat_hz) * rng.standard_normal(n)
    for name, x in (("pad", 0.2 * chord * swell), ("bass", 0.3 * bass), ("drums", 0.3 * hits)):
        sf.write(str(folder / f"{name}.flac"), x, RATE, subtype="PCM_24")


SESSION = """\
version: 1
title: Song {number}
stems: stems
tracks:
  pad:
    stem: pad.flac
    pan: L20
    inserts: [{{eq: {{highpass: 120 Hz, bands: [{{peak: 800 Hz, gain: -2 dB}}]}}}}]
  bass:
    stem: bass.flac
    inserts:
      - eq: {{highpass: 35 Hz}}
      - compressor: {{threshold: -20 dB, ratio: 3}}
  drums:
    stem: drums.flac
    inserts: [{{eq: {{highpass: 40 Hz, bands: [{{high_shelf: 8 kHz, gain: +2 dB}}]}}}}]
mastering:
  chain:
    - eq: {{bands: [{{low_shelf: 90 Hz, gain: +1 dB}}]}}
    - compressor: {{threshold: -14 dB, ratio: 1.5, attack: 30 ms}}
    - limiter: {{release: 80 ms}}
  target: {{loudness: {target} LUFS, true_peak: -1 dBTP}}
"""

ALBUM = """\
version: 1
title: Bench Album
artist: Bench
loudness: {mode: album, target: {preset: spotify}}
deliver:
  tracks: {format: flac, bit_depth: 24}
  album: {format: flac, bit_depth: 16, sample_rate: 44100}
songs:
"""


if __name__ == "__main__":
    main()
