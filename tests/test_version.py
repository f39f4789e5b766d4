"""One version: ``[workspace.package] version`` in Cargo.toml, compiled into
``maxsim._native`` and written by maturin into the metadata that
``maxsim.__version__`` reads."""

from __future__ import annotations

import re
from pathlib import Path

import maxsim
import pytest
from maxsim import _native
from packaging.version import Version

CARGO_TOML = Path(__file__).resolve().parents[1] / "Cargo.toml"


def workspace_version(cargo_toml: str) -> str:
    """The ``version`` key of the ``[workspace.package]`` table."""
    table = re.search(r"^\[workspace\.package\]$(.*?)(?=^\[|\Z)", cargo_toml, re.M | re.S)
    assert table, "Cargo.toml has no [workspace.package] table"
    key = re.search(r'^version\s*=\s*"([^"]+)"\s*$', table.group(1), re.M)
    assert key, "[workspace.package] has no version"
    return key.group(1)


def test_workspace_version_parser() -> None:
    text = (
        '[package]\nversion = "9.9.9"\n'
        '[workspace.package]\nedition = "2021"\nversion = "1.2.3-rc.1"\n'
        '[profile.release]\nversion = "0.0.0"\n'
    )
    assert workspace_version(text) == "1.2.3-rc.1"


def test_package_version_is_the_extension_version() -> None:
    # Cargo's "1.2.3-rc.1" is PEP 440's "1.2.3rc1": compare as versions.
    assert Version(maxsim.__version__) == Version(_native.__version__)
    assert maxsim.info()["version"] == maxsim.__version__


@pytest.mark.skipif(not CARGO_TOML.is_file(), reason="an installed wheel's tests: no Cargo.toml")
def test_extension_version_is_the_cargo_workspace_version() -> None:
    assert _native.__version__ == workspace_version(CARGO_TOML.read_text())
