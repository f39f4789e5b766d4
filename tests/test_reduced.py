"""Reduced-precision documents (float16, bfloat16, int8) against float64 references.

Every expectation is computed here with numpy in float64 on the dequantized values
(the widened float16/bfloat16 values, or ``scale * code`` for int8), never taken
from the code under test. Tolerances follow from the formats:

* float16/bfloat16: the widening is exact, so the float32 bound applies:
  ``(d + nq + 2) * eps32 * sum_i max_j sum_k |q_ik d_jk|``;
* int8: integer dot products are exact; the kernel then rounds
  ``fl(fl(dot) * s_d)``, the max, ``* s_q`` and the float32 sum, so
  ``5 * eps32 * sum_i max_j |sim_ij|`` against the dequantized reference;
  against the unquantized float32 data the quantization error adds at most
  ``max_j (s_q,i / 2 * |d_j|_1 + s_d,j / 2 * |q_i|_1)`` per query token.
"""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from conftest import normalised
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
EPS = float(np.finfo(np.float32).eps)
KERNELS = maxsim._native.supported_kernels()


@pytest.fixture(params=KERNELS)
def kernel(request):
    previous = maxsim._native.kernel()
    maxsim.set_kernel(request.param)
    yield request.param
    maxsim.set_kernel(previous)


# ---------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------


def ref_half(q: np.ndarray, docs, zero_floor=None) -> tuple[np.ndarray, np.ndarray]:
    """float64 MaxSim of a float32 query against widened documents, and the float32 bound."""
    q64 = q.astype(np.float64)
    nq, d = q.shape
    want, bound = [], []
    for j, doc in enumerate(docs):
        d64 = np.asarray(doc).astype(np.float32).astype(np.float64)
        sims = q64 @ d64.T
        best = sims.max(axis=1)
        if zero_floor is not None and zero_floor[j]:
            best = np.maximum(best, 0.0)
        want.append(best.sum())
        absdot = np.abs(q64) @ np.abs(d64).T
        bound.append((d + nq + 2) * EPS * absdot.max(axis=1).sum() + 1e-30)
    return np.array(want), np.array(bound)


