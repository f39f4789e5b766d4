"""maxsim.pylate.patch / unpatch / patched reroute PyLate, and nothing else."""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pylate = pytest.importorskip("pylate")

import maxsim.pylate as mp  # noqa: E402
from maxsim.pylate import _fallback  # noqa: E402

for _name in ("pylate.rank", "pylate.rank.rank", "pylate.retrieve.colbert", "pylate.scores"):
    importlib.import_module(_name)

# The five targets, and the function each must become.
TARGETS = {
    ("pylate.rank", "rerank"): mp.rerank,
    ("pylate.rank.rank", "rerank"): mp.rerank,
    ("pylate.retrieve.colbert", "rerank"): mp.rerank,
    ("pylate.rank.rank", "colbert_scores"): mp.colbert_scores,
    ("pylate.scores", "colbert_scores"): mp.colbert_scores,
    ("pylate.scores", "colbert_scores_pairwise"): mp.colbert_scores_pairwise,
    ("pylate.scores", "colbert_kd_scores"): mp.colbert_kd_scores,
}


def current(module: str, attr: str):
    return getattr(importlib.import_module(module), attr)


@pytest.fixture(autouse=True)
def _not_patched():
    mp.unpatch()
    originals = {key: current(*key) for key in TARGETS}
    yield originals
    mp.unpatch()
    for key, fn in originals.items():
        assert current(*key) is fn


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_patch_and_unpatch_swap_every_target(_not_patched) -> None:
    originals = _not_patched
    assert not mp.is_patched()
    names = mp.patch()
    assert mp.is_patched()
    assert sorted(names) == sorted(f"{m}.{a}" for m, a in TARGETS)
    for key, replacement in TARGETS.items():
        assert current(*key) is replacement, key
    mp.patch()  # idempotent: the originals are kept, not the replacements
    mp.unpatch()
    assert not mp.is_patched()
    for key, fn in originals.items():
        assert current(*key) is fn, key
    mp.unpatch()  # no-op


def test_context_manager_nests(_not_patched) -> None:
    originals = _not_patched
    with mp.patched():
        assert pylate.rank.rerank is mp.rerank
        with mp.patched():
            assert pylate.scores.colbert_scores is mp.colbert_scores
        assert pylate.scores.colbert_scores is mp.colbert_scores  # outer still on
    assert pylate.rank.rerank is originals[("pylate.rank", "rerank")]
    with pytest.raises(RuntimeError), mp.patched():
        raise RuntimeError("boom")
    assert not mp.is_patched()


def test_patched_rerank_matches_unpatched() -> None:
    rng = np.random.default_rng(0)
    queries = [unit(rng, 6, 16) for _ in range(3)]
    docs = [[unit(rng, int(rng.integers(1, 20)), 16) for _ in range(25)] for _ in range(3)]
    ids = [list(range(25)) for _ in range(3)]
    expected = pylate.rank.rerank(ids, queries, docs)
    with mp.patched():
        got = pylate.rank.rerank(ids, queries, docs)
        via_scores = pylate.scores.colbert_scores(
            torch.from_numpy(np.stack(queries)), torch.from_numpy(np.stack(docs[0][:1] * 2))
        )
    assert via_scores.shape == (3, 2)
    for g, e in zip(got, expected):
        assert [r["id"] for r in g] == [r["id"] for r in e]
        np.testing.assert_allclose([r["score"] for r in g], [r["score"] for r in e], atol=1e-5)


def test_patched_scores_fall_through_for_accelerators() -> None:
    # "meta" stands in for CUDA/MPS: the original PyLate einsum must run.
    with mp.patched():
        out = pylate.scores.colbert_scores(
            torch.empty(2, 3, 8, device="meta"), torch.empty(4, 5, 8, device="meta")
        )
        assert out.device.type == "meta" and tuple(out.shape) == (2, 4)
        # PyLate's own rerank, reached for a non-CPU device, still works when
        # its colbert_scores global is the patched one.
        original_rerank = _fallback.original("pylate.rank.rank", "rerank")
        assert original_rerank is not None and original_rerank is not mp.rerank


def test_patched_scores_keep_gradients() -> None:
    rng = np.random.default_rng(1)
    q = torch.from_numpy(unit(rng, 2, 3, 8)).requires_grad_()
    d = torch.from_numpy(unit(rng, 4, 5, 8))
    with mp.patched():
        out = pylate.scores.colbert_scores(q, d)
    out.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_missing_pylate_gives_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pylate", None)  # "import pylate" now fails
    with pytest.raises(ImportError, match=r"pip install pylate"):
        mp.patch()
    with pytest.raises(ImportError, match=r"pip install pylate"), mp.patched():
        pass
    assert not mp.is_patched()
