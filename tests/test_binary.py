"""maxsim.binary against references: numpy (packbits, bitwise_count), faiss
IndexBinaryFlat and sentence-transformers, for every Hamming implementation
this CPU runs, every kernel selection, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from _binary_reference import ref_hamming, ref_search, tied_codes
from maxsim import _native
from maxsim import binary as mb

IMPLS, _SELECTED = _native.binary_impls()

try:
    import faiss
except ImportError:  # pragma: no cover - faiss is in the test environment
    faiss = None

try:
    from sentence_transformers.quantization import quantize_embeddings, semantic_search_faiss
except ImportError:  # pragma: no cover
    quantize_embeddings = semantic_search_faiss = None


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# ----------------------------------------------------------------------------- quantization


@pytest.mark.skipif(quantize_embeddings is None, reason="sentence-transformers not installed")
@pytest.mark.parametrize("dim", [8, 16, 64, 384, 1024])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_bit_identical_to_sentence_transformers(rng, dim, dtype):
    x = rng.standard_normal((37, dim)).astype(dtype)
    x[0, :5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    x[1, :3] = [1e-45, -1e-45, 1e-300 if dtype == np.float64 else 1e-38]
    for precision, want_dtype in (("ubinary", np.uint8), ("binary", np.int8)):
        want = quantize_embeddings(x, precision=precision)
        got = mb.quantize(x, precision=precision)
        assert got.dtype == want_dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dim", [1, 3, 7, 9, 100, 129])
def test_quantize_matches_packbits_on_odd_dims(rng, dim):
    x = rng.standard_normal((11, dim)).astype(np.float32)
    want = np.packbits(x > 0, axis=-1)
    np.testing.assert_array_equal(mb.quantize(x), want)
    np.testing.assert_array_equal(mb.quantize(x, "binary"), (want ^ np.uint8(0x80)).view(np.int8))
    # float16 goes through its own bit-level path; the sign test is the same.
    x16 = x.astype(np.float16)
    x16[0, 0] = np.float16(6e-8)  # a positive subnormal
    np.testing.assert_array_equal(mb.quantize(x16), np.packbits(x16 > 0, axis=-1))
    # 1-D and 3-D inputs pack along the last axis.
    np.testing.assert_array_equal(mb.quantize(x[3]), want[3])
    x3 = x.reshape(1, 11, dim).repeat(2, axis=0)
    np.testing.assert_array_equal(mb.quantize(x3), np.packbits(x3 > 0, axis=-1))


def test_quantize_torch_and_noncontiguous(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((20, 48)).astype(np.float32)
    want = np.packbits(x > 0, axis=-1)
    np.testing.assert_array_equal(mb.quantize(torch.from_numpy(x)), want)
    np.testing.assert_array_equal(
        mb.quantize(torch.from_numpy(x).bfloat16()),
        np.packbits(torch.from_numpy(x).bfloat16().float().numpy() > 0, axis=-1),
    )
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(mb.quantize(xt), want)
    np.testing.assert_array_equal(mb.quantize(x[:, ::2]), np.packbits(x[:, ::2] > 0, axis=-1))


@pytest.mark.parametrize("dim", [1, 8, 13, 384])
def test_unpack_reverses_quantize(rng, dim):
    x = rng.standard_normal((9, dim)).astype(np.float32)
    bits = (x > 0).astype(np.uint8)
    np.testing.assert_array_equal(mb.unpack(mb.quantize(x), dim), bits)
    np.testing.assert_array_equal(mb.unpack(mb.quantize(x, "binary"), dim), bits)
    full = mb.unpack(mb.quantize(x))
    assert full.shape == (9, 8 * (-(-dim // 8)))
    np.testing.assert_array_equal(full, np.unpackbits(np.packbits(x > 0, axis=-1), axis=-1))


# ----------------------------------------------------------------------------- hamming / search


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n_bytes", [1, 3, 8, 9, 16, 31, 64, 65, 128, 260])
def test_hamming_matches_numpy(rng, impl, n_bytes):
    a = rng.integers(0, 256, size=(13, n_bytes), dtype=np.uint8)
    b = rng.integers(0, 256, size=(77, n_bytes), dtype=np.uint8)
    want = ref_hamming(a, b)
    got = _native.binary_hamming(a, b, impl_name=impl)
    assert got.dtype == np.int32 and got.shape == (13, 77)
    np.testing.assert_array_equal(got, want)


def test_hamming_public_api(rng):
    a = rng.integers(0, 256, size=(5, 12), dtype=np.uint8)
    b = rng.integers(0, 256, size=(9, 12), dtype=np.uint8)
    want = ref_hamming(a, b)
    np.testing.assert_array_equal(mb.hamming(a, b), want)
    np.testing.assert_array_equal(mb.hamming(a[2], b), want[2:3])
    # int8 codes: both binary, or mixed with ubinary, give the same distances.
    ai8, bi8 = (a ^ np.uint8(0x80)).view(np.int8), (b ^ np.uint8(0x80)).view(np.int8)
    np.testing.assert_array_equal(mb.hamming(ai8, bi8), want)
    np.testing.assert_array_equal(mb.hamming(ai8, b), want)
    np.testing.assert_array_equal(mb.hamming(a, bi8), want)


@pytest.mark.skipif(faiss is None, reason="faiss not installed")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "n_bytes,n,n_q,mask",
    [
        (1, 1, 1, 0xFF),
        (1, 300, 7, 0x0F),
        (8, 1000, 5, 0x03),
        (16, 2049, 9, 0x11),
        (24, 517, 70, 0xFF),
        (32, 4099, 3, 0x01),
        (64, 3001, 33, 0x81),
        (128, 777, 2, 0x07),
    ],
)
def test_search_equals_faiss_with_ties(rng, impl, n_bytes, n, n_q, mask):
    db = tied_codes(rng, n, n_bytes, mask)
    q = tied_codes(rng, n_q, n_bytes, mask)
    index = faiss.IndexBinaryFlat(n_bytes * 8)
    index.add(db)
    for k in (1, 10, 100, 1000):
        fd, fi = index.search(q, k)
        kept = min(k, n)
        d, i = _native.binary_search(q, k, db_codes=db, impl_name=impl)
        assert d.dtype == np.int32 and i.dtype == np.int64 and d.shape == (n_q, kept)
        np.testing.assert_array_equal(d, fd[:, :kept])
        np.testing.assert_array_equal(i, fi[:, :kept])
        # The interleaved (BinaryIndex) layout gives the same answer.
        words = _native.binary_interleave(db)
        d2, i2 = _native.binary_search(q, k, db_words=words, n=n, n_bytes=n_bytes, impl_name=impl)
        np.testing.assert_array_equal(d2, d)
        np.testing.assert_array_equal(i2, i)


def test_search_public_api_shapes(rng):
    db = tied_codes(rng, 500, 8, 0x0F)
    q = tied_codes(rng, 4, 8, 0x0F)
    want_d, want_i = ref_search(q, db, 25)
    d, i = mb.search(q, db, 25)
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(i, want_i)
    d1, i1 = mb.search(q[1], db, 25)
    assert d1.shape == i1.shape == (25,)
    np.testing.assert_array_equal(i1, want_i[1])
    # Non-contiguous and Fortran-ordered codes are copied, torch tensors viewed.
    wide = np.concatenate([db, db], axis=1)
    np.testing.assert_array_equal(mb.search(q, wide[:, :8], 25)[1], want_i)
    np.testing.assert_array_equal(mb.search(q, np.asfortranarray(db), 25)[1], want_i)
    torch = pytest.importorskip("torch")
    dt, it = mb.search(torch.from_numpy(q), torch.from_numpy(db), 25)
    np.testing.assert_array_equal(it, want_i)
    np.testing.assert_array_equal(mb.hamming(torch.from_numpy(q), db), ref_hamming(q, db))
    d_all, i_all = mb.search(q, db, 10_000)  # k > n returns n results
    assert d_all.shape == (4, 500)
    np.testing.assert_array_equal(i_all, ref_search(q, db, 500)[1])


@pytest.mark.parametrize("kernel", _native.supported_kernels())
def test_every_kernel_selection_agrees(rng, kernel):
    db = tied_codes(rng, 3000, 64, 0x05)
    q = tied_codes(rng, 6, 64, 0x05)
    want = ref_search(q, db, 50)
    previous = _native.kernel()
    try:
        _native.set_kernel(kernel)
        d, i = mb.search(q, db, 50)
        np.testing.assert_array_equal(d, want[0])
        np.testing.assert_array_equal(i, want[1])
        np.testing.assert_array_equal(mb.hamming(q, db), ref_hamming(q, db))
    finally:
        _native.set_kernel(previous)


def test_forced_kernel_through_environment():
    script = (
        "import json, numpy as np; from maxsim import binary as mb, _native; "
        "rng = np.random.default_rng(1); db = rng.integers(0, 4, (999, 40), dtype=np.uint8); "
        "q = rng.integers(0, 4, (3, 40), dtype=np.uint8); d, i = mb.search(q, db, 7); "
        "print(json.dumps({'impl': _native.binary_impls()[1], 'd': d.tolist(), 'i': i.tolist()}))"
    )
    outputs = {}
    for kernel in _native.supported_kernels():
        env = dict(os.environ, MAXSIM_KERNEL=kernel, MAXSIM_NUM_THREADS="2")
        res = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        outputs[kernel] = json.loads(res.stdout)
    first = next(iter(outputs.values()))
    for out in outputs.values():
        assert out["d"] == first["d"] and out["i"] == first["i"]
    if "avx512" in outputs and "avx512vpopcntdq" not in _native.cpu_features():
        assert outputs["avx512"]["impl"] != "avx512-vpopcntdq"


def test_results_independent_of_thread_count(rng):
    db = tied_codes(rng, 20_000, 16, 0x0F)
    q = tied_codes(rng, 130, 16, 0x0F)
    docs = db[:3000].reshape(300, 10, 16)
    qf = rng.standard_normal((5, 128)).astype(np.float32)
    previous = _native.num_threads()
    outs = []
    try:
        for threads in (1, 2, 3, 5):
            _native.set_num_threads(threads)
            outs.append(
                (
                    mb.search(q, db, 37),
                    mb.search(q[0], db, 37),
                    mb.hamming(q[:3], db),
                    mb.maxsim_scores(q[:32], docs),
                    mb.search_rescore(qf, db, 10, 4),
                )
            )
    finally:
        _native.set_num_threads(previous)
    for out in outs[1:]:
        for got, want in zip(out, outs[0]):
            if isinstance(want, tuple):
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- rescoring


@pytest.mark.skipif(semantic_search_faiss is None, reason="sentence-transformers not installed")
@pytest.mark.parametrize("mult", [1, 2, 4, 10])
def test_rescore_default_matches_sentence_transformers(rng, mult):
    corpus = rng.standard_normal((3000, 128)).astype(np.float32)
    queries = rng.standard_normal((20, 128)).astype(np.float32)
    codes = quantize_embeddings(corpus, precision="ubinary")
    hits, _ = semantic_search_faiss(
        queries,
        corpus_embeddings=codes,
        corpus_precision="ubinary",
        top_k=10,
        rescore=True,
        rescore_multiplier=mult,
        exact=True,
    )
    st_ids = np.array([[h["corpus_id"] for h in row] for row in hits])
    st_scores = np.array([[h["score"] for h in row] for row in hits])
    scores, ids = mb.search_rescore(queries, codes, 10, rescore_multiplier=mult)
    np.testing.assert_array_equal(ids, st_ids)
    np.testing.assert_allclose(scores, st_scores, rtol=1e-6, atol=1e-5)


STORES = ["float32", "float16", "int8", "float64", "torch", "float32-swapped", "float16-swapped"]


@pytest.mark.parametrize("store", STORES)
def test_rescore_with_db_float_matches_numpy(rng, store):
    n, dim = 2000, 77
    corpus = rng.standard_normal((n, dim)).astype(np.float32)
    codes = np.packbits(corpus > 0, axis=-1)
    queries = rng.standard_normal((6, dim)).astype(np.float32)
    if store == "int8":
        db_float = np.clip(np.rint(corpus * 40), -127, 127).astype(np.int8)
    elif store == "float16":
        db_float = corpus.astype(np.float16)
    elif store == "float64":
        db_float = corpus.astype(np.float64)
    elif store == "torch":
        torch = pytest.importorskip("torch")
        db_float = torch.from_numpy(corpus)
    elif store.endswith("-swapped"):  # same values, bytes in the other order
        stored = corpus.astype(store.split("-")[0])
        db_float = stored.astype(stored.dtype.newbyteorder("S"))
    else:
        db_float = corpus
    values = (
        np.asarray(db_float, dtype=np.float64) if store != "float64" else corpus.astype(np.float64)
    )
    k, mult = 7, 5
    _, cand = ref_search(np.packbits(queries > 0, axis=-1), codes, k * mult)
    scores, ids = mb.search_rescore(queries, codes, k, rescore_multiplier=mult, db_float=db_float)
    for qi in range(queries.shape[0]):
        s = values[cand[qi]] @ queries[qi].astype(np.float64)
        order = np.lexsort((cand[qi], -s.astype(np.float32)))[:k]
        np.testing.assert_array_equal(ids[qi], cand[qi][order])
        np.testing.assert_allclose(scores[qi], s[order], rtol=1e-6, atol=1e-6)
    # A 1-D query gives 1-D results.
    s1, i1 = mb.search_rescore(queries[2], codes, k, mult, db_float=db_float)
    np.testing.assert_array_equal(i1, ids[2])


def test_rescore_int8_codes_same_as_ubinary(rng):
    corpus = rng.standard_normal((800, 64)).astype(np.float32)
    queries = rng.standard_normal((4, 64)).astype(np.float32)
    a = mb.search_rescore(queries, mb.quantize(corpus), 5, 3)
    b = mb.search_rescore(queries, mb.quantize(corpus, "binary"), 5, 3)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


# ----------------------------------------------------------------------------- binary MaxSim


def ref_binary_maxsim(q: np.ndarray, doc: np.ndarray, d_bits: int) -> int:
    sims = d_bits - 2 * ref_hamming(q, doc)
    return int(sims.max(axis=1).sum())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n_bytes", [1, 4, 16, 17, 32])
def test_binary_maxsim_layouts(rng, impl, n_bytes):
    queries = [rng.integers(0, 256, size=(nq, n_bytes), dtype=np.uint8) for nq in (1, 5, 32)]
    lens = [1, 7, 8, 9, 300, 2]
    docs = [rng.integers(0, 256, size=(ln, n_bytes), dtype=np.uint8) for ln in lens]
    bits = 8 * n_bytes
    want = np.array([[ref_binary_maxsim(q, d, bits) for d in docs] for q in queries])
    got = _native.binary_maxsim_list(queries, docs, n_bytes, impl_name=impl)
    np.testing.assert_array_equal(got, want)
    flat = np.concatenate(docs)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    np.testing.assert_array_equal(
        _native.binary_maxsim_packed(queries, flat, offsets, impl_name=impl), want
    )
    fixed = rng.integers(0, 256, size=(5, 13, n_bytes), dtype=np.uint8)
    want_fixed = np.array([[ref_binary_maxsim(q, d, bits) for d in fixed] for q in queries])
    np.testing.assert_array_equal(
        _native.binary_maxsim_fixed(queries, fixed, impl_name=impl), want_fixed
    )


def test_binary_maxsim_public_api(rng):
    n_bytes = 16
    q = rng.integers(0, 256, size=(32, n_bytes), dtype=np.uint8)
    lens = [3, 40, 1, 17]
    docs = [rng.integers(0, 256, size=(ln, n_bytes), dtype=np.uint8) for ln in lens]
    want = np.array([ref_binary_maxsim(q, d, 128) for d in docs])
    got = mb.maxsim_scores(q, docs)
    assert got.dtype == np.int32 and got.shape == (4,)
    np.testing.assert_array_equal(got, want)
    flat = np.concatenate(docs)
    packed = mb.PackedCodes.from_lengths(flat, lens)
    np.testing.assert_array_equal(mb.maxsim_scores(q, packed), want)
    duck = types.SimpleNamespace(flat=flat, offsets=np.concatenate([[0], np.cumsum(lens)]))
    np.testing.assert_array_equal(mb.maxsim_scores(q, duck), want)
    # Batches: a list of queries or a 3-D array give (n_queries, n_docs).
    batch = mb.maxsim_scores([q, q[:5]], docs)
    np.testing.assert_array_equal(batch[0], want)
    np.testing.assert_array_equal(batch[1], [ref_binary_maxsim(q[:5], d, 128) for d in docs])
    np.testing.assert_array_equal(mb.maxsim_scores(np.stack([q, q]), docs)[1], want)
    # int8 (binary) codes, alone or mixed with ubinary, score the same.
    flip = lambda a: (a ^ np.uint8(0x80)).view(np.int8)  # noqa: E731
    np.testing.assert_array_equal(mb.maxsim_scores(flip(q), [flip(d) for d in docs]), want)
    np.testing.assert_array_equal(mb.maxsim_scores(flip(q), docs), want)
    # dim: the real number of bits shifts each token's similarity.
    np.testing.assert_array_equal(
        mb.maxsim_scores(q, docs, dim=123), [ref_binary_maxsim(q, d, 123) for d in docs]
    )
    # Quantized float ColBERT embeddings: the similarity is the ±1 dot product.
    xq = rng.standard_normal((6, 128)).astype(np.float32)
    xd = rng.standard_normal((3, 9, 128)).astype(np.float32)
    signs = lambda x: np.where(x > 0, 1, -1)  # noqa: E731
    want_pm = [int((signs(xq) @ signs(d).T).max(axis=1).sum()) for d in xd]
    np.testing.assert_array_equal(mb.maxsim_scores(mb.quantize(xq), mb.quantize(xd)), want_pm)


def test_bad_input_messages(rng):
    db = rng.integers(0, 256, size=(10, 8), dtype=np.uint8)
    q = rng.integers(0, 256, size=(2, 8), dtype=np.uint8)
    with pytest.raises(
        TypeError, match=r"query_codes: .*uint8.*int8.*shape \(2, 8\) dtype float32"
    ):
        mb.search(q.astype(np.float32), db, 1)
    with pytest.raises(TypeError, match=r"db_codes: .*shape \(10, 8\) dtype int64"):
        mb.search(q, db.astype(np.int64), 1)
    with pytest.raises(
        ValueError,
        match=r"query_codes: codes of 4 bytes \(32 bits; shape \(2, 4\) dtype uint8\) "
        r"do not match db_codes: 8 bytes",
    ):
        mb.search(q[:, :4], db, 1)
    with pytest.raises(ValueError, match=r"k: must be at least 1, got 0"):
        mb.search(q, db, 0)
    with pytest.raises(TypeError, match=r"k: expected an integer"):
        mb.search(q, db, 2.5)
    with pytest.raises(
        ValueError, match=r"db_codes: expected a 2-D array of codes, got shape \(10, 2, 4\)"
    ):
        mb.search(q, db.reshape(10, 2, 4), 1)
    with pytest.raises(
        ValueError, match=r"a_codes: codes of 8 bytes .* do not match b_codes: 7 bytes"
    ):
        mb.hamming(q, db[:, :7])
    with pytest.raises(ValueError, match=r"precision"):
        mb.quantize(np.zeros((2, 8), np.float32), "int8")
    with pytest.raises(TypeError, match=r"x: expected floating-point .*shape \(2, 8\) dtype uint8"):
        mb.quantize(np.zeros((2, 8), np.uint8))
    with pytest.raises(ValueError, match=r"dim: 70 does not fit codes of 8 bytes"):
        mb.unpack(db, 70)
    with pytest.raises(
        ValueError,
        match=r"query_float: dimension 60 .* needs codes of 8 bytes, but db_codes .* 9 bytes",
    ):
        mb.search_rescore(np.zeros((1, 60), np.float32), np.zeros((5, 9), np.uint8), 1)
    with pytest.raises(ValueError, match=r"rescore_multiplier: must be at least 1"):
        mb.search_rescore(np.zeros((1, 64), np.float32), db, 1, 0)
    with pytest.raises(
        TypeError, match=r"db_float: expected float32, float16 or int8 .*dtype uint8"
    ):
        mb.search_rescore(
            np.zeros((1, 64), np.float32), db, 1, db_float=np.zeros((10, 64), np.uint8)
        )
    with pytest.raises(TypeError, match=r"query_float: expected floating-point .*dtype uint8"):
        mb.search_rescore(q, db, 1)
    # Binary MaxSim layouts.
    with pytest.raises(ValueError, match=r"docs_codes\[1\]: document 1 has zero tokens"):
        mb.maxsim_scores(q, [db, db[:0]])
    with pytest.raises(ValueError, match=r"offsets: not monotonic"):
        mb.maxsim_scores(q, mb.PackedCodes(db, [0, 5, 3]))
    with pytest.raises(ValueError, match=r"offsets: last offset 11 runs past flat"):
        mb.maxsim_scores(q, mb.PackedCodes(db, [0, 5, 11]))
    with pytest.raises(
        ValueError, match=r"query_codes\[0\]: codes of 4 bytes .* do not match docs_codes: 8 bytes"
    ):
        mb.maxsim_scores(q[:, :4], db.reshape(5, 2, 8))
    with pytest.raises(ValueError, match=r"dim: 80 bits do not fit codes of 8 bytes"):
        mb.maxsim_scores(q, db.reshape(5, 2, 8), dim=80)
    with pytest.raises(TypeError, match=r"docs_codes: .*dtype float64"):
        mb.maxsim_scores(q, np.zeros((2, 3, 8)))
    # The native layer validates too, for callers that skip the wrapper.
    with pytest.raises(ValueError):
        _native.binary_search(q, 1, db_words=np.zeros(7, np.uint64), n=1, n_bytes=8)
    with pytest.raises(ValueError):
        _native.binary_search(q, 1, db_codes=db, db_words=np.zeros(8, np.uint64), n=1, n_bytes=8)
    with pytest.raises(ValueError, match="impl_name"):
        _native.binary_hamming(q, db, impl_name="sse9")
