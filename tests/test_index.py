"""maxsim.Index against exhaustive maxsim.topk, and its files' guarantees.

References: exhaustive ``maxsim.topk`` / ``maxsim.scores`` over the same
vectors the index stores (float32, or rounded to float16), and float64
numpy MaxSim for the scores of the residual path's recall.
"""

from __future__ import annotations

import json
import os

import maxsim
import numpy as np
import pytest
from maxsim import Index


def clustered(
    rng: np.random.Generator,
    n_docs: int,
    dim: int,
    topics: int = 12,
    noise: float = 0.5,
    lengths: tuple[int, int] = (2, 30),
) -> list[np.ndarray]:
    """Unit token vectors near a few topic directions (as ColBERT embeddings
    cluster): ``n_docs`` documents of ``lengths[0]`` to ``lengths[1] - 1``
    tokens, each a topic plus Gaussian noise of standard deviation ``noise``
    per dimension, normalised."""
    centers = rng.standard_normal((topics, dim)).astype(np.float32)
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(*lengths))
        t = rng.integers(0, topics, n)
        x = centers[t] + noise * rng.standard_normal((n, dim)).astype(np.float32)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return docs


@pytest.fixture(scope="module")
def corpus() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return clustered(rng, 300, 32), clustered(rng, 8, 32)


def build(path, docs, ids=None, **kw) -> Index:
    index = Index.create(path, docs[0].shape[1], **kw)
    ids = list(range(len(docs))) if ids is None else ids
    half = len(docs) // 2
    index.add(ids[:half], docs[:half])
    index.add(ids[half:], docs[half:])
    return index


@pytest.mark.parametrize(
    "store,codec", [("float32", "pq"), ("float16", "pq"), ("float16", "scalar")]
)
def test_full_probe_exact_rerank_is_exhaustive_topk(tmp_path, corpus, store, codec) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store=store, n_centroids=64, codec=codec)
    assert index.stats()["codec"] == codec
    stored = [d.astype(store) for d in docs]
    for q in queries:
        want_s, want_i = maxsim.topk(q, stored, k=10)
        s, i, certified = index.search(
            q, 10, nprobe=64, n_candidates=300, rerank="exact", return_certified=True
        )
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(s, want_s)
        assert certified
    # A batch gives each query's single result.
    s, i = index.search(queries, 10, nprobe=64, n_candidates=300, rerank="exact")
    assert s.shape == i.shape == (len(queries), 10)
    for r, q in enumerate(queries):
        np.testing.assert_array_equal(i[r], maxsim.topk(q, stored, k=10)[1])


def test_exact_is_certified_and_never_wrong(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store="float32")
    for q in queries:
        want_s, want_i = maxsim.topk(q, docs, k=5)
        s, i, c = index.search(q, 5, nprobe=1, n_candidates=8, exact=True, return_certified=True)
        assert c
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(s, want_s)
        for nprobe in (1, 2, 4, 16):
            for n_candidates in (5, 20, 60):
                s, i, c = index.search(
                    q,
                    5,
                    nprobe=nprobe,
                    n_candidates=n_candidates,
                    rerank="exact",
                    return_certified=True,
                )
                if c:  # a certificate is a proof: never wrong
                    np.testing.assert_array_equal(i, want_i)
        # Residual-decoded scores are approximations: they prove nothing, even
        # when every centroid is probed and every candidate kept.
        s, i, c = index.search(
            q, 5, nprobe=64, n_candidates=300, rerank=None, return_certified=True
        )
        assert not c


def test_exact_certificate_bounds_documents_outside_the_probed_lists(tmp_path) -> None:
    """Tight clusters (token noise 0.05) let ``exact=True`` certify before
    every centroid is probed, so documents in no probed list remain and only
    the bound on them keeps the result exact; queries come from other topics
    than the documents, so the best documents are often among those. A bound
    that skips a third of the unprobed centroids, or drops their residual
    norms, returns a wrong top-3 here (checked by mutating ``certify.rs``)."""
    dim, k = 8, 3
    for seed in range(40):
        rng = np.random.default_rng(seed)
        docs = clustered(rng, 150, dim, topics=24, noise=0.05, lengths=(1, 12))
        queries = clustered(rng, 6, dim, topics=24, noise=0.05, lengths=(1, 12))
        index = Index.create(
            tmp_path / f"ix{seed}", dim, store="float32", n_centroids=32, seed=seed
        )
        index.add(list(range(len(docs))), docs)
        for q in queries:
            want_s, want_i = maxsim.topk(q, docs, k=k)
            for nprobe in (1, 2, 4, 8, 16):
                s, i, c = index.search(
                    q, k, nprobe=nprobe, n_candidates=6, exact=True, return_certified=True
                )
                assert c
                np.testing.assert_array_equal(i, want_i, err_msg=f"seed {seed}, nprobe {nprobe}")
                np.testing.assert_array_equal(s, want_s)


