"""Audio products whose samples may be loaded later than the rest of them.

A render that takes the mix or the master from the cache often needs only what is known of
it (its length, its notes, its figures): everything made from its samples is cached too.
Such a product is kept in the cache twice, whole and as a brief without samples
(``render.incremental``), and the brief comes back with a ``source`` that loads the samples
on first use of ``audio``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

S = TypeVar("S", bound="WithSamples")


@dataclass(frozen=True)
class WithSamples:
    source: np.ndarray | Callable[[], np.ndarray] = field(repr=False, compare=False)
    """The samples, or what loads them."""

    @functools.cached_property
    def audio(self) -> np.ndarray:
        """float64[channels, frames]."""
        return self.source if isinstance(self.source, np.ndarray) else self.source()

    def without_samples(self: S) -> S:
        return replace(self, source=np.empty((0, 0)))

    def loading(self: S, samples: Callable[[], np.ndarray]) -> S:
        return replace(self, source=samples)
