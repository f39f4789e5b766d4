"""Reduced-precision MaxSim benchmark: float32 vs float16 / bfloat16 / int8 documents.

Workloads (seeded, L2-normalised, the project's standard ones):

* fixed: query 32 x 128 over 1000 documents x 300 tokens x 128;
* variable: the same query over 1000 documents of 50-800 tokens;
* batch64: 64 queries x 32 tokens over the fixed documents.

Measured in one process per thread count (``MAXSIM_NUM_THREADS`` and
``RAYON_NUM_THREADS`` set before import), implementations interleaved round
robin so that machine load drifts affect all of them alike; medians reported:

* maxsim on float32, float16, bfloat16 and int8 documents (pre-converted);
* maxsim-cpu (float32), when installed;
* NumKong (single-threaded by design) ``maxsim_packed`` on bf16 documents packed
  ahead of time, and end to end from float32 input (cast + pack + score) beside
  ours (``maxsim.quantize(docs, "bfloat16")`` + score), fixed workload, 1 thread;
* top-10 overlap with exact float32 MaxSim over 16 queries of the batch workload
  for our reduced paths and for NumKong's f32 and bf16 paths.

Command line (also ``benches/bench_reduced.py``)::

    python -m maxsim.bench.reduced [--threads 1,2] [--repeat 7] [--docs 1000] [--json out.json]

``reduced_rows(threads_list=(1, 2))`` returns the rows (one dict per measurement),
each thread count measured in a fresh child process; ``worker_rows(threads, ...)``
measures one thread count in this process (``maxsim bench`` runs it in its own
per-thread-count workers). Missing peers (maxsim-cpu, NumKong, ml_dtypes) are
skipped (see :data:`maxsim.bench._common.SKIPPED`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from ._common import SKIPPED, child_env, optional, skipped_notes
from .timing import alternating_medians_ms

DIM = 128
QUERY_TOKENS = 32
FIXED_TOKENS = 300
WORKLOADS = ("fixed", "variable", "batch64")


def _normalised(rng: np.random.Generator, rows: int) -> np.ndarray:
    x = rng.standard_normal((rows, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_workload(name: str, n_docs: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if name in ("fixed", "batch64"):
        lengths = np.full(n_docs, FIXED_TOKENS, dtype=np.int64)
    elif name == "variable":
        lengths = rng.integers(50, 801, size=n_docs).astype(np.int64)
    else:
        raise ValueError(f"unknown workload {name!r}")
    n_queries = 64 if name == "batch64" else 1
    queries = _normalised(rng, n_queries * QUERY_TOKENS).reshape(n_queries, QUERY_TOKENS, DIM)
    flat = _normalised(rng, int(lengths.sum()))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return {"name": name, "queries": queries, "flat": flat, "offsets": offsets, "lengths": lengths}


def _flops(w: dict) -> float:
    n_q, nq, d = w["queries"].shape
    return 2.0 * n_q * nq * d * float(w["lengths"].sum())


def _interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Per name, the median of ``repeat`` rounds in which every function runs once, in seconds."""
    ms = alternating_medians_ms(list(fns.values()), rounds=repeat, repeat=1)
    return {name: t / 1e3 for name, t in zip(fns, ms)}


def _overlap(a: np.ndarray, b: np.ndarray, k: int = 10, ascending_b: bool = False) -> float:
    """Mean top-k overlap of score rows ``b`` with reference rows ``a`` (higher is better).

    With fewer than ``k`` documents, the top-k is all of them (overlap 1).
    """
    total = 0.0
    for ra, rb in zip(a, b):
        kk = min(k, len(ra))
        top_a = set(np.argsort(-ra, kind="stable")[:kk])
        order_b = np.argsort(rb if ascending_b else -rb, kind="stable")[:kk]
        total += len(top_a.intersection(order_b)) / kk
    return total / len(a)


def worker_rows(
    threads: int,
    repeat: int = 7,
    workloads: Sequence[str] = WORKLOADS,
    peers: bool = True,
    n_docs: int = 1000,
    accuracy: Optional[bool] = None,
) -> list[dict]:
    """Rows of every workload at ``threads`` threads, measured in this process.

    Sets maxsim's thread count (the caller's process should also have
    ``RAYON_NUM_THREADS`` etc. set, as :func:`reduced_rows`' children do).
    ``accuracy`` adds the top-10 overlap rows (default: with peers, at 1 thread).
    """
    import maxsim

    maxsim.set_num_threads(threads)
    rows: list[dict] = []
    for wname in workloads:
        rows.extend(_measure(wname, threads, repeat, peers, n_docs))
    if accuracy if accuracy is not None else (peers and threads == 1):
        rows.extend(_accuracy(n_docs=n_docs, peers=peers))
    return rows


def _numkong() -> Optional[tuple]:
    """``(numkong, ml_dtypes.bfloat16)``, or None when either is missing."""
    ml_dtypes = optional("ml_dtypes")
    nk = optional("numkong")
    if ml_dtypes is None or nk is None:
        return None
    return nk, ml_dtypes.bfloat16


