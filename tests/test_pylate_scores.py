"""maxsim.pylate.colbert_scores / _pairwise / _kd_scores against PyLate itself.

Every expected value comes from ``pylate.scores`` (its torch path) or from a
float64 numpy MaxSim written from the definition.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pylate_scores = pytest.importorskip("pylate.scores")
hypothesis = pytest.importorskip("hypothesis")
import maxsim.pylate as mp  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ATOL = 1e-5


def pylate_colbert_scores(*args, **kwargs):
    return pylate_scores.colbert.colbert_scores(*args, **kwargs, backend="torch")


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ref_maxsim(q: np.ndarray, d: np.ndarray) -> float:
    """Σ_i max_j <q_i, d_j> in float64, straight from the definition."""
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


def random_mask(rng: np.random.Generator, n: int, length: int, p: float) -> np.ndarray:
    return (rng.random((n, length)) >= p).astype(np.float32)


@pytest.fixture(autouse=True)
def _not_patched():
    mp.unpatch()
    yield
    mp.unpatch()


# ---------------------------------------------------------------- colbert_scores


@pytest.mark.parametrize("use_qmask", [False, True])
@pytest.mark.parametrize("use_dmask", [False, True])
def test_colbert_scores_matches_pylate_with_masks(use_qmask: bool, use_dmask: bool) -> None:
    rng = np.random.default_rng(1)
    q = torch.from_numpy(unit(rng, 5, 9, 24))
    d = torch.from_numpy(unit(rng, 13, 17, 24))
    qm = torch.from_numpy(random_mask(rng, 5, 9, 0.3)) if use_qmask else None
    dm = torch.from_numpy(random_mask(rng, 13, 17, 0.4)) if use_dmask else None
    if use_dmask:
        dm[3] = 0  # a document with every token masked
        dm[4] = 1  # and one with none
    if use_qmask:
        qm[2] = 0  # a query with every token masked
    expected = pylate_colbert_scores(q, d, qm, dm)
    got = mp.colbert_scores(q, d, qm, dm)
    assert isinstance(got, torch.Tensor)
    assert got.shape == expected.shape == (5, 13)
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_colbert_scores_mask_zero_floor_matters() -> None:
    """All similarities negative: a masked token (similarity 0) wins the max."""
    q = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    d = torch.tensor([[[-1.0, -2.0], [-3.0, -1.0], [5.0, 5.0]]])
    dm = torch.tensor([[1, 1, 0]])
    expected = pylate_colbert_scores(q, d, None, dm)
    got = mp.colbert_scores(q, d, documents_mask=dm)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert got.tolist() == [[0.0], [0.0]]


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda a: torch.from_numpy(a), id="tensor"),
        pytest.param(lambda a: a, id="numpy"),
        pytest.param(lambda a: list(a), id="list-of-numpy"),
        pytest.param(lambda a: [torch.from_numpy(x) for x in a], id="list-of-tensors"),
        pytest.param(lambda a: a.tolist(), id="nested-lists"),
    ],
)
def test_colbert_scores_input_types(convert) -> None:
    rng = np.random.default_rng(2)
    q, d = unit(rng, 3, 6, 16), unit(rng, 4, 11, 16)
    dm = random_mask(rng, 4, 11, 0.3)
    expected = pylate_colbert_scores(convert(q), convert(d), None, torch.from_numpy(dm))
    got = mp.colbert_scores(convert(q), convert(d), documents_mask=dm)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int64, torch.float32, torch.float16])
def test_colbert_scores_mask_dtypes(mask_dtype) -> None:
    rng = np.random.default_rng(3)
    q, d = torch.from_numpy(unit(rng, 2, 5, 8)), torch.from_numpy(unit(rng, 6, 7, 8))
    qm = torch.from_numpy(random_mask(rng, 2, 5, 0.3)).to(mask_dtype)
    dm = torch.from_numpy(random_mask(rng, 6, 7, 0.3)).to(mask_dtype)
    expected = pylate_colbert_scores(q, d, qm, dm)
    got = mp.colbert_scores(q, d, qm, dm)
    assert got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_colbert_scores_other_float_dtypes(dtype) -> None:
    rng = np.random.default_rng(4)
    q = torch.from_numpy(unit(rng, 3, 8, 16)).to(dtype)
    d = torch.from_numpy(unit(rng, 5, 10, 16)).to(dtype)
    expected = pylate_colbert_scores(q, d)
    got = mp.colbert_scores(q, d)
    assert got.dtype == expected.dtype == dtype
    # maxsim computes in float32; PyLate's half-precision einsum is coarser.
    tol = {torch.float64: 1e-5, torch.float16: 2e-2, torch.bfloat16: 1e-1}[dtype]
    torch.testing.assert_close(got.double(), expected.double(), atol=tol, rtol=0)


def test_colbert_scores_non_binary_mask_falls_back_to_pylate() -> None:
    rng = np.random.default_rng(5)
    q, d = torch.from_numpy(unit(rng, 2, 4, 8)), torch.from_numpy(unit(rng, 3, 6, 8))
    dm = torch.full((3, 6), 0.5)
    expected = pylate_colbert_scores(q, d, None, dm)
    got = mp.colbert_scores(q, d, documents_mask=dm)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


def test_colbert_scores_needing_grad_runs_pylate() -> None:
    rng = np.random.default_rng(6)
    q = torch.from_numpy(unit(rng, 2, 4, 8)).requires_grad_()
    d = torch.from_numpy(unit(rng, 3, 6, 8))
    got = mp.colbert_scores(q, d)
    assert got.grad_fn is not None
    got.sum().backward()
    assert q.grad is not None
    with torch.no_grad():
        fast = mp.colbert_scores(q, d)
    assert fast.grad_fn is None
    torch.testing.assert_close(fast, got.detach(), atol=ATOL, rtol=0)


def test_colbert_scores_accelerator_tensors_fall_through() -> None:
    # "meta" tensors stand in for CUDA/MPS: not CPU, so PyLate's einsum runs.
    q = torch.empty(2, 4, 8, device="meta")
    d = torch.empty(3, 6, 8, device="meta")
    got = mp.colbert_scores(q, d)
    assert got.device.type == "meta"
    assert tuple(got.shape) == (2, 3)


def test_colbert_scores_backend_argument() -> None:
    rng = np.random.default_rng(7)
    q, d = torch.from_numpy(unit(rng, 2, 4, 8)), torch.from_numpy(unit(rng, 3, 6, 8))
    expected = pylate_colbert_scores(q, d)
    torch.testing.assert_close(mp.colbert_scores(q, d, backend="auto"), expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(mp.colbert_scores(q, d, backend="torch"), expected, atol=0, rtol=0)
    with pytest.raises(ValueError, match="backend"):
        mp.colbert_scores(q, d, backend="nope")
    with pytest.raises(RuntimeError):
        mp.colbert_scores(q, d, backend="flash")


def test_colbert_scores_integer_embeddings_run_pylate() -> None:
    q = torch.tensor([[[1, 0], [0, 2]]])
    d = torch.tensor([[[3, 1], [0, 1]], [[-1, -1], [2, 5]]])
    expected = pylate_colbert_scores(q, d)
    got = mp.colbert_scores(q, d)
    assert got.dtype == expected.dtype == torch.int64
    assert torch.equal(got, expected)


def test_colbert_scores_ragged_documents_are_exact() -> None:
    rng = np.random.default_rng(8)
    q = unit(rng, 3, 5, 8)
    docs = [unit(rng, n, 8) for n in (1, 7, 3, 12)]
    got = mp.colbert_scores(q, docs).numpy()
    expected = np.array([[ref_maxsim(qi, di) for di in docs] for qi in q])
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    ragged_queries = [unit(rng, n, 8) for n in (2, 6)]
    got = mp.colbert_scores(ragged_queries, docs).numpy()
    expected = np.array([[ref_maxsim(qi, di) for di in docs] for qi in ragged_queries])
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_colbert_scores_empty_batches() -> None:
    rng = np.random.default_rng(9)
    q, d = torch.from_numpy(unit(rng, 2, 4, 8)), torch.from_numpy(unit(rng, 3, 6, 8))
    assert mp.colbert_scores(q[:0], d).shape == (0, 3)
    assert mp.colbert_scores(q, d[:0]).shape == (2, 0)
    expected = pylate_colbert_scores(q[:, :0], d)  # zero query tokens: all 0
    torch.testing.assert_close(mp.colbert_scores(q[:, :0], d), expected)


@given(
    n_queries=st.integers(1, 4),
    n_docs=st.integers(1, 6),
    q_len=st.integers(1, 8),
    d_len=st.integers(1, 9),
    dim=st.sampled_from([1, 3, 8, 17, 32]),
    p_qmask=st.sampled_from([None, 0.0, 0.3, 0.9]),
    p_dmask=st.sampled_from([None, 0.0, 0.3, 0.9]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_colbert_scores_property(
    n_queries, n_docs, q_len, d_len, dim, p_qmask, p_dmask, seed
) -> None:
    rng = np.random.default_rng(seed)
    q = torch.from_numpy(unit(rng, n_queries, q_len, dim))
    d = torch.from_numpy(unit(rng, n_docs, d_len, dim))
    qm = None if p_qmask is None else torch.from_numpy(random_mask(rng, n_queries, q_len, p_qmask))
    dm = None if p_dmask is None else torch.from_numpy(random_mask(rng, n_docs, d_len, p_dmask))
    expected = pylate_colbert_scores(q, d, qm, dm)
    got = mp.colbert_scores(q, d, qm, dm)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


# ------------------------------------------------------------------- bad input


def test_colbert_scores_bad_input_messages() -> None:
    rng = np.random.default_rng(10)
    q, d = unit(rng, 2, 4, 8), unit(rng, 3, 6, 8)
    with pytest.raises(ValueError, match=r"queries_embeddings.*\(4, 8\).*float32"):
        mp.colbert_scores(q[0], d)
    with pytest.raises(ValueError, match=r"documents_mask.*\(3, 6\).*\(3, 5\)"):
        mp.colbert_scores(q, d, documents_mask=np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"queries_mask.*\(2, 4\)"):
        mp.colbert_scores(q, d, queries_mask=np.ones((2, 5)))
    with pytest.raises(ValueError, match="embedding size 8.*7"):
        mp.colbert_scores(q, unit(rng, 3, 6, 7))
    with pytest.raises(TypeError, match="documents_embeddings.*str"):
        mp.colbert_scores(q, "docs")
    with pytest.raises(TypeError, match="documents_mask.*str"):
        mp.colbert_scores(q, d, documents_mask="mask")
    with pytest.raises(ValueError, match=r"documents_embeddings.*zero tokens.*\(3, 0, 8\)"):
        mp.colbert_scores(q, d[:, :0])
    with pytest.raises(TypeError, match="documents_embeddings.*complex"):
        mp.colbert_scores(q, d.astype(np.complex64))


# ---------------------------------------------------------- pairwise and kd


def test_colbert_scores_pairwise_matches_pylate() -> None:
    rng = np.random.default_rng(11)
    q = torch.from_numpy(unit(rng, 6, 7, 16))
    d = torch.from_numpy(unit(rng, 6, 9, 16))
    expected = pylate_scores.colbert.colbert_scores_pairwise(q, d, backend="torch")
    got = mp.colbert_scores_pairwise(q, d)
    assert got.shape == (6,) and got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    # Ragged lists (PyLate loops pair by pair, so it accepts them too).
    qs = [unit(rng, n, 16) for n in (3, 5, 1)]
    ds = [unit(rng, n, 16) for n in (8, 2, 4)]
    expected = pylate_scores.colbert.colbert_scores_pairwise(qs, ds, backend="torch")
    torch.testing.assert_close(mp.colbert_scores_pairwise(qs, ds), expected, atol=ATOL, rtol=0)
    # Pairs of different widths and a query without tokens (it scores 0), all
    # scored in one native call.
    qs = [unit(rng, 3, 16), np.zeros((0, 8), np.float32), unit(rng, 2, 8), unit(rng, 4, 5)]
    ds = [unit(rng, 6, 16), unit(rng, 3, 8), unit(rng, 1, 8), unit(rng, 7, 5)]
    expected = torch.stack(
        [
            pylate_scores.colbert.colbert_scores_pairwise([q], [d], backend="torch")[0]
            for q, d in zip(qs, ds)
        ]
    )
    got = mp.colbert_scores_pairwise(qs, ds)
    assert got[1] == 0.0
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_colbert_scores_pairwise_errors() -> None:
    rng = np.random.default_rng(12)
    with pytest.raises(ValueError, match=r"documents_embeddings\[0\].*\(8,\)"):
        mp.colbert_scores_pairwise([unit(rng, 3, 8)], [unit(rng, 1, 8)[0]])
    with pytest.raises(ValueError, match=r"embedding size 8.*4"):
        mp.colbert_scores_pairwise([unit(rng, 3, 8)], [unit(rng, 2, 4)])


@pytest.mark.parametrize("masks", [False, True])
def test_colbert_kd_scores_matches_pylate(masks: bool) -> None:
    rng = np.random.default_rng(13)
    q = torch.from_numpy(unit(rng, 4, 6, 16))
    d = torch.from_numpy(unit(rng, 4, 5, 9, 16))
    qm = dm = None
    if masks:
        qm = torch.from_numpy(random_mask(rng, 4, 6, 0.3))
        dm = torch.from_numpy((rng.random((4, 5, 9)) > 0.4).astype(np.float32))
        dm[1, 2] = 0
    expected = pylate_scores.colbert.colbert_kd_scores(q, d, qm, dm, backend="torch")
    got = mp.colbert_kd_scores(q, d, qm, dm)
    assert got.shape == expected.shape == (4, 5)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("dim", [16, 37, 128])
def test_colbert_kd_scores_padding_masks_and_empty_rows(dim: int) -> None:
    """Padding-style (prefix) document masks, a row whose query is fully
    masked, a row whose candidates are fully masked, and one-token documents,
    all in one call, against PyLate's einsum."""
    rng = np.random.default_rng(dim)
    batch, n_cand, q_len, d_len = 6, 7, 9, 30
    q = torch.from_numpy(unit(rng, batch, q_len, dim))
    d = torch.from_numpy(unit(rng, batch, n_cand, d_len, dim))
    lengths = rng.integers(1, d_len + 1, size=(batch, n_cand))
    lengths[0, 0] = d_len  # unpadded: no zero floor
    lengths[0, 1] = 1
    dm = torch.from_numpy((np.arange(d_len) < lengths[..., None]).astype(np.float32))
    dm[3] = 0  # row 3: every candidate fully masked
    qm = torch.from_numpy(random_mask(rng, batch, q_len, 0.2))
    qm[2] = 0  # row 2: every query token masked
    expected = pylate_scores.colbert.colbert_kd_scores(q, d, qm, dm, backend="torch")
    got = mp.colbert_kd_scores(q, d, qm, dm)
    assert got.shape == expected.shape == (batch, n_cand)
    assert torch.count_nonzero(got[2]) == 0 and torch.count_nonzero(got[3]) == 0
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    # Without masks: plain MaxSim per (row, candidate), against a numpy reference.
    sims = np.einsum("bqk,bntk->bnqt", q.numpy(), d.numpy())
    reference = sims.max(axis=3).sum(axis=2)
    np.testing.assert_allclose(mp.colbert_kd_scores(q, d).numpy(), reference, atol=ATOL)


