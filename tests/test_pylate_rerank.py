"""maxsim.pylate.rerank against pylate.rank.rerank (default) and numpy (exact)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pylate_rank = pytest.importorskip("pylate.rank.rank")

import maxsim.pylate as mp  # noqa: E402
from maxsim import _scoring  # noqa: E402

ATOL = 1e-5


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ref_maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float((q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1).sum())


@pytest.fixture(autouse=True)
def _not_patched():
    mp.unpatch()
    yield
    mp.unpatch()


def make_workload(seed: int, n_queries: int = 4, n_docs: int = 40, dim: int = 32):
    rng = np.random.default_rng(seed)
    queries = [unit(rng, 8, dim) for _ in range(n_queries)]
    docs = [
        [unit(rng, int(rng.integers(1, 30)), dim) for _ in range(n_docs)] for _ in range(n_queries)
    ]
    ids = [[f"q{i}-d{j}" for j in range(n_docs)] for i in range(n_queries)]
    return ids, queries, docs


def assert_same_results(got, expected, atol: float = ATOL) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert [r["id"] for r in g] == [r["id"] for r in e]
        np.testing.assert_allclose(
            [r["score"] for r in g], [r["score"] for r in e], atol=atol, rtol=0
        )
        assert all(isinstance(r["score"], float) for r in g)
        assert all(set(r) == {"id", "score"} for r in g)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda a: a, id="numpy"),
        pytest.param(lambda a: torch.from_numpy(a), id="tensor"),
        pytest.param(lambda a: a.tolist(), id="lists"),
    ],
)
def test_rerank_matches_pylate(convert) -> None:
    ids, queries, docs = make_workload(0)
    queries = [convert(q) for q in queries]
    docs = [[convert(d) for d in group] for group in docs]
    expected = pylate_rank.rerank(ids, queries, docs)
    assert_same_results(mp.rerank(ids, queries, docs), expected)
    assert_same_results(mp.rerank(ids, queries, docs, device="cpu"), expected)


def test_rerank_mixed_candidate_types_match_pylate() -> None:
    """A group mixing ready numpy arrays with tensors and Fortran-order arrays
    takes the per-candidate conversion; the results are PyLate's on the
    all-numpy input."""
    ids, queries, docs = make_workload(1)
    expected = pylate_rank.rerank(ids, queries, docs)
    forms = (lambda a: a, torch.from_numpy, np.asfortranarray)
    mixed = [[forms[j % 3](d) for j, d in enumerate(group)] for group in docs]
    assert_same_results(mp.rerank(ids, queries, mixed), expected)


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda a: torch.from_numpy(a).requires_grad_(), id="requires-grad"),
        pytest.param(lambda a: torch.from_numpy(np.asfortranarray(a)), id="non-contiguous"),
        pytest.param(lambda a: torch.from_numpy(a).double(), id="float64"),
        pytest.param(lambda a: torch.from_numpy(a).bfloat16(), id="bfloat16"),
    ],
)
def test_rerank_tensor_candidates_that_need_conversion(form) -> None:
    """Tensor candidates are viewed as numpy arrays in one pass; the ones that
    cannot be (a gradient, bfloat16) or that the view does not make ready
    (strides, float64) take the per-candidate conversion, and a group whose
    first candidate is a tensor but whose others are not does too. Results:
    PyLate's on the same values as float32 numpy."""
    ids, queries, docs = make_workload(4)
    values = [[form(d).detach().float().numpy() for d in group] for group in docs]
    expected = pylate_rank.rerank(ids, queries, values)
    candidates = [[form(d) for d in group] for group in docs]
    assert_same_results(mp.rerank(ids, queries, candidates), expected)
    mixed = [
        [c if j == 0 else v for j, (c, v) in enumerate(zip(cs, vs))]
        for cs, vs in zip(candidates, values)
    ]
    assert_same_results(mp.rerank(ids, queries, mixed), expected)


