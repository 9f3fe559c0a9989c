"""numba kernels that load numba when a kernel is first called, not when their module is
imported.

Importing numba takes 0.2 s: a quarter of the whole command when the render cache serves a
render whole, which runs no kernel at all. ``njit`` and ``intrinsic`` here take numba's
options and declare a stand-in (``Kernel``). The first call of any kernel imports numba,
makes the dispatcher of every kernel declared so far (compiling, or loading from numba's
cache, on a dispatcher's first call as always), and puts each dispatcher in place of its
stand-in in the namespaces of the package's modules: numba types the globals of a kernel
when it compiles it, and a kernel that calls another must find that one's dispatcher there.
Kernels declared once numba is loaded are numba's own at once.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
from collections.abc import Callable
from typing import Any

_PACKAGE = __name__.partition(".")[0]
_lock = threading.RLock()
_declared: list[Kernel] = []
_numba: Any = None  # the numba module, once a kernel has been called


class Kernel:
    """A function declared as a numba kernel; a call compiles it (see the module)."""

    def __init__(self, function: Callable[..., Any], make: Callable[[Any], Any]) -> None:
        functools.update_wrapper(self, function)
        self.py_func = function
        self._make = make  # the numba module -> the dispatcher
        self._compiled: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._compiled
        if compiled is None:  # the first call: it loads numba's compiler too (see _load)
            compiled = self._compile()
            try:
                return compiled(*args, **kwargs)
            finally:
                gc.freeze()
        return compiled(*args, **kwargs)

    def _compile(self) -> Any:
        with _lock:
            _load()
            if self._compiled is None:
                self._compiled = self._make(_numba)
            return self._compiled


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``, numba imported on the first call of a kernel."""
    return lambda function: _declare(function, lambda numba: numba.njit(**options)(function))


def intrinsic(function: Callable[..., Any]) -> Any:
    """``numba.extending.intrinsic(function)``, made when numba is loaded: a function that
    types a call inside a kernel and writes its LLVM IR there."""
    return _declare(function, lambda numba: _extending().intrinsic(function))


def _extending() -> Any:
    import numba.extending

    return numba.extending


def _declare(function: Callable[..., Any], make: Callable[[Any], Any]) -> Any:
    """A kernel's stand-in (its dispatcher made with the others' by ``_load``), or numba's
    own once loaded."""
    with _lock:
        if _numba is not None:
            return make(_numba)
        kernel = Kernel(function, make)
        _declared.append(kernel)
        return kernel


def _load() -> None:
    """Import numba, make every declared kernel's dispatcher and put it in its stand-in's
    place wherever the package's modules hold one (under ``_lock``).

    numba's import, the dispatchers and the first call (which loads its compiler) make
    some 135,000 long-lived objects (its type system, its LLVM bindings), which every later
    full collection of the garbage collector traversed again: in the demo's render the
    collector took 0.44 s, holding the GIL. numba is imported with the collector paused,
    and those objects are moved out of its reach (``gc.freeze``, meant for such objects)
    here and after that first call: 0.1 s."""
    global _numba
    if _numba is not None:
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        import numba

        for kernel in _declared:
            kernel._compiled = kernel._make(numba)
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    dispatchers = {id(kernel): kernel._compiled for kernel in _declared}
    for name, module in list(sys.modules.items()):
        if name != _PACKAGE and not name.startswith(_PACKAGE + "."):
            continue
        namespace = vars(module)
        for key, value in list(namespace.items()):
            if isinstance(value, Kernel) and id(value) in dispatchers:
                namespace[key] = dispatchers[id(value)]
    _declared.clear()
    _numba = numba
