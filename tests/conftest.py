"""Shared fixtures: a seeded RNG, writers for small synthetic stems, and a render in a
fresh process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 48_000
REPO = Path(__file__).resolve().parent.parent

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


def render_in_a_fresh_process(
    folder: Path, report: str, env: dict[str, str] | None = None
) -> list[str]:
    """Render ``folder/session.yaml`` into ``folder/out`` in a new interpreter (nothing
    loaded yet), then run the statements ``report`` there (with ``result``, the render's
    result, and ``sys``); the lines they print."""
    probe = (
        "import sys; from pathlib import Path\n"
        "from render.pipeline import render_session\n"
        "from render.session import LoadOptions, load_session\n"
        f"folder = Path({str(folder)!r})\n"
        "s = load_session(folder / 'session.yaml', LoadOptions(out_dir=folder / 'out'))\n"
        f"result = render_session(s, 2)\n{report}\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()