def _measure(wname: str, threads: int, repeat: int, peers: bool, n_docs: int = 1000) -> list[dict]:
    """Rows of one workload at the current thread count."""
    import maxsim

    rows: list[dict] = []
    w = make_workload(wname, n_docs)
    queries, flat, offsets = w["queries"], w["flat"], w["offsets"]
    fixed = wname != "variable"
    n_docs = len(offsets) - 1
    docs32 = flat.reshape(n_docs, FIXED_TOKENS, DIM) if fixed else maxsim.PackedDocs(flat, offsets)
    f16 = maxsim.quantize(docs32, "float16")
    bf16 = maxsim.quantize(docs32, "bfloat16")
    i8 = maxsim.quantize(docs32, "int8_per_token")
    if fixed:  # the 3-D fixed layout for the 16-bit paths, like float32
        f16_docs = f16.flat.reshape(docs32.shape)
        bf16_docs = bf16.flat.reshape(docs32.shape)
    else:
        f16_docs, bf16_docs = f16, bf16
    single = queries.shape[0] == 1
    q0 = queries[0]

    def run(docs: object) -> Callable[[], object]:
        if single:
            return lambda: maxsim.scores(q0, docs)
        return lambda: maxsim.scores_batch(queries, docs)

    fns: dict[str, Callable[[], object]] = {
        "maxsim float32": run(docs32),
        "maxsim float16": run(f16_docs),
        "maxsim bfloat16": run(bf16_docs),
        "maxsim int8": run(i8),
    }
    maxsim_cpu = optional("maxsim_cpu") if peers else None
    if maxsim_cpu is not None:
        if fixed:
            fns["maxsim-cpu float32"] = lambda: [
                maxsim_cpu.maxsim_scores(q, docs32) for q in queries
            ]
        else:
            doc_list = [flat[offsets[i] : offsets[i + 1]] for i in range(n_docs)]
            fns["maxsim-cpu float32"] = lambda: [
                maxsim_cpu.maxsim_scores_variable(q, doc_list) for q in queries
            ]
    numkong = _numkong() if peers and threads == 1 and single else None
    if numkong is not None:
        nk, bf = numkong
        nk_query = nk.maxsim_pack(q0.astype(bf), dtype="bf16")
        nk_packed = [
            nk.maxsim_pack(flat[offsets[i] : offsets[i + 1]].astype(bf), dtype="bf16")
            for i in range(n_docs)
        ]
        fns["numkong bf16 (pre-packed)"] = lambda: [
            nk.maxsim_packed(nk_query, p) for p in nk_packed
        ]
    medians = _interleaved_medians(fns, repeat)
    base = medians["maxsim float32"]
    n_queries = queries.shape[0]
    sizes = {
        "maxsim float32": flat.nbytes,
        "maxsim float16": f16.flat.nbytes,
        "maxsim bfloat16": bf16.flat.nbytes,
        "maxsim int8": i8.flat.nbytes + i8.scales.nbytes,
        "maxsim-cpu float32": flat.nbytes,
        "numkong bf16 (pre-packed)": flat.size * 2,
    }
    for name, seconds in medians.items():
        rows.append(
            {
                "suite": "reduced",
                "workload": wname,
                "impl": name,
                "threads": threads,
                "ms": 1e3 * seconds,
                "ms_per_query": 1e3 * seconds / n_queries,
                "gflops": _flops(w) / seconds / 1e9,
                "speedup_vs_float32": base / seconds,
                "doc_mb": sizes.get(name, 0) / 1e6,
            }
        )
    if peers and threads == 1 and wname == "fixed":
        # Every repeat counts: a large allocation right after NumKong's packing
        # occasionally stalls on a shared VM, and the median of all absorbs it.
        rows.extend(_end_to_end(w, docs32, max(3, repeat)))
    return rows


def _end_to_end(w: dict, docs32: np.ndarray, repeat: int) -> list[dict]:
    """From float32 documents: convert/pack + score, ours vs NumKong (1 thread)."""
    import maxsim

    q0 = w["queries"][0]
    fns: dict[str, Callable[[], object]] = {
        "maxsim bfloat16 end-to-end (quantize + score)": lambda: maxsim.scores(
            q0, maxsim.quantize(docs32, "bfloat16")
        ),
        "maxsim int8 end-to-end (quantize + score)": lambda: maxsim.scores(
            q0, maxsim.quantize(docs32, "int8_per_token")
        ),
    }
    numkong = _numkong()
    if numkong is not None:
        nk, bf = numkong

        def numkong_e2e() -> object:
            nq = nk.maxsim_pack(q0.astype(bf), dtype="bf16")
            packed = [nk.maxsim_pack(d.astype(bf), dtype="bf16") for d in docs32]
            return [nk.maxsim_packed(nq, p) for p in packed]

        fns["numkong bf16 end-to-end (cast + pack + score)"] = numkong_e2e
    medians = _interleaved_medians(fns, repeat)
    ours = medians["maxsim bfloat16 end-to-end (quantize + score)"]
    return [
        {
            "suite": "reduced",
            "workload": "fixed end-to-end",
            "impl": name,
            "threads": 1,
            "ms": 1e3 * s,
            "ms_per_query": 1e3 * s,
            "gflops": _flops(w) / s / 1e9,
            "numkong_over_ours": s / ours if name.startswith("numkong") else None,
        }
        for name, s in medians.items()
    ]


