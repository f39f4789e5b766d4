"""``import maxsim`` costs nothing of the integrations: no framework (nor
torch) is imported until an integration module is, and an integration whose
framework is missing says which extra to install. Run in fresh processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("ray", "langchain_core", "llama_index", "qdrant_client", "torch", "pydantic")
MODULES = {  # integration module -> (the framework it needs, its extra)
    "langchain": ("langchain_core", "langchain"),
    "llamaindex": ("llama_index", "llamaindex"),
    "qdrant": ("qdrant_client", "qdrant"),
    "ray": ("ray", "ray"),
}


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_maxsim_imports_no_framework():
    out = run(
        "import sys, maxsim, maxsim.integrations\n"
        f"loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_missing_framework_names_the_extra(module):
    framework, extra = MODULES[module]
    out = run(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {framework!r}:\n"
        "            raise ImportError('blocked by the test: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import maxsim.integrations.{module}\n"
    )
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert f"pip install 'maxsim[{extra}]'" in out.stderr, out.stderr[-2000:]
