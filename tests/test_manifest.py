"""The build manifest and ``render --verify``: what went in and came out is recorded without
times or machine paths, and a fresh render is proven identical, or the difference named."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from jsonschema import Draft202012Validator

from render.cli import main
from render.session.validate import load_schema

REPO = Path(__file__).parent.parent


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered copy of the demo session: its session file."""
    folder = tmp_path_factory.mktemp("manifest") / "demo"
    shutil.copytree(REPO / "sessions" / "demo", folder, ignore=shutil.ignore_patterns("out"))
    assert main([str(folder / "session.yaml"), "--quiet"]) == 0
    return folder / "session.yaml"


def test_manifest_records_inputs_and_outputs_without_machine_paths(demo: Path) -> None:
    out = demo.parent / "out"
    text = (out / "manifest.json").read_text()
    assert str(demo.parent) not in text and "/tmp" not in text
    manifest = json.loads(text)
    assert [item["path"] for item in manifest["inputs"]] == [
        f"stems/{name}.flac" for name in ("drums", "bass", "guitar", "pad", "lead")
    ]
    for item in manifest["inputs"]:
        assert (
            item["sha256"] == hashlib.sha256((demo.parent / item["path"]).read_bytes()).hexdigest()
        )
    written = {item["file"]: item for item in manifest["outputs"]}
    assert sorted(written) == sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    for name, item in written.items():
        assert item["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert item["size_bytes"] == (out / name).stat().st_size
    assert written["Indie Pop.wav"]["integrated_lufs"] == pytest.approx(-14.0, abs=0.1)
    assert set(manifest["stages"]) == {"mix", "master"}
    assert manifest["session"]["parameters"]["tracks"][1]["stem"] == "stems/bass.flac"
    Draft202012Validator(load_schema("manifest.schema.json")).validate(manifest)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda m: [], "the whole file: [] is not of type 'object'"),
        (lambda m: {**m, "outputs": 5}, "outputs: 5 is not of type 'array'"),
        (lambda m: {**m, "renderer": {}}, "renderer: 'version' is a required property"),
        (
            lambda m: {**m, "inputs": [{**m["inputs"][0], "sha256": "abc"}]},
            "inputs[0].sha256: 'abc' does not match '^[0-9a-f]{64}$'",
        ),
    ],
)
def test_verify_against_a_manifest_not_written_by_render_is_one_line(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], Any],
    problem: str,
) -> None:
    """A manifest.json that another tool or a hand wrote (valid JSON, not a manifest) is
    named with where it is wrong, before anything renders: exit 1, one line."""
    folder = tmp_path / "edited"
    shutil.copytree(demo.parent, folder)
    recorded = folder / "out" / "manifest.json"
    recorded.write_text(json.dumps(edit(json.loads(recorded.read_text()))))
    assert main([str(folder / "session.yaml"), "--verify", "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error == (
        f"{recorded}: not a manifest render can verify against ({problem}); expected "
        "render-manifest/1 as a render writes it: render the session again to write one\n"
    )


def test_verify_passes_on_a_fresh_render_and_touches_nothing(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(demo.parent)
    assert main([str(demo), "--verify"]) == 0
    assert "verified: 5 outputs identical to the manifest" in capsys.readouterr().out
    assert tree(demo.parent) == before


def test_verify_names_a_changed_stem_and_exits_4(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "changed"
    shutil.copytree(demo.parent, folder)
    stem = folder / "stems" / "bass.flac"
    x, rate = sf.read(str(stem))
    x[48_000] += 0.01
    sf.write(str(stem), x, rate, subtype="PCM_24")
    assert main([str(folder / "session.yaml"), "--verify"]) == 4
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].endswith("differs: stem: stems/bass.flac changed (sha256 differs)")
    assert any("differs: mix: the mix signal differs" in line for line in errors)


def test_verify_without_an_earlier_render_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "sessions" / "demo", folder, ignore=shutil.ignore_patterns("out"))
    assert main([str(folder / "session.yaml"), "--verify", "--quiet"]) == 1
    assert not (folder / "out").exists()