@pytest.mark.parametrize(
    "form",
    [pytest.param(lambda a: a, id="numpy"), pytest.param(torch.from_numpy, id="tensor")],
)
def test_rerank_float16_candidates(form, monkeypatch) -> None:
    """float16 candidates are scored as stored (one grouped float16 call, no
    float32 copy): PyLate's results on the same values as float32, exact
    MaxSim with ``exact=True``; a group mixing dtypes takes the per-candidate
    conversion."""
    ids, queries, docs = make_workload(4)
    half = [[form(d.astype(np.float16)) for d in group] for group in docs]
    widened = [[d.astype(np.float16).astype(np.float32) for d in group] for group in docs]
    calls = []
    grouped = _scoring.scores_grouped

    def spy(queries, docs, offsets, *, zero_floor=None):
        calls.append([d.dtype for d in docs])
        return grouped(queries, docs, offsets, zero_floor=zero_floor)

    monkeypatch.setattr(_scoring, "scores_grouped", spy)
    got = mp.rerank(ids, queries, half)
    assert len(calls) == 1 and set(calls[0]) == {np.dtype(np.float16)}  # taken as stored
    # PyLate itself rejects a float32 query against float16 candidates (its
    # einsum needs one dtype); its results on the same values as float32:
    assert_same_results(got, pylate_rank.rerank(ids, queries, widened))
    exact = mp.rerank(ids, queries, half, exact=True)
    for q, group, g_ids, result in zip(queries, widened, ids, exact):
        expected = {i: ref_maxsim(q, d) for i, d in zip(g_ids, group)}
        for r in result:
            assert abs(r["score"] - expected[r["id"]]) < ATOL
    # One float32 candidate in a group: every candidate of it is converted.
    mixed = [list(group) for group in half]
    mixed[0][3] = widened[0][3]
    calls.clear()
    assert_same_results(mp.rerank(ids, queries, mixed), pylate_rank.rerank(ids, queries, widened))
    half_calls = [c for c in calls if set(c) == {np.dtype(np.float16)}]
    assert len(half_calls) == 1 and len(half_calls[0]) == sum(len(g) for g in half[1:])


def test_rerank_unaligned_candidates_match_pylate() -> None:
    """Candidates one byte past an aligned address (``np.frombuffer`` at an odd
    offset) are copied, not rejected: PyLate's results on the aligned input."""

    def unaligned(x: np.ndarray) -> np.ndarray:
        buf = np.zeros(x.nbytes + 1, dtype=np.uint8)
        out = buf[1:].view(x.dtype).reshape(x.shape)
        out[...] = x
        return out

    ids, queries, docs = make_workload(2)
    expected = pylate_rank.rerank(ids, queries, docs)
    moved = [[unaligned(d) for d in group] for group in docs]
    assert not moved[0][0].flags.aligned
    assert_same_results(mp.rerank(ids, [unaligned(q) for q in queries], moved), expected)


def test_rerank_query_shapes() -> None:
    ids, queries, docs = make_workload(1, n_queries=3)
    stacked = torch.from_numpy(np.stack(queries))  # (Nq, Lq, d)
    assert_same_results(mp.rerank(ids, stacked, docs), pylate_rank.rerank(ids, stacked, docs))
    # A single 2-D query, as PyLate's reshape_embeddings allows.
    one = torch.from_numpy(queries[0])
    assert_same_results(
        mp.rerank(ids[:1], one, docs[:1]), pylate_rank.rerank(ids[:1], one, docs[:1])
    )
    # 4-D documents: every candidate padded by the caller (zeros are tokens).
    rng = np.random.default_rng(2)
    docs4 = unit(rng, 3, 5, 7, 32)
    docs4[:, :, 4:] = 0.0
    ids4 = [list(range(5))] * 3
    assert_same_results(mp.rerank(ids4, stacked, docs4), pylate_rank.rerank(ids4, stacked, docs4))


def test_padding_artefact_default_vs_exact() -> None:
    """The README example: every similarity is negative.

    PyLate pads the short document with zero vectors, so each query token's
    best similarity becomes 0 and the short document wins; exact MaxSim keeps
    the true (negative) best.
    """
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    long_doc = np.array([[-0.6, -0.8], [-0.8, -0.6], [-0.96, -0.28]], dtype=np.float32)
    short_doc = np.array([[-0.8, -0.6]], dtype=np.float32)
    ids, docs = [["long", "short"]], [[long_doc, short_doc]]

    expected = pylate_rank.rerank(ids, [q], docs)
    got = mp.rerank(ids, [q], docs)
    assert_same_results(got, expected)
    assert [r["id"] for r in got[0]] == ["short", "long"]
    assert [r["score"] for r in got[0]] == pytest.approx([0.0, -0.88])

    exact = mp.rerank(ids, [q], docs, exact=True)
    assert [r["id"] for r in exact[0]] == ["long", "short"]
    assert [r["score"] for r in exact[0]] == pytest.approx(
        [ref_maxsim(q, long_doc), ref_maxsim(q, short_doc)]
    )
    assert [r["score"] for r in exact[0]] == pytest.approx([-0.88, -1.4])


