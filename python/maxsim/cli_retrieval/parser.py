"""Argument parsers of ``maxsim index build|info``, ``maxsim search`` and ``maxsim eval``.

Each command's module is imported only when that command runs, so that
``maxsim --help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from .errors import positive_int, run_guarded

RAW = argparse.RawDescriptionHelpFormatter

BUILD_EXAMPLE = """\
examples:
  maxsim index build scifact/ scifact.idx --model sentence-transformers/all-MiniLM-L6-v2
  maxsim index build notes/ notes.idx --model lightonai/GTE-ModernColBERT-v1 --store float16
  maxsim index build docs.jsonl docs.idx --kind binary --model ./my-embedder
  maxsim index build docs.jsonl docs.idx --embeddings vecs.npy --model ./my-embedder

CORPUS: a BEIR folder (corpus.jsonl), a JSONL file of {"_id", "text", "title"?}
objects, or a folder of .txt / .md files (id = path inside the folder).
Interrupted (Ctrl-C, a kill), the same command resumes after the last
committed batch. --embeddings: dense/binary: an .npy of shape (n_docs, dim);
colbert: an .npy of shape (total_tokens, dim), every document's token vectors
back to back in corpus order, and --doclens an .npy of shape (n_docs,) with
their token counts.
"""

SEARCH_EXAMPLE = """\
examples:
  maxsim search scifact.idx "does vitamin D prevent fractures?" -k 5
  maxsim search scifact.idx "statins and dementia" --rerank ./cross-encoder --candidates 20 -k 5
  cat questions.txt | maxsim search scifact.idx - --json > answers.jsonl

The model is the one the index was built with (recorded in the index); --model
is only for an index built from precomputed embeddings, or to name the same
model elsewhere (a different model is refused).
"""

EVAL_EXAMPLE = """\
examples:
  maxsim eval scifact/ --model sentence-transformers/all-MiniLM-L6-v2
  maxsim eval scifact/ --index scifact.idx --rerank ./cross-encoder --candidates 20 --top-n 5
  maxsim eval scifact/ --index colbert.idx --plot recall.png --metrics ndcg@10,recall@100

DATASET: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv). The
queries judged in the split are searched one at a time; metrics (ir-measures,
the trec_eval numbers BEIR and MTEB report) and per-stage latency p50/p95/p99
are printed and written to results.json, with TREC run files beside it.
"""

INFO_EXAMPLE = """\
example:
  maxsim index info scifact.idx
