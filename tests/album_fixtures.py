"""A small generated album for the album tests: three songs of a few seconds, each its own
session with its own stems, chain and loudness target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from tests.conftest import SAMPLE_RATE, write_stem

SONG_SECONDS = 4.0
OWN_TARGETS_LUFS = (-14.0, -18.0, -20.0)
"""Each song's own loudness: the album keeps their differences (4 and 6 LU) in mode album."""


def song_stems(rng: np.random.Generator, folder: Path, index: int) -> None:
    """A chord of sines and bursts of noise below 10 kHz: stationary enough for a stable
    level, different in spectrum from song to song (so the tonal balance differs), and with
    nothing near Nyquist that a 44.1 kHz deliverable would lose."""
    n = round(SONG_SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    root_hz = (110.0, 220.0, 330.0)[index]
    chord = sum(np.sin(2 * np.pi * root_hz * k * t) / k for k in (1, 2, 3, 5))
    write_stem(folder / "chord.wav", 0.2 * chord[np.newaxis, :])
    noise = signal.sosfilt(
        signal.butter(8, 10_000, fs=SAMPLE_RATE, output="sos"), rng.standard_normal((2, n))
    )
    bursts = noise * (np.sin(2 * np.pi * 2.0 * t) > 0)
    write_stem(folder / "noise.wav", 0.1 * bursts)


def session_text(index: int, stems: str) -> str:
    chain = (
        "[{compressor: {threshold: -20 dB, ratio: 2}}, {limiter: {release: 50 ms}}]"
        if index < 2
        else "[]"  # no limiter: the renderer appends a true-peak limiter
    )
    return (
        f"version: 1\ntitle: Song {index + 1}\nstems: {stems}\n"
        "tracks:\n  chord: {stem: chord.wav}\n  noise: {stem: noise.wav, gain: -6 dB}\n"
        f"mastering:\n  chain: {chain}\n"
        f"  target: {{loudness: {OWN_TARGETS_LUFS[index]}, true_peak: -1}}\n"
    )


def write_album(rng: np.random.Generator, folder: Path, album_yaml: str) -> Path:
    """Three songs in ``folder/songN/`` and ``album.yaml`` (its songs list written here)."""
    for index in range(3):
        song_dir = folder / f"song{index + 1}"
        song_stems(rng, song_dir / "stems", index)
        (song_dir / "session.yaml").write_text(session_text(index, "stems"))
    path = folder / "album.yaml"
    path.write_text(album_yaml)
    return path
