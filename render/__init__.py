"""render: declarative session files for mixing and mastering.

A session file (YAML, validated against ``schemas/session.schema.json``) names the stems,
their processing and routing; ``render`` turns it into a reproducible mix.

``scipy.signal`` is imported where it is used, not at the top of a module: importing it
takes 0.6 s (scipy 1.17 rewrites every function's docstring as it loads), which a render that
finds everything in its cache never needs. The designs every mix needs are the project's own
(``eq.pass_sos``, ``eq.sosfilt``, the true-peak interpolator, ``windows``,
``eq.sosfiltfilt``), and saturation's equiripple design is kept between runs
(``render.designs``), so a render loads scipy.signal at most once per machine. The FFTs are
numpy's: the same pocketfft, the same bits as ``scipy.fft``, without its 0.17 s import.
For the same reason kernels are declared with ``render.jit.njit``, not numba's own: numba
(0.2 s to import) is loaded by the first kernel called.
"""

import os
from pathlib import Path

__version__ = "0.1.0"


def user_cache_dir() -> Path | None:
    """The renderer's folder in the user's cache (``$XDG_CACHE_HOME/render``, by default
    ``~/.cache/render``): compiled kernels and filter designs, kept between runs of any
    session. None without a home folder."""
    try:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "render"
    except RuntimeError:
        return None


# numba keeps the compiled kernels in the user's cache folder. Left to numba, they go beside
# the installed sources, and files there outlive ``pip uninstall``: a later editable install
# of the same venv then finds that folder as a namespace package named ``render`` before its
# own, and ``python -m render`` fails to import. Without a home folder: numba's own choice.
# One folder per state of the sources (``kernel_cache``): numba alone would keep a kernel
# whose callee in another module has changed.
if "NUMBA_CACHE_DIR" not in os.environ and (_folder := user_cache_dir()) is not None:
    from render.kernel_cache import kernel_folder

    os.environ["NUMBA_CACHE_DIR"] = str(kernel_folder(_folder / "numba"))  # read on import
