"""``maxsim eval DATASET``: measure retrieval on a BEIR dataset, before and after
a cross-encoder rerank, with per-stage latency.

Each query runs alone, as a user's would: encode, first-stage search
(``--depth`` documents, at least the largest metric cutoff), and with
``--rerank`` the cross-encoder scores the first ``--candidates`` of them and
keeps the best ``--top-n`` (the bge-reranker guide's top 20 -> top 5). The
metrics of the first stage are computed on its whole ranking; those after
the rerank on the ``--top-n`` documents kept. Writes ``results.json``, the
two runs as TREC run files beside it, and with ``--plot`` a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .corpus import read_qrels, read_queries
from .errors import CliError, UsageError, log, passive_openmp_wait
from .metrics import cutoff, evaluate, latency_ms, parse_metrics, write_trec_run
from .searcher import Searcher, SearchOptions

DEFAULT_METRICS = "ndcg@10,mrr@10,recall@5,recall@100"


def load_dataset(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The queries judged in ``qrels/<split>.tsv`` and their judgements."""
    if not folder.is_dir():
        raise CliError(f"{folder}: not a folder (expected a BEIR dataset folder)")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise CliError(f"{qrels_path}: missing (splits here: {', '.join(splits) or 'none'})")
    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise CliError(f"{queries_path}: missing")
    qrels, first_line = read_qrels(qrels_path)
    queries = read_queries(queries_path)
    for qid in qrels:
        if qid not in queries:
            raise CliError(
                f"{qrels_path}:{first_line[qid]}: field 'query-id': {qid!r} is not "
                f"in {queries_path}"
            )
    return {q: queries[q] for q in qrels}, qrels


def _build_temporary(args: argparse.Namespace, folder: Path, out: Path) -> None:
    from .build import build

    ns = argparse.Namespace(
        corpus=str(folder),
        out_dir=str(out),
        model=args.model,
        kind=args.kind,
        backend=args.backend,
        nbits=args.nbits,
        codec=args.codec,
        store=args.store,
        batch_size=args.batch_size,
        train_docs=args.train_docs,
        embeddings=None,
        doclens=None,
        overwrite=False,
        quiet=args.quiet,
    )
    code = build(ns)
    if code:
        raise CliError(f"building the index in {out} failed")


def _check_args(args: argparse.Namespace) -> None:
    if args.index is None and args.model is None:
        raise UsageError("pass --index INDEX_DIR or --model MODEL")
    if args.index is not None and args.save_index is not None:
        raise UsageError("--save-index goes with --model (without --index)")
    if args.rerank is None and (args.top_n is not None or args.candidates is not None):
        raise UsageError("--candidates and --top-n go with --rerank")
    if args.rerank is not None:
        args.candidates = args.candidates or 20
        args.top_n = args.top_n or 5
        if args.top_n > args.candidates:
            raise UsageError(f"--top-n {args.top_n} is more than --candidates {args.candidates}")


