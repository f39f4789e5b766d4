"""Arrays whose elements are not aligned (a view at an odd byte offset of a
buffer, as ``np.frombuffer`` or a memory map with an odd header gives) are
C-contiguous but cannot be borrowed as Rust slices: the Python layer copies
them, and every entry point gives the aligned input's results."""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from conftest import normalised, reference_maxsim
from maxsim import _native
from maxsim import binary as mb


def unaligned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` one byte past an aligned address."""
    buf = np.zeros(x.nbytes + 1, dtype=np.uint8)
    out = buf[1:].view(x.dtype).reshape(x.shape)
    out[...] = x
    assert out.flags.c_contiguous and not out.flags.aligned
    return out


def test_ready_list_rejects_unaligned(rng):
    docs = [normalised(rng, 5, 16), normalised(rng, 3, 16)]
    assert _native.ready_f32_list(docs) == 16
    assert _native.ready_f32_list([docs[0], unaligned(docs[1])]) is None


def test_float_scores_with_unaligned_inputs(rng):
    q = normalised(rng, 7, 24)
    docs = normalised(rng, 6, 11, 24)
    expected = np.array([reference_maxsim(q, d) for d in docs])
    np.testing.assert_allclose(maxsim.scores(unaligned(q), unaligned(docs)), expected, atol=1e-5)
    as_list = [unaligned(d) for d in docs]
    np.testing.assert_array_equal(maxsim.scores(q, as_list), maxsim.scores(q, list(docs)))
    flat = unaligned(docs.reshape(-1, 24))
    offsets = unaligned(np.arange(0, 67, 11, dtype=np.int64))
    packed = maxsim.PackedDocs(flat, offsets)
    np.testing.assert_array_equal(maxsim.scores(q, packed), maxsim.scores(q, docs))
    batch = maxsim.scores_batch(unaligned(np.stack([q, q])), docs)
    np.testing.assert_array_equal(batch[1], maxsim.scores(q, docs))
    top_scores, top_ids = maxsim.topk(unaligned(q), as_list, k=3)
    np.testing.assert_array_equal(top_ids, np.argsort(-expected, kind="stable")[:3])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int8_per_token"])
def test_quantize_unaligned_equals_aligned(rng, dtype):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    docs = normalised(rng, 4, 9, 32)
    got = maxsim.quantize(unaligned(docs), dtype)
    want = maxsim.quantize(docs, dtype)
    np.testing.assert_array_equal(got.flat.view(np.uint8), want.flat.view(np.uint8))
    q = normalised(rng, 5, 32)
    np.testing.assert_array_equal(maxsim.scores(q, got), maxsim.scores(q, want))
    if dtype == "float16":
        half = docs.astype(np.float16)
        np.testing.assert_array_equal(maxsim.scores(q, unaligned(half)), maxsim.scores(q, half))


def test_binary_unaligned_floats(rng):
    x = rng.standard_normal((50, 64)).astype(np.float32)
    np.testing.assert_array_equal(mb.quantize(unaligned(x)), mb.quantize(x))
    codes = mb.quantize(x)
    q = x[:3]
    d, i = mb.search_rescore(unaligned(q), codes, 5, db_float=unaligned(x))
    d0, i0 = mb.search_rescore(q, codes, 5, db_float=x)
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_array_equal(d, d0)