def test_recall_against_exhaustive(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store="float16")
    stored = [d.astype(np.float16) for d in docs]
    hits = reranked = 0
    for q in queries:
        want = set(maxsim.topk(q, stored, k=10)[1].tolist())
        hits += len(want & set(index.search(q, 10, rerank=None)[1].tolist()))
        reranked += len(want & set(index.search(q, 10, rerank="exact")[1].tolist()))
    assert reranked / (10 * len(queries)) >= 0.95
    assert hits / (10 * len(queries)) >= 0.5


def test_default_scores_exactly_when_there_is_a_store(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store="float16")
    stored = [d.astype(np.float16) for d in docs]
    found = 0
    for q in queries:
        s, i = index.search(q, 10)
        # "auto" with a store is the exact rerank of max(1024, 64 k) candidates.
        want_s, want_i = index.search(q, 10, rerank="exact", n_candidates=1024)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(s, want_s)
        # Exact scores: each result's score is maxsim's on its stored vectors.
        np.testing.assert_array_equal(s, maxsim.scores(q, [stored[j] for j in i]))
        found += len(set(i.tolist()) & set(maxsim.topk(q, stored, k=10)[1].tolist()))
    assert found / (10 * len(queries)) >= 0.95  # the target at the defaults
    # Explicit arguments keep their meaning: None scores decoded residuals.
    s, i = index.search(queries[0], 10, rerank=None)
    want_s, want_i = index.search(queries[0], 10, rerank="auto", n_candidates=256)
    assert not np.array_equal(s, want_s)  # approximate scores, not the exact ones
    assert not np.array_equal(s, maxsim.scores(queries[0], [stored[j] for j in i]))
    with pytest.raises(ValueError, match="rerank: expected 'auto', 'exact' or None"):
        index.search(queries[0], 10, rerank="residual")


def test_default_without_a_store_scores_residuals(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs)
    for q in queries[:3]:
        s, i = index.search(q, 10)
        want_s, want_i = index.search(q, 10, rerank=None, n_candidates=256)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(s, want_s)
    with pytest.raises(ValueError, match="rerank: 'exact' needs stored full vectors"):
        index.search(queries[0], 10, rerank="exact")


@pytest.mark.parametrize("codec", ["pq", "scalar"])
def test_residual_scores_track_exact_scores(tmp_path, corpus, codec) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, nbits=4, codec=codec)
    for q in queries:
        s, i = index.search(q, 5, n_candidates=300)
        exact = np.array([(q.astype(np.float64) @ docs[j].T).max(1).sum() for j in i])
        # 4-bit residuals: scores within a few percent of the true MaxSim.
        np.testing.assert_allclose(s, exact, rtol=0.1)


def test_add_delete_compact_reopen(tmp_path, corpus) -> None:
    docs, queries = corpus
    ids = [f"doc-{i}" for i in range(len(docs))]
    index = build(tmp_path / "ix", docs, ids=ids, store="float32", n_centroids=32)
    assert len(index) == 300 and list(index.ids()) == ids
    assert index.delete(["doc-3", "doc-7"]) == 2
    with pytest.raises(KeyError, match="nope"):
        index.delete(["doc-1", "nope"])
    assert len(index) == 298
    with pytest.raises(ValueError, match="already in the index"):
        index.add(["doc-5"], [docs[0]])
    index.add(["doc-5"], [docs[0]], replace=True)  # replaced in one commit
    kept = {name: d for name, d in zip(ids, docs) if name not in ("doc-3", "doc-7", "doc-5")}
    kept["doc-5"] = docs[0]
    names = list(kept)
    q = queries[0]
    want_s, want_i = maxsim.topk(q, list(kept.values()), k=10)
    s, i = index.search(q, 10, exact=True)
    assert list(i) == [names[j] for j in want_i]
    np.testing.assert_array_equal(s, want_s)
    st = index.stats()
    assert (st["n_segments"], st["n_tombstones"], st["n_docs"]) == (3, 3, 298)
    index.compact()
    st = index.stats()
    assert (st["n_segments"], st["n_tombstones"], st["n_docs"]) == (1, 0, 298)
    assert list(index.search(q, 10, exact=True)[1]) == list(i)
    del index
    reopened = Index.open(tmp_path / "ix")
    assert list(reopened.ids()) == names
    assert list(reopened.search(q, 10, exact=True)[1]) == list(i)
    in_memory = Index.open(tmp_path / "ix", mmap=False)
    assert list(in_memory.search(q, 10, exact=True)[1]) == list(i)