"""


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("general")
    g.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for maxsim's kernels and the encoder (default: all CPUs)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="errors only; no progress bar")
    g.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    g.add_argument("--debug", action="store_true", help="show tracebacks")


def _lazy(module: str, function: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        command = getattr(importlib.import_module(f"maxsim.cli_retrieval.{module}"), function)
        return run_guarded(command, args)

    return run


def _count(p: Any, flag: str, default: int | None, help_text: str) -> None:
    """An option taking an integer >= 1 (``default``: None means "the command decides")."""
    p.add_argument(flag, type=positive_int, default=default, help=help_text)


def _backend(p: Any, help_text: str) -> None:
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help=help_text)


def _rerank_options(p: Any) -> None:
    p.add_argument("--rerank", metavar="MODEL", help="cross-encoder to rerank the candidates")
    _count(p, "--candidates", None, "with --rerank: first-stage candidates reranked (default: 20)")


def _index_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kind",
        choices=("auto", "colbert", "dense", "binary"),
        default="auto",
        help="index kind (default: from the model: ColBERT -> colbert, bi-encoder -> dense)",
    )
    _backend(p, "encoder backend (default: onnx for a folder of ONNX graphs, else torch)")
    p.add_argument(
        "--nbits",
        type=int,
        choices=(1, 2, 4),
        default=2,
        help="colbert: residual bits per dimension (default: 2)",
    )
    p.add_argument(
        "--codec",
        choices=("pq", "scalar"),
        default="pq",
        help="colbert: residual codec, product quantization or per-dimension "
        "buckets, both nbits per dimension (default: pq)",
    )
    p.add_argument(
        "--store",
        choices=("none", "float16", "bfloat16", "int8", "float32"),
        default=None,
        help="colbert: keep full vectors for exact rescoring (default: "
        "none); binary: the rescoring vectors (default: float16)",
    )
    _count(p, "--batch-size", 64, "documents encoded and committed per batch (default: 64)")
    train_help = "colbert: documents whose tokens train the centroids (default: 8192)"
    _count(p, "--train-docs", 8192, train_help)


def _search_options(p: argparse.ArgumentParser) -> None:
    _count(p, "--nprobe", None, "colbert: centroids probed per query token (default: 8)")
    _count(p, "--n-candidates", None, "colbert: documents fully scored (default: max(256, 16 k))")


def add_commands(sub: Any) -> None:
    """Add ``index``, ``search`` and ``eval`` to the ``maxsim`` subparsers ``sub``."""
    index = sub.add_parser(
        "index",
        help="build an index of a corpus, or describe one",
        description="Build or inspect a retrieval index.",
        epilog="examples:\n  maxsim index build scifact/ scifact.idx --model "
        "sentence-transformers/all-MiniLM-L6-v2\n  maxsim index info scifact.idx\n",
        formatter_class=RAW,
    )
    index_sub = index.add_subparsers(dest="index_command", required=True, metavar="{build,info}")
    b = index_sub.add_parser(
        "build",
        help="encode a corpus into an index (resumable)",
        description="Encode a corpus into a retrieval index, streaming, "
        "one committed batch at a time.",
        epilog=BUILD_EXAMPLE,
        formatter_class=RAW,
    )
    b.add_argument("corpus", metavar="CORPUS", help="BEIR folder, JSONL file or folder of .txt/.md")
    b.add_argument("out_dir", metavar="OUT_DIR", help="the index folder to write")
    b.add_argument("--model", help="a local folder or hub id: ColBERT, bi-encoder or ONNX export")
    b.add_argument("--embeddings", metavar="FILE", help="precomputed embeddings (.npy), see below")
    b.add_argument(
        "--doclens", metavar="FILE", help="colbert --embeddings: tokens per document (.npy)"
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing index at OUT_DIR")
    _index_options(b)
    _common(b)
    b.set_defaults(run=_lazy("build", "build"))

    i = index_sub.add_parser(
        "info",
        help="documents, tokens, bytes per token, model, settings",
        description="Describe a retrieval index.",
        epilog=INFO_EXAMPLE,
        formatter_class=RAW,
    )
    i.add_argument("index_dir", metavar="INDEX_DIR")
    i.add_argument("--json", action="store_true", help="print JSON")
    _common(i)
    i.set_defaults(run=_lazy("info", "index_info"))

    s = sub.add_parser(
        "search",
        help="ask an index questions",
        description="Search an index; print a table or JSON lines.",
        epilog=SEARCH_EXAMPLE,
        formatter_class=RAW,
    )
    s.add_argument("index_dir", metavar="INDEX_DIR")
    s.add_argument(
        "queries", metavar="QUERY", nargs="+", help="query text; - reads lines from stdin"
    )
    _count(s, "-k", 10, "results per query (default: 10)")
    _rerank_options(s)
    s.add_argument("--json", action="store_true", help="one JSON object per query per line")
    s.add_argument("--model", help="query encoder (default: the one recorded in the index)")
    _backend(s, "backend for --model")
    _search_options(s)
    _common(s)
    s.set_defaults(run=_lazy("search", "search"))

    e = sub.add_parser(
        "eval",
        help="measure retrieval on a BEIR dataset (with a rerank)",
        description="Evaluate retrieval on a BEIR dataset: metrics before and "
        "after a rerank, latency per stage.",
        epilog=EVAL_EXAMPLE,
        formatter_class=RAW,
    )
    e.add_argument("dataset", metavar="DATASET", help="BEIR folder")
    e.add_argument("--index", metavar="INDEX_DIR", help="an index of the dataset's corpus")
    e.add_argument(
        "--model",
        metavar="MODEL",
        help="without --index: build a temporary index with this model; with --index: "
        "the query encoder of an index built from --embeddings",
    )
    e.add_argument("--save-index", metavar="DIR", help="with --model: keep the index built here")
    e.add_argument("--split", default="test", help="qrels/<split>.tsv (default: test)")
    e.add_argument(
        "--metrics",
        help="comma list of NAME@K: ndcg, mrr, recall, map, precision, "
        "hit (default: ndcg@10,mrr@10,recall@5,recall@100; with --rerank: "
        "ndcg@10,recall@N,mrr@N for --top-n N)",
    )
    _count(e, "--depth", 100, "first-stage results per query (default: 100, at least every cutoff)")
    _rerank_options(e)
    _count(e, "--top-n", None, "with --rerank: documents kept (default: 5)")
    e.add_argument("--output", default="results.json", help="results file (default: results.json)")
    e.add_argument("--plot", metavar="PNG", help="also draw recall vs latency and metric bars")
    e.add_argument(
        "--sweep",
        type=lambda t: [positive_int(x) for x in t.split(",") if x],
        help="--plot's values: nprobe (colbert), candidates (with --rerank) or "
        "the rescore multiplier (binary)",
    )
    e.add_argument("--json", action="store_true", help="print results.json's content")
    _search_options(e)
    _index_options(e)
    _common(e)
    e.set_defaults(run=_lazy("evaluate", "run_eval"))
