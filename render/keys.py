"""What each stage of a render depends on, hashed: the keys of the render cache.

A stage (a track's or bus's output, the mix, the master, a written file, the QC report) is
keyed by the sha256 of its *ingredients*, a JSON document of everything that decides its
bytes:

- ``engine``: the renderer's code and the libraries that decide its arithmetic;
- ``song``: the render's sample rate, seed, tempo and buffer length;
- ``settings``: the stage's own parameters as the session states them;
- ``files``: the sha256 of every file it reads (its stem, impulse responses);
- ``upstream``: the key of every stage whose output it uses;
- ``stage``: its name, since two stages may be made from the same upstream (the analysis of
  the mix and the hash of the mix).

The ingredients of every stage of a session's last render are kept beside the cache, so the
next render can say why a stage ran again: which ingredient changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render.digests import InputDigests
from render.engine import code_sha256, renderer
from render.graph import RenderPlan, input_edges
from render.session.model import MIX_BUS, Effect, Reverb, Session, Track
from render.session.normalise import normalised, relative

Ingredients = dict[str, Any]


@dataclass(frozen=True)
class Stage:
    name: str  # "tracks.bass", "buses.plate", "mix", "master", "file mix.wav", "report"
    ingredients: Ingredients

    @property
    def key(self) -> str:
        return sha256_json(self.ingredients)


def sha256_json(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class Keys:
    """Makes the stages of one render of ``session``, hashing each input file once (with no
    ``digests``, no file is hashed: the stages then serve no cache, only the account)."""

    def __init__(self, session: Session, digests: InputDigests | None) -> None:
        self.session = session
        self.base = session.path.parent
        self.digests = digests
        self.engine = sha256_json([code_sha256(), renderer()])

    def strips(self, plan: RenderPlan) -> tuple[dict[str, Stage], Stage]:
        """Every track's and bus's output stage, and the mix's (before the mix file)."""
        song = self._song(plan.length)
        if self.digests is not None:  # a cold render hashes every stem: two at a time
            self.digests.learn(n.strip.stem for n in plan.nodes if isinstance(n.strip, Track))
        stages: dict[str, Stage] = {}
        for node in plan.nodes:
            needs_pre = any(out.tap == "pre" for out in node.outputs)
            own = normalised(node.strip, self.base)
            for routing in ("mute", "solo", "out", "sends"):  # they decide where, not what
                own.pop(routing, None)
            settings = {"strip": own, "pre_fader": needs_pre}
            upstream = self._keys(stages, _sidechains(node.chain))
            if not node.is_track:
                settings["inputs"] = _inputs(plan, node.name)
                upstream |= self._keys(stages, (name for name, *_ in settings["inputs"]))
            files = self._files(node.strip.inserts)
            if node.is_track:
                files |= self._files_of([node.strip.stem])  # type: ignore[union-attr]
            stages[node.name] = self._stage(
                f"{'tracks' if node.is_track else 'buses'}.{node.name}",
                song,
                settings,
                files,
                upstream,
            )
        inputs = _inputs(plan, MIX_BUS)
        upstream = self._keys(stages, [name for name, *_ in inputs])
        upstream |= self._keys(stages, _sidechains(plan.mix_chain))
        mix = self._stage(
            "mix",
            song,
            {"mix": normalised(self.session.mix, self.base), "inputs": inputs},
            self._files(self.session.mix.inserts),
            upstream,
        )
        return stages, mix

    def input_sums(
        self, plan: RenderPlan, stages: Mapping[str, Stage], covered: set[str]
    ) -> dict[str, Stage]:
        """Each bus's summed input before its own inserts and fader, and the mix bus's, over
        the inputs from ``covered`` strips (those whose earlier signals can be taken out
        again): their stages, taps and levels only (so a change to the bus itself keeps its
        input sum)."""
        song = self._song(plan.length)
        names = {n.name: f"input of buses.{n.name}" for n in plan.nodes if not n.is_track}
        names[MIX_BUS] = "input of the mix"
        sums = {}
        for bus, name in names.items():
            summed = [edge for edge in _inputs(plan, bus) if edge[0] in covered]
            inputs = [[stages[strip].name, tap, level] for strip, tap, level in summed]
            upstream = self._keys(stages, (strip for strip, *_ in summed))
            sums[bus] = self._stage(name, song, {"inputs": inputs}, {}, upstream)
        return sums

    def master(self, mix: Stage) -> Stage:
        mastering = self.session.mastering
        assert mastering is not None
        settings = {"mastering": normalised(mastering, self.base)}
        song = self._song(None)
        return self._stage("master", song, settings, self._files(mastering.chain), _of(mix))

    def limiter_input(self, mix: Stage) -> Stage:
        """The mastering chain up to its final limiter: what an album song is measured on
        before its goal is known (``pipeline.premaster``)."""
        return self.derived("limiter input", [self.master(mix)])

    def output(self, name: str, deliverable: Any, source: Stage, verified: bool) -> Stage:
        """A file written from ``source`` (dither is seeded from the seed and the name)."""
        settings = {
            "file": name,
            "deliverable": normalised(deliverable, self.base),
            "verified": verified,
        }
        return self._stage(f"file {name}", self._song(None), settings, {}, _of(source))

    def derived(self, name: str, sources: Iterable[Stage], settings: Any = None) -> Stage:
        """A stage computed from others alone (an analysis, the report)."""
        upstream = {stage.name: stage.key for stage in sources}
        return self._stage(name, self._song(None), {"of": settings}, {}, upstream)

    def _stage(
        self,
        name: str,
        song: Mapping[str, Any],
        settings: Any,
        files: dict[str, str],
        upstream: dict[str, str],
    ) -> Stage:
        ingredients = {
            "stage": name,  # two stages made from the same upstream are different things
            "engine": self.engine,
            "song": dict(song),
            "settings": settings,
            "files": files,
            "upstream": upstream,
        }
        return Stage(name, ingredients)

    def _song(self, length: int | None) -> dict[str, Any]:
        session = self.session
        return {
            "sample_rate": session.sample_rate,
            "seed": session.seed,
            "tempo_bpm": session.tempo_bpm,
            "length": length,
        }

    def _files(self, effects: Iterable[Effect]) -> dict[str, str]:
        return self._files_of(e.ir for e in effects if isinstance(e, Reverb) and e.ir)

    def _files_of(self, paths: Iterable[Path]) -> dict[str, str]:
        digests = self.digests
        return {relative(p, self.base): digests.sha256(p) if digests else "" for p in paths}

    @staticmethod
    def _keys(stages: Mapping[str, Stage], names: Iterable[str]) -> dict[str, str]:
        return {stages[name].name: stages[name].key for name in names}