def test_subset_is_applied_before_scoring(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store="float32")
    subset = list(range(0, 300, 3))
    sub_docs = [docs[j] for j in subset]
    for q in queries[:3]:
        want_s, want_i = maxsim.topk(q, sub_docs, k=5)
        s, i = index.search(q, 5, subset=subset + [10_000], rerank="exact")
        np.testing.assert_array_equal(i, np.array(subset)[want_i])
        np.testing.assert_array_equal(s, want_s)
        # A large subset goes through the pipeline, filtered at the candidates.
        s, i = index.search(q, 5, subset=subset, n_candidates=10)
        assert set(i.tolist()) <= set(subset)
    s, i = index.search(queries[:2], 3, subset=[[4], [5, 6]], rerank="exact")
    assert i[0].tolist() == [4, -1, -1] and s[0][1] == -np.inf
    assert sorted(i[1][:2].tolist()) == [5, 6]
    with pytest.raises(ValueError, match="subset: 1 lists for 2 queries"):
        index.search(queries[:2], 3, subset=[[4]])


def test_results_do_not_depend_on_threads(tmp_path, corpus) -> None:
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, store="float16")
    before = maxsim.get_num_threads()
    try:
        for rerank in ("auto", None):  # exact (the default with a store), residuals
            out = []
            for n in (1, 2, 3):
                maxsim.set_num_threads(n)
                out.append(index.search(queries, 10, rerank=rerank))
            for s, i in out[1:]:
                np.testing.assert_array_equal(s, out[0][0])
                np.testing.assert_array_equal(i, out[0][1])
        # And the index built on one thread is byte-identical to one built on three.
        files = []
        for n in (1, 3):
            maxsim.set_num_threads(n)
            build(tmp_path / f"t{n}", docs, store="float16")
            files.append(
                {f: (tmp_path / f"t{n}" / f).read_bytes() for f in os.listdir(tmp_path / f"t{n}")}
            )
        assert files[0].keys() == files[1].keys()
        for name in files[0]:
            if name != "writer.lock":
                assert files[0][name] == files[1][name], name
    finally:
        maxsim.set_num_threads(before)


def test_reader_keeps_its_snapshot(tmp_path, corpus) -> None:
    docs, queries = corpus
    writer = build(tmp_path / "ix", docs[:100], store="float32")
    reader = Index.open(tmp_path / "ix")
    before = reader.search(queries[0], 10, exact=True)
    writer.add(list(range(100, 300)), docs[100:])
    writer.delete(list(range(0, 50)))
    writer.compact()  # removes the files the reader mapped
    after = reader.search(queries[0], 10, exact=True)
    np.testing.assert_array_equal(before[1], after[1])
    assert len(reader) == 100
    assert reader.reload()
    assert len(reader) == 250
    want = maxsim.topk(queries[0], docs[50:], k=10)[1] + 50
    np.testing.assert_array_equal(reader.search(queries[0], 10, exact=True)[1], want)
    with pytest.raises(RuntimeError, match="writing to this index"):
        reader.add([999], [docs[0]])


