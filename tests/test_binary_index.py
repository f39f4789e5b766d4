"""maxsim.binary.BinaryIndex: adding, searching and rescoring against the
reference search, faiss IndexBinaryFlat's reconstruct/remove/reset, the file
format's round trip and damaged files, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _binary_reference import ref_search
from maxsim import binary as mb

try:
    import faiss
except ImportError:  # pragma: no cover - faiss is in the test environment
    faiss = None


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def test_index_add_search_and_persist(rng, tmp_path):
    dim = 100
    x = rng.standard_normal((1003, dim)).astype(np.float32)
    codes = np.packbits(x > 0, axis=-1)
    q = rng.standard_normal((7, dim)).astype(np.float32)
    qc = np.packbits(q > 0, axis=-1)
    index = mb.BinaryIndex(dim)
    index.add(x[:5])  # float vectors, quantized
    index.add(codes[5:13])  # uint8 codes, across a group boundary
    index.add((codes[13:400] ^ np.uint8(0x80)).view(np.int8))  # int8 codes
    index.add(x[400])  # one vector
    index.add(codes[401:])
    assert len(index) == index.ntotal == 1003
    np.testing.assert_array_equal(index.codes(), codes)
    want = ref_search(qc, codes, 20)
    for query in (q, qc):
        d, i = index.search(query, 20)
        np.testing.assert_array_equal(d, want[0])
        np.testing.assert_array_equal(i, want[1])
    want_rescored = mb.search_rescore(q, codes, 10, 3, db_float=x)
    got_rescored = index.search_rescore(q, 10, 3, db_float=x)
    for g, w in zip(got_rescored, want_rescored):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(index.search_rescore(q[0], 10), mb.search_rescore(q[0], codes, 10)):
        np.testing.assert_array_equal(g, w)

    path = tmp_path / "index.mxb"
    index.save(path)
    assert path.stat().st_size == 64 + 8 * (-(-1003 // 8)) * 2 * 8
    loaded = mb.BinaryIndex.load(path)
    assert isinstance(loaded._words, np.memmap)
    assert loaded.dim == dim and len(loaded) == 1003
    d, i = loaded.search(qc, 20)
    np.testing.assert_array_equal(i, want[1])
    loaded.add(codes[:3])  # copies the mapping into memory first
    assert len(loaded) == 1006
    np.testing.assert_array_equal(loaded.codes(), np.concatenate([codes, codes[:3]]))
    # Empty index round trip.
    empty = mb.BinaryIndex(64)
    empty.save(tmp_path / "empty.mxb")
    again = mb.BinaryIndex.load(tmp_path / "empty.mxb")
    assert len(again) == 0
    d, i = again.search(np.zeros(8, np.uint8), 5)
    assert d.shape == (0,)


@pytest.mark.skipif(faiss is None, reason="faiss-cpu not installed")
def test_index_reconstruct_remove_reset_match_faiss(rng, tmp_path):
    """faiss's IndexBinaryFlat names and semantics: reconstruct / reconstruct_n
    return the stored codes, remove_ids drops indices (repeats and outside
    ones ignored), renumbers the rest densely and returns the count, reset
    empties; searches afterwards agree with faiss's on the same operations."""
    dim, n = 72, 203
    codes = rng.integers(0, 256, (n, dim // 8), dtype=np.uint8)
    codes[50:60] = codes[0]  # ties
    queries = rng.integers(0, 256, (5, dim // 8), dtype=np.uint8)
    ours = mb.BinaryIndex(dim)
    ours.add(codes)
    theirs = faiss.IndexBinaryFlat(dim)
    theirs.add(codes)
    for i0, ni in ((0, n), (5, 11), (7, 1), (200, 3), (n, 0)):
        np.testing.assert_array_equal(ours.reconstruct_n(i0, ni), theirs.reconstruct_n(i0, ni))
    np.testing.assert_array_equal(ours.reconstruct(9), theirs.reconstruct(9))
    np.testing.assert_array_equal(ours.reconstruct(n - 1), codes[-1])
    remove = np.array([3, 3, 0, 57, 202, 8, 9, 10, -1, n, 10_000], dtype=np.int64)
    assert ours.remove_ids(remove) == theirs.remove_ids(remove) == 7
    assert ours.ntotal == theirs.ntotal == n - 7
    np.testing.assert_array_equal(ours.reconstruct_n(), theirs.reconstruct_n(0, theirs.ntotal))
    for got, want in zip(ours.search(queries, 15), theirs.search(queries, 15)):
        np.testing.assert_array_equal(got, want)
    assert ours.remove_ids(np.array([], dtype=np.int64)) == 0
    # A memory-mapped index: read in place, copied when something is removed.
    ours.save(tmp_path / "i.mxb")
    loaded = mb.BinaryIndex.load(tmp_path / "i.mxb")
    np.testing.assert_array_equal(loaded.reconstruct_n(4, 9), theirs.reconstruct_n(4, 9))
    assert loaded.remove_ids(np.arange(0, 196, 2)) == 98
    np.testing.assert_array_equal(loaded.codes(), ours.codes()[1::2])
    ours.reset()
    theirs.reset()
    assert ours.ntotal == theirs.ntotal == 0
    assert ours.search(queries, 3)[0].shape == (5, 0)
    ours.add(codes[:2])
    np.testing.assert_array_equal(ours.codes(), codes[:2])
    with pytest.raises(ValueError, match=r"key: expected an index in \[0, 2\), got 2"):
        ours.reconstruct(2)
    with pytest.raises(ValueError, match=r"ni: expected an integer in \[0, 1\], got 5"):
        ours.reconstruct_n(1, 5)
    with pytest.raises(TypeError, match=r"ids: expected a 1-D integer array.*float64"):
        ours.remove_ids(np.array([0.0]))


def test_index_load_rejects_damaged_files(rng, tmp_path):
    index = mb.BinaryIndex(256)
    index.add(rng.standard_normal((50, 256)).astype(np.float32))
    path = tmp_path / "ok.mxb"
    index.save(path)
    blob = path.read_bytes()

    def write(name: str, data: bytes):
        p = tmp_path / name
        p.write_bytes(data)
        return p

    cases = {
        "truncated": blob[:-9],
        "header only, short": blob[:40],
        "empty": b"",
        "trailing": blob + b"\0",
        "bad magic": b"NOTMAXSM" + blob[8:],
        "header bit flip": blob[:20] + bytes([blob[20] ^ 1]) + blob[21:],
        "payload bit flip": blob[:100] + bytes([blob[100] ^ 4]) + blob[101:],
    }
    for name, data in cases.items():
        with pytest.raises(ValueError):
            mb.BinaryIndex.load(write(name.replace(" ", "_").replace(",", ""), data))
    # Without payload verification a flipped code bit still loads, and searching never crashes.
    loaded = mb.BinaryIndex.load(write("flip2", cases["payload bit flip"]), verify=False)
    loaded.search(np.zeros(32, np.uint8), 3)


def test_index_bad_input(rng):
    index = mb.BinaryIndex(64)
    with pytest.raises(
        ValueError, match=r"x: codes of 4 bytes .*shape \(3, 4\) dtype uint8.*dimension 64"
    ):
        index.add(np.zeros((3, 4), np.uint8))
    with pytest.raises(
        ValueError, match=r"x: float vectors must be .*shape \(2, 63\) dtype float32"
    ):
        index.add(np.zeros((2, 63), np.float32))
    with pytest.raises(
        TypeError,
        match=r"x: expected uint8/int8 codes or float vectors, got shape \(2, 8\) dtype int32",
    ):
        index.add(np.zeros((2, 8), np.int32))
    index.add(np.zeros((3, 8), np.uint8))
    with pytest.raises(ValueError, match=r"query: codes of 16 bytes"):
        index.search(np.zeros((1, 16), np.uint8), 1)
    with pytest.raises(ValueError, match=r"k: must be at least 1, got 0"):
        index.search(np.zeros((1, 8), np.uint8), 0)
    with pytest.raises(ValueError, match=r"db_float: expected shape \(3, 64\)"):
        index.search_rescore(np.zeros(64, np.float32), 1, db_float=np.zeros((4, 64), np.float32))
    with pytest.raises(ValueError, match="dim"):
        mb.BinaryIndex(0)


# ----------------------------------------------------------------------------- bad input
