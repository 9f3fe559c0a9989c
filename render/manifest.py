"""The build manifest: what went into a render and what came out, so anyone can prove that the
same inputs give the same bytes (``render --verify``).

``manifest.json`` holds no time and no absolute path: the renderer's and its libraries'
versions, the session file's hash and its parameters as the engine read them, every input
file's hash and format, the hash of each rendered stage (the mix and the master before they
are quantised) and every output file's hash, size and headline figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from render import audio_io
from render.digests import file_sha256
from render.engine import renderer
from render.report.json_report import json_number
from render.session.model import Reverb, Session
from render.session.normalise import normalised, relative
from render.session.yaml_source import format_path

if TYPE_CHECKING:
    from render.analysis import Analysis

FORMAT = "render-manifest/1"
NAME = "manifest.json"
SCHEMA = "manifest.schema.json"


@dataclass(frozen=True)
class Difference:
    """One way a fresh render differs from the manifest, and the stage it belongs to."""

    stage: str  # "renderer", "session", "stem", "mix", "master", "output"
    what: str


STAGES = ("renderer", "session", "stem", "mix", "master", "output")
"""In signal order: the first stage that differs is where to look."""


def audio_sha256(x: np.ndarray) -> str:
    """The hash of a rendered signal's float64 samples (C order), read in place: a copy of
    3 minutes of stereo cost ~34,000 page faults."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).data).hexdigest()


def build_manifest(
    session: Session,
    inputs: list[dict[str, Any]],
    stages: Mapping[str, str],
    outputs: list[tuple[str, Path, str, Analysis | None]],
    sha256: Callable[[Path], str] = file_sha256,
) -> dict[str, Any]:
    """The manifest of a render of ``session``: ``inputs`` is ``describe_inputs(session)``;
    ``stages`` maps "mix"/"master" to ``audio_sha256`` of that signal; ``outputs`` lists
    (role, path, description, figures) of every file written, the reports included (no
    figures)."""
    base = session.path.parent
    return {
        "format": FORMAT,
        "renderer": renderer(),
        "session": {
            "file": session.path.name,
            "sha256": file_sha256(session.path),
            "parameters": normalised(session, base),
        },
        "inputs": inputs,
        "stages": dict(stages),
        "outputs": [
            {
                "role": role,
                "file": path.name,
                "sha256": sha256(path),
                "size_bytes": path.stat().st_size,
                "format": description,
                "integrated_lufs": json_number(figures and figures.loudness.integrated_lufs),
                "true_peak_dbtp": json_number(figures and max(figures.loudness.true_peak_dbtp)),
            }
            for role, path, description, figures in outputs
        ],
    }


def describe_inputs(
    session: Session, sha256: Callable[[Path], str] = file_sha256
) -> list[dict[str, Any]]:
    """Every input file's path (relative to the session), hash and format, in session order:
    the slowest part of a manifest (hashing 16 stems of 3 minutes takes ~0.5 s), so the
    pipeline runs it beside other work (or takes the hashes the render cache remembers)."""
    return [_input(path, session.path.parent, sha256) for path in input_files(session)]


def input_files(session: Session) -> list[Path]:
    """Every file the render reads besides the session: stems and impulse responses, once
    each, in session order."""
    paths = [track.stem for track in session.tracks]
    chains = [t.inserts for t in session.tracks] + [b.inserts for b in session.buses]
    chains += [session.mix.inserts, session.mastering.chain if session.mastering else ()]
    paths += [e.ir for chain in chains for e in chain if isinstance(e, Reverb) and e.ir]
    return list(dict.fromkeys(paths))


def write_manifest(manifest: dict[str, Any], out_dir: Path) -> Path:
    """``manifest.json`` in ``out_dir``, replaced atomically."""
    path = out_dir / NAME
    with audio_io.atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def problem_with(recorded: Any) -> str | None:
    """What keeps ``recorded`` (a parsed ``manifest.json``) from being a manifest ``compare``
    can read, against ``schemas/manifest.schema.json`` (where, and what was expected); None
    if nothing does."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    from render.session.validate import load_schema

    error = best_match(Draft202012Validator(load_schema(SCHEMA)).iter_errors(recorded))
    if error is None:
        return None
    return f"{format_path(tuple(error.absolute_path)) or 'the whole file'}: {error.message}"


def compare(recorded: dict[str, Any], fresh: dict[str, Any]) -> list[Difference]:
    """How ``fresh`` differs from ``recorded``, in signal order (``STAGES``)."""
    found: list[Difference] = []
    if recorded.get("renderer") != fresh["renderer"]:
        found.append(Difference("renderer", _changed_versions(recorded.get("renderer"), fresh)))
    if recorded.get("session", {}).get("sha256") != fresh["session"]["sha256"]:
        found.append(Difference("session", f"{fresh['session']['file']} changed"))
    before = {item["path"]: item for item in recorded.get("inputs", [])}
    for item in fresh["inputs"]:
        old = before.get(item["path"])
        if old is None:
            found.append(Difference("stem", f"{item['path']} is new"))
        elif old["sha256"] != item["sha256"]:
            found.append(Difference("stem", f"{item['path']} changed (sha256 differs)"))
    for stage in ("mix", "master"):
        if recorded.get("stages", {}).get(stage) != fresh["stages"].get(stage):
            found.append(Difference(stage, f"the {stage} signal differs"))
    written = {item["file"]: item for item in recorded.get("outputs", [])}
    for item in fresh["outputs"]:
        old = written.get(item["file"])
        if old is None or old["sha256"] != item["sha256"]:
            found.append(Difference("output", f"{item['file']} differs"))
    return sorted(found, key=lambda d: STAGES.index(d.stage))


def _changed_versions(recorded: Any, fresh: dict[str, Any]) -> str:
    old = recorded if isinstance(recorded, dict) else {}
    now = fresh["renderer"]
    pairs = [("render", old.get("version"), now["version"])]
    pairs += [
        (name, old.get("libraries", {}).get(name), version)
        for name, version in now["libraries"].items()
    ]
    changed = [f"{name} {was} -> {new}" for name, was, new in pairs if was != new]
    return ", ".join(changed) or "the renderer's environment changed"


def _input(path: Path, base: Path, sha256: Callable[[Path], str]) -> dict[str, Any]:
    info = audio_io.probe(path)
    return {
        "path": relative(path, base),
        "sha256": sha256(path),
        "format": f"{info.format} {info.subtype}",
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "frames": info.frames,
    }
