"""``maxsim eval``'s metrics on a hand-made run and qrels with known values.

The expected values are worked out by hand below (trec_eval's definitions:
linear gain nDCG, reciprocal rank of the first document with relevance >= 1,
recall over the relevant documents), and checked against pytrec_eval called
the way BEIR's ``EvaluateRetrieval.evaluate`` calls it, and against BEIR's own
MRR@k formula (``beir.retrieval.custom_metrics.mrr``, re-typed here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from maxsim.cli_retrieval.errors import UsageError
from maxsim.cli_retrieval.metrics import evaluate, latency_ms, parse_metrics

pytrec_eval = pytest.importorskip("pytrec_eval")
pytest.importorskip("ir_measures")

# q1: ranked d2 (0), d4 (unjudged), d1 (1), d3 (2); d5 (1) is never retrieved.
# q2: ranked d7 (1), d6 (0); d8 (1) is never retrieved.
# q3: retrieves nothing relevant.
QRELS = {
    "q1": {"d1": 1, "d2": 0, "d3": 2, "d5": 1},
    "q2": {"d6": 0, "d7": 1, "d8": 1},
    "q3": {"d9": 1},
}
RUN = {
    "q1": {"d1": 0.5, "d2": 0.9, "d3": 0.1, "d4": 0.7},
    "q2": {"d6": 0.2, "d7": 0.8},
    "q3": {"d10": 0.3},
}


def _l(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


# By hand: nDCG@10 = DCG / IDCG with gain = relevance.
NDCG_Q1 = (1 * _l(3) + 2 * _l(4)) / (2 * _l(1) + 1 * _l(2) + 1 * _l(3))
NDCG_Q2 = (1 * _l(1)) / (1 * _l(1) + 1 * _l(2))
EXPECTED = {
    "ndcg@10": (NDCG_Q1 + NDCG_Q2 + 0.0) / 3,
    "mrr@10": (1 / 3 + 1 / 1 + 0.0) / 3,
    "mrr@2": (0.0 + 1.0 + 0.0) / 3,
    "recall@3": (1 / 3 + 1 / 2 + 0.0) / 3,  # q1: d1 of {d1, d3, d5}
    "recall@4": (2 / 3 + 1 / 2 + 0.0) / 3,
    "precision@2": (0.0 + 0.5 + 0.0) / 3,
    "hit@3": (1 + 1 + 0) / 3,
    "map@10": ((1 / 3 + 2 / 4) / 3 + (1 / 1) / 2 + 0.0) / 3,
}


def test_metrics_equal_hand_computed_values() -> None:
    got = evaluate(list(EXPECTED), QRELS, RUN)
    for name, value in EXPECTED.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_metrics_equal_pytrec_eval_as_beir_calls_it() -> None:
    measures = {"ndcg_cut.10", "recall.3", "recall.4", "map_cut.10", "P.2"}
    per_query = pytrec_eval.RelevanceEvaluator(QRELS, measures).evaluate(RUN)
    beir = {
        key: np.mean([per_query[q][field] for q in per_query])
        for key, field in [
            ("ndcg@10", "ndcg_cut_10"),
            ("recall@3", "recall_3"),
            ("recall@4", "recall_4"),
            ("map@10", "map_cut_10"),
            ("precision@2", "P_2"),
        ]
    }
    got = evaluate(list(beir), QRELS, RUN)
    for name, value in beir.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def _beir_mrr(qrels: dict, results: dict, k: int) -> float:
    """BEIR's custom MRR@k: the first document with qrels score > 0 in the top k by score."""
    total = 0.0
    for qid, docs in results.items():
        top = sorted(docs.items(), key=lambda item: item[1], reverse=True)[:k]
        for rank, (did, _) in enumerate(top):
            if qrels[qid].get(did, 0) > 0:
                total += 1.0 / (rank + 1)
                break
    return total / len(results)


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_mrr_equals_beir_formula(k: int) -> None:
    assert evaluate([f"mrr@{k}"], QRELS, RUN)[f"mrr@{k}"] == pytest.approx(
        _beir_mrr(QRELS, RUN, k), abs=1e-12
    )


def test_ranking_is_by_score_not_by_run_order() -> None:
    # The same scores written in another order give the same metrics.
    shuffled = {q: dict(reversed(list(docs.items()))) for q, docs in RUN.items()}
    assert evaluate(["ndcg@10", "mrr@10"], QRELS, shuffled) == evaluate(
        ["ndcg@10", "mrr@10"], QRELS, RUN
    )


def test_query_missing_from_run_counts_zero() -> None:
    run = {q: d for q, d in RUN.items() if q != "q2"}
    got = evaluate(["mrr@10"], QRELS, run)["mrr@10"]
    assert got == pytest.approx((1 / 3 + 0 + 0) / 3)


def test_parse_metrics() -> None:
    assert parse_metrics("NDCG@10, mrr@10,recall@5,ndcg@10") == ["ndcg@10", "mrr@10", "recall@5"]
    for bad in ("ndcg", "ndcg@0", "bleu@4", "recall@x", ""):
        with pytest.raises(UsageError):
            parse_metrics(bad)


def test_latency_percentiles() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    lat = latency_ms(seconds)
    assert lat["p50"] == pytest.approx(50.5)
    assert lat["p95"] == pytest.approx(95.05)
    assert lat["p99"] == pytest.approx(99.01)
    assert lat["mean"] == pytest.approx(50.5)
