"""maxsim.Index against exhaustive MaxSim and fast-plaid (PyLate's PLAID).

Two corpora:

* ``scifact``: token embeddings of the MiniLM ColBERT proxy of
  ``benches/accuracy/reduced_accuracy.py`` (all-MiniLM-L6-v2 last hidden states,
  L2-normalised, 384-d; documents truncated to 256 word pieces, queries to
  64; ``--max-docs`` keeps the first documents only);
* ``synthetic``: clustered unit vectors (``--dim``, 50–200 tokens per
  document), generated in seeded batches so that neither the index build nor
  the exhaustive reference holds the corpus (``--tokens``, 10M for the
  issue's target).

Reported: recall@10 against exhaustive ``maxsim`` MaxSim (also as epsilon
recall: a result within 1 % of the 10th exhaustive score counts, and how
crowded the exhaustive top ten is), NDCG@10 (SciFact),
queries per second over a batch of all queries on 1 and 2 threads for a grid
of ``nprobe`` / ``n_candidates`` (fast-plaid: ``n_ivf_probe`` /
``n_full_scores``), the exhaustive scan's QPS (the corpus in memory, rounds
alternating with the index's default search), build time, bytes per token,
resident memory after open and one search (in a fresh process), and how often
the certificate holds. Commands::

    HF_HUB_OFFLINE=1 python benches/index_bench.py scifact --cache /tmp/scifact-cache
    python benches/index_bench.py synthetic --tokens 10000000 --dim 128

Timings are medians of ``--rounds`` rounds, maxsim and fast-plaid alternating.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent / "accuracy"))

import maxsim  # noqa: E402

K = 10


# -- corpora -------------------------------------------------------------------


def scifact(args) -> tuple[callable, list[np.ndarray], dict]:
    import reduced_accuracy as R

    doc_ids, docs, q_ids, queries, qrels = R.load_scifact(args.data)
    flat, lengths = R.cached(args.cache, "docs256", docs, 256)
    q_flat, q_lengths = R.cached(args.cache, "queries64", queries, 64)
    n = min(args.max_docs or len(lengths), len(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    doc_list = [flat[offsets[i] : offsets[i + 1]] for i in range(n)]
    q_off = np.concatenate([[0], np.cumsum(q_lengths)])
    n_q = min(args.max_queries or len(q_lengths), len(q_lengths))
    qs = [q_flat[q_off[i] : q_off[i + 1]] for i in range(n_q)]
    meta = {"doc_ids": doc_ids[:n], "q_ids": q_ids[:n_q], "qrels": qrels, "ndcg": R.ndcg_at_k}

    def batches(size: int):
        for start in range(0, n, size):
            yield list(range(start, min(n, start + size))), doc_list[start : start + size]

    return batches, qs, meta


def synthetic(args) -> tuple[callable, list[np.ndarray], dict]:
    """Documents of 50-200 tokens, each token a topic direction (one of 4,096
    unit vectors, 8 topics per document) plus Gaussian noise of norm about
    ``args.noise``, normalised. Queries: 32 such tokens over 4 topics, or,
    with ``args.query_noise``, 32 tokens of one random document plus noise
    of that norm (a query with a relevant document).

    The noise is isotropic unless ``args.spectrum`` is set: then its
    covariance has the eigenvalues ``i^-alpha`` (``alpha`` chosen so that
    their participation ratio ``(Σλ)² / (dim Σλ²)`` is ``args.spectrum``) in
    the axes of a seeded random rotation, the same for every token, as real
    token embeddings' residuals concentrate in a few shared directions
    (SciFact's: 0.46, ``benches/accuracy/index_residual_energy.py``)."""
    dim, topics = args.dim, 4096
    centers = np.random.default_rng(0).standard_normal((topics, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    per_batch = 1000
    # Written so that --noise 1.4 regenerates the corpus of rounds one to six
    # bit for bit (it was ``0.35 * noise / sqrt(dim) * 4``).
    quarter = args.noise / 4
    spectrum = getattr(args, "spectrum", None)
    shape = None if spectrum is None else noise_axes(dim, spectrum)
    query_noise = getattr(args, "query_noise", None)

    def noise(rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` rows of unit-variance Gaussian noise, shaped by the spectrum."""
        z = rng.standard_normal((n, dim)).astype(np.float32)
        return z if shape is None else z @ shape

    def tokens(rng: np.random.Generator, own: np.ndarray, n: int) -> np.ndarray:
        # Topics first, then noise: the order the corpus of rounds one to six drew them.
        topic = centers[own[rng.integers(0, len(own), n)]]
        return unit_rows(topic + quarter * noise(rng, n) / np.sqrt(dim) * 4)

    def perturb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        """``x`` plus noise of norm about ``query_noise``, normalised."""
        return unit_rows(x + query_noise * noise(rng, len(x)) / np.sqrt(dim))

    def make(b: int) -> list[np.ndarray]:
        rng = np.random.default_rng(1000 + b)
        docs = []
        for _ in range(per_batch):
            n = int(rng.integers(50, 201))
            docs.append(tokens(rng, rng.choice(topics, 8), n))
        return docs

    n_batches = max(1, round(args.tokens / (125 * per_batch)))

    def batches(size: int):
        for b in range(n_batches):
            yield list(range(b * per_batch, (b + 1) * per_batch)), make(b)

    rng = np.random.default_rng(7)
    if query_noise is None:
        qs = [tokens(rng, rng.choice(topics, 4), 32) for _ in range(args.queries)]
    else:
        qs = queries_from_documents(rng, make, n_batches * per_batch, per_batch, args.queries)
        qs = [perturb(rng, q) for q in qs]
    return batches, qs, {}


def queries_from_documents(
    rng: np.random.Generator, make, n_docs: int, per_batch: int, n_queries: int
) -> list[np.ndarray]:
    """``n_queries`` sets of 32 distinct tokens, each of one document drawn
    uniformly from the corpus (``make(b)``: batch ``b``'s documents)."""
    sources = rng.integers(0, n_docs, n_queries)
    docs = {}
    for b in sorted(set(int(s) // per_batch for s in sources)):
        batch = make(b)
        docs.update({b * per_batch + j: d for j, d in enumerate(batch)})
    picked = [docs[int(s)] for s in sources]
    return [d[np.sort(rng.choice(len(d), 32, replace=False))] for d in picked]


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def noise_axes(dim: int, participation: float) -> np.ndarray:
    """A ``(dim, dim)`` float32 matrix ``A``: for standard normal rows ``z``,
    ``z @ A`` has covariance ``Q diag(λ) Qᵀ`` with ``Σλ = dim`` (the isotropic
    noise's energy), ``λ_i ∝ i^-alpha`` of participation ratio
    ``participation`` (in (0, 1]; 1 is isotropic) and ``Q`` a rotation
    drawn with seed 5."""
    if not 0 < participation <= 1:
        raise SystemExit(f"--spectrum: expected a share in (0, 1], got {participation}")
    ranks = np.arange(1, dim + 1, dtype=np.float64)

    def ratio(alpha: float) -> float:
        lam = ranks**-alpha
        return float(lam.sum() ** 2 / (lam**2).sum() / dim)

    low, high = 0.0, 8.0  # the ratio falls from 1 as alpha grows
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if ratio(mid) > participation else (low, mid)
    lam = ranks**-low
    lam *= dim / lam.sum()
    q, r = np.linalg.qr(np.random.default_rng(5).standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))  # a uniformly random rotation
    return (np.sqrt(lam)[:, None] * q.T).astype(np.float32)


# -- references ----------------------------------------------------------------


def exhaustive(batches, queries, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-k ids and scores of exhaustive MaxSim, merged over streamed batches,
    and the seconds spent scoring and merging (not generating the batches)."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    took = 0.0
    for ids, docs in batches(2000):
        start = time.perf_counter()
        s = maxsim.scores_batch(queries, docs)
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.array(ids), s.shape)], axis=1)
        order = np.lexsort((all_i, -all_s), axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, order, 1)
        best_i = np.take_along_axis(all_i, order, 1)
        took += time.perf_counter() - start
    return best_s, best_i, took


def cached_exhaustive(workdir: Path | None, batches, queries, k: int):
    """``exhaustive``, kept in ``workdir/exhaustive.npz`` for search-only reruns."""
    path = workdir / "exhaustive.npz" if workdir else None
    if path and path.exists():
        return stored_exhaustive(path, queries)
    ref_s, ref_i, took = exhaustive(batches, queries, k)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, scores=ref_s, ids=ref_i, seconds=took, queries=fingerprint(queries))
    return ref_s, ref_i, took


def stored_exhaustive(path: Path, queries) -> tuple[np.ndarray, np.ndarray, float]:
    """The exhaustive scores and ids kept at ``path``, after checking that
    they are of these queries (files written before the check carry no
    fingerprint and are only checked for the query count)."""
    z = np.load(path)
    if z["ids"].shape[0] != len(queries):
        raise SystemExit(f"{path}: {z['ids'].shape[0]} queries, not {len(queries)}")
    if "queries" in z.files and str(z["queries"]) != fingerprint(queries):
        raise SystemExit(
            f"{path}: the exhaustive reference of other queries (corpus options "
            "such as --query-noise differ from the run that wrote it); use another --workdir"
        )
    return z["scores"], z["ids"], float(z["seconds"])


def fingerprint(queries) -> str:
    """A digest of the queries' values and shapes."""
    h = hashlib.sha256()
    for q in queries:
        h.update(np.asarray(q.shape, np.int64).tobytes())
        h.update(np.ascontiguousarray(q, np.float32).tobytes())
    return h.hexdigest()[:16]


def recall(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean([len(set(g[:K]) & set(r[:K])) / K for g, r in zip(got, ref)]))


def crowding(ref_s: np.ndarray) -> dict[str, float]:
    """Medians over queries of the top's shape, from ``(n_queries, >= 11)``
    exhaustive scores, best first."""
    s = ref_s.astype(np.float64)
    s10 = s[:, K - 1]
    return {
        "head": float(np.median((s[:, 0] - s10) / s10)),
        "gap": float(np.median((s10 - s[:, K]) / s10)),
        "within_1pct": float(np.median((np.abs(s - s10[:, None]) <= 0.01 * s10[:, None]).sum(1))),
    }


def crowding_text(shape: dict[str, float]) -> str:
    """One line of :func:`crowding`'s medians."""
    return (
        f"(s1 - s10) / s10 {shape['head']:.4f}, (s10 - s11) / s10 {shape['gap']:.5f}, "
        f"documents within 1% of s10 {shape['within_1pct']:.0f} (medians)"
    )


def epsilon_recall(
    ids: np.ndarray, ref_s: np.ndarray, ref_i: np.ndarray, eps: float
) -> tuple[float, int]:
    """Mean share of each row of ``ids`` (its first ``K``) whose exact score
    is at least ``(1 - eps)`` times the 10th exhaustive score, and the number
    of queries where a document outside the stored top could still count."""
    hits, undecided = [], 0
    for got, scores, ref in zip(ids, ref_s, ref_i):
        floor = (1 - eps) * scores[K - 1]
        known = dict(zip(ref.tolist(), scores.tolist()))
        undecided += int(scores[-1] >= floor)
        hits.append(sum(known.get(int(d), -np.inf) >= floor for d in got[:K]) / K)
    return float(np.mean(hits)), undecided


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


RSS_SCRIPT = r"""
import os, sys, json, numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
kind, path, qfile = sys.argv[1:4]
q = np.load(qfile)
if kind == "maxsim":
    import maxsim
    base = rss()
    index = maxsim.Index.open(path)
    index.search(q, 10)
else:
    import torch
    from fast_plaid import search
    base = rss()
    index = search.FastPlaid(index=path, device="cpu")
    index.search(queries_embeddings=torch.from_numpy(q[None]), top_k=10, show_progress=False)
print(json.dumps({"rss_after_open": rss() - base}))
"""


def rss_after_open(kind: str, path: str, query: np.ndarray) -> int:
    with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
        np.save(f, query)
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, kind, path, f.name],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["rss_after_open"]


def scan_vs_index(batches, queries, index, rounds: int, n_scan: int, settings, ref_i) -> dict:
    """QPS of the exhaustive scan (``maxsim.scores_batch`` over the whole
    corpus held in memory as float32, the first ``n_scan`` queries as one
    batch, then top-k) and of the index (every query) at its defaults and at
    each ``(nprobe, n_candidates)`` of ``settings``, alternating round by
    round, on 1 and 2 threads: the baseline of the 20x target, timed under
    the same load as the index. Also each setting's recall@10."""
    docs = [d for _, b in batches(10**9) for d in b]
    scan_queries = queries[:n_scan]

    def scan() -> None:
        s = maxsim.scores_batch(scan_queries, docs)
        np.argpartition(-s, min(K, s.shape[1] - 1), axis=1)

    runs = {"default": {}} | {f"{p}_{c}": {"nprobe": p, "n_candidates": c} for p, c in settings}
    out = {}
    for name, kw in runs.items():
        out[f"recall@10_{name}"] = recall(index.search(queries, K, **kw)[1], ref_i)
    for t in (1, 2):
        maxsim.set_num_threads(t)
        times: dict[str, list[float]] = {"scan": []} | {name: [] for name in runs}
        for _ in range(rounds):
            start = time.perf_counter()
            scan()
            times["scan"].append(time.perf_counter() - start)
            for name, kw in runs.items():
                start = time.perf_counter()
                index.search(queries, K, **kw)
                times[name].append(time.perf_counter() - start)
        out[f"exhaustive_qps_{t}t"] = len(scan_queries) / float(np.median(times["scan"]))
        for name in runs:
            out[f"qps_{name}_{t}t"] = len(queries) / float(np.median(times[name]))
        print(json.dumps({k: v for k, v in out.items() if k.endswith(f"{t}t")}), file=sys.stderr)
    return out


# -- systems -------------------------------------------------------------------


def build_maxsim(path: str, batches, dim: int, args) -> tuple[maxsim.Index, float]:
    import resource

    start = time.perf_counter()
    index = maxsim.Index.create(path, dim, nbits=args.nbits, store=args.store, codec=args.codec)
    # k-means trains on the first --train-batches batches (PLAID samples the
    # corpus the same way); every batch then streams through add().
    stream = iter(batches(args.batch_docs))
    head = list(itertools.islice(stream, args.train_batches))
    if args.expected_tokens:
        index.train([d for _, b in head for d in b], expected_tokens=args.expected_tokens)
    for ids, docs in itertools.chain(head, stream):
        index.add(ids, docs)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"maxsim build {took:.1f} s, peak RSS {peak / 2**30:.2f} GiB", file=sys.stderr)
    return index, took


def build_fast_plaid(path: str, batches, args):
    import torch
    from fast_plaid import search

    docs = [torch.from_numpy(d) for _, batch in batches(10**9) for d in batch]
    start = time.perf_counter()
    index = search.FastPlaid(index=path, device="cpu")
    index.create(documents_embeddings=docs, nbits=args.nbits, seed=0)
    took = time.perf_counter() - start
    print(f"fast-plaid build {took:.1f} s", file=sys.stderr)
    return index, took


def fast_plaid_search(index, queries, nprobe: int, n_full: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    q = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(x) for x in queries], batch_first=True)
    res = index.search(
        queries_embeddings=q,
        top_k=K,
        n_ivf_probe=nprobe,
        n_full_scores=n_full,
        show_progress=False,
        n_processes=threads,
    )
    return np.array([[d for d, _ in r] + [-1] * (K - len(r)) for r in res])


def corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the corpus and queries (``scifact`` / ``synthetic``)."""
    parser.add_argument("corpus", choices=["scifact", "synthetic"])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/scifact"))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--max-docs", type=int, default=None)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--noise",
        type=float,
        default=1.4,
        help="synthetic corpus: norm of each token's Gaussian noise against its unit "
        "topic direction (1.4: rounds one to six)",
    )
    parser.add_argument(
        "--query-noise",
        type=float,
        default=None,
        help="synthetic queries: 32 tokens of one random document of the corpus, each plus "
        "Gaussian noise of this norm (a query with a relevant document; default: 32 tokens "
        "over 4 random topics, which no document answers in particular)",
    )
    parser.add_argument(
        "--spectrum",
        type=float,
        default=None,
        help="synthetic corpus: participation ratio (share of --dim) of the noise's "
        "covariance spectrum, power-law eigenvalues in random axes (default: isotropic)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    corpus_arguments(parser)
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--codec", choices=["pq", "scalar"], default="pq")
    parser.add_argument("--store", default="float16")
    parser.add_argument("--batch-docs", type=int, default=1000)
    parser.add_argument(
        "--train-batches",
        type=int,
        default=1,
        help="train the centroids on this many first batches (k-means samples at most "
        "32 tokens per centroid of them)",
    )
    parser.add_argument(
        "--expected-tokens",
        type=int,
        default=None,
        help="size the centroid count by PLAID's rule for this many tokens (default: the "
        "corpus's token count; 0: the first batch's, which under-sizes it)",
    )
    parser.add_argument("--nprobe", default="2,4,8,16,32")
    parser.add_argument("--n-candidates", default="64,256,1024")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--scan-queries",
        type=int,
        default=10,
        help="queries per timed exhaustive scan (the corpus is held in memory for it)",
    )
    parser.add_argument(
        "--scan-settings",
        default="",
        help="NPROBE:N_CANDIDATES,... timed alternating with the scan, besides the defaults",
    )
    parser.add_argument(
        "--forced-queries",
        type=int,
        default=None,
        help="queries of the forced-certificate search (exact=True widens nprobe "
        "until certified, up to every centroid: slow on large corpora)",
    )
    parser.add_argument("--fast-plaid", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the built indexes here and reuse them when present (search-only reruns)",
    )
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; maxsim kernel {maxsim.info()['kernel']}", file=sys.stderr)

    batches, queries, meta = (scifact if args.corpus == "scifact" else synthetic)(args)
    dim = queries[0].shape[1]
    if args.expected_tokens is None:
        # The index trains on the first batch; PLAID's centroid count is for the corpus.
        args.expected_tokens = (
            args.tokens
            if args.corpus == "synthetic"
            else sum(len(d) for _, b in batches(10**9) for d in b)
        )
    ref_s, ref_i, _ = cached_exhaustive(args.workdir, batches, queries, 100)
    report: dict = {
        "corpus": args.corpus,
        "n_queries": len(queries),
        "top_crowding": crowding(ref_s),
        "rows": [],
    }
    ndcg = None
    if meta:
        ndcg = lambda ids: meta["ndcg"](  # noqa: E731
            [[meta["doc_ids"][i] for i in row if i >= 0] for row in ids],
            meta["q_ids"],
            meta["qrels"],
        )
        report["ndcg_exhaustive"] = ndcg(ref_i)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="index-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "maxsim" / "manifest.json").exists():
        index, build_time = maxsim.Index.open(str(workdir / "maxsim")), None
    else:
        index, build_time = build_maxsim(str(workdir / "maxsim"), batches, dim, args)
    stats = index.stats()
    report.update(
        maxsim_build_s=build_time,
        bytes_per_token=stats["bytes_per_token"],
        n_tokens=stats["n_tokens"],
        n_centroids=stats["n_centroids"],
        codec=stats["codec"],
        maxsim_rss_after_open=rss_after_open("maxsim", str(workdir / "maxsim"), queries[0]),
    )
    fp = None
    if args.fast_plaid and (workdir / "fp").exists():
        from fast_plaid import search

        fp, fp_build = search.FastPlaid(index=str(workdir / "fp"), device="cpu"), None
    elif args.fast_plaid:
        fp, fp_build = build_fast_plaid(str(workdir / "fp"), batches, args)
    if args.fast_plaid:
        report["fast_plaid_build_s"] = fp_build
        report["fast_plaid_rss_after_open"] = rss_after_open(
            "fast_plaid", str(workdir / "fp"), queries[0]
        )
    grid = [
        (p, c)
        for p in map(int, args.nprobe.split(","))
        for c in map(int, args.n_candidates.split(","))
    ]
    systems = ["maxsim", "maxsim+exact"] + (["fast-plaid"] if fp else [])
    for nprobe, ncand in grid:
        for system in systems:
            row = {"system": system, "nprobe": nprobe, "n_candidates": ncand}
            for t in (1, 2):
                if system == "fast-plaid":
                    run = lambda p=nprobe, c=ncand, t=t: fast_plaid_search(fp, queries, p, c, t)  # noqa: E731
                else:
                    maxsim.set_num_threads(t)
                    rr = "exact" if system == "maxsim+exact" else None
                    run = lambda p=nprobe, c=ncand, rr=rr: index.search(  # noqa: E731
                        queries, K, nprobe=p, n_candidates=c, rerank=rr
                    )[1]
                ids = run()
                row[f"qps_{t}t"] = len(queries) / median_time(run, args.rounds)
            got = np.asarray(ids)
            row["recall@10"] = recall(got, ref_i)
            row["eps_recall@10"] = epsilon_recall(got, ref_s, ref_i, 0.01)[0]
            if ndcg:
                row["ndcg@10"] = ndcg(got)
            report["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
    settings = [tuple(map(int, x.split(":"))) for x in args.scan_settings.split(",") if x]
    report.update(
        scan_vs_index(batches, queries, index, args.rounds, args.scan_queries, settings, ref_i)
    )
    # The certificate at the defaults, and forcing it.
    maxsim.set_num_threads(2)
    t = time.perf_counter()
    _, ids_c, cert = index.search(queries, K, rerank="exact", return_certified=True)
    report["certified_default_share"] = float(np.mean(cert))
    report["default_exact_qps_2t"] = len(queries) / (time.perf_counter() - t)
    t = time.perf_counter()
    forced = queries[: args.forced_queries]
    _, ids_e, cert_e = index.search(forced, K, exact=True, return_certified=True)
    report["forced_exact_qps_2t"] = len(forced) / (time.perf_counter() - t)
    report["forced_exact_recall"] = recall(ids_e, ref_i[: len(forced)])
    report["forced_exact_certified"] = float(np.mean(cert_e))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    print_table(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


def print_table(report: dict) -> None:
    print(f"exhaustive top ten: {crowding_text(report['top_crowding'])}")
    print(
        "| system | nprobe | n_candidates | recall@10 | ε-recall@10 (0.01) | NDCG@10 "
        "| QPS 1 thread | QPS 2 threads |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        nd = f"{r['ndcg@10']:.4f}" if "ndcg@10" in r else "-"
        print(
            f"| {r['system']} | {r['nprobe']} | {r['n_candidates']} | {r['recall@10']:.3f} "
            f"| {r['eps_recall@10']:.3f} | {nd} | {r['qps_1t']:.1f} | {r['qps_2t']:.1f} |"
        )


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    gc.disable()  # no collector pauses inside timed rounds
    main()
