"""Property tests (hypothesis) for maxsim.binary over odd sizes, every
implementation this CPU runs, against numpy references."""

from __future__ import annotations

import numpy as np
from _binary_reference import ref_hamming
from hypothesis import given, settings
from hypothesis import strategies as st
from maxsim import _native
from maxsim import binary as mb

IMPLS = _native.binary_impls()[0]


@st.composite
def code_sets(draw):
    n_bytes = draw(st.integers(1, 140))
    n = draw(st.integers(1, 300))
    n_q = draw(st.integers(1, 9))
    mask = draw(st.sampled_from([0x01, 0x03, 0x81, 0xFF]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    db = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8) & np.uint8(mask)
    q = rng.integers(0, 256, size=(n_q, n_bytes), dtype=np.uint8) & np.uint8(mask)
    return q, db


@settings(max_examples=60, deadline=None)
@given(code_sets(), st.integers(1, 400), st.sampled_from(IMPLS))
def test_search_is_the_sorted_prefix(data, k, impl):
    q, db = data
    dist = ref_hamming(q, db)
    kept = min(k, db.shape[0])
    d, i = _native.binary_search(q, k, db_codes=db, impl_name=impl)
    for row in range(q.shape[0]):
        order = sorted(range(db.shape[0]), key=lambda j: (dist[row, j], j))[:kept]
        np.testing.assert_array_equal(i[row], order)
        np.testing.assert_array_equal(d[row], dist[row, order])


@settings(max_examples=60, deadline=None)
@given(code_sets(), st.sampled_from(IMPLS))
def test_hamming_matrix(data, impl):
    q, db = data
    np.testing.assert_array_equal(_native.binary_hamming(q, db, impl_name=impl), ref_hamming(q, db))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 100),
    st.lists(st.integers(1, 40), min_size=1, max_size=6),
    st.integers(1, 20),
    st.integers(0, 2**32 - 1),
    st.sampled_from(IMPLS),
)
def test_binary_maxsim(n_bytes, lens, nq, seed, impl):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, size=(nq, n_bytes), dtype=np.uint8)
    docs = [rng.integers(0, 256, size=(ln, n_bytes), dtype=np.uint8) for ln in lens]
    want = [int((8 * n_bytes - 2 * ref_hamming(q, d)).max(axis=1).sum()) for d in docs]
    got = _native.binary_maxsim_list([q], docs, n_bytes, impl_name=impl)[0]
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_quantize_unpack_round_trip(n, dim, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[rng.random((n, dim)) < 0.1] = 0.0
    codes = mb.quantize(x)
    np.testing.assert_array_equal(codes, np.packbits(x > 0, axis=-1))
    np.testing.assert_array_equal(mb.unpack(codes, dim), (x > 0).astype(np.uint8))
