"""Retrieval metrics through ir-measures (trec_eval's implementations via
pytrec_eval, as BEIR and MTEB compute them), latency percentiles, TREC run files.

Names on the command line (``--metrics``), case-insensitive, each ``name@k``:

============  ===============  ===========================================
name          ir-measures      BEIR / MTEB name
============  ===============  ===========================================
ndcg@k        nDCG@k           NDCG@k (trec_eval ``ndcg_cut``, linear gain)
mrr@k         RR@k             MRR@k (first document with relevance >= 1)
recall@k      R@k              Recall@k
map@k         AP@k             MAP@k
precision@k   P@k              P@k
hit@k         Success@k        the hit rate of the bge / LlamaIndex guide
============  ===============  ===========================================

As in trec_eval, a run is ranked by score (ties by document id, descending),
not by the order it was written in; BEIR and MTEB hand the same scores to the
same code, so the numbers are theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UsageError

_MEASURES = {
    "ndcg": "nDCG",
    "mrr": "RR",
    "rr": "RR",
    "recall": "R",
    "r": "R",
    "map": "AP",
    "ap": "AP",
    "precision": "P",
    "p": "P",
    "hit": "Success",
    "success": "Success",
}
Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def parse_metrics(text: str) -> list[str]:
    """``"ndcg@10,mrr@10"`` -> ``["ndcg@10", "mrr@10"]`` (validated, lower case)."""
    names: list[str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        name, _, cutoff = part.partition("@")
        if name not in _MEASURES or not cutoff.isdigit() or int(cutoff) < 1:
            raise UsageError(
                f"--metrics: {part!r} is not NAME@K with NAME one of ndcg, mrr, recall, map, "
                "precision, hit and K >= 1"
            )
        if part not in names:
            names.append(part)
    if not names:
        raise UsageError("--metrics: no metric given")
    return names


def cutoff(name: str) -> int:
    return int(name.partition("@")[2])


def _measure(name: str) -> Any:
    import ir_measures

    base, _, k = name.partition("@")
    return ir_measures.parse_measure(f"{_MEASURES[base]}@{k}")


def evaluate(names: Sequence[str], qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels``; a query without results scores 0.

    Queries of ``run`` that ``qrels`` lacks are ignored (as BEIR does); ``qrels``'
    queries absent from ``run`` count as 0, as trec_eval's ``-c``.
    """
    import ir_measures

    full_run = {q: run[q] for q in qrels if run.get(q)}
    measures = {name: _measure(name) for name in names}
    per_query: dict[str, list[float]] = {name: [] for name in names}
    found = {
        (m.query_id, str(m.measure)): m.value
        for m in ir_measures.iter_calc(list(measures.values()), qrels, full_run)
    }
    for q in qrels:
        for name, measure in measures.items():
            per_query[name].append(float(found.get((q, str(measure)), 0.0)))
    return {name: float(np.mean(values)) if values else 0.0 for name, values in per_query.items()}


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / mean of per-query times, in milliseconds (linear interpolation)."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean())}


def write_trec_run(path: Path, run: Run, tag: str) -> None:
    """The run in TREC format (``qid Q0 docid rank score tag``), best first per query."""
    with open(path, "w", encoding="utf-8") as f:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda kv: -kv[1])
            for rank, (did, score) in enumerate(ranked, 1):
                f.write(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n")
