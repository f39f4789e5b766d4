"""Binary embeddings: quantization, Hamming search, rescoring and binary MaxSim.

Codes are sentence-transformers' packed sign bits:

* ``ubinary`` (``uint8``): ``np.packbits(x > 0, axis=-1)`` -- most significant bit
  first, ``x <= 0`` and NaN give 0, the last byte zero-padded;
* ``binary`` (``int8``): the same bytes with the top bit flipped (``ubinary - 128``).

Every function accepts either kind (and torch CPU tensors). Hamming distances do
not depend on which: two ``int8`` inputs are compared as they are, and when the
two kinds are mixed the ``int8`` side is converted. Distances are
``popcount(a ^ b)`` over all code bits, exactly as faiss ``IndexBinaryFlat``.

Quick tour::

    from maxsim import binary
    codes = binary.quantize(emb)                      # (n, d/8) uint8
    dist, ids = binary.search(binary.quantize(q), codes, k=10)
    scores, ids = binary.search_rescore(q, codes, k=10, rescore_multiplier=4)
    index = binary.BinaryIndex(384); index.add(emb); index.save("idx.mxb")

Work runs in Rust with the GIL released, on the package's thread pool
(``maxsim.set_num_threads``); results are identical for any thread count.
"""

from __future__ import annotations

from ._codes import quantize, unpack
from ._index import BinaryIndex
from ._search import PackedCodes, hamming, maxsim_scores, search, search_rescore

__all__ = [
    "BinaryIndex",
    "PackedCodes",
    "hamming",
    "maxsim_scores",
    "quantize",
    "search",
    "search_rescore",
    "unpack",
]
