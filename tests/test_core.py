"""The float32 core API against a numpy float64 reference."""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from conftest import normalised, reference_maxsim
from maxsim._convert import as_float32

KERNELS = maxsim._native.supported_kernels()


@pytest.fixture(params=KERNELS)
def kernel(request):
    previous = maxsim._native.kernel()
    maxsim.set_kernel(request.param)
    yield request.param
    maxsim.set_kernel(previous)


def tol(query: np.ndarray) -> float:
    # |error| <= (d + nq + 2) * eps32 * sum_i max|q_i.d_j| with unit vectors: about
    # nq * (d + nq) * 1.2e-7; use a comfortable multiple of that bound.
    nq, d = query.shape
    return 4 * nq * (d + nq + 2) * np.finfo(np.float32).eps


def test_fixed_matches_reference(rng, kernel):
    q = normalised(rng, 32, 128)
    docs = normalised(rng, 20, 300, 128)
    got = maxsim.scores(q, docs)
    assert got.dtype == np.float32 and got.shape == (20,)
    expected = [reference_maxsim(q, d) for d in docs]
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol(q))


@pytest.mark.parametrize("dim", [1, 7, 16, 31, 64, 96, 128, 130])
@pytest.mark.parametrize("nq", [1, 9, 32, 64])
def test_variable_and_packed_match_reference(rng, kernel, dim, nq):
    q = normalised(rng, nq, dim)
    lengths = [1, 2, 17, 300, 5]
    docs = [normalised(rng, n, dim) for n in lengths]
    expected = [reference_maxsim(q, d) for d in docs]
    listed = maxsim.scores(q, docs)
    packed = maxsim.scores(q, maxsim.PackedDocs.from_list(docs))
    np.testing.assert_allclose(listed, expected, rtol=0, atol=tol(q))
    np.testing.assert_array_equal(listed, packed)
    np.testing.assert_array_equal(maxsim.scores(q, tuple(docs)), listed)


def test_batch_rows_equal_single_queries(rng, kernel):
    queries = normalised(rng, 5, 32, 64)
    docs = [normalised(rng, n, 64) for n in (3, 50, 1, 120)]
    batch = maxsim.scores_batch(queries, docs)
    assert batch.shape == (5, 4) and batch.dtype == np.float32
    for i in range(5):
        np.testing.assert_array_equal(batch[i], maxsim.scores(queries[i], docs))
        np.testing.assert_allclose(
            batch[i], [reference_maxsim(queries[i], d) for d in docs], atol=tol(queries[i])
        )
    ragged = [queries[0][:7], queries[1]]
    np.testing.assert_array_equal(
        maxsim.scores_batch(ragged, docs)[0], maxsim.scores(queries[0][:7], docs)
    )


def test_query_mask_skips_tokens(rng):
    q = normalised(rng, 10, 16)
    docs = normalised(rng, 4, 9, 16)
    mask = np.array([True, False] * 5)
    got = maxsim.scores(q, docs, query_mask=mask)
    np.testing.assert_allclose(got, [reference_maxsim(q[mask], d) for d in docs], atol=tol(q))
    np.testing.assert_array_equal(
        maxsim.scores(q, docs, query_mask=np.zeros(10, bool)), np.zeros(4)
    )
    batch_mask = np.stack([mask, ~mask])
    got_batch = maxsim.scores_batch(np.stack([q, q]), docs, queries_mask=batch_mask)
    np.testing.assert_allclose(
        got_batch[1], [reference_maxsim(q[~mask], d) for d in docs], atol=tol(q)
    )


def test_zero_floor_is_an_extra_zero_token(rng):
    q = rng.standard_normal((6, 8)).astype(np.float32)
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 3)]
    floor = np.array([True, False])
    got = maxsim.scores(q, docs, zero_floor=floor)
    padded = np.concatenate([docs[0], np.zeros((1, 8), np.float32)])
    np.testing.assert_allclose(
        got, [reference_maxsim(q, padded), reference_maxsim(q, docs[1])], atol=1e-5
    )


def test_topk_order_and_ties(rng):
    q = normalised(rng, 4, 8)
    distinct = normalised(rng, 3, 5, 8)
    docs = np.stack([distinct[0], distinct[1], distinct[0], distinct[2], distinct[1]])
    s, idx = maxsim.topk(q, docs, 5)
    ref = np.array([reference_maxsim(q, d) for d in docs])
    expected = sorted(range(5), key=lambda i: (-ref[i], i))
    assert idx.dtype == np.int64 and s.dtype == np.float32
    assert idx.tolist() == expected
    s2, idx2 = maxsim.topk(q, docs, 100)
    assert len(idx2) == 5
    sb, ib = maxsim.topk(np.stack([q, q]), docs, 2)
    assert sb.shape == (2, 2) and ib.tolist() == [expected[:2], expected[:2]]


