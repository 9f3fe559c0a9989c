"""Album files load into the model, and every invalid album in tests/albums/invalid fails with
exactly the errors its header names (``# expect: [FILE ]LINE:COL PATH: message-prefix``;
FILE defaults to the album itself), a song's errors in the song's own session file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from render.album.load import gs1_check_digit, is_album, load_album
from render.cli import main
from render.errors import SessionError
from render.session.validate import load_schema, validate
from render.session.yaml_source import parse_yaml
from tests.conftest import sine, write_stem
from tests.diagnostics import assert_reported

HERE = Path(__file__).parent / "albums"
CASES = sorted((HERE / "invalid").glob("*.yaml"))


@pytest.fixture
def album_dir(session_dir: Path) -> Path:
    """The shared session folder with the test songs in ``songs/`` (and their stem)."""
    shutil.copytree(HERE / "songs", session_dir / "songs")
    write_stem(session_dir / "songs" / "stems" / "kick.wav", sine(60.0, 1.0))
    return session_dir


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_invalid_album_reports_each_error_at_its_place(case: Path, album_dir: Path) -> None:
    album_file = album_dir / case.name
    shutil.copy(case, album_file)
    with pytest.raises(SessionError) as raised:
        load_album(album_file)
    assert_reported(raised.value.diagnostics, case, album_dir)
    assert str(raised.value).endswith(" in the album; nothing was rendered.")


@pytest.mark.parametrize("code", ["012345678905", "036000291452", "4006381333931", "9780306406157"])
def test_gs1_check_digits_of_published_codes(code: str) -> None:
    """UPC-A and EAN-13 codes from GS1's and ISBN-13's worked examples end in their check
    digit."""
    assert gs1_check_digit(code[:-1]) == int(code[-1])


def test_album_loads_with_defaults_and_units(album_dir: Path) -> None:
    album_file = album_dir / "album.yaml"
    album_file.write_text(
        "version: 1\ntitle: Two\nartist: Band\nyear: 2026\nupc: '012345678905'\n"
        "songs:\n"
        "  - {session: songs/good.yaml, crossfade: 1500 ms, gain: -1.5 dB, isrc: GBAYE2600001,"
        " gap_before: 2}\n"
        "  - {session: songs/good.yaml, title: Reprise}\n"
        "loudness: {target: {preset: apple-music}}\n"
    )
    assert is_album(album_file) and not is_album(album_dir / "songs" / "good.yaml")
    album = load_album(album_file)
    first, second = album.songs
    assert (album.title, album.artist, album.year, album.upc) == (
        "Two",
        "Band",
        2026,
        "012345678905",
    )
    assert (first.number, first.title, first.crossfade_s, first.gain_db) == (
        1,
        "Good Song",
        1.5,
        -1.5,
    )
    assert (first.isrc, first.gap_before_s) == ("GBAYE2600001", 2.0)
    assert (second.number, second.title, second.gap_before_s, second.crossfade_s) == (
        2,
        "Reprise",
        0.0,
        0.0,
    )
    assert album.mode == "album"
    assert (album.target.integrated_lufs, album.target.ceiling_dbtp) == (-16.0, -1.0)
    assert [(d.format, d.bit_depth) for d in album.tracks] == [("flac", 24)]
    assert album.album_file is None and album.out_dir == album_dir / "out"
    assert album.sample_rate == 48_000
    assert album.where("songs[0].crossfade") == f"{album_file}:7:43: songs[0].crossfade"


def test_album_schema_is_valid_and_its_example_validates() -> None:
    schema = load_schema("album.schema.json")
    Draft202012Validator.check_schema(schema)
    for example in schema["examples"]:
        document = parse_yaml(json.dumps(example), "example.yaml")
        assert validate(document, "album.schema.json") == []


def test_cli_checks_an_album_and_refuses_session_only_modes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command tells an album by its `songs` list: --check validates it with its songs;
    --verify and --report-only, which compare or re-measure one session, are usage errors."""
    album = Path(__file__).parent.parent / "sessions" / "demo-album" / "album.yaml"
    assert main([str(album), "--check"]) == 0
    assert capsys.readouterr().out == f"{album}: valid album (3 songs)\n"
    for option in ("--verify", "--report-only"):
        assert main([str(album), option]) == 2
        assert f"{option} takes session files; {album} is an album" in capsys.readouterr().err
