"""Shared fixtures: a seeded RNG and writers for small synthetic stems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 48_000

StemWriter = Callable[..., Path]


@pytest.fixture
def rng() -> np.random.Generator:
    """The only source of randomness in tests: seeded, so every run sees the same data."""
    return np.random.default_rng(20261124)


def write_stem(
    path: Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "DOUBLE"
) -> Path:
    """Write ``x`` (``[channels, samples]``) as a WAV; 64-bit float keeps it bit-exact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x).T, sample_rate, subtype=subtype, format="WAV")
    return path


def sine(
    frequency_hz: float, seconds: float, amplitude: float = 0.5, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A mono sine, ``[1, samples]``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t))[np.newaxis, :]


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """A session folder with ``stems/kick.wav`` (mono, 1 s) and a file outside it."""
    folder = tmp_path / "session"
    write_stem(folder / "stems" / "kick.wav", sine(60.0, 1.0))
    write_stem(tmp_path / "outside.wav", sine(60.0, 1.0))
    return folder