def test_torch_inputs(rng):
    torch = pytest.importorskip("torch")
    q = normalised(rng, 8, 32)
    docs = normalised(rng, 3, 11, 32)
    expected = maxsim.scores(q, docs)
    np.testing.assert_array_equal(
        maxsim.scores(torch.from_numpy(q), torch.from_numpy(docs)), expected
    )
    np.testing.assert_array_equal(
        maxsim.scores(torch.from_numpy(q).requires_grad_(), list(torch.from_numpy(docs))), expected
    )
    bf = maxsim.scores(torch.from_numpy(q).bfloat16(), torch.from_numpy(docs).bfloat16())
    bf_ref = [
        reference_maxsim(
            torch.from_numpy(q).bfloat16().float().numpy(),
            torch.from_numpy(d).bfloat16().float().numpy(),
        )
        for d in docs
    ]
    np.testing.assert_allclose(bf, bf_ref, atol=1e-4)
    t = torch.from_numpy(docs)
    assert np.shares_memory(as_float32(t, "docs", 3), docs)
    with pytest.raises(TypeError, match=r"docs: .*int64"):
        maxsim.scores(q, torch.zeros((2, 3, 32), dtype=torch.int64))


def test_float32_contiguous_is_not_copied_and_others_are_converted(rng):
    docs = normalised(rng, 3, 11, 32)
    assert as_float32(docs, "docs", 3) is docs
    q = normalised(rng, 8, 32)
    expected = maxsim.scores(q, docs)
    np.testing.assert_allclose(
        maxsim.scores(q.astype(np.float64), docs.astype(np.float64)), expected, atol=1e-6
    )
    strided = np.asfortranarray(docs)
    np.testing.assert_array_equal(maxsim.scores(q, strided), expected)
    np.testing.assert_array_equal(maxsim.scores(q[:, :], docs[:, ::1]), expected)
    wide = np.concatenate([q, q], axis=1)[:, :32]  # non-contiguous rows
    np.testing.assert_array_equal(maxsim.scores(wide, docs), expected)


def test_packed_docs_views_and_slicing(rng):
    flat = normalised(rng, 10, 4)
    p = maxsim.PackedDocs.from_lengths(flat, [3, 1, 6])
    assert len(p) == 3 and p.flat is flat
    assert np.shares_memory(p[2], flat) and p[2].shape == (6, 4)
    np.testing.assert_array_equal(p[-1], flat[4:])
    sub = p[1:]
    assert len(sub) == 2 and sub.flat is flat and sub.lengths.tolist() == [1, 6]
    q = normalised(rng, 2, 4)
    np.testing.assert_array_equal(maxsim.scores(q, sub), maxsim.scores(q, p)[1:])
    with pytest.raises(IndexError):
        p[3]
    with pytest.raises(ValueError, match="step 1"):
        p[::2]