def test_argument_errors(tmp_path, corpus) -> None:
    docs, queries = corpus
    with pytest.raises(ValueError, match="nbits: must be 1, 2 or 4, got 3"):
        Index.create(tmp_path / "a", 32, nbits=3)
    with pytest.raises(ValueError, match="store: expected"):
        Index.create(tmp_path / "a", 32, store="float8")
    with pytest.raises(TypeError, match="dim: expected an integer"):
        Index.create(tmp_path / "a", 32.0)
    index = Index.create(tmp_path / "ix", 32)
    s, i = index.search(queries[0], 3)  # empty index: no results
    assert i.tolist() == [-1, -1, -1]
    with pytest.raises(
        ValueError, match=r"docs\[1\]: dimension 16 \(shape \(3, 16\) dtype float32\)"
    ):
        index.add([1, 2], [docs[0], np.zeros((3, 16), np.float32)])
    with pytest.raises(ValueError, match=r"docs\[0\]: has zero tokens \(shape \(0, 32\)"):
        index.add([1], [np.zeros((0, 32), np.float32)])
    with pytest.raises(
        TypeError, match=r"docs\[0\]: expected floating-point values.*shape \(3, 32\) dtype int64"
    ):
        index.add([1], [np.zeros((3, 32), np.int64)])
    with pytest.raises(ValueError, match=r"docs\[0\]: contains NaN"):
        index.add([1], [np.full((3, 32), np.nan, np.float32)])
    with pytest.raises(ValueError, match="ids: 1 ids for 2 documents"):
        index.add([1], docs[:2])
    with pytest.raises(TypeError, match="mixes int and str"):
        index.add([1, "a"], docs[:2])
    with pytest.raises(ValueError, match="appears twice"):
        index.add([1, 1], docs[:2])
    index.add([1, 2], docs[:2])
    with pytest.raises(ValueError, match="holds int64 ids, got str"):
        index.add(["x"], docs[:1])
    with pytest.raises(ValueError, match=r"queries: dimension 8 \(shape \(4, 8\)"):
        index.search(np.ones((4, 8), np.float32), 3)
    with pytest.raises(ValueError, match="k: must be at least 1, got 0"):
        index.search(queries[0], 0)
    with pytest.raises(ValueError, match="rerank: expected 'auto', 'exact' or None"):
        index.search(queries[0], 1, rerank="yes")
    with pytest.raises(ValueError, match="needs stored full vectors"):
        index.search(queries[0], 1, rerank="exact")
    with pytest.raises(ValueError, match="already holds an index"):
        Index.create(tmp_path / "ix", 32)
    with pytest.raises(FileNotFoundError, match="no index here"):
        Index.open(tmp_path / "missing")


def test_table_scoring_matches_decoded_scoring(tmp_path, corpus) -> None:
    """The product codec scores residuals from lookup tables; forcing the
    decode path (decoded tokens, then the core kernel) in a fresh process must
    give the same ranking and the same scores up to float rounding."""
    import subprocess
    import sys

    docs, queries = corpus
    build(tmp_path / "ix", docs, n_centroids=32)
    np.savez(tmp_path / "q.npz", *queries)
    script = (
        "import sys, numpy as np, maxsim\n"
        "ix = maxsim.Index.open(sys.argv[1])\n"
        "qs = list(np.load(sys.argv[2]).values())\n"
        "s, i = ix.search(qs, 10, rerank=None, n_candidates=300)\n"
        "np.save(sys.argv[3], np.stack([s, i.astype(np.float32)]))\n"
    )
    out = {}
    for mode in ("tables", "decode"):
        env = dict(os.environ, MAXSIM_INDEX_SCORING=mode)
        path = tmp_path / f"{mode}.npy"
        subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(tmp_path / "ix"),
                str(tmp_path / "q.npz"),
                str(path),
            ],
            env=env,
            check=True,
        )
        out[mode] = np.load(path)
    np.testing.assert_array_equal(out["tables"][1], out["decode"][1])
    np.testing.assert_allclose(out["tables"][0], out["decode"][0], rtol=1e-5, atol=1e-5)
    # The two sum in different orders: some scores differ in their last bits,
    # which shows that the variable did switch the path.
    assert not np.array_equal(out["tables"][0], out["decode"][0])
    # And both track float64 MaxSim on the original vectors (2-bit residuals).
    for r, q in enumerate(queries):
        ids = out["tables"][1][r].astype(int)
        exact = [(q.astype(np.float64) @ docs[j].T).max(1).sum() for j in ids]
        np.testing.assert_allclose(out["tables"][0][r], exact, rtol=0.15)


def test_small_subset_scores_as_the_full_search_does(tmp_path, corpus) -> None:
    """A subset no larger than ``n_candidates`` is scored whole, without the
    candidate stages: its residual scores must be the full search's, bitwise."""
    docs, queries = corpus
    index = build(tmp_path / "ix", docs, n_centroids=32)
    for q in queries[:4]:
        s, i = index.search(q, 10, rerank=None, n_candidates=300, nprobe=32)
        sub_s, sub_i = index.search(q, 10, rerank=None, subset=i[::-1].tolist())
        np.testing.assert_array_equal(sub_i, i)
        np.testing.assert_array_equal(sub_s, s)


