"""The public face of ``import maxsim``: what ``dir()`` shows, and one version
everywhere (Cargo.toml, ``maxsim.__version__``, CHANGELOG.md)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import maxsim
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_dir_lists_the_public_names_only() -> None:
    names = dir(maxsim)
    assert names == sorted(names)
    assert set(maxsim.__all__) <= set(names)
    private = [n for n in names if n.startswith("_") and n != "__version__"]
    assert private == [], private  # _native, _scoring, _warm_numpy_bridge, ...
    for leaked in ("annotations", "PackageNotFoundError"):
        assert leaked not in names
    # Each name resolves: __all__ by attribute, subpackages by import spec (some need
    # torch to import, which this check must not require).
    for name in names:
        if name in maxsim.__all__:
            assert getattr(maxsim, name) is not None, name
        else:
            assert importlib.util.find_spec(f"maxsim.{name}") is not None, name


def test_lazy_names_stay_out_of_the_import() -> None:
    """``dir(maxsim)`` lists ``retrieve`` and ``models`` without importing them
    (nor torch)."""
    code = (
        "import sys, maxsim; names = dir(maxsim); "
        "print('retrieve' in names, 'models' in names, "
        "'maxsim.models' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "False"]


def _cargo_version() -> str:
    cargo = ROOT / "Cargo.toml"
    if not cargo.is_file():
        pytest.skip("not run from a source tree (no Cargo.toml)")
    text = cargo.read_text(encoding="utf-8")
    section = text.split("[workspace.package]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    assert match, "no version in Cargo.toml's [workspace.package]"
    return match.group(1)


def test_one_version_everywhere() -> None:
    version = _cargo_version()
    assert maxsim.__version__ == version
    assert maxsim.info()["version"] == version
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d[^\]]*)\]", changelog, re.M)
    assert released and released[0] == version, released  # the newest release heading
