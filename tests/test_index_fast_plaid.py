"""maxsim.Index.from_fast_plaid: read a fast-plaid folder without torch.

The reference is fast-plaid itself: its own reconstruction of every
document (``FastPlaid.get_embeddings``) must equal ours, and the converted
index holds exactly those vectors.
"""

from __future__ import annotations

import maxsim
import numpy as np
import pytest
from maxsim._fast_plaid import reconstruct_chunks

torch = pytest.importorskip("torch")
search = pytest.importorskip("fast_plaid.search")


@pytest.mark.parametrize("nbits", [2, 4])
def test_import_matches_fast_plaids_own_reconstruction(tmp_path, nbits) -> None:
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(1100):  # above fast-plaid's 1000-document raw-embeddings threshold
        x = rng.standard_normal((int(rng.integers(2, 12)), 32)).astype(np.float32)
        docs.append(torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True)))
    fp = search.FastPlaid(index=str(tmp_path / "fp"), device="cpu")
    fp.create(documents_embeddings=docs, nbits=nbits, seed=0)
    theirs = [t.float().numpy() for t in fp.get_embeddings(list(range(len(docs))))]
    chunks = reconstruct_chunks(tmp_path / "fp")
    next(chunks)
    ours = [d for chunk in chunks for d in chunk]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=2e-3)  # fast-plaid's float16 centroids
    index = maxsim.Index.from_fast_plaid(tmp_path / "fp", tmp_path / "ix", store="float32")
    assert len(index) == len(docs)
    got = index.get(list(range(0, len(docs), 97)))
    for j, g in zip(range(0, len(docs), 97), got):
        np.testing.assert_allclose(g, ours[j], atol=1e-6)
    # Without a store: the same codebook re-encodes the reconstructions closely.
    plain = maxsim.Index.from_fast_plaid(tmp_path / "fp", tmp_path / "ix2")
    assert plain.stats()["n_centroids"] == len(np.load(tmp_path / "fp" / "centroids.npy"))
    for j, g in zip(range(0, len(docs), 97), plain.get(list(range(0, len(docs), 97)))):
        cos = (g * ours[j]).sum(1) / np.linalg.norm(g, axis=1)
        assert cos.min() > 0.9
    q = docs[5].numpy()
    s, i = index.search(q, 5, rerank="exact", nprobe=4096, n_candidates=1100)
    want_s, want_i = maxsim.topk(q, ours, k=5)
    np.testing.assert_array_equal(i, want_i)


def test_missing_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        maxsim.Index.from_fast_plaid(tmp_path, tmp_path / "ix")
