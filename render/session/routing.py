"""The signal graph of a session as names and edges: who feeds whom.

Kept free of audio so that the loader can reject a cycle with its exact path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a closed walk (``["a", "b", "a"]``), or None. Deterministic: nodes and edges
    are followed in the order given, so the same session always names the same cycle."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, then "done"
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in edges.get(node, ()):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in edges:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None