def quantize_ref(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The documented int8 scheme in numpy: s = max|x| / 127 (float32),
    c = round_half_even(x / s) clamped to [-127, 127]; tiny tokens get s = 0."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=-1)
    scale = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(amax < 1e-30, np.float32(1), scale).astype(np.float32)
    codes = np.clip(np.rint(x / safe[..., None]), -127, 127).astype(np.int8)
    codes[amax < 1e-30] = 0
    scale[amax < 1e-30] = 0
    return codes, scale


def ref_int8(q: np.ndarray, packed: maxsim.PackedDocs, zero_floor=None):
    """float64 MaxSim of the quantized query against the dequantized documents."""
    qc, qs = quantize_ref(q)
    q64 = qs.astype(np.float64)[:, None] * qc
    want, bound = [], []
    for j in range(len(packed)):
        lo, hi = packed.offsets[j], packed.offsets[j + 1]
        d64 = packed.scales[lo:hi].astype(np.float64)[:, None] * packed.flat[lo:hi]
        sims = q64 @ d64.T
        best = sims.max(axis=1)
        if zero_floor is not None and zero_floor[j]:
            best = np.maximum(best, 0.0)
        want.append(best.sum())
        bound.append(5 * EPS * np.abs(sims).max(axis=1).sum() + 1e-30)
    return np.array(want), np.array(bound)


def assert_within(got, want, bound, what=""):
    err = np.abs(np.asarray(got, np.float64) - want)
    assert (err <= bound + EPS * np.abs(want)).all(), (
        f"{what}: max error {err.max():.3g}, bound {bound[np.argmax(err - bound)]:.3g}"
    )


# ---------------------------------------------------------------------------
# float16 / bfloat16
# ---------------------------------------------------------------------------


def half_inputs(docs32: np.ndarray, dtype: str):
    """The same 3-D float32 documents in every accepted 16-bit form."""
    torch = pytest.importorskip("torch")
    n_docs, doc_len, dim = docs32.shape
    offsets = np.arange(n_docs + 1) * doc_len
    if dtype == "float16":
        a = docs32.astype(np.float16)
        swapped = a.astype(a.dtype.newbyteorder("S"))  # same values, bytes swapped
        return {
            "numpy": a,
            "torch": torch.from_numpy(a),
            "list": list(a),
            "torch list": list(torch.from_numpy(a)),
            "packed": maxsim.PackedDocs(a.reshape(-1, dim), offsets),
            "byte-swapped": swapped,
            "byte-swapped list": list(swapped),
            "byte-swapped packed": maxsim.PackedDocs(swapped.reshape(-1, dim), offsets),
        }
    a = docs32.astype(BF16)
    return {
        "numpy": a,
        "torch": torch.from_numpy(docs32).to(torch.bfloat16),
        "list": list(a),
        "torch list": [torch.from_numpy(d).to(torch.bfloat16) for d in docs32],
        "packed": maxsim.PackedDocs(a.reshape(-1, dim), offsets),
    }


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_layouts_match_reference_and_float32_widening(rng, kernel, dtype):
    q = normalised(rng, 32, 128)
    docs32 = normalised(rng, 12, 40, 128)
    forms = half_inputs(docs32, dtype)
    widened = forms["numpy"].astype(np.float32)
    want, bound = ref_half(q, widened)
    exact = maxsim.scores(q, widened)  # float32 path on the widened values
    for name, docs in forms.items():
        got = maxsim.scores(q, docs)
        assert got.dtype == np.float32 and got.shape == (12,)
        assert_within(got, want, bound, f"{dtype} {name}")
        np.testing.assert_array_equal(got, exact, err_msg=f"{dtype} {name} vs float32 widening")
    packed = maxsim.quantize(docs32, dtype)
    assert packed.flat.dtype.name == dtype and packed.scales is None
    np.testing.assert_array_equal(maxsim.scores(q, packed), exact)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("dim", [1, 7, 31, 96, 130])
@pytest.mark.parametrize("nq", [1, 9, 64])
def test_half_odd_shapes(rng, dtype, dim, nq):
    q = normalised(rng, nq, dim)
    docs = [
        normalised(rng, n, dim).astype(dtype if dtype == "float16" else BF16)
        for n in (1, 2, 17, 300, 5)
    ]
    want, bound = ref_half(q, docs)
    got = maxsim.scores(q, docs)
    assert_within(got, want, bound, f"{dtype} dim {dim} nq {nq}")
    packed = maxsim.PackedDocs.from_list(docs)
    assert packed.flat.dtype.name == dtype
    np.testing.assert_array_equal(maxsim.scores(q, packed), got)


def test_half_query_of_the_same_dtype(rng):
    torch = pytest.importorskip("torch")
    q = normalised(rng, 8, 64)
    docs = normalised(rng, 5, 20, 64)
    q16, d16 = q.astype(np.float16), docs.astype(np.float16)
    np.testing.assert_array_equal(
        maxsim.scores(q16, d16), maxsim.scores(q16.astype(np.float32), d16)
    )
    qb, db = torch.from_numpy(q).bfloat16(), torch.from_numpy(docs).bfloat16()
    np.testing.assert_array_equal(maxsim.scores(qb, db), maxsim.scores(qb.float(), db))


def test_half_masks_floor_batch_topk(rng):
    q = normalised(rng, 6, 48)
    docs = (normalised(rng, 7, 15, 48) * 0.5).astype(np.float16)
    mask = np.array([1, 0, 1, 1, 0, 1], bool)
    floor = np.array([True, False] * 3 + [True])
    got = maxsim.scores(q, docs, query_mask=mask, zero_floor=floor)
    want, bound = ref_half(q[mask], docs, zero_floor=floor)
    assert_within(got, want, bound, "mask+floor")
    assert (maxsim.scores(q, docs, query_mask=np.zeros(6, bool)) == 0).all()
    queries = [q, q[:2], q[3:]]
    batch = maxsim.scores_batch(queries, docs)
    for i, qi in enumerate(queries):
        np.testing.assert_array_equal(batch[i], maxsim.scores(qi, docs))
    top_s, top_i = maxsim.topk(q, docs, 3)
    full = maxsim.scores(q, docs)
    np.testing.assert_array_equal(top_i, np.argsort(-full, kind="stable")[:3])
    np.testing.assert_array_equal(top_s, full[top_i])


def test_half_nan_behaves_like_float32(rng):
    q = normalised(rng, 4, 16)
    docs = normalised(rng, 3, 10, 16)
    docs[0, 0, 3] = np.nan
    docs[1, 0, :] = np.nan
    d16 = docs.astype(np.float16)
    got = maxsim.scores(q, d16)
    np.testing.assert_array_equal(got, maxsim.scores(q, d16.astype(np.float32)))
    assert np.isfinite(got).all()  # NaN similarities never win the max
    with pytest.raises(ValueError, match="NaN or inf"):
        maxsim.scores(q, d16, check_finite=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        maxsim.scores(q, maxsim.quantize(docs, "bfloat16"), check_finite=True)


# ---------------------------------------------------------------------------
# int8
# ---------------------------------------------------------------------------


def test_quantize_int8_scheme_and_error_bound(rng):
    x = normalised(rng, 300, 128) * rng.uniform(1e-3, 1e3, (300, 1)).astype(np.float32)
    x[0] = 0
    packed = maxsim.quantize(x, "int8_per_token")
    assert packed.flat.dtype == np.int8 and packed.scales.dtype == np.float32
    codes, scales = quantize_ref(x)
    np.testing.assert_array_equal(packed.flat, codes)
    np.testing.assert_array_equal(packed.scales, scales)
    assert packed.flat.min() >= -127 and len(packed) == 1
    err = np.abs(x.astype(np.float64) - packed.scales[:, None].astype(np.float64) * packed.flat)
    assert (err <= packed.scales[:, None] * 0.5 * (1 + 1e-6)).all()
    # Ties go to even: scale 1 makes x / s exact.
    tie = np.array([[127.0, 2.5, -2.5, 3.5, 0.5]], np.float32)
    np.testing.assert_array_equal(maxsim.quantize(tie, "int8_per_token").flat, [[127, 2, -2, 4, 0]])


def test_int8_matches_dequantized_reference(rng, kernel):
    q = normalised(rng, 32, 128)
    docs = [normalised(rng, n, 128) for n in (1, 300, 17, 64, 2)]
    packed = maxsim.quantize(docs, "int8_per_token")
    got = maxsim.scores(q, packed)
    want, bound = ref_int8(q, packed)
    assert_within(got, want, bound, f"int8 {kernel}")
    # Against the unquantized float32 data, within the quantization bound.
    exact32 = maxsim.scores(q, docs)
    qc, qs = quantize_ref(q)
    for j in range(len(docs)):
        lo, hi = packed.offsets[j], packed.offsets[j + 1]
        sd = packed.scales[lo:hi].astype(np.float64)
        dq = sd[:, None] * packed.flat[lo:hi]
        per_token = (
            qs[:, None] / 2 * np.abs(dq).sum(1)[None, :]
            + sd[None, :] / 2 * np.abs(q).sum(1)[:, None]
        )
        assert (
            abs(float(got[j]) - float(exact32[j]))
            <= per_token.max(axis=1).sum() * (1 + 1e-5) + 1e-4
        )


def test_int8_identical_on_every_kernel(rng):
    q = normalised(rng, 9, 70)
    packed = maxsim.quantize([normalised(rng, n, 70) for n in (3, 41, 1, 200)], "int8_per_token")
    previous = maxsim._native.kernel()
    results = {}
    try:
        for name in KERNELS:
            maxsim.set_kernel(name)
            results[name] = maxsim.scores(q, packed)
    finally:
        maxsim.set_kernel(previous)
    first = next(iter(results.values()))
    for name, r in results.items():
        np.testing.assert_array_equal(r, first, err_msg=name)


@pytest.mark.parametrize("dim", [1, 3, 33, 64, 130])
def test_int8_odd_shapes_masks_floor_batch(rng, dim):
    q = normalised(rng, 13, dim)
    docs = [normalised(rng, n, dim) for n in (1, 2, 29, 300, 7, 64)]
    packed = maxsim.quantize(docs, "int8_per_token")
    mask = rng.random(13) > 0.3
    floor = rng.random(len(docs)) > 0.5
    got = maxsim.scores(q, packed, query_mask=mask, zero_floor=floor)
    want, bound = ref_int8(q[mask], packed, zero_floor=floor)
    assert_within(got, want, bound, f"int8 dim {dim}")
    queries = [q, q[:1], q[5:]]
    batch = maxsim.scores_batch(queries, packed)
    for i, qi in enumerate(queries):
        np.testing.assert_array_equal(batch[i], maxsim.scores(qi, packed))
    # Slices are views that keep their scales.
    np.testing.assert_array_equal(maxsim.scores(q, packed[2:5]), maxsim.scores(q, packed)[2:5])


def exact_int8(q: np.ndarray, codes: np.ndarray, scales: np.ndarray, offsets) -> np.ndarray:
    """The documented int8 score from first principles: exact integer dot
    products of the quantized query and the codes, rounded to float32, times
    the document scale (float32), the maximum times the query scale, summed
    in float64 and rounded to float32."""
    qc, qs = quantize_ref(q)
    out = []
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        dots = (qc.astype(np.int64) @ codes[lo:hi].astype(np.int64).T).astype(np.float32)
        best = (dots * scales[lo:hi][None, :]).max(axis=1)
        total = 0.0
        for m in best * qs:  # in token order, as the driver sums (numpy sums pairwise)
            total += float(m)
        out.append(np.float32(total))
    return np.array(out, np.float32)


@pytest.mark.parametrize("dim", [1, 4, 7, 32, 33, 128])
def test_int8_user_codes_extremes_exact(rng, kernel, dim):
    # Codes built by hand may hold -128 (the quantizer never writes it) and
    # all +-127 (the largest pair sums): every kernel returns the exact score.
    lengths = [1, 5, 300, 2]
    n = sum(lengths)
    patterns = {
        "random": rng.integers(-128, 128, (n, dim)),
        "min": np.full((n, dim), -128),
        "plus127": np.full((n, dim), 127),
        "alternating": np.where(np.arange(dim) % 2 == 0, 127, -127)[None, :].repeat(n, 0),
        "extremes": rng.choice([-128, -127, 127], (n, dim)),
    }
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    scales = rng.uniform(1e-3, 1e-2, n).astype(np.float32)
    q = normalised(rng, 33, dim)
    q[0] = -np.abs(q[0])  # an all-negative token meets -128 documents
    for name, c in patterns.items():
        codes = c.astype(np.int8)
        docs = maxsim.PackedDocs(codes, offsets, scales=scales)
        got = maxsim.scores(q, docs)
        np.testing.assert_array_equal(got, exact_int8(q, codes, scales, offsets), err_msg=name)


def test_int8_float16_query_and_constructor(rng):
    q = normalised(rng, 5, 32)
    x = normalised(rng, 30, 32)
    codes, scales = quantize_ref(x)
    built = maxsim.PackedDocs(codes, [0, 10, 30], scales=scales)
    from_quantize = maxsim.quantize([x[:10], x[10:]], "int8_per_token")
    np.testing.assert_array_equal(maxsim.scores(q, built), maxsim.scores(q, from_quantize))
    np.testing.assert_array_equal(
        maxsim.scores(q.astype(np.float16), built),
        maxsim.scores(q.astype(np.float16).astype(np.float32), built),
    )
    lengths = maxsim.PackedDocs.from_lengths(codes, [10, 20], scales=scales)
    np.testing.assert_array_equal(maxsim.scores(q, lengths), maxsim.scores(q, built))


def test_results_independent_of_thread_count(rng):
    q = normalised(rng, 16, 64)
    docs32 = [normalised(rng, n, 64) for n in rng.integers(1, 120, 90)]
    forms = {
        "int8": maxsim.quantize(docs32, "int8_per_token"),
        "float16": [d.astype(np.float16) for d in docs32],
        "bfloat16": maxsim.quantize(docs32, "bfloat16"),
    }
    previous = maxsim.get_num_threads()
    try:
        base = {}
        for threads in (1, 2, 3):
            maxsim.set_num_threads(threads)
            for name, docs in forms.items():
                r = maxsim.scores_batch([q, q[:3]], docs)
                if threads == 1:
                    base[name] = r
                np.testing.assert_array_equal(r, base[name], err_msg=f"{name} {threads} threads")
    finally:
        maxsim.set_num_threads(previous)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dim=st.integers(1, 70),
    nq=st.integers(1, 64),
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    dtype=st.sampled_from(["float16", "bfloat16", "int8_per_token"]),
    seed=st.integers(0, 2**31),
)
def test_property_against_reference(dim, nq, lengths, dtype, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((nq, dim)).astype(np.float32)
    docs = [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]
    packed = maxsim.quantize(docs, dtype)
    got = maxsim.scores(q, packed)
    if dtype == "int8_per_token":
        want, bound = ref_int8(q, packed)
    else:
        want, bound = ref_half(q, list(packed))
    assert_within(got, want, bound, dtype)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_int8_without_scales_raises(rng):
    codes = rng.integers(-127, 128, (4, 10, 8)).astype(np.int8)
    q = normalised(rng, 3, 8)
    with pytest.raises(TypeError, match="scales"):
        maxsim.scores(q, codes)
    with pytest.raises(TypeError, match="scales"):
        maxsim.scores(q, list(codes))
    with pytest.raises(TypeError, match="scales"):
        maxsim.PackedDocs(codes.reshape(40, 8), [0, 10, 40])
    with pytest.raises(ValueError, match=r"scales: expected shape \(40,\)"):
        maxsim.PackedDocs(codes.reshape(40, 8), [0, 40], scales=np.ones(39, np.float32))
    with pytest.raises(ValueError, match="finite"):
        maxsim.PackedDocs(codes.reshape(40, 8), [0, 40], scales=-np.ones(40, np.float32))
    with pytest.raises(ValueError, match="only int8"):
        maxsim.PackedDocs(np.ones((4, 8), np.float16), [0, 4], scales=np.ones(4, np.float32))


def test_mismatched_query_dtype_raises(rng):
    torch = pytest.importorskip("torch")
    q = normalised(rng, 3, 8)
    docs = normalised(rng, 2, 5, 8)
    with pytest.raises(TypeError, match=r"query: dtype bfloat16 .* float16 documents.*float32"):
        maxsim.scores(q.astype(BF16), docs.astype(np.float16))
    with pytest.raises(TypeError, match=r"float16 .* bfloat16 documents"):
        maxsim.scores(torch.from_numpy(q).half(), torch.from_numpy(docs).bfloat16())
    with pytest.raises(TypeError, match=r"queries\[1\]: dtype float16"):
        maxsim.scores_batch([q, q.astype(np.float16)], maxsim.quantize(docs, "bfloat16"))
    packed = maxsim.quantize(docs, "int8_per_token")
    with pytest.raises(TypeError, match="quantized to int8 per token on the fly"):
        maxsim.scores(quantize_ref(q)[0], packed)


def test_quantize_bad_input(rng):
    x = normalised(rng, 2, 4, 8)
    with pytest.raises(ValueError, match="dtype"):
        maxsim.quantize(x, "int4")
    bad = x.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        maxsim.quantize(bad, "int8_per_token")
    big = x * 1e5
    with pytest.raises(ValueError, match="float16 range"):
        maxsim.quantize(big, "float16")
    assert maxsim.quantize(big, "bfloat16").flat.dtype == BF16
    with pytest.raises(TypeError, match="already int8"):
        maxsim.quantize(maxsim.quantize(x, "int8_per_token"), "int8_per_token")
    with pytest.raises(ValueError, match="zero tokens"):
        maxsim.quantize(np.zeros((3, 0, 8), np.float32), "float16")
    with pytest.raises(TypeError):
        maxsim.quantize(x.astype(np.int32), "int8_per_token")
    nan_half = maxsim.quantize(bad, "float16")
    assert np.isnan(nan_half.flat.astype(np.float32)).sum() == 1


def test_info_reports_reduced_paths():
    info = maxsim.info()
    paths = info["reduced_kernels"]
    assert set(paths) == {"float16", "bfloat16", "int8"}
    assert paths["int8"].split(":")[0] == info["kernel"]


def test_quantize_int8_alias_is_deprecated(rng):
    """``"int8"`` (and ``"i8"``, ``np.int8``) still give per-token int8, with a
    DeprecationWarning naming ``"int8_per_token"``; the default and the new
    name do not warn."""
    import warnings

    x = normalised(rng, 3, 5, 16)
    want = maxsim.quantize(x, "int8_per_token")
    for alias in ("int8", "i8", np.int8):
        with pytest.warns(DeprecationWarning, match="int8_per_token"):
            got = maxsim.quantize(x, alias)
        np.testing.assert_array_equal(got.flat, want.flat)
        np.testing.assert_array_equal(got.scales, want.scales)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        default = maxsim.quantize(x)
    assert default.flat.dtype == np.int8
    np.testing.assert_array_equal(default.flat, want.flat)
