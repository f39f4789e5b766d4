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


# ------------------------------------------------- float16 / bfloat16 lists

ml_dtypes = pytest.importorskip("ml_dtypes")
HALF = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _half_docs(rng: np.random.Generator, lengths: list[int], dim: int, dtype: str) -> list:
    return [normalised(rng, n, dim).astype(HALF[dtype]) for n in lengths]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_ready_half_list(rng, dtype):
    docs = _half_docs(rng, [1, 5, 300], 24, dtype)
    assert _native.ready_half_list(docs) == (dtype, 24)
    assert _native.ready_half_list(tuple(docs)) == (dtype, 24)
    assert _native.ready_f32_list(docs) is None


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda d: d.astype(np.float32), id="float32"),
        pytest.param(lambda d: d.view(np.uint16), id="uint16-bits"),
        pytest.param(lambda d: d.view(np.int16), id="int16"),
        pytest.param(lambda d: np.asfortranarray(d), id="fortran-order"),
        pytest.param(lambda d: d[::2], id="strided-rows"),
        pytest.param(lambda d: d[:0], id="zero-rows"),
        pytest.param(lambda d: np.ascontiguousarray(d[:, :5]), id="other-width"),
        pytest.param(lambda d: d[0], id="1-D"),
        pytest.param(lambda d: d[None], id="3-D"),
        pytest.param(lambda d: d.astype(d.dtype.newbyteorder(">")), id="big-endian"),
        pytest.param(
            lambda d: np.frombuffer(b"\0" + d.tobytes(), d.dtype, d.size, 1).reshape(d.shape),
            id="misaligned",
        ),
    ],
)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_not_ready(rng, spoil, dtype):
    docs = _half_docs(rng, [4, 6, 3], 8, dtype)
    docs[1] = spoil(docs[1])
    assert _native.ready_half_list(docs) is None


def test_half_not_ready_mixed_and_containers(rng):
    f16 = _half_docs(rng, [4, 6], 8, "float16")
    bf16 = _half_docs(rng, [4, 6], 8, "bfloat16")
    assert _native.ready_half_list([f16[0], bf16[1]]) is None
    assert _native.ready_half_list([]) is None
    assert _native.ready_half_list(np.stack([f16[0], f16[0]])) is None
    assert _native.ready_half_list([f16[0], None]) is None


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_lists_score_their_widened_values(rng, dtype):
    """Ready lists (taken as they are) and lists needing conversion (strided,
    Fortran order, big-endian) both score the 16-bit values exactly widened."""
    dim = 38  # even, so bfloat16 takes its in-place screen
    q = normalised(rng, 9, dim)
    docs = _half_docs(rng, [1, 2, 17, 400, 64], dim, dtype)
    expected = [reference_maxsim(q, d.astype(np.float32)) for d in docs]
    np.testing.assert_allclose(maxsim.scores(q, docs), expected, rtol=0, atol=1e-5)
    mixed = [
        docs[0],
        np.asfortranarray(docs[1]),
        np.repeat(docs[2], 2, axis=0)[::2],
        docs[3].astype(docs[3].dtype.newbyteorder(">")),
        docs[4],
    ]
    assert _native.ready_half_list(mixed) is None
    np.testing.assert_array_equal(maxsim.scores(q, mixed), maxsim.scores(q, docs))


def test_half_list_native_checks_dtype(rng):
    """The native list functions take float16 / bfloat16 arrays as they are,
    and name the entry, shape and dtype of anything else."""
    q = normalised(rng, 3, 8)
    f16 = _half_docs(rng, [4, 6], 8, "float16")
    got = _native.maxsim_half_list([q], f16, 8, False)
    bits = _native.maxsim_half_list([q], [d.view(np.uint16) for d in f16], 8, False)
    np.testing.assert_array_equal(got, bits)
    with pytest.raises(TypeError, match=r"docs\[0\]: expected a 2-D bfloat16 .*float16"):
        _native.maxsim_half_list([q], f16, 8, True)  # float16 arrays declared bfloat16
    with pytest.raises(TypeError, match=r"docs\[1\]: .*shape \[6, 8\] dtype int16"):
        _native.maxsim_half_list([q], [f16[0], f16[1].view(np.int16)], 8, False)
    with pytest.raises(TypeError, match=r"docs\[0\]: .*shape \[1, 4, 8\] dtype float16"):
        _native.maxsim_half_list_groups([q], [f16[0][None]], [0, 1], False)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_ready_list_nan_check(rng, dtype):
    q = normalised(rng, 3, 8)
    docs = _half_docs(rng, [4, 6, 2], 8, dtype)
    docs[2][1, 3] = np.nan
    assert _native.ready_half_list(docs) == (dtype, 8)
    with pytest.raises(ValueError, match=r"docs\[2\]: contains NaN"):
        maxsim.scores(q, docs, check_finite=True)