def _accuracy(n_queries: int = 16, n_docs: int = 1000, peers: bool = True) -> list[dict]:
    """Top-10 overlap with float32 MaxSim on the batch workload's random data."""
    import maxsim

    w = make_workload("batch64", n_docs)
    queries = w["queries"][:n_queries]
    docs32 = w["flat"].reshape(-1, FIXED_TOKENS, DIM)
    exact = maxsim.scores_batch(queries, docs32)  # float32 MaxSim: the ranking to agree with
    rows = []
    for dtype, scheme in (
        ("float16", "float16"),
        ("bfloat16", "bfloat16"),
        ("int8", "int8_per_token"),
    ):
        got = maxsim.scores_batch(queries, maxsim.quantize(docs32, scheme))
        rows.append(
            {
                "suite": "reduced-accuracy",
                "impl": f"maxsim {dtype}",
                "top10_overlap": _overlap(exact, got),
            }
        )
    numkong = _numkong() if peers else None
    if numkong is not None:
        nk, bf = numkong
        for label, cast, dt in (("f32", np.float32, "f32"), ("bf16", bf, "bf16")):
            packed = [nk.maxsim_pack(d.astype(cast), dtype=dt) for d in docs32]
            dist = np.array(
                [
                    [nk.maxsim_packed(nk.maxsim_pack(q.astype(cast), dtype=dt), p) for p in packed]
                    for q in queries
                ]
            )
            # NumKong returns summed angular distances: lower is better.
            rows.append(
                {
                    "suite": "reduced-accuracy",
                    "impl": f"numkong {label}",
                    "top10_overlap": _overlap(exact, dist, ascending_b=True),
                }
            )
    return rows


def _spawn(threads: int, repeat: int, workloads: Sequence[str], peers: bool, n_docs: int) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "maxsim.bench.reduced",
        "--worker",
        "--threads",
        str(threads),
        "--repeat",
        str(repeat),
        "--workloads",
        ",".join(workloads),
        "--docs",
        str(n_docs),
    ]
    if not peers:
        cmd.append("--no-peers")
    out = subprocess.run(cmd, env=child_env(threads), capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError(f"reduced benchmark worker with {threads} thread(s) failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reduced_rows(
    threads_list: Sequence[int] = (1, 2),
    repeat: int = 7,
    workloads: Sequence[str] = WORKLOADS,
    peers: bool = True,
    n_docs: int = 1000,
) -> list[dict]:
    """One dict per (workload, implementation, threads); each thread count in a fresh process.

    Peers missing in the children are added to :data:`maxsim.bench._common.SKIPPED`.
    """
    rows: list[dict] = []
    for threads in threads_list:
        out = _spawn(int(threads), repeat, workloads, peers, n_docs)
        rows.extend(out["rows"])
        for name, why in out["skipped"].items():
            SKIPPED.setdefault(name, why)
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [
        "| workload | implementation | threads | ms | GFLOP/s | vs float32 | docs MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["suite"] != "reduced":
            continue
        vs = r.get("speedup_vs_float32")
        extra = r.get("numkong_over_ours")
        note = f"{vs:.2f}x" if vs is not None else (f"numkong/ours {extra:.1f}x" if extra else "")
        mb = r.get("doc_mb")
        lines.append(
            f"| {r['workload']} | {r['impl']} | {r['threads']} | {r['ms']:.1f} | "
            f"{r['gflops']:.1f} | {note} | {'' if mb is None else f'{mb:.0f}'} |"
        )
    acc = [r for r in rows if r["suite"] == "reduced-accuracy"]
    if acc:
        lines += [
            "",
            "| implementation | top-10 overlap with float32 MaxSim (random data) |",
            "|---|---:|",
        ]
        lines += [f"| {r['impl']} | {r['top10_overlap']:.3f} |" for r in acc]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--docs", type=int, default=1000, help="documents per workload")
    parser.add_argument("--no-peers", action="store_true", help="skip maxsim-cpu and NumKong")
    parser.add_argument("--json", help="also write the rows and maxsim.info() here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    if args.worker:
        rows = worker_rows(int(args.threads), args.repeat, workloads, not args.no_peers, args.docs)
        print(json.dumps({"rows": rows, "skipped": SKIPPED}))
        return
    import maxsim

    rows = reduced_rows(
        [int(t) for t in args.threads.split(",")],
        args.repeat,
        workloads,
        not args.no_peers,
        args.docs,
    )
    print(format_table(rows))
    for note in skipped_notes(SKIPPED):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": maxsim.info(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
