"""Lists of document arrays: the native readiness check and both Python paths.

A list whose entries are all C-contiguous float32 ``(len_i >= 1, d)`` numpy
arrays of one width goes straight to the native layer
(``_native.ready_f32_list``); anything else is converted and checked entry by
entry. Both must give the reference scores and the same errors.
"""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from conftest import normalised, reference_maxsim
from maxsim import _native


def _docs(rng: np.random.Generator, lengths: list[int], dim: int) -> list[np.ndarray]:
    return [normalised(rng, n, dim) for n in lengths]


def test_ready_list_width(rng):
    docs = _docs(rng, [1, 5, 300], 24)
    assert _native.ready_f32_list(docs) == 24
    assert _native.ready_f32_list(tuple(docs)) == 24


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda d: d.astype(np.float64), id="float64"),
        pytest.param(lambda d: d.astype(np.float16), id="float16"),
        pytest.param(lambda d: np.asfortranarray(d), id="fortran-order"),
        pytest.param(lambda d: d[::2], id="strided-rows"),
        pytest.param(lambda d: d[:0], id="zero-rows"),
        pytest.param(lambda d: d[:, :0].copy(), id="zero-width"),
        pytest.param(lambda d: np.ascontiguousarray(d[:, :5]), id="other-width"),
        pytest.param(lambda d: d[0], id="1-D"),
        pytest.param(lambda d: d[None], id="3-D"),
        pytest.param(lambda d: d.tolist(), id="nested-list"),
        pytest.param(lambda d: d.astype(d.dtype.newbyteorder(">")), id="big-endian"),
    ],
)
@pytest.mark.parametrize("position", [0, 2])
def test_not_ready(rng, spoil, position):
    docs = _docs(rng, [4, 6, 3], 8)
    docs[position] = spoil(docs[position])
    assert _native.ready_f32_list(docs) is None


def test_not_ready_containers(rng):
    docs = _docs(rng, [4, 6], 8)
    assert _native.ready_f32_list([]) is None
    assert _native.ready_f32_list(np.stack([docs[0], docs[0]])) is None
    assert _native.ready_f32_list(iter(docs)) is None
    assert _native.ready_f32_list([docs[0], None]) is None


@pytest.mark.parametrize("as_tuple", [False, True])
def test_ready_list_scores(rng, as_tuple):
    dim = 37
    q = normalised(rng, 9, dim)
    docs = _docs(rng, [1, 2, 17, 400, 64], dim)
    assert _native.ready_f32_list(docs) == dim
    got = maxsim.scores(q, tuple(docs) if as_tuple else docs)
    expected = [reference_maxsim(q, d) for d in docs]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_mixed_list_scores_equal_ready_list(rng):
    """Entries that need conversion (float64, strided, Fortran order) take the
    per-entry path; the scores are those of the same values as float32."""
    dim = 16
    q = normalised(rng, 5, dim)
    docs = _docs(rng, [3, 8, 1, 12], dim)
    mixed = [
        docs[0].astype(np.float64),
        np.asfortranarray(docs[1]),
        docs[2],
        np.repeat(docs[3], 2, axis=0)[::2],
    ]
    assert _native.ready_f32_list(mixed) is None
    np.testing.assert_array_equal(maxsim.scores(q, mixed), maxsim.scores(q, docs))
    expected = [reference_maxsim(q, d) for d in docs]
    np.testing.assert_allclose(maxsim.scores(q, mixed), expected, rtol=0, atol=1e-5)


def test_ready_list_errors(rng):
    q = normalised(rng, 3, 8)
    docs = _docs(rng, [4, 6, 2], 8)
    bad_nan = [d.copy() for d in docs]
    bad_nan[2][1, 3] = np.nan
    assert _native.ready_f32_list(bad_nan) == 8
    with pytest.raises(ValueError, match=r"docs\[2\]: contains NaN"):
        maxsim.scores(q, bad_nan, check_finite=True)
    wrong_query = normalised(rng, 3, 5)
    with pytest.raises(ValueError, match=r"query: dimension 5 .* documents' dimension 8"):
        maxsim.scores(wrong_query, docs)
    other_width = [docs[0], np.ascontiguousarray(docs[1][:, :3])]
    with pytest.raises(ValueError, match=r"docs\[1\]: dimension 3"):
        maxsim.scores(q, other_width)
