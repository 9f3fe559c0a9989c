"""Valid sessions load into the model; the format's full vocabulary renders; every example
session shipped in sessions/ validates."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from render.album.load import is_album, load_album
from render.pipeline import render_session
from render.session import load_session
from render.session.model import Compressor, Eq, Session

HERE = Path(__file__).parent
VALID = sorted((HERE / "sessions" / "valid").glob("*.yaml"))
EXAMPLE_FILES = sorted((HERE.parent / "sessions").glob("*/*.yaml"))
EXAMPLES = [path for path in EXAMPLE_FILES if not is_album(path)]
ALBUMS = [path for path in EXAMPLE_FILES if is_album(path)]


def load_copy(case: Path, session_dir: Path) -> Session:
    shutil.copy(case, session_dir / case.name)
    return load_session(session_dir / case.name)


@pytest.mark.parametrize("case", VALID, ids=[case.stem for case in VALID])
def test_valid_session_loads(case: Path, session_dir: Path) -> None:
    session = load_copy(case, session_dir)
    assert session.tracks and all(track.stem.is_file() for track in session.tracks)


def test_units_and_defaults_reach_the_model(session_dir: Path) -> None:
    """Values in engineer's units arrive in the model's units; omitted keys take defaults."""
    session = load_copy(HERE / "sessions" / "valid" / "every_rendered_key.yaml", session_dir)
    kick, double, solo = session.tracks
    assert (kick.gain_db, kick.pan, kick.start_s) == (-3.5, -0.3, 0.25)
    assert (kick.trim.start_s, kick.trim.end_s) == (0.1, 0.9)
    assert (kick.fade_out.length_s, kick.fade_out.curve) == (0.2, "s_curve")
    assert kick.polarity == "inverted" and double.mute and solo.solo
    assert double.gain_db == -math.inf and double.pan == -0.25
    assert (solo.gain_db, solo.pan, solo.fade_in.curve) == (0.0, 0.0, "exponential")
    assert (session.sample_rate, session.seed, session.tempo_bpm) == (44100, 7, 120.0)
    assert session.mix.gain_db == -1.0
    assert session.output.dir == session_dir / "renders"
    assert [(d.format, d.bit_depth, d.sample_rate) for d in session.output.mix] == [
        ("wav", 16, 48000),
        ("flac", 24, None),
        ("aiff", "float", None),
    ]


def test_merge_keys_share_settings(session_dir: Path) -> None:
    session = load_copy(HERE / "sessions" / "valid" / "anchors_and_merge.yaml", session_dir)
    kick, room = session.tracks
    assert (room.gain_db, room.fade_out.length_s, room.pan) == (-2.0, 0.005, 0.2)
    assert kick.pan == 0.0


def test_full_format_renders_every_deliverable(session_dir: Path) -> None:
    """The whole v1 vocabulary renders end to end: nothing is refused or silently dropped,
    and every master file holds the target's ceiling as written."""
    session = load_copy(HERE / "sessions" / "valid" / "full_format.yaml", session_dir)
    result = render_session(session, jobs=2)
    masters = [written for written in result.files if written.figures is not None]
    assert [written.path.name for written in masters] == [
        "Full Format.flac",
        "Full Format.wav",
        "Full Format.mp3",
    ]
    assert all(max(written.figures.loudness.true_peak_dbtp) <= -1.0 for written in masters)


def test_full_format_builds_a_typed_model() -> None:
    """The model covers the whole format, so the engine can grow into it."""
    from render.session.build import build_session
    from render.session.yaml_source import load_yaml_file

    path = HERE / "sessions" / "valid" / "full_format.yaml"
    session = build_session(load_yaml_file(path, path.name).data, path, path.parent / "out")
    eq, compressor = session.tracks[0].inserts[:2]
    assert isinstance(eq, Eq) and isinstance(compressor, Compressor)
    assert eq.highpass is not None and eq.highpass.slope_db_per_oct == 24.0
    assert [(b.type, b.frequency_hz, b.gain_db) for b in eq.bands] == [
        ("peak", 4000.0, 2.0),
        ("high_shelf", 10000.0, 1.5),
    ]
    assert (compressor.ratio, compressor.attack_ms, compressor.release_ms) == (4.0, 10.0, 120.0)
    assert session.tracks[2].sends["echo"].tap == "pre"
    assert session.mastering is not None
    assert session.mastering.target.lra is not None and session.mastering.target.lra.max_lu == 9.0
    delay = session.buses[2].inserts[0]
    assert delay.time.duration_ms(112) == pytest.approx(60_000 / 112 * 0.75, rel=1e-12)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.parent.name}/{e.stem}" for e in EXAMPLES])
def test_example_sessions_validate(example: Path) -> None:
    assert load_session(example).tracks


@pytest.mark.parametrize("album", ALBUMS, ids=[a.parent.name for a in ALBUMS])
def test_example_albums_validate(album: Path) -> None:
    """Every example album and its songs' sessions load (the README renders the first)."""
    assert len(load_album(album).songs) >= 2