def _of(stage: Stage) -> dict[str, str]:
    return {stage.name: stage.key}


def _sidechains(chain: Iterable[Any]) -> list[str]:
    return [effect.sidechain for effect in chain if effect.sidechain is not None]


def _inputs(plan: RenderPlan, target: str) -> list[list[Any]]:
    """``graph.input_edges`` as JSON lists: [strip, tap, level]."""
    return [list(edge) for edge in input_edges(plan, target)]


def why(stage: Stage, before: Ingredients | None) -> str:
    """Why ``stage`` ran although a cache was in use: what changed since ``before`` (its
    ingredients at the session's last render), in the engineer's words."""
    if before is None:
        return "new"
    now = stage.ingredients
    if before.get("engine") != now["engine"]:
        return "the renderer changed"
    if before.get("song") != now["song"]:
        return "the song's length, rate, seed or tempo changed"
    if before.get("settings") != now["settings"]:
        return "its settings changed"
    old_files = before.get("files", {})
    changed = [path for path, digest in now["files"].items() if old_files.get(path) != digest]
    if changed:
        return f"{listed(changed)} changed"
    old_upstream = before.get("upstream", {})
    moved = [name for name, key in now["upstream"].items() if old_upstream.get(name) != key]
    if moved:
        return f"{listed(moved)} changed"
    return "not in the cache"


def listed(names: list[str]) -> str:
    """Up to three names, then how many more."""
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"