def test_rerank_exact_is_true_maxsim() -> None:
    ids, queries, docs = make_workload(3)
    got = mp.rerank(ids, queries, docs, exact=True)
    for i, results in enumerate(got):
        by_id = dict(zip(ids[i], docs[i]))
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        assert sorted(r["id"] for r in results) == sorted(ids[i])
        for r in results:
            assert r["score"] == pytest.approx(ref_maxsim(queries[i], by_id[r["id"]]), abs=ATOL)


def test_rerank_ties_keep_pylate_order() -> None:
    rng = np.random.default_rng(4)
    q = unit(rng, 4, 8)
    a, b = unit(rng, 6, 8), unit(rng, 6, 8)
    docs = [[a, b, a, b, a.copy(), b]]
    ids = [["a1", "b1", "a2", "b2", "a3", "b3"]]
    expected = pylate_rank.rerank(ids, [q], docs)
    assert_same_results(mp.rerank(ids, [q], docs), expected)


def test_rerank_empty_and_zero_token_candidates() -> None:
    rng = np.random.default_rng(5)
    q = unit(rng, 4, 8)
    assert mp.rerank([[]], [q], [[]]) == [[]]
    docs = [[unit(rng, 3, 8), np.zeros((0, 8), np.float32), unit(rng, 5, 8)]]
    ids = [["x", "empty", "y"]]
    expected = pylate_rank.rerank(ids, [q], docs)
    assert_same_results(mp.rerank(ids, [q], docs), expected)
    exact = mp.rerank(ids, [q], docs, exact=True)
    assert exact[0][-1] == {"id": "empty", "score": float("-inf")}


def test_rerank_non_cpu_device_uses_pylate(monkeypatch) -> None:
    calls = []

    def spy(**kwargs):
        calls.append(kwargs["device"])
        return "pylate"

    monkeypatch.setattr(pylate_rank, "rerank", spy)
    ids, queries, docs = make_workload(6, n_queries=1, n_docs=3)
    assert mp.rerank(ids, queries, docs, device="cuda") == "pylate"
    assert mp.rerank(ids, queries, docs, device="mps") == "pylate"
    assert calls == ["cuda", "mps"]
    # exact=True never falls through: it scores on the CPU.
    assert mp.rerank(ids, queries, docs, device="cuda", exact=True) != "pylate"


def test_rerank_bad_input() -> None:
    rng = np.random.default_rng(7)
    q = unit(rng, 4, 8)
    with pytest.raises(ValueError, match=r"documents_embeddings\[0\]\[1\].*\(8,\).*float32"):
        mp.rerank([["a", "b"]], [q], [[unit(rng, 3, 8), unit(rng, 1, 8)[0]]])
    with pytest.raises(ValueError, match=r"embedding sizes \[6\].*queries_embeddings\[0\] \(8\)"):
        mp.rerank([["a"]], [q], [[unit(rng, 3, 6)]])
    with pytest.raises(ValueError, match=r"documents_ids\[0\] has 1 ids for 2"):
        mp.rerank([["a"]], [q], [[unit(rng, 3, 8), unit(rng, 3, 8)]])
    with pytest.raises(TypeError, match=r"queries_embeddings\[0\].*str"):
        mp.rerank([["a"]], ["query"], [[unit(rng, 3, 8)]])


def test_rerank_materializes_no_padding(monkeypatch) -> None:
    """The core receives the caller's own arrays (no pad, no copy) + zero_floor,
    every query's candidates in one native call."""
    seen = []
    grouped = _scoring.scores_grouped

    def spy_groups(queries, docs, offsets, *, zero_floor=None):
        seen.append((queries, docs, offsets, zero_floor))
        return grouped(queries, docs, offsets, zero_floor=zero_floor)

    monkeypatch.setattr(_scoring, "scores_grouped", spy_groups)
    ids, queries, docs = make_workload(8, n_queries=2, n_docs=10)
    for exact in (False, True):
        seen.clear()
        mp.rerank(ids, queries, docs, exact=exact)
        assert len(seen) == 1
        passed_queries, passed, offsets, zero_floor = seen[0]
        assert len(passed_queries) == 2 and offsets == [0, 10, 20]
        originals = [d for group in docs for d in group]
        assert len(passed) == len(originals)
        assert all(p is o for p, o in zip(passed, originals))
        if exact:
            assert zero_floor is None
        else:
            expected = np.concatenate(
                [[len(d) < max(len(x) for x in group) for d in group] for group in docs]
            )
            np.testing.assert_array_equal(zero_floor, expected)


