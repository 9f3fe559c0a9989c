"""numba's kernel cache follows every module of the package (``render.kernel_cache``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from render.kernel_cache import KEPT_BUILDS, kernel_folder, sources_digest

REPO = Path(__file__).resolve().parent.parent

# K-weighted tick energies: measure's kernel, which calls eq._sosfilt, whose loop
# biquad_loop.py (another module) writes into it.
PROBE = """\
import numpy as np
from render.measure import _weighted_tick_energies
row = np.sin(np.arange(4800) * 0.05)
sos = np.array([[0.5, 0.2, 0.1, 1.0, -0.3, 0.1]])
energies = _weighted_tick_energies(row, sos, np.array([0, 4800]), np.empty(0))
print(repr(float(energies[0])))
"""


def copy_package(tmp_path: Path) -> Path:
    """A copy of the package's modules under ``tmp_path / 'src'``; returns the package."""
    package = tmp_path / "src" / "render"
    shutil.copytree(REPO / "render", package, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def probe_energy(package: Path, cache_home: Path) -> float:
    """The probe's energy, run from ``package``'s copy with this user cache folder."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(cache_home)
    env["PYTHONPATH"] = str(package.parent)
    run = subprocess.run(  # run from the copy's folder: ``-c`` puts the folder first on the path
        [sys.executable, "-c", PROBE],
        cwd=package.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return float(run.stdout)


def test_a_kernel_compiles_again_when_code_it_calls_changes(tmp_path: Path) -> None:
    """numba would load measure's cached kernel after biquad_loop.py alone changed, still
    running the old filter loop compiled into it; the folder per state of the sources
    compiles it again. Doubling the loop's output quadruples the energy."""
    package = copy_package(tmp_path)
    before = probe_energy(package, tmp_path / "cache")
    loop = package / "dsp" / "biquad_loop.py"
    source = loop.read_text()
    store = "        for c, channel_value in enumerate(lanes.unpack(value)):\n"
    assert source.count(store) == 1
    loop.write_text(source.replace(store, "        value = b.fadd(value, value)\n" + store))
    after = probe_energy(package, tmp_path / "cache")
    assert after == 4.0 * before


def test_the_digest_follows_each_module_and_nothing_else(tmp_path: Path) -> None:
    """Touching any module (a pull, an edit) changes the digest; files that are not
    modules do not, and neither does reading the digest."""
    package = copy_package(tmp_path)
    first = sources_digest(package)
    assert sources_digest(package) == first
    (package / "notes.txt").write_text("not a module")
    assert sources_digest(package) == first
    module = package / "dsp" / "dither.py"
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert sources_digest(package) != first


def test_the_folders_used_last_are_kept(tmp_path: Path) -> None:
    """The current sources' folder is marked as used; of the others, the ``KEPT_BUILDS - 1``
    used last are kept and the rest removed (an earlier layout's folders included)."""
    root = tmp_path / "numba"
    package = copy_package(tmp_path)
    current = root / sources_digest(package)
    current.mkdir(parents=True)
    others = [root / f"old{k}" for k in range(KEPT_BUILDS + 2)]
    for age, folder in enumerate(others):
        (folder / "render_0123").mkdir(parents=True)
        os.utime(folder, (1_000_000 - age, 1_000_000 - age))  # old0 used last
    os.utime(current, (1.0, 1.0))  # used long ago, but it is the one in use now
    assert kernel_folder(root, package) == current
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [current.name] + [f"old{k}" for k in range(KEPT_BUILDS - 1)]
    )
    assert current.stat().st_mtime > 1_000_000


def test_a_cache_not_made_yet_is_only_named(tmp_path: Path) -> None:
    """Without a cache folder yet, the folder is named and nothing is made (numba makes it
    when it saves a kernel)."""
    root = tmp_path / "absent"
    folder = kernel_folder(root)
    assert folder.parent == root and not root.exists()