class Evaluation:
    """One pass over the queries with fixed settings; keeps the runs and stage times."""

    def __init__(self, searcher: Searcher, queries: dict[str, str], depth: int) -> None:
        self.searcher = searcher
        self.queries = queries
        self.depth = depth
        self.vectors: dict[str, Any] = {}
        self.encode_s: list[float] = []

    def encode_all(self) -> None:
        for qid, text in self.queries.items():
            t0 = time.perf_counter()
            self.vectors[qid] = self.searcher.encode([text])[0]
            self.encode_s.append(time.perf_counter() - t0)

    def first_stage(self, depth: Optional[int] = None) -> tuple[dict, dict, list[float]]:
        run: dict[str, dict[str, float]] = {}
        ordinals: dict[str, np.ndarray] = {}
        seconds: list[float] = []
        for qid in self.queries:
            t0 = time.perf_counter()
            idx, scores = self.searcher.first_stage(self.vectors[qid], depth or self.depth)
            seconds.append(time.perf_counter() - t0)
            ordinals[qid] = idx
            run[qid] = self._named(idx, scores)
        return run, ordinals, seconds

    def rerank(self, ordinals: dict, candidates: int, top_n: int) -> tuple[dict, list[float]]:
        run: dict[str, dict[str, float]] = {}
        seconds: list[float] = []
        for qid, text in self.queries.items():
            idx = ordinals[qid][:candidates]
            t0 = time.perf_counter()
            new = self.searcher.rerank_scores(text, idx)
            order = np.lexsort((np.arange(len(new)), -new))[:top_n]
            seconds.append(time.perf_counter() - t0)
            run[qid] = self._named(idx[order], new[order])
        return run, seconds

    def _named(self, idx: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        doc = self.searcher.index.doc
        return {doc(int(o))["_id"]: float(s) for o, s in zip(idx, scores)}


def _sweep(args: argparse.Namespace, ev: Evaluation, qrels: dict, metric: str) -> list[dict]:
    """Recall against p50 latency over --sweep values (nprobe, or candidates when reranking,
    or the rescore multiplier of a binary index)."""
    kind = ev.searcher.index.kind
    points = []
    if args.rerank:
        values = args.sweep or [c for c in (args.top_n, 10, 20, 50) if c >= args.top_n]
        _, ordinals, _ = ev.first_stage(max(values + [ev.depth]))
        for c in sorted(set(values)):
            run, secs = ev.rerank(ordinals, c, args.top_n)
            points.append(
                {
                    "candidates": c,
                    metric: evaluate([metric], qrels, run)[metric],
                    "p50_ms": latency_ms(secs)["p50"],
                }
            )
        return points
    name, values = {
        "colbert": ("nprobe", [1, 2, 4, 8, 16, 32]),
        "binary": ("rescore_multiplier", [1, 2, 4, 8, 16]),
        "dense": ("exhaustive", [0]),
    }[kind]
    values = args.sweep or values
    saved = dict(vars(ev.searcher.options))
    for v in values:
        if kind == "colbert":
            ev.searcher.options.nprobe = v
        elif kind == "binary":
            ev.searcher.options.rescore_multiplier = v
        run, _, secs = ev.first_stage()
        points.append(
            {
                name: v,
                metric: evaluate([metric], qrels, run)[metric],
                "p50_ms": latency_ms(secs)["p50"],
            }
        )
    vars(ev.searcher.options).update(saved)
    return points


def format_report(result: dict) -> str:
    lines = []
    names = list(result["metrics"]["first_stage"])
    rerank = result["metrics"].get("reranked")
    head = f"{'metric':<14}{'first stage':>12}" + (f"{'reranked':>12}" if rerank else "")
    lines += [f"{result['dataset']} ({result['split']}, {result['n_queries']} queries)", head]
    for name in names:
        row = f"{name:<14}{result['metrics']['first_stage'][name]:>12.4f}"
        if rerank:
            row += f"{rerank[name]:>12.4f}"
        lines.append(row)
    lines += ["", f"{'latency (ms)':<14}{'p50':>9}{'p95':>9}{'p99':>9}{'mean':>9}"]
    for stage, lat in result["latency_ms"].items():
        lines.append(
            f"{stage:<14}" + "".join(f"{lat[p]:>9.2f}" for p in ("p50", "p95", "p99", "mean"))
        )
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    _check_args(args)
    passive_openmp_wait()
    folder = Path(args.dataset)
    default = (
        DEFAULT_METRICS if not args.rerank else f"ndcg@10,recall@{args.top_n},mrr@{args.top_n}"
    )
    names = parse_metrics(args.metrics or default)
    queries, qrels = load_dataset(folder, args.split)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="maxsim-eval-") as tmp:
        index_dir = Path(args.index) if args.index else Path(args.save_index or Path(tmp) / "index")
        if not args.index:
            _build_temporary(args, folder, index_dir)
        searcher = Searcher(
            index_dir,
            model=args.model if args.index else None,
            backend=args.backend,
            rerank=args.rerank,
            options=SearchOptions(nprobe=args.nprobe, n_candidates=args.n_candidates),
        )
        built_from = (searcher.index.settings.get("corpus") or {}).get("path")
        here = folder / "corpus.jsonl"
        if built_from and here.exists() and Path(built_from) != here.resolve():
            log.warning(
                f"warning: {index_dir} was built from {built_from}, not {here}; "
                "document ids that differ count as not relevant"
            )
        depth = max([args.depth] + [cutoff(n) for n in names] + [args.candidates or 0])
        ev = Evaluation(searcher, queries, depth)
        ev.encode_all()
        first_run, ordinals, first_s = ev.first_stage()
        latency = {"encode": latency_ms(ev.encode_s), "search": latency_ms(first_s)}
        totals = np.add(ev.encode_s, first_s)
        metrics = {"first_stage": evaluate(names, qrels, first_run)}
        reranked_run = None
        if args.rerank:
            reranked_run, rerank_s = ev.rerank(ordinals, args.candidates, args.top_n)
            latency["rerank"] = latency_ms(rerank_s)
            totals = totals + np.asarray(rerank_s)
            metrics["reranked"] = evaluate(names, qrels, reranked_run)
            over = [n for n in names if cutoff(n) > args.top_n]
            if over:
                log.info(
                    f"note: {', '.join(over)} after the rerank see only the {args.top_n} "
                    "documents kept (--top-n)"
                )
        latency["total"] = latency_ms(list(totals))
        result = {
            "dataset": str(folder.resolve()),
            "split": args.split,
            "n_queries": len(queries),
            "index": {k: searcher.index.settings[k] for k in ("kind", "dim", "model", "build")},
            "n_docs": searcher.index.n_docs,
            "depth": depth,
            "rerank": {"model": args.rerank, "candidates": args.candidates, "top_n": args.top_n}
            if args.rerank
            else None,
            "metrics": metrics,
            "latency_ms": latency,
            "wall_s": time.perf_counter() - t_start,
            "threads": args.threads,
            "cpu": _cpu(),
        }
        if args.plot:
            metric = next((n for n in names if n.startswith("recall")), names[0])
            result["sweep"] = _sweep(args, ev, qrels, metric)
            from .plot import plot_results

            plot_results(Path(args.plot), result, metric)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    write_trec_run(out.with_name(out.stem + ".first-stage.trec"), first_run, "first-stage")
    if reranked_run is not None:
        write_trec_run(out.with_name(out.stem + ".reranked.trec"), reranked_run, "reranked")
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(result))
    log.info(f"wrote {out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or os.name or sys.platform