def _rewrite_manifest(path, edit) -> None:
    """Applies ``edit`` to the manifest's JSON and writes it back with a valid checksum."""
    import zlib

    manifest = path / "manifest.json"
    body = json.loads(manifest.read_text().splitlines()[0])
    edit(body)
    line = json.dumps(body, separators=(",", ":"))
    manifest.write_text(f"{line}\ncrc32 {zlib.crc32(line.encode()):08x}\n")


def test_codec_choice_persists_and_older_indexes_read_as_scalar(tmp_path, corpus) -> None:
    docs, queries = corpus
    with pytest.raises(ValueError, match="codec: expected 'pq' or 'scalar', got 'opq'"):
        Index.create(tmp_path / "bad", 32, codec="opq")
    for codec in ("pq", "scalar"):
        build(tmp_path / codec, docs, codec=codec, n_centroids=32)
        index = Index.open(tmp_path / codec)
        assert index.stats()["codec"] == codec and f"codec={codec!r}" in repr(index)
    # The same segment bytes: both codecs spend nbits per dimension per token
    # (the training files differ: 256 codewords per sub-vector against buckets).
    sizes = {c: [p.stat().st_size for p in _segment_files(tmp_path / c)] for c in ("pq", "scalar")}
    assert sizes["pq"] == sizes["scalar"] and len(sizes["pq"]) == 2
    before = Index.open(tmp_path / "scalar").search(queries, 10, rerank=None)

    # A format version 2 manifest (before codecs had a name) is the scalar codec.
    def as_version_2(body: dict) -> None:
        body["version"] = 2
        del body["codec"]

    _rewrite_manifest(tmp_path / "scalar", as_version_2)
    old = Index.open(tmp_path / "scalar")
    assert old.stats()["codec"] == "scalar"
    after = old.search(queries, 10, rerank=None)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])

    # A manifest naming the other codec than its training file holds: the
    # missing section is named, never a wrong decode.
    def claim_pq(body: dict) -> None:
        body["codec"] = "pq"

    _rewrite_manifest(tmp_path / "scalar", claim_pq)
    with pytest.raises(ValueError, match=r"train-\d+\.bin: codebooks: section missing"):
        Index.open(tmp_path / "scalar")


def _segment_files(path) -> list:
    return sorted(p for p in path.iterdir() if p.suffix == ".idx")


def test_corrupt_truncated_missing_and_version(tmp_path, corpus) -> None:
    docs, _ = corpus
    build(tmp_path / "ix", docs, store="float16")
    seg = _segment_files(tmp_path / "ix")[0]
    raw = seg.read_bytes()
    # A flipped byte in a section: the checksum names file and section.
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x10
    seg.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=rf"{seg.name}: \w+: checksum mismatch"):
        Index.open(tmp_path / "ix")
    # Truncated: the size check names it, even without verify.
    seg.write_bytes(raw[:-100])
    with pytest.raises(ValueError, match=rf"{seg.name}: size: .*truncated"):
        Index.open(tmp_path / "ix", verify=False)
    seg.write_bytes(raw)
    Index.open(tmp_path / "ix")
    # A missing file names it.
    os.rename(seg, str(seg) + ".moved")
    with pytest.raises(FileNotFoundError, match=seg.name):
        Index.open(tmp_path / "ix")
    os.rename(str(seg) + ".moved", seg)
    manifest = tmp_path / "ix" / "manifest.json"
    text = manifest.read_text()
    # A corrupt manifest (checksum), then a newer version (with a valid checksum).
    manifest.write_text(text.replace('"generation"', '"generatiom"'))
    with pytest.raises(ValueError, match="manifest.json: crc32: checksum mismatch"):
        Index.open(tmp_path / "ix")
    body = json.loads(text.splitlines()[0])
    body["version"] = 99
    line = json.dumps(body, separators=(",", ":"))
    import zlib

    manifest.write_text(f"{line}\ncrc32 {zlib.crc32(line.encode()):08x}\n")
    with pytest.raises(ValueError, match="version: format version 99 is not supported"):
        Index.open(tmp_path / "ix")
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="manifest.json: crc32"):
        Index.open(tmp_path / "ix")
