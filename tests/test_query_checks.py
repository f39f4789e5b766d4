"""Queries are always checked for NaN/inf, and ``k`` is checked before any work.

A single NaN or inf in a query token would make every score NaN or infinite
(the max skips NaN similarities, so a NaN token contributes -inf) and a top-k
would rank garbage, silently. Every scoring entry point that takes a float
query raises ``ValueError`` naming the argument, the query (for batches), the
row and the column instead; masked-out tokens are not scored, so they are not
checked. Documents are checked only with ``check_finite=True``.

``k`` beyond what the native layer takes (``2**63 - 1``) raised a raw
``OverflowError`` after every score had been computed; it now raises the same
kind of ``ValueError`` as ``k=0``, before anything else.
"""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from conftest import normalised, reference_maxsim
from hypothesis import given, settings
from hypothesis import strategies as st
from maxsim import binary
from maxsim._convert import K_MAX

BAD_VALUES = [np.nan, np.inf, -np.inf]


def _poisoned(rng: np.random.Generator, value: float, row: int, col: int, *shape: int):
    q = normalised(rng, *shape)
    q[..., row, col] = value
    return q


def _row_message(name: str, row: int, col: int, value: float) -> str:
    shown = "NaN" if np.isnan(value) else str(value)
    return rf"{name}: row {row} holds {shown} at column {col} \(shape"


# -- maxsim.scores / scores_batch / topk -------------------------------------


