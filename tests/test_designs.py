"""Filter designs kept between runs (``render.designs``), and the start-up they save."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from render import designs
from render.dsp import saturation
from tests.conftest import render_in_a_fresh_process, sine, write_stem


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "render" / "designs"


def test_a_design_is_made_once_then_loaded(cache_home: Path) -> None:
    arguments = saturation.resampler_design(4)
    made = designs.kept("resampler", arguments, lambda: saturation.resampling_filter(4))
    (kept_file,) = cache_home.iterdir()
    assert np.array_equal(made, saturation.resampling_filter(4))

    def never() -> np.ndarray:
        raise AssertionError("designed again")

    assert np.array_equal(designs.kept("resampler", arguments, never), made)
    other = designs.kept("resampler", saturation.resampler_design(2), lambda: np.ones(3))
    assert other.tolist() == [1.0, 1.0, 1.0] and len(list(cache_home.iterdir())) == 2
    assert kept_file.exists()


@pytest.mark.parametrize("damage", [b"", b"not an array", None])
def test_a_damaged_design_is_made_again_and_replaced(
    cache_home: Path, damage: bytes | None
) -> None:
    designs.kept("taps", {"n": 3}, lambda: np.arange(3.0))
    (kept_file,) = cache_home.iterdir()
    if damage is None:
        np.save(kept_file, np.array([1.0, np.nan]))  # loads, but is not a usable design
    else:
        kept_file.write_bytes(damage)
    assert designs.kept("taps", {"n": 3}, lambda: np.arange(3.0)).tolist() == [0.0, 1.0, 2.0]
    assert np.load(kept_file).tolist() == [0.0, 1.0, 2.0]


def test_an_unwritable_cache_only_costs_the_design(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert designs.kept("taps", {"n": 2}, lambda: np.ones(2)).tolist() == [1.0, 1.0]


def test_a_kept_resampler_spares_saturation_the_scipy_signal_import(tmp_path: Path) -> None:
    """The first render with saturation designs its resampler (importing scipy.signal);
    the next, of any session, loads the kept taps and never imports it."""
    write_stem(tmp_path / "stems" / "bass.wav", sine(55.0, 1.0, 0.4))
    (tmp_path / "session.yaml").write_text(
        "version: 1\nstems: stems\ntracks:\n  bass:\n    stem: bass.wav\n"
        "    inserts: [{saturation: {drive: 6 dB}}]\n"
    )
    # A fresh design cache, numba's own as it is (importing render set NUMBA_CACHE_DIR).
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    report = "print('scipy.signal' in sys.modules)"
    loaded = [render_in_a_fresh_process(tmp_path, report, env) for _ in range(2)]
    assert loaded == [["True"], ["False"]]