def test_list_groups_native_checks_and_values() -> None:
    """The grouped native call rerank uses: each query against its own group,
    its Python-free checks, and values from first principles."""
    from maxsim import _native

    q4 = np.ones((3, 4), np.float32)
    q2 = np.ones((2, 2), np.float32)
    # Every similarity is 4 * 0.5 = 2 or 4 * -1 = -4 (query q4), 2 * 3 = 6 (q2).
    docs = [
        np.full((2, 4), 0.5, np.float32),
        np.full((1, 4), -1.0, np.float32),
        np.full((5, 2), 3.0, np.float32),
    ]
    np.testing.assert_array_equal(
        _native.maxsim_list_groups([q4, q2], docs, [0, 2, 3]), [6.0, -12.0, 12.0]
    )
    floor = np.array([False, True, False])
    np.testing.assert_array_equal(
        _native.maxsim_list_groups([q4, q2], docs, [0, 2, 3], floor), [6.0, 0.0, 12.0]
    )
    # An empty group scores nothing.
    np.testing.assert_array_equal(
        _native.maxsim_list_groups([q4, q2, q4], docs, [0, 2, 3, 3]), [6.0, -12.0, 12.0]
    )
    with pytest.raises(ValueError, match=r"docs\[2\]: dimension 2 .* queries\[0\]'s 4"):
        _native.maxsim_list_groups([q4], docs, [0, 3])
    with pytest.raises(ValueError, match="zero tokens"):
        _native.maxsim_list_groups([q4], [np.ones((0, 4), np.float32)], [0, 1])
    with pytest.raises(ValueError, match="group_offsets"):
        _native.maxsim_list_groups([q4, q2], docs, [0, 3, 2])
    with pytest.raises(ValueError, match="group_offsets"):
        _native.maxsim_list_groups([q4, q2], docs, [0, 2])
    with pytest.raises(ValueError, match="zero_floor: has 2 entries for 3"):
        _native.maxsim_list_groups([q4, q2], docs, [0, 2, 3], floor[:2])
    with pytest.raises(ValueError, match=r"queries\[1\]: must be C-contiguous"):
        _native.maxsim_list_groups([q4, np.asfortranarray(q4)], docs[:2], [0, 1, 2])


def test_list_groups_match_reference_on_any_thread_count() -> None:
    """Groups run in parallel as well as their documents: many one-document
    groups (pairwise) and a few large ones (rerank) give the float64 reference
    and bitwise the same scores on 1, 2 and 3 threads."""
    import maxsim
    from maxsim import _native

    rng = np.random.default_rng(21)
    sizes = [1] * 40 + [60, 1, 35, 0, 90]
    queries = [unit(rng, int(rng.integers(1, 40)), 24) for _ in sizes]
    groups = [[unit(rng, int(rng.integers(1, 120)), 24) for _ in range(n)] for n in sizes]
    docs = [d for group in groups for d in group]
    offsets = [0, *np.cumsum(sizes).tolist()]
    floor = rng.random(len(docs)) < 0.3
    # PyLate's zero floor applies per query token: sum_i max(0, max_j q_i . d_j).
    expected = []
    for q, group, lo in zip(queries, groups, offsets):
        for j, d in enumerate(group):
            best = (q.astype(np.float64) @ d.astype(np.float64).T).max(axis=1)
            expected.append((np.maximum(best, 0.0) if floor[lo + j] else best).sum())
    previous = maxsim.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            maxsim.set_num_threads(threads)
            results.append(_native.maxsim_list_groups(queries, docs, offsets, floor))
    finally:
        maxsim.set_num_threads(previous)
    np.testing.assert_allclose(results[0], expected, rtol=0, atol=1e-4)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_half_list_groups_values() -> None:
    """The float16 / bfloat16 grouped call, from first principles: every value
    below is exact in both formats."""
    import ml_dtypes
    from maxsim import _native

    q4 = np.ones((3, 4), np.float32)
    q2 = np.ones((2, 2), np.float32)
    for dtype, bf16 in ((np.float16, False), (ml_dtypes.bfloat16, True)):
        docs = [
            np.full((2, 4), 0.5, dtype),  # 3 query tokens x 4 x 0.5 = 6
            np.full((1, 4), -1.0, dtype),  # 3 x 4 x -1 = -12 (0 with the floor)
            np.full((5, 2), 3.0, dtype),  # 2 x 2 x 3 = 12
        ]
        bits = [d.view(np.uint16) for d in docs]
        floor = np.array([False, True, False])
        got = _native.maxsim_half_list_groups([q4, q2], bits, [0, 2, 3], bf16, floor)
        np.testing.assert_array_equal(got, [6.0, 0.0, 12.0])
        with pytest.raises(ValueError, match=r"docs\[2\]: dimension 2"):
            _native.maxsim_half_list_groups([q4], bits, [0, 3], bf16)