# ------------------------------------------------------------ torch lists

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda a: torch.from_numpy(a), id="float32"),
        pytest.param(lambda a: torch.from_numpy(a).half(), id="float16"),
        pytest.param(lambda a: torch.from_numpy(a).bfloat16(), id="bfloat16"),
        pytest.param(lambda a: torch.from_numpy(a).double(), id="float64"),
        pytest.param(lambda a: torch.from_numpy(a).requires_grad_(), id="requires-grad"),
        pytest.param(lambda a: torch.from_numpy(np.asfortranarray(a)), id="non-contiguous"),
    ],
)
def test_torch_lists_score_their_values(rng, form):
    """A list of CPU tensors is viewed through ``Tensor.numpy()`` in one pass
    when it can be (float32, float16), and converted per tensor otherwise;
    either way the scores are those of the tensors' values (exact for
    float32/float16/bfloat16 values, which float32 holds exactly; float64
    rounds to float32)."""
    dim = 24
    q = normalised(rng, 7, dim)
    arrays = [normalised(rng, n, dim) for n in (1, 5, 40, 3)]
    tensors = [form(a) for a in arrays]
    values = [t.detach().float().numpy() for t in tensors]
    expected = [reference_maxsim(q, v) for v in values]
    np.testing.assert_allclose(maxsim.scores(q, tensors), expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(maxsim.scores(q, tensors), maxsim.scores(q, values))
    # A list starting with a tensor and continuing with arrays.
    mixed = [tensors[0], *values[1:]]
    np.testing.assert_array_equal(maxsim.scores(q, mixed), maxsim.scores(q, values))


def test_torch_list_errors_name_the_entry(rng):
    q = normalised(rng, 3, 8)
    tensors = [torch.from_numpy(normalised(rng, n, 8)) for n in (4, 6)]
    with pytest.raises(ValueError, match=r"docs\[1\]: dimension 3"):
        maxsim.scores(q, [tensors[0], tensors[1][:, :3]])
    with pytest.raises(ValueError, match=r"document 1 has zero tokens"):
        maxsim.scores(q, [tensors[0], tensors[1][:0]])
    with pytest.raises(TypeError, match=r"docs\[1\]"):
        maxsim.scores(q, [tensors[0], tensors[1].int()])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_scores_grouped_each_query_against_its_group(rng, dtype):
    """``_scoring.scores_grouped`` (the entry point maxsim.pylate's rerank,
    pairwise and distillation scores use): query ``g`` against its own group
    only, documents read in their own dtype, PyLate's zero floor per token,
    an empty group scoring nothing; references from the float64 definition
    on the stored (widened) values."""
    from maxsim import _scoring

    if dtype == "bfloat16":
        stored = np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    else:
        stored = np.dtype(dtype)
    dim = 19
    sizes = [3, 0, 1, 4]
    queries = [normalised(rng, n, dim) for n in (5, 2, 1, 7)]
    groups = [
        [normalised(rng, int(n), dim).astype(stored) for n in rng.integers(1, 30, k)] for k in sizes
    ]
    docs = [d for group in groups for d in group]
    offsets = [0, *np.cumsum(sizes).tolist()]
    assert _scoring.ready_doc_list(docs) == (dtype, dim)
    floor = rng.random(len(docs)) < 0.5
    got = _scoring.scores_grouped(queries, docs, offsets, zero_floor=floor)
    assert got.dtype == np.float32 and got.shape == (len(docs),)
    expected = []
    for q, lo, hi in zip(queries, offsets, offsets[1:]):
        for j in range(lo, hi):
            best = (q.astype(np.float64) @ docs[j].astype(np.float64).T).max(axis=1)
            expected.append((np.maximum(best, 0.0) if floor[j] else best).sum())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    plain = _scoring.scores_grouped(queries, docs, offsets)
    for q, lo, hi in zip(queries, offsets, offsets[1:]):
        if hi > lo:  # the grouped call equals one maxsim.scores call per group, bitwise
            np.testing.assert_array_equal(plain[lo:hi], maxsim.scores(q, docs[lo:hi]))
