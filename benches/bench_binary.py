"""Binary (Hamming) search benchmark: maxsim vs faiss, usearch and numpy, same run.

Workloads (the issue's): 1,000,000 database codes of 512 and 1024 bits, 100
queries, k = 10 and k = 100, on 1 and 2 threads; plus a single query, to show
one query split across threads. Every implementation searches the same random
codes; results are checked against maxsim's (distances must agree; faiss
indices too, since both break ties to the lower index).

Implementations:

- ``maxsim``: ``maxsim.binary.search`` on row-major ``(n, n_bytes)`` codes;
- ``maxsim-index``: ``maxsim.binary.BinaryIndex.search`` (codes pre-interleaved);
- ``faiss``: ``faiss.IndexBinaryFlat`` (OpenMP over queries; ``omp_set_num_threads``);
- ``usearch``: ``usearch.index.search(..., MetricKind.Hamming, exact=True, threads=t)``;
- ``numpy``: ``np.bitwise_count`` on uint64 words + ``argpartition`` (one thread,
  timed on a few queries).

Each row: ``workload``, ``impl``, ``threads``, ``ms_per_query``, ``qps``, ``gbps``
(compared code bytes per second: queries × codes × bytes per code / time),
``cpu_ms_per_query`` (process CPU time: on a shared machine the fairer 1-thread figure),
``ratio_vs_faiss`` (qps / faiss qps at the same threads), ``agrees`` and, for
maxsim, ``l1_peak_gbps`` / ``l1_peak_gbps_cpu`` (the same kernel on an
L1-resident tile, by wall and by CPU time: its ceiling here) and ``kernel``.
Times are medians of ``repeat`` runs.

Usage::

    PYTHONPATH=python python3 benches/bench_binary.py [--n 1000000] [--threads 1,2]
        [--repeat 5] [--quick] [--json out.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

from maxsim import _native  # noqa: E402
from maxsim import binary as mb  # noqa: E402

_CPU_TIMES: list = []  # process CPU seconds of the last _median_time's median run


def _median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    fn()  # warm-up (page faults, thread pools)
    times, cpu, out = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    _CPU_TIMES.append(statistics.median(cpu))
    return statistics.median(times), out


def _numpy_search(q: np.ndarray, db64: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dists, ids = [], []
    for row in q.view(np.uint64):
        d = np.bitwise_count(db64 ^ row).sum(axis=1, dtype=np.int32)
        part = np.argpartition(d, k - 1)[:k]
        order = np.lexsort((part, d[part]))
        ids.append(part[order])
        dists.append(d[part[order]])
    return np.array(dists), np.array(ids)


def _l1_peak(n_bytes: int) -> tuple[float, float]:
    """The search kernel's single-thread rate on an L1-resident tile: (by wall
    time, by process CPU time). The second is the fairer ceiling on a shared
    machine, where the process does not always have its core."""
    _native.set_num_threads(1)
    c0, t0 = time.process_time(), time.perf_counter()
    wall_gbps = _native.binary_l1_peak_gbps(None, n_bytes, 0.5)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return wall_gbps, wall_gbps * wall / max(cpu, 1e-9)


def _set_threads(t: int) -> None:
    _native.set_num_threads(t)
    try:
        import faiss

        faiss.omp_set_num_threads(t)
    except ImportError:
        pass


def binary_rows(
    threads_list: Sequence[int] = (1, 2),
    n: int = 1_000_000,
    bits_list: Sequence[int] = (512, 1024),
    ks: Sequence[int] = (10, 100),
    n_queries: int = 100,
    repeat: int = 3,
    numpy_queries: int = 3,
    single_query_repeat: int = 30,
    peers: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Runs the workloads and returns one dict per (workload, impl, threads)."""
    try:
        import faiss
    except ImportError:
        faiss = None
    try:
        from usearch.index import MetricKind
        from usearch.index import search as usearch_search

        usearch = (usearch_search, MetricKind)
    except ImportError:
        usearch = None
    if not peers:
        faiss = usearch = None

    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    previous = _native.num_threads()
    try:
        for bits in bits_list:
            db = rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)
            q = rng.integers(0, 256, size=(n_queries, bits // 8), dtype=np.uint8)
            rows.extend(
                _bench_bits(
                    db, q, threads_list, ks, repeat, numpy_queries if peers else 0,
                    single_query_repeat, faiss, usearch,
                )
            )  # fmt: skip
    finally:
        _native.set_num_threads(previous)
    _add_scaling(rows)
    return rows


def _bench_bits(
    db, q, threads_list, ks, repeat, numpy_queries, single_query_repeat, faiss, usearch
):
    n, n_bytes = db.shape
    n_queries = q.shape[0]
    bits = 8 * n_bytes
    kernel = _native.binary_impls()[1]
    index = mb.BinaryIndex(bits)
    index.add(db)
    fidx = None
    if faiss is not None:
        fidx = faiss.IndexBinaryFlat(bits)
        fidx.add(db)
    db64 = db.view(np.uint64) if n_bytes % 8 == 0 else None
    peak = _l1_peak(n_bytes)
    rows: list[dict] = []
    for k in ks:
        workload = f"hamming_{n // 1000}k_{bits}bit_{n_queries}q_k{k}"
        for t in threads_list:
            _set_threads(t)
            res: dict[str, tuple] = {}
            _CPU_TIMES.clear()
            res["maxsim"] = (*_median_time(lambda k=k: mb.search(q, db, k), repeat), n_queries)
            res["maxsim-index"] = (*_median_time(lambda k=k: index.search(q, k), repeat), n_queries)
            if fidx is not None:
                res["faiss"] = (*_median_time(lambda k=k: fidx.search(q, k), repeat), n_queries)
            if usearch is not None:
                search, metric = usearch

                def run_usearch(t=t, k=k, search=search, metric=metric):
                    return search(db, q, k, metric.Hamming, exact=True, threads=t)

                res["usearch"] = (*_median_time(run_usearch, repeat), n_queries)
            if numpy_queries and db64 is not None and t == 1:
                nq = numpy_queries
                res["numpy"] = (
                    *_median_time(lambda k=k, nq=nq: _numpy_search(q[:nq], db64, k), 1),
                    nq,
                )
            rows.extend(_rows_for(workload, t, n, n_bytes, res, kernel, peak))
    # One query at a time: maxsim splits each query across the threads.
    workload = f"hamming_{n // 1000}k_{bits}bit_1q_k10"
    one = [q[i] for i in range(min(single_query_repeat, n_queries))]
    for t in threads_list:
        _set_threads(t)
        res = {}
        _CPU_TIMES.clear()
        res["maxsim"] = (*_median_time(lambda: [mb.search(x, db, 10) for x in one], 3), len(one))
        res["maxsim-index"] = (
            *_median_time(lambda: [index.search(x, 10) for x in one], 3),
            len(one),
        )
        if fidx is not None:
            res["faiss"] = (
                *_median_time(lambda: [fidx.search(x[None], 10) for x in one], 3),
                len(one),
            )
        rows.extend(_rows_for(workload, t, n, n_bytes, res, kernel, peak, single=True))
    return rows


def _rows_for(workload, threads, n, n_bytes, res, kernel, peak, single=False) -> list[dict]:
    ours = res["maxsim"][1]
    faiss_qps = res["faiss"][2] / res["faiss"][0] if "faiss" in res else None
    out = []
    cpu_times = dict(zip(res, _CPU_TIMES))
    for impl, (seconds, result, n_q) in res.items():
        qps = n_q / seconds
        row = {
            "workload": workload,
            "impl": impl,
            "threads": threads,
            "ms_per_query": 1e3 * seconds / n_q,
            "qps": qps,
            "gbps": n_q * n * n_bytes / seconds / 1e9,
            "ratio_vs_faiss": qps / faiss_qps if faiss_qps else None,
            "cpu_ms_per_query": 1e3 * cpu_times[impl] / n_q if impl in cpu_times else None,
            "agrees": _agrees(impl, result, ours, single),
        }
        if impl.startswith("maxsim"):
            row["kernel"] = kernel
            row["l1_peak_gbps"], row["l1_peak_gbps_cpu"] = peak
        out.append(row)
    return out


def _agrees(impl: str, result, ours, single: bool) -> Optional[bool]:
    if single:
        ours_d = np.stack([r[0] for r in ours])
        if impl.startswith("maxsim"):
            got = np.stack([r[0] for r in result])
        else:
            got = np.concatenate([r[0] for r in result])
        return bool(np.array_equal(got, ours_d))
    d, i = ours
    if impl == "usearch":
        return bool(np.array_equal(result.distances.astype(np.int64), d))
    got_d, got_i = result[0], result[1]
    rows = got_d.shape[0]
    same_d = np.array_equal(np.asarray(got_d), d[:rows])
    if impl == "numpy":
        return bool(same_d)
    return bool(same_d and np.array_equal(np.asarray(got_i), i[:rows]))


def _add_scaling(rows: list[dict]) -> None:
    """``speedup_vs_1_thread`` for every row whose 1-thread row exists."""
    base = {(r["workload"], r["impl"]): r["qps"] for r in rows if r["threads"] == 1}
    for r in rows:
        b = base.get((r["workload"], r["impl"]))
        r["speedup_vs_1_thread"] = r["qps"] / b if b else None


def format_table(rows: list[dict], markdown: bool = False) -> str:
    headers = ["workload", "impl", "threads", "ms/query", "queries/s", "GB/s", "vs faiss",
               "vs 1 thread", "cpu ms/query", "agrees"]  # fmt: skip
    lines = []
    for r in rows:
        ratio = r["ratio_vs_faiss"]
        scale = r["speedup_vs_1_thread"]
        lines.append([
            r["workload"], r["impl"], str(r["threads"]), f"{r['ms_per_query']:.3f}",
            f"{r['qps']:.0f}", f"{r['gbps']:.1f}", "-" if ratio is None else f"{ratio:.2f}x",
            "-" if scale is None or r["threads"] == 1 else f"{scale:.2f}x",
            "-" if r["cpu_ms_per_query"] is None else f"{r['cpu_ms_per_query']:.3f}",
            {True: "yes", False: "NO", None: "-"}[r["agrees"]],
        ])  # fmt: skip
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    body = [fmt.format(*line) for line in lines]
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths)), *body])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="maxsim binary search benchmark")
    p.add_argument("--n", type=int, default=1_000_000, help="database codes")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--bits", default="512,1024")
    p.add_argument("--k", default="10,100")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="100k codes, 512 bits, k=10")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.bits, args.k, args.repeat = 100_000, "512", "10", 3
    rows = binary_rows(
        threads_list=[int(t) for t in args.threads.split(",")],
        n=args.n,
        bits_list=[int(b) for b in args.bits.split(",")],
        ks=[int(k) for k in args.k.split(",")],
        n_queries=args.queries,
        repeat=args.repeat,
        peers=not args.no_peers,
    )
    impls, selected = _native.binary_impls()
    print(f"kernel: {selected} (available: {', '.join(impls)}); cpu features: "
          f"{', '.join(_native.cpu_features())}")  # fmt: skip
    peaks = {
        r["workload"].split("_")[2]: (r["l1_peak_gbps"], r["l1_peak_gbps_cpu"])
        for r in rows
        if "l1_peak_gbps" in r
    }
    print("L1-resident kernel ceiling, 1 thread (wall / CPU time): "
          + ", ".join(f"{b}: {w:.1f} / {c:.1f} GB/s" for b, (w, c) in peaks.items()))  # fmt: skip
    print(format_table(rows, args.markdown))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
