"""render: declarative session files for mixing and mastering.

A session file (YAML, validated against ``schemas/session.schema.json``) names the stems,
their processing and routing; ``render`` turns it into a reproducible mix.

``scipy.signal`` and ``scipy.fft`` are imported where they are used, not at the top of a
module: importing them takes 0.75 s (scipy 1.17 rewrites every function's docstring as it
loads), which a render that finds everything in its cache never needs. The designs every
mix needs are the project's own (``eq.pass_sos``, ``eq.sosfilt``, the true-peak interpolator,
``windows``), so only saturation (its equiripple design) and width load scipy.signal.
For the same reason kernels are declared with ``render.jit.njit``, not numba's own: numba
(0.2 s to import) is loaded by the first kernel called.
"""

import os
from pathlib import Path

__version__ = "0.1.0"


def _kernel_cache_dir() -> str | None:
    """Where numba keeps the compiled kernels: the user's cache folder. Left to numba, they go
    beside the installed sources, and files there outlive ``pip uninstall``: a later editable
    install of the same venv then finds that folder as a namespace package named ``render``
    before its own, and ``python -m render`` fails to import."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home folder: numba's own choice
        return None
    return str(base / "render" / "numba")


if (_folder := _kernel_cache_dir()) is not None:
    os.environ.setdefault("NUMBA_CACHE_DIR", _folder)  # read by numba when first imported
