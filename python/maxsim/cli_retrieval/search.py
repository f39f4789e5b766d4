"""``maxsim search INDEX_DIR QUERY...``: ask an index questions from the shell.

Prints a table per query (rank, id, score, the first line of the text), or
with ``--json`` one JSON object per query per line::

    {"query": "...", "results": [{"rank": 1, "id": "...", "score": 0.71,
     "title": "...", "text": "..."}, ...], "latency_ms": {"encode": ..., ...}}

A query ``-`` reads queries from stdin, one per line (blank lines skipped).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Iterator

from .errors import UsageError, passive_openmp_wait
from .searcher import Hits, Searcher, SearchOptions


def queries_from(args: list[str]) -> Iterator[str]:
    for query in args:
        if query == "-":
            for line in sys.stdin:
                if line.strip():
                    yield line.strip()
        elif query.strip():
            yield query.strip()
        else:
            raise UsageError("a query is empty")


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def format_table(query: str, hits: Hits, searcher: Searcher) -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    rows = []
    for rank, (o, s) in enumerate(zip(hits.ordinals, hits.scores), 1):
        doc = searcher.index.doc(int(o))
        shown = first_line(doc.get("title") or "") or first_line(doc.get("text") or "")
        rows.append((str(rank), str(doc["_id"]), f"{float(s):.4f}", shown))
    id_w = max([len("id")] + [len(r[1]) for r in rows])
    score_w = max([len("score")] + [len(r[2]) for r in rows])
    rank_w = max(4, len(str(len(rows))))
    text_w = max(20, width - rank_w - id_w - score_w - 6)
    lines = [f"query: {query}", f"{'rank':>{rank_w}}  {'id':<{id_w}}  {'score':>{score_w}}  text"]
    for rank, doc_id, score, shown in rows:
        if len(shown) > text_w:
            shown = shown[: text_w - 1] + "…"
        lines.append(f"{rank:>{rank_w}}  {doc_id:<{id_w}}  {score:>{score_w}}  {shown}")
    if not rows:
        lines.append("(no results)")
    return "\n".join(lines)


def as_json(query: str, hits: Hits, searcher: Searcher) -> str:
    results = []
    for rank, (o, s) in enumerate(zip(hits.ordinals, hits.scores), 1):
        doc = searcher.index.doc(int(o))
        results.append(
            {
                "rank": rank,
                "id": doc["_id"],
                "score": float(s),
                "title": doc.get("title", ""),
                "text": doc.get("text", ""),
            }
        )
    latency = {k: round(v * 1000, 3) for k, v in hits.seconds.items()}
    return json.dumps(
        {"query": query, "results": results, "latency_ms": latency}, ensure_ascii=False
    )


def search(args: argparse.Namespace) -> int:
    if args.rerank is None and args.candidates is not None:
        raise UsageError("--candidates goes with --rerank")
    passive_openmp_wait()
    searcher = Searcher(
        args.index_dir,
        model=args.model,
        backend=args.backend,
        rerank=args.rerank,
        options=SearchOptions(nprobe=args.nprobe, n_candidates=args.n_candidates),
    )
    first = True
    for query in queries_from(args.queries):
        hits = searcher.search(query, args.k, args.candidates or 20)
        if args.json:
            print(as_json(query, hits, searcher), flush=True)
        else:
            if not first:
                print()
            print(format_table(query, hits, searcher), flush=True)
        first = False
    return 0