def test_colbert_kd_scores_bad_shapes() -> None:
    rng = np.random.default_rng(14)
    with pytest.raises(ValueError, match=r"documents_embeddings.*4-D.*\(4, 9, 16\)"):
        mp.colbert_kd_scores(unit(rng, 4, 6, 16), unit(rng, 4, 9, 16))
    with pytest.raises(ValueError, match=r"documents_mask.*\(4, 5, 9\)"):
        mp.colbert_kd_scores(unit(rng, 4, 6, 16), unit(rng, 4, 5, 9, 16), None, np.ones((4, 9)))
    with pytest.raises(ValueError, match=r"documents_embeddings.*zero tokens.*\(4, 5, 0, 16\)"):
        mp.colbert_kd_scores(unit(rng, 4, 6, 16), np.zeros((4, 5, 0, 16), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_byte_swapped_numpy_inputs_score_their_values(dtype) -> None:
    """numpy arrays in the other byte order (``'>f4'`` on a little-endian
    machine, which torch cannot even wrap) score exactly as the same values in
    native order, in every drop-in."""
    rng = np.random.default_rng(15)
    q = unit(rng, 3, 5, 16).astype(dtype)
    d = unit(rng, 4, 7, 16).astype(dtype)

    def swap(x: np.ndarray) -> np.ndarray:
        return x.astype(x.dtype.newbyteorder("S"))

    assert not swap(q).dtype.isnative
    torch.testing.assert_close(
        mp.colbert_scores(swap(q), swap(d)), mp.colbert_scores(q, d), atol=0, rtol=0
    )
    torch.testing.assert_close(
        mp.colbert_scores_pairwise(swap(q), swap(d[:3])),
        mp.colbert_scores_pairwise(q, d[:3]),
        atol=0,
        rtol=0,
    )
    kd_docs = np.stack([d[:2], d[2:], d[1:3]])  # (3, 2, 7, 16): 2 candidates per query
    got = mp.colbert_kd_scores(swap(q), swap(kd_docs))
    torch.testing.assert_close(got, mp.colbert_kd_scores(q, kd_docs), atol=0, rtol=0)
