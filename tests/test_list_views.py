"""Lists whose entries are views of one array, and the native layer's layout backstop.

The rows of a 3-D array and ``np.split`` of a packed matrix are lists of views
that share one base. The bindings read list entries without numpy's borrow
table (whose per-entry check is quadratic in views of one base), so these
tests pin what that path must still do: read every view's own rows, whatever
its offset in the base, for every list entry point (float32, float16 /
bfloat16 documents, binary codes, queries and query masks), and refuse an
entry whose buffer is not its rows in C order.
"""

from __future__ import annotations

import maxsim
import maxsim.binary as mb
import ml_dtypes
import numpy as np
import pytest
from conftest import normalised, reference_maxsim
from maxsim import _native


def _split_views(flat: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    """``np.split`` of ``flat`` by ``lengths``: views sharing ``flat`` as base."""
    views = np.split(flat, np.cumsum(lengths)[:-1])
    assert all(v.base is not None for v in views)
    return views


def test_float_views_of_one_array(rng):
    dim = 19
    lengths = [int(n) for n in rng.integers(1, 40, size=300)]
    flat = normalised(rng, sum(lengths), dim)
    views = _split_views(flat, lengths)
    q = normalised(rng, 7, dim)
    expected = [reference_maxsim(q, v) for v in views]
    np.testing.assert_allclose(maxsim.scores(q, views), expected, rtol=0, atol=1e-5)
    # The rows of a 3-D array.
    fixed = normalised(rng, 50, 9, dim)
    rows = list(fixed)
    np.testing.assert_allclose(
        maxsim.scores(q, rows), [reference_maxsim(q, d) for d in fixed], rtol=0, atol=1e-5
    )


def test_query_and_mask_views_of_one_array(rng):
    """Queries (rows of a 3-D array) and their masks (rows of a 2-D array):
    a masked query token adds nothing to the score."""
    dim = 12
    queries = normalised(rng, 40, 6, dim)
    masks = rng.random((40, 6)) < 0.7
    masks[:, 0] = True
    docs = [normalised(rng, int(n), dim) for n in rng.integers(1, 30, size=25)]
    got = maxsim.scores_batch(list(queries), docs, queries_mask=list(masks))
    expected = [[reference_maxsim(q[m], d) for d in docs] for q, m in zip(queries, masks)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_half_views_of_one_array(rng, dtype):
    dim = 16
    lengths = [int(n) for n in rng.integers(1, 30, size=200)]
    flat = normalised(rng, sum(lengths), dim).astype(dtype)
    views = _split_views(flat, lengths)
    q = normalised(rng, 5, dim)
    # Scores of the stored (rounded) values, in float64.
    expected = [reference_maxsim(q, v.astype(np.float32)) for v in views]
    np.testing.assert_allclose(maxsim.scores(q, views), expected, rtol=0, atol=1e-4)


def test_binary_views_of_one_array(rng):
    n_bytes = 5
    lengths = [int(n) for n in rng.integers(1, 20, size=150)]
    flat = rng.integers(0, 256, size=(sum(lengths), n_bytes), dtype=np.uint8)
    views = _split_views(flat, lengths)
    q = rng.integers(0, 256, size=(4, n_bytes), dtype=np.uint8)
    bits = 8 * n_bytes

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # d_bits - 2 * hamming, from unpacked bits.
        ham = (np.unpackbits(a)[None, :] != np.unpackbits(b, axis=1)).sum(axis=1)
        return bits - 2 * ham

    expected = [sum(int(similarity(t, v).max()) for t in q) for v in views]
    np.testing.assert_array_equal(mb.maxsim_scores(q, views), expected)


def test_native_refuses_fortran_order(rng):
    """Direct callers of the native layer: a Fortran-order buffer is the
    transpose of the rows, so it must raise rather than be read as rows."""
    q = normalised(rng, 3, 4)
    fixed = np.asfortranarray(normalised(rng, 2, 3, 4))
    with pytest.raises(ValueError, match=r"docs: must be C-contiguous"):
        _native.maxsim_fixed([q], fixed)
    entry = np.asfortranarray(normalised(rng, 3, 4))
    with pytest.raises(ValueError, match=r"docs\[1\]: must be C-contiguous"):
        _native.maxsim_list([q], [normalised(rng, 2, 4), entry], 4)
    with pytest.raises(ValueError, match=r"queries\[0\]: must be C-contiguous"):
        _native.maxsim_list([np.asfortranarray(q)], [normalised(rng, 2, 4)], 4)
    # The public API copies such inputs and scores their values.
    np.testing.assert_allclose(
        maxsim.scores(q, fixed), [reference_maxsim(q, d) for d in fixed], rtol=0, atol=1e-5
    )
