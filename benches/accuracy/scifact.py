"""BEIR SciFact for the accuracy studies: the corpus, queries and qrels, and
NDCG@k as pytrec_eval / MTEB compute it.

The data folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``,
``qrels/train.tsv``) defaults to ``../shared/data/scifact`` next to the
checkout; every script takes ``--data``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"


def load_queries(root: Path) -> dict[str, str]:
    """Every query of ``queries.jsonl``: ``{query id: text}``."""
    queries = {}
    with open(root / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """A BEIR qrels TSV (with header): ``{query id: {doc id: relevance}}``."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, rel = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(rel)
    return qrels


def load_scifact(
    root: Path,
) -> tuple[list[str], list[str], list[str], list[str], dict[str, dict[str, int]]]:
    doc_ids, docs = [], []
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            doc_ids.append(str(d["_id"]))
            docs.append((d.get("title", "") + " " + d.get("text", "")).strip())
    qrels = load_qrels(root / "qrels" / "test.tsv")
    queries = load_queries(root)
    q_ids = [q for q in queries if q in qrels]
    return doc_ids, docs, q_ids, [queries[q] for q in q_ids], qrels


def ndcg_at_k(
    ranked: list[list[str]], q_ids: list[str], qrels: dict[str, dict[str, int]], k: int = 10
) -> float:
    """Mean NDCG@k (linear gains, log2 discounts), as pytrec_eval's ndcg_cut."""
    total = 0.0
    for qid, docs in zip(q_ids, ranked):
        rel = qrels[qid]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:k]))
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg if idcg > 0 else 0.0
    return total / len(q_ids)
