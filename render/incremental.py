"""One render's use of the render cache: each stage looked up by its key, rendered and stored
when it is not there, and an account of what was reused and what ran, and why.

The stages, upstream first: each strip's output, the mix, the mix's analysis, the master,
its device translation, each written file (its bytes and figures as written) and the QC
report. Changing one track's EQ renders that track and what lies downstream of it; the other
tracks come from the cache. Each stage's ingredients are kept per session
(``renders/<session>.json`` in the cache), so the next render can name the change that made
a stage run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from render import audio_io
from render.cache import Cache, CacheOptions, Eviction
from render.cache_entry import DamagedEntry
from render.deliver import Delivered
from render.digests import InputDigests, file_identity, file_sha256
from render.errors import OutputError
from render.graph import RenderPlan
from render.keys import Ingredients, Keys, Stage, sha256_json, why
from render.mix import Mix
from render.samples import WithSamples
from render.session.model import Session
from render.strip_cache import StripCache, kept_while_unchanged, worth_caching
from render.sum_cache import Recipes

NOT_HELD = "the output folder does not hold it as written"
"""Why a cached file is written again: deleted, changed, or another output folder."""
T = TypeVar("T")
S = TypeVar("S", bound=WithSamples)


@dataclass
class Account:
    """What a render took from the cache and what it rendered, with the reason."""

    reused: list[str] = field(default_factory=list)
    rendered: list[tuple[str, str]] = field(default_factory=list)  # (stage, why)
    note: str | None = None  # why the default cache was not used
    warning: str | None = None  # the cache is too small to keep what the next render needs


class Incremental:
    """The cache as one render of ``session`` uses it (or, disabled, only hashes inputs)."""

    def __init__(self, session: Session, options: CacheOptions) -> None:
        self.session = session
        self.cache: Cache | None = None
        self.account = Account()
        root = None
        if options.enabled:
            root = options.root(session.path.parent)
            try:
                self.cache = Cache(root, options.max_bytes)
            except (OSError, OutputError) as e:
                reason = e.strerror if isinstance(e, OSError) else "not writable"
                if options.folder is not None:  # asked for by name: its absence is an error
                    raise OutputError(
                        f"{root}: cannot use this folder as the render cache ({reason}); "
                        "expected a writable folder: pass another --cache DIR or --no-cache"
                    ) from e
                self.account.note = f"not used: {root} cannot be written ({reason})"
                root = None
        self.digests = InputDigests(root)
        self.keys = Keys(session, self.digests if self.cache is not None else None)
        self._record_path = None if root is None else root / "renders" / _record_name(session)
        self._before = self._read_record()
        self._stages: dict[str, Ingredients] = {}
        self._outputs: dict[Path, tuple[list[int], str]] = {}  # identity, sha256
        self._storer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache_store")
        self._stores: list[Future[None]] = []  # mixes and masters, stored beside the render
        self._sums: list[str] = []  # the stages of the bus input sums

    def value(self, stage: Stage, make: Callable[[], T]) -> T:
        """The object ``stage`` produces: from the cache, or made by ``make`` and stored."""
        found = self.lookup(stage)
        if found is not None:
            return found  # type: ignore[no-any-return]
        made = make()
        self.keep(stage, made)
        return made

    def file(self, stage: Stage, path: Path, make: Callable[[], Delivered]) -> Delivered:
        """The file ``stage`` writes at ``path``: left as it is where it already holds the
        bytes this stage wrote (size and sha256 kept in the cache), else written by ``make``.
        The bytes themselves are not kept: writing a file again from its cached signal costs
        less than storing every file's bytes on every render."""
        found = self._load(stage)
        if found is not None:
            size, digest, description, figures, corrections = found
            if self._holds(path, size, digest):
                self.account.reused.append(stage.name)
                return Delivered(path, description, figures, corrections)
        made = make()
        if self.cache is not None:
            figures = (made.description, made.figures, made.corrections)
            self.cache.store(stage.key, (path.stat().st_size, self.output_sha256(path), *figures))
        self._ran(stage, reason=None if found is None else NOT_HELD)
        return made

    def mix(
        self, plan: RenderPlan, render: Callable[[StripCache | None], Mix]
    ) -> tuple[Mix, Stage]:
        """The mix and its stage: from the cache (its samples loaded only when first used),
        or rendered by ``render`` with the strips' cache (its entries reused, the other
        strips recorded)."""
        stages, mix = self.keys.strips(plan)
        for stage in stages.values():
            self._stages[stage.name] = stage.ingredients
        if self.cache is None:
            return self.value(mix, lambda: render(None)), mix

        rate = self.session.sample_rate
        always = {n.name for n in plan.nodes if worth_caching(n, plan, rate)}
        cacheable = always | {n.name for n in plan.nodes if kept_while_unchanged(n, plan)}
        # A sum covers the inputs whose earlier signals can be taken out: recipes (tracks)
        # or entries (strips always cached); the others are summed afresh on every render.
        covered = always | {node.name for node in plan.nodes if node.is_track}
        sums = self.keys.input_sums(plan, stages, covered)
        self._sums = [stage.name for stage in sums.values()]
        for stage in sums.values():  # the sums the cache holds: a mix it serves touches none
            self._stages[stage.name] = self._before.get(stage.name, stage.ingredients)

        def from_strips() -> Mix:
            assert self.cache is not None
            while True:
                recipes = Recipes(self.cache, self.session, self.digests)
                try:
                    with StripCache(
                        self.cache, stages, plan, cacheable, sums, self._before, recipes
                    ) as strips:
                        made = render(strips)
                    break
                except DamagedEntry:  # deleted: render again, that strip rendered anew
                    continue
            self.account.reused += [stages[name].name for name in strips.entries]
            for bus, update in strips.updates.items():
                taken = [edge[0] for edge, _ in update.removals]
                how = f"updated for {', '.join(taken)}" if taken else "unchanged"
                self.account.reused.append(f"{sums[bus].name} ({how})")
            for stage in sums.values():  # else the cache keeps the earlier sum, or none
                if self.cache.has(stage.key):
                    self._stages[stage.name] = stage.ingredients
            for name in strips.rendered:
                self._ran(stages[name], cached=name in cacheable, summing=strips.summing(name))
            return made

        return self.with_samples(mix, from_strips), mix

    def _holds(self, path: Path, size: int, sha256: str) -> bool:
        """Whether the file at ``path`` is already these bytes (an unchanged output)."""
        try:
            return path.stat().st_size == size and self.output_sha256(path) == sha256
        except OSError:
            return False

    def output_sha256(self, path: Path) -> str:
        """The sha256 of an output file, read once per render while the file stays as it was
        (size, mtime, ctime, inode): checking a cached file and listing it in the manifest
        share one reading of it."""
        identity = file_identity(path.stat())
        known = self._outputs.get(path)
        if known is not None and known[0] == identity:
            return known[1]
        digest = file_sha256(path)
        self._outputs[path] = (identity, digest)
        return digest

    def planned(self, plan: RenderPlan) -> RenderPlan:
        """``plan`` knowing its tail (and so its length) as the cache noted it for the same
        ``plan.length_recipe`` and renderer: working it out takes making every synthetic
        reverb's impulse response, which a render served from the cache, or one whose
        reverbs are cached, would do for nothing; noted when worked out."""
        if self.cache is None:
            return plan
        key = sha256_json({"length of": [self.keys.engine, plan.length_recipe]})
        known = self.cache.load(key)
        if isinstance(known, tuple):
            return dataclasses.replace(plan, known_tail=known)
        self.cache.store(key, plan.tail)
        return plan

    def with_samples(self, stage: Stage, make: Callable[[], S]) -> S:
        """``value`` for a product with samples: from the cache, its samples are loaded only
        when first used (from the entry, or made again if it has been lost since)."""
        brief = self.cache.load(_brief_key(stage.key)) if self.cache is not None else None
        if brief is not None and self.cache is not None and self.cache.has(stage.key):
            self._stages[stage.name] = stage.ingredients
            self.account.reused.append(stage.name)
            return brief.loading(lambda: self._samples(stage, make))  # type: ignore[no-any-return]
        made = self.lookup(stage)
        if made is None:
            made = make()
            self._ran(stage)
            if self.cache is not None:  # 138 MB for 3 minutes of stereo: stored meanwhile
                # Nothing writes into a rendered signal (every stage returns a new array), so
                # it is stored as it stands. It is not flagged read-only: numba compiles each
                # kernel again for read-only arrays, 1.6 s more on a first render.
                self._stores.append(self._storer.submit(self._store_with_brief, stage, made))
        elif self.cache is not None:
            self.cache.store(_brief_key(stage.key), made.without_samples())
        return made

    def _store_with_brief(self, stage: Stage, made: WithSamples) -> None:
        """Store ``made`` whole, then its brief: a brief found has its samples there."""
        assert self.cache is not None
        self.cache.store(stage.key, made)
        self.cache.store(_brief_key(stage.key), made.without_samples())

    def _samples(self, stage: Stage, make: Callable[[], S]) -> np.ndarray:
        assert self.cache is not None
        found = self.cache.load(stage.key)
        return (found if found is not None else make()).audio

    def lookup(self, stage: Stage) -> Any | None:
        """The object ``stage`` produced, if the cache holds it (else ``keep`` it when made)."""
        found = self._load(stage)
        if found is not None:
            self.account.reused.append(stage.name)
        return found

    def _load(self, stage: Stage) -> Any | None:
        """``lookup`` without counting the stage as reused (its caller decides)."""
        self._stages[stage.name] = stage.ingredients
        return None if self.cache is None else self.cache.load(stage.key)

    def keep(self, stage: Stage, value: Any) -> None:
        """Account for ``stage`` as rendered and store what it made."""
        self._ran(stage)
        if self.cache is not None:
            self.cache.store(stage.key, value)

    def finish(self, evict: bool = True) -> None:
        """Keep this render's stages for the next one's reasons, pin what the next one
        reuses, and (``evict``) bound the cache: an album's songs leave that to the album."""
        self._storer.shutdown(wait=True)
        for stored in self._stores:
            stored.result()  # raises what storing raised
        self.digests.save()
        if self.cache is None or self._record_path is None:
            return
        with contextlib.suppress(OSError, OutputError):
            self._record_path.parent.mkdir(exist_ok=True)
            with audio_io.atomic_path(self._record_path) as temporary:
                temporary.write_text(json.dumps(self._stages, sort_keys=True), encoding="utf-8")
        # What the next render looks for: each stage as recorded, and the recipes and stems
        # that take a track out of the sums as recorded.
        named = {sha256_json(ingredients) for ingredients in self._stages.values()}
        named |= {_brief_key(key) for key in named}
        sums = [self._stages[name] for name in self._sums if name in self._stages]
        owner = self._record_path.stem
        self.cache.pin(owner, named | Recipes.held(self.cache, sums))
        warnings = [unstored(self.cache)]
        if evict:
            warnings.append(cache_too_small(self.cache.evict(owner), self.cache.max_bytes))
        self.account.warning = "; ".join(w for w in warnings if w) or None

    def _ran(
        self,
        stage: Stage,
        cached: bool = True,
        reason: str | None = None,
        summing: str | None = None,
    ) -> None:
        """Account for ``stage`` as rendered, for ``reason`` or for what changed; a strip
        whose output is not cached gives the reason ``summing`` (``StripCache.summing``)."""
        if reason is None:
            reason = why(stage, self._before.get(stage.name)) if self.cache is not None else ""
        if not cached and reason == "not in the cache":
            reason = summing or (
                "rendered every time (light inserts: cheaper than the cache)"
                if stage.name.startswith("tracks.")
                else "run every time over its cached input"
            )
        self.account.rendered.append((stage.name, reason))

    def _read_record(self) -> dict[str, Ingredients]:
        """The stages' ingredients at the last render, or none where the record is missing
        or is not what a render writes (a damaged disk): it only explains and guides."""
        if self._record_path is None:
            return {}
        try:
            record = json.loads(self._record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
            return {}
        return record


def _brief_key(key: str) -> str:
    return sha256_json({"brief of": key})


def cache_too_small(eviction: Eviction, max_bytes: int) -> str | None:
    """The warning for a cache bound that could not keep what the next renders reuse: this
    session's, or the other sessions' sharing the cache (None if it kept all of that). The
    room it asks for leaves as much again for what a render writes before eviction."""
    if eviction.lost_bytes:
        whose = f"this session's next render reuses ({_size(eviction.pinned_bytes)})"
        lost = eviction.lost_bytes
    elif eviction.others_lost_bytes:
        whose = f"the sessions sharing it reuse ({_size(eviction.all_pinned_bytes)})"
        lost = eviction.others_lost_bytes
    else:
        return None
    return (
        f"bounded to {_size(max_bytes)}, the cache could not keep what {whose}: "
        f"{_size(lost)} of it was evicted and will be rendered again; give it room with "
        f"--cache-max {-(-2 * eviction.all_pinned_bytes // 10**8) / 10:g}GB"
    )


def unstored(cache: Cache) -> str | None:
    """The warning for entries a render could not write into ``cache`` (None if it wrote
    all it meant to): the render itself is whole, but they will be rendered again."""
    if not cache.unstored:
        return None
    count = len(cache.unstored)
    return (
        f"{count} stage{'s' * (count != 1)} could not be kept in {cache.root} "
        f"({cache.unstored[0]}) and will be rendered again next time; check that folder, "
        "or pass another --cache DIR or --no-cache"
    )


def _size(size: int) -> str:
    return f"{size / 10**9:.1f} GB" if size >= 10**9 else f"{round(size / 10**6)} MB"


def owner_name(path: Path, kind: str | None = None) -> str:
    """The name under which a render cache keeps what belongs to the file at ``path`` (a
    session's record and pins; an album's or an album song's pins, told apart by ``kind``)."""
    where = str(path.resolve())
    return sha256_json(where if kind is None else {kind: where})[:32]


def _record_name(session: Session) -> str:
    return owner_name(session.path) + ".json"