@pytest.mark.parametrize("value", BAD_VALUES)
def test_scores_names_the_row_and_column(rng, value):
    q = _poisoned(rng, value, 3, 5, 8, 16)
    docs = normalised(rng, 4, 6, 16)
    pattern = _row_message("query", 3, 5, value) + r" \(8, 16\) dtype float32\)"
    for call in (
        lambda: maxsim.scores(q, docs),
        lambda: maxsim.scores(q, list(docs)),
        lambda: maxsim.scores(q, maxsim.PackedDocs.from_list(list(docs))),
        lambda: maxsim.topk(q, docs, 2),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


def test_message_says_why_and_counts_other_rows(rng):
    q = normalised(rng, 6, 8)
    q[[1, 4], 2] = np.nan
    with pytest.raises(ValueError) as exc:
        maxsim.scores(q, normalised(rng, 3, 5, 8))
    text = str(exc.value)
    assert text.startswith("query: row 1 holds NaN at column 2 (and 1 more row(s))")
    assert "makes every score NaN or infinite" in text


@pytest.mark.parametrize(
    "docs_of",
    [
        lambda d: d.astype(np.float16),
        lambda d: maxsim.quantize(d, "bfloat16"),
        lambda d: maxsim.quantize(d, "int8_per_token"),
    ],
    ids=["float16", "bfloat16", "int8"],
)
def test_reduced_precision_paths_check_the_query(rng, docs_of):
    docs = docs_of(normalised(rng, 4, 6, 16))
    q = _poisoned(rng, np.nan, 0, 15, 3, 16)
    with pytest.raises(ValueError, match=_row_message("query", 0, 15, np.nan)):
        maxsim.scores(q, docs)
    with pytest.raises(ValueError, match=_row_message("query", 0, 15, np.nan)):
        maxsim.topk(q, docs, 1)
    with pytest.raises(ValueError, match=r"query: row 0 .*dtype float64"):
        maxsim.scores(q.astype(np.float64), docs)


def test_batches_name_the_query_and_row(rng):
    docs = normalised(rng, 5, 7, 8)
    batch = normalised(rng, 4, 3, 8)
    batch[2, 1, 7] = np.inf
    pattern = _row_message(r"queries\[2\]", 1, 7, np.inf)
    for call in (
        lambda: maxsim.scores_batch(batch, docs),
        lambda: maxsim.scores_batch(list(batch), docs),
        lambda: maxsim.scores_batch([batch[0], batch[2][:2]], docs),  # ragged list
        lambda: maxsim.topk(batch, docs, 3),
        lambda: maxsim.topk(list(batch), docs, 3),
    ):
        with pytest.raises(ValueError, match=pattern.replace(r"\[2\]", r"\[\d\]")):
            call()
    with pytest.raises(ValueError, match=pattern):
        maxsim.scores_batch(batch, docs)


def test_masked_out_tokens_are_not_checked(rng):
    """A masked token is never scored: NaN there changes nothing, so it is allowed,
    and the score equals the reference over the kept tokens."""
    docs = normalised(rng, 5, 7, 8)
    q = _poisoned(rng, np.nan, 1, 0, 3, 8)
    keep = np.array([True, False, True])
    got = maxsim.scores(q, docs, query_mask=keep)
    expected = [reference_maxsim(q[keep], d) for d in docs]
    np.testing.assert_allclose(got, expected, atol=1e-5)

    batch = np.stack([normalised(rng, 3, 8), q])
    masks = np.array([[True, True, True], keep])
    got_batch = maxsim.scores_batch(batch, docs, queries_mask=masks)
    np.testing.assert_allclose(got_batch[1], expected, atol=1e-5)
    # A NaN in a kept token of the same batch is still caught, and named.
    with pytest.raises(ValueError, match=r"queries\[1\]: row 1"):
        maxsim.scores_batch(batch, docs, queries_mask=np.ones((2, 3), bool))


def test_float64_beyond_float32_range_is_named(rng):
    q = normalised(rng, 2, 4).astype(np.float64)
    q[1, 3] = 1e300  # finite in float64, inf once converted to float32
    pattern = (
        r"query: row 1 holds 1e\+300, beyond float32's range, at column 3 "
        r"\(shape \(2, 4\) dtype float64\)"
    )
    with pytest.warns(RuntimeWarning, match="overflow"):  # numpy's, converting to float32
        with pytest.raises(ValueError, match=pattern):
            maxsim.scores(q, normalised(rng, 3, 5, 4))


def test_torch_queries_are_checked(rng):
    torch = pytest.importorskip("torch")
    q = torch.from_numpy(_poisoned(rng, np.nan, 2, 1, 4, 8))
    with pytest.raises(ValueError, match=_row_message("query", 2, 1, np.nan)):
        maxsim.scores(q, normalised(rng, 3, 5, 8))
    with pytest.raises(ValueError, match=r"query: row 2 .*dtype torch.bfloat16"):
        maxsim.scores(q.bfloat16(), normalised(rng, 3, 5, 8))


def test_documents_are_checked_only_on_request(rng):
    q = normalised(rng, 3, 8)
    docs = normalised(rng, 4, 5, 8)
    docs[1, 2, 3] = np.nan
    got = maxsim.scores(q, docs)  # a NaN similarity never wins the max
    assert np.isfinite(got).all()
    np.testing.assert_allclose(
        got[[0, 2, 3]], [reference_maxsim(q, docs[i]) for i in (0, 2, 3)], atol=1e-5
    )
    with pytest.raises(ValueError, match=r"docs: contains NaN or inf"):
        maxsim.scores(q, docs, check_finite=True)


@settings(max_examples=60, deadline=None)
@given(
    nq=st.integers(1, 40),
    dim=st.integers(1, 70),
    data=st.data(),
)
def test_any_bad_position_is_found(nq, dim, data):
    """Wherever the NaN/inf sits, the message names its row and column."""
    row = data.draw(st.integers(0, nq - 1))
    col = data.draw(st.integers(0, dim - 1))
    value = data.draw(st.sampled_from(BAD_VALUES))
    q = np.ones((nq, dim), np.float32)
    q[row, col] = value
    with pytest.raises(ValueError, match=_row_message("query", row, col, value)):
        maxsim.scores(q, np.ones((2, 3, dim), np.float32))


# -- k --------------------------------------------------------------------------


HUGE_KS = [2**63, np.uint64(2**63), 2**64, 10**30]


@pytest.mark.parametrize("k", HUGE_KS)
def test_topk_rejects_huge_k_before_any_work(rng, k):
    q = normalised(rng, 3, 8)
    pattern = rf"k: must be at most 2\*\*63 - 1 \({K_MAX}\), got {int(k)}"
    with pytest.raises(ValueError, match=pattern):
        maxsim.topk(q, normalised(rng, 4, 5, 8), k)
    # Checked first: documents that cannot be read at all do not get a say.
    with pytest.raises(ValueError, match=pattern):
        maxsim.topk(q, "not documents", k)
    with pytest.raises(ValueError, match=pattern):
        maxsim.topk(np.full((3, 8), np.nan, np.float32), None, k)


def test_largest_k_returns_every_document_best_first(rng):
    q = normalised(rng, 3, 8)
    docs = normalised(rng, 6, 5, 8)
    scores, ids = maxsim.topk(q, docs, K_MAX)
    expected = np.array([reference_maxsim(q, d) for d in docs])
    np.testing.assert_array_equal(ids, np.argsort(-expected, kind="stable"))
    np.testing.assert_allclose(scores, expected[ids], atol=1e-5)
    with pytest.raises(ValueError, match=r"k: must be at least 1, got 0"):
        maxsim.topk(q, docs, 0)


@pytest.mark.parametrize("k", HUGE_KS[:1])
def test_binary_search_rejects_huge_k(rng, k):
    vectors = rng.standard_normal((20, 64)).astype(np.float32)
    codes = binary.quantize(vectors)
    pattern = r"k: must be at most 2\*\*63 - 1"
    with pytest.raises(ValueError, match=pattern):
        binary.search(codes[:2], codes, k)
    with pytest.raises(ValueError, match=pattern):
        binary.search(codes[:2], "not codes", k)
    with pytest.raises(ValueError, match=pattern):
        binary.search_rescore(vectors[:2], codes, k)
    with pytest.raises(ValueError, match=r"rescore_multiplier: must be at most 2\*\*63 - 1"):
        binary.search_rescore(vectors[:2], codes, 3, rescore_multiplier=k)
    index = binary.BinaryIndex(64)
    index.add(codes)
    with pytest.raises(ValueError, match=pattern):
        index.search(codes[:2], k)
    with pytest.raises(ValueError, match=pattern):
        index.search_rescore(vectors[:2], k)
    # The largest k is taken: every code, nearest first.
    dist, ids = binary.search(codes[:1], codes, K_MAX)
    assert ids.shape == (1, 20) and ids[0, 0] == 0 and dist[0, 0] == 0
    assert (np.diff(dist[0]) >= 0).all()


def test_binary_rescore_checks_the_float_query(rng):
    vectors = rng.standard_normal((20, 64)).astype(np.float32)
    codes = binary.quantize(vectors)
    bad = vectors[:3].copy()
    bad[2, 9] = np.nan
    pattern = _row_message("query_float", 2, 9, np.nan)
    with pytest.raises(ValueError, match=pattern):
        binary.search_rescore(bad, codes, 5)
    index = binary.BinaryIndex(64)
    index.add(codes)
    with pytest.raises(ValueError, match=pattern):
        index.search_rescore(bad, 5)
    with pytest.raises(ValueError, match=_row_message("query_float", 0, 9, np.nan)):
        binary.search_rescore(bad[2], codes, 5)  # one 1-D query is row 0


def test_retrieve_validates_k_like_topk(rng):
    from maxsim.models.retrieve import retrieve

    corpus = normalised(rng, 10, 16)
    with pytest.raises(ValueError, match=r"k: must be at most 2\*\*63 - 1"):
        retrieve(corpus[0], corpus, k=2**63)
    with pytest.raises(ValueError, match=r"k: must be at least 1, got 0"):
        retrieve(corpus[0], corpus, k=0)
    with pytest.raises(TypeError, match=r"rescore_multiplier: expected an integer"):
        retrieve(corpus[0], corpus, k=3, rescore_multiplier=2.5)
    query = corpus[0].copy()
    query[4] = np.inf
    with pytest.raises(ValueError, match=_row_message("query", 0, 4, np.inf)):
        retrieve(query, corpus, k=3)


# -- drop-ins ---------------------------------------------------------------------
#
# PyLate (torch.max propagates NaN) returns NaN for every document of a query
# with a NaN token; the drop-ins used to return -inf, or a wrong order in
# rerank's padding mode. They raise instead, naming their own arguments.


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_pylate_itself_returns_nan_for_a_nan_query(rng, torch):
    """The behaviour the drop-ins deliberately do not copy (see docs/pylate.md)."""
    pylate_scores = pytest.importorskip("pylate.scores")
    q = torch.from_numpy(normalised(rng, 2, 3, 8))
    q[1, 1, 2] = float("nan")
    got = pylate_scores.colbert_scores(q, torch.from_numpy(normalised(rng, 4, 5, 8)))
    assert torch.isnan(got[1]).all() and not torch.isnan(got[0]).any()


def test_pylate_scores_drop_ins_name_query_and_row(rng, torch):
    mp = pytest.importorskip("maxsim.pylate")
    queries = torch.from_numpy(normalised(rng, 3, 4, 8))
    queries[1, 2, 6] = float("nan")
    docs = torch.from_numpy(normalised(rng, 5, 6, 8))
    pattern = _row_message(r"queries_embeddings\[1\]", 2, 6, np.nan)
    with pytest.raises(ValueError, match=pattern):
        mp.colbert_scores(queries, docs)
    with pytest.raises(ValueError, match=pattern):
        mp.colbert_scores(list(queries), list(docs))
    with pytest.raises(ValueError, match=pattern):
        mp.colbert_kd_scores(queries, docs[:3].unsqueeze(0).expand(3, 3, 6, 8).contiguous())
    with pytest.raises(ValueError, match=pattern):
        mp.colbert_scores_pairwise(queries, docs[:3])


def test_pylate_masked_nan_token_scores_like_pylate_without_it(rng, torch):
    """queries_mask skips the token: the result is PyLate's on a clean query."""
    mp = pytest.importorskip("maxsim.pylate")
    pylate_scores = pytest.importorskip("pylate.scores")
    queries = torch.from_numpy(normalised(rng, 2, 4, 8))
    docs = torch.from_numpy(normalised(rng, 5, 6, 8))
    mask = torch.ones(2, 4)
    mask[0, 3] = 0
    expected = pylate_scores.colbert_scores(queries, docs, queries_mask=mask)
    poisoned = queries.clone()
    poisoned[0, 3, 1] = float("nan")
    got = mp.colbert_scores(poisoned, docs, queries_mask=mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    kd_docs = docs[:3].unsqueeze(0).expand(2, 3, 6, 8).contiguous()
    got_kd = mp.colbert_kd_scores(poisoned, kd_docs, queries_mask=mask)
    expected_kd = pylate_scores.colbert_kd_scores(queries, kd_docs, queries_mask=mask)
    torch.testing.assert_close(got_kd, expected_kd, atol=1e-5, rtol=0)


def test_pylate_rerank_and_index_name_query_and_row(rng, torch):
    mp = pytest.importorskip("maxsim.pylate")
    q = _poisoned(rng, np.inf, 0, 3, 2, 8)
    docs = [normalised(rng, 5, 8), normalised(rng, 2, 8)]
    clean = normalised(rng, 2, 8)
    pattern = _row_message(r"queries_embeddings\[1\]", 0, 3, np.inf)
    with pytest.raises(ValueError, match=pattern):
        mp.rerank([["a", "b"], ["a", "b"]], [clean, q], [docs, docs])
    with pytest.raises(ValueError, match=pattern):
        mp.rerank([["a", "b"]] * 2, [clean, q], [docs, docs], exact=True)
    index = mp.Index().add_documents(["a", "b"], docs)
    with pytest.raises(ValueError, match=pattern):
        index([clean, q], k=1)
    with pytest.raises(ValueError, match=r"k: must be at most 2\*\*63 - 1"):
        index([clean], k=2**63)
    assert [r["id"] for r in index([clean], k=K_MAX)[0]] == sorted(
        "ab", key=lambda i: -reference_maxsim(clean, docs["ab".index(i)])
    )


def test_colbert_drop_ins_name_q_and_row(rng, torch):
    colbert = pytest.importorskip("maxsim.colbert")
    docs = torch.from_numpy(normalised(rng, 3, 5, 8))
    mask = torch.ones(3, 5)
    q = torch.from_numpy(_poisoned(rng, np.nan, 2, 0, 1, 4, 8))
    with pytest.raises(ValueError, match=_row_message(r"Q\[0\]", 2, 0, np.nan)):
        colbert.score(q, docs, mask)
    aligned = torch.from_numpy(normalised(rng, 3, 4, 8))
    aligned[1, 3, 5] = float("-inf")
    with pytest.raises(ValueError, match=_row_message(r"Q\[1\]", 3, 5, -np.inf)):
        colbert.score(aligned, docs, mask)
    with pytest.raises(ValueError, match=_row_message("Q", 2, 0, np.nan)):
        colbert.score_packed(q, docs.reshape(15, 8), torch.tensor([5, 5, 5]))


def test_maxsim_cpu_drop_in_checks_the_query(rng):
    from maxsim.compat import maxsim_cpu

    q = _poisoned(rng, np.nan, 0, 0, 2, 8)
    with pytest.raises(ValueError, match=_row_message("query", 0, 0, np.nan)):
        maxsim_cpu.maxsim_scores(q, normalised(rng, 3, 4, 8))
    with pytest.raises(ValueError, match=_row_message("query", 0, 0, np.nan)):
        maxsim_cpu.maxsim_scores_variable(q, list(normalised(rng, 3, 4, 8)))


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 9000),
    specials=st.lists(
        st.tuples(
            st.floats(0, 1, exclude_max=True),
            st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, -0.0, 0.0]),
        ),
        max_size=4,
    ),
    layout=st.sampled_from(["contiguous", "strided", "float64"]),
)
def test_all_finite_agrees_with_isfinite(size, specials, layout):
    """The dot-product-against-zeros test decides exactly as ``np.isfinite``,
    huge finite values (whose sum would overflow) included."""
    from maxsim._convert import all_finite

    x = np.random.default_rng(size).standard_normal(size).astype(np.float32) * 1e30
    for where, value in specials:
        if size:
            x[int(where * size)] = value
    if layout == "strided":
        x = np.repeat(x, 2)[::2]
    elif layout == "float64":
        x = x.astype(np.float64)
    assert all_finite(x) == bool(np.isfinite(x).all())
    assert all_finite(x.reshape(1, -1)) == bool(np.isfinite(x).all())


def test_an_inf_query_raises_no_warning_first(rng):
    """Under ``-W error`` a RuntimeWarning from the finiteness test itself
    (``inf * 0``) would replace the ValueError that names the row."""
    import warnings

    q = _poisoned(rng, np.inf, 1, 2, 3, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=_row_message("query", 1, 2, np.inf)):
            maxsim.scores(q, normalised(rng, 2, 4, 8))
        batch = np.stack([q, q])
        with pytest.raises(ValueError, match=_row_message(r"queries\[0\]", 1, 2, np.inf)):
            maxsim.scores_batch(batch, normalised(rng, 2, 4, 8))