def test_empty_inputs(rng):
    q = normalised(rng, 4, 8)
    assert maxsim.scores(q, []).shape == (0,)
    assert maxsim.scores(q, np.zeros((0, 5, 8), np.float32)).shape == (0,)
    assert maxsim.scores_batch(np.stack([q, q]), []).shape == (2, 0)
    s, i = maxsim.topk(q, [], 3)
    assert s.shape == (0,) and i.shape == (0,)
    with pytest.raises(ValueError, match=r"query: has zero tokens .*\(0, 8\)"):
        maxsim.scores(np.zeros((0, 8), np.float32), [q])


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (
            lambda q, d: maxsim.scores(q[0], d),
            ValueError,
            r"query: expected a 2-D array, got shape \(8,\) dtype float32",
        ),
        (
            lambda q, d: maxsim.scores(q, d[0]),
            ValueError,
            r"docs: expected a 3-D .* got shape \(5, 8\)",
        ),
        (
            lambda q, d: maxsim.scores(q[:, :4], d),
            ValueError,
            r"query: dimension 4 .*shape \(3, 4\).* dimension 8",
        ),
        (
            lambda q, d: maxsim.scores(q.astype(np.int32), d),
            TypeError,
            r"query: .*shape \(3, 8\) dtype int32",
        ),
        (lambda q, d: maxsim.scores(q, d.astype(bool)), TypeError, r"docs: .*dtype bool"),
        (lambda q, d: maxsim.scores(q, d.astype(np.complex64)), TypeError, r"docs: .*complex64"),
        (
            lambda q, d: maxsim.scores(q, [d[0], d[1][:0]]),
            ValueError,
            r"document 1 has zero tokens",
        ),
        (lambda q, d: maxsim.scores(q, [d[0], d[1][:, :3]]), ValueError, r"docs\[1\]: dimension 3"),
        (
            lambda q, d: maxsim.scores(q, d, query_mask=np.ones(2, bool)),
            ValueError,
            r"query_mask: expected shape \(3,\)",
        ),
        (
            lambda q, d: maxsim.scores(q, d, query_mask=np.ones(3, np.float32)),
            TypeError,
            r"query_mask: .*float32",
        ),
        (lambda q, d: maxsim.topk(q, d, 0), ValueError, r"k: must be at least 1, got 0"),
        (lambda q, d: maxsim.topk(q, d, 2.5), TypeError, r"k: expected an integer"),
        (
            lambda q, d: (
                maxsim.scores(q, d, check_finite=True)
                if d.__setitem__((0, 0, 0), np.nan) is None
                else 0
            ),
            ValueError,
            r"docs: contains NaN",
        ),
        (lambda q, d: maxsim.scores(q, "abc"), TypeError, r"docs: expected"),
        (lambda q, d: maxsim.scores_batch(q, d), ValueError, r"queries: expected a 3-D"),
    ],
)
def test_bad_input_messages(rng, call, exc, pattern):
    q = normalised(rng, 3, 8)
    d = normalised(rng, 2, 5, 8)
    with pytest.raises(exc, match=pattern):
        call(q, d)


@pytest.mark.parametrize(
    "offsets, pattern",
    [
        ([0, 3, 2], r"offsets: not monotonic, offsets\[2\] = 2 < offsets\[1\] = 3"),
        ([0, 3, 3], r"document 1 has zero tokens"),
        ([0, 3, 11], r"offsets: last offset 11 runs past flat, which has 10 tokens"),
        ([-1, 3], r"offsets: offsets\[0\] = -1 is negative"),
        ([], r"offsets: needs n_docs \+ 1"),
    ],
)
def test_bad_offsets(rng, offsets, pattern):
    with pytest.raises(ValueError, match=pattern):
        maxsim.PackedDocs(normalised(rng, 10, 4), np.array(offsets, dtype=np.int64))


def test_native_layer_rechecks_offsets(rng):
    flat = normalised(rng, 10, 4)
    q = normalised(rng, 2, 4)
    with pytest.raises(ValueError, match="runs past flat"):
        maxsim._native.maxsim_packed([q], flat, np.array([0, 20], np.int64), None, None)
    with pytest.raises(ValueError, match="not monotonic"):
        maxsim._native.maxsim_packed([q], flat, np.array([0, 5, 2], np.int64), None, None)


def test_from_lengths_checks_total(rng):
    with pytest.raises(ValueError, match="sum to 5 tokens but flat has 10 rows"):
        maxsim.PackedDocs.from_lengths(normalised(rng, 10, 4), [2, 3])
    with pytest.raises(ValueError, match="document 1 has 0 tokens"):
        maxsim.PackedDocs.from_lengths(normalised(rng, 10, 4), [10, 0])


def test_results_independent_of_thread_count(rng):
    q = normalised(rng, 32, 64)
    docs = [normalised(rng, int(n), 64) for n in rng.integers(1, 400, size=200)]
    before = maxsim.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3, 8):
            maxsim.set_num_threads(n)
            runs.append(maxsim.scores(q, docs))
        for r in runs[1:]:
            np.testing.assert_array_equal(r, runs[0])
    finally:
        maxsim.set_num_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        maxsim.set_num_threads(0)


def test_info_reports_kernel_and_features():
    info = maxsim.info()
    assert info["kernel"] in info["supported_kernels"]
    assert "scalar" in info["supported_kernels"]
    assert info["num_threads"] >= 1
    assert isinstance(info["cpu_features"], list)
    assert info["version"] == maxsim.__version__


def test_compat_maxsim_cpu_matches_the_real_package(rng):
    real = pytest.importorskip("maxsim_cpu")
    from maxsim.compat import maxsim_cpu as ours

    q = normalised(rng, 32, 128)
    docs = normalised(rng, 10, 40, 128)
    np.testing.assert_allclose(ours.maxsim_scores(q, docs), real.maxsim_scores(q, docs), atol=2e-5)
    var = [normalised(rng, n, 128) for n in (5, 60, 1)]
    np.testing.assert_allclose(
        ours.maxsim_scores_variable(q, var), real.maxsim_scores_variable(q, var), atol=2e-5
    )
