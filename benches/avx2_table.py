"""The AVX2 issue's table (issue 23): one row per run, maxsim against its peer
in the same process, alternating rounds.

Rows (``row`` argument):

* ``float``: float32 MaxSim, the fixed workload (one query of 32 tokens against
  1000 documents x 300 tokens x 128 dims) and the batch workload (32 such
  queries), ``maxsim.scores`` / ``scores_batch`` against maxsim-cpu's
  ``maxsim_scores`` (called per query, its threads set by
  ``RAYON_NUM_THREADS``, which this script sets before importing it).
* ``hamming``: 1,000,000 random codes of 512 bits, 100 queries, k = 10:
  ``maxsim.binary.search`` (numpy rows) and ``BinaryIndex.search`` against
  faiss ``IndexBinaryFlat``.
* ``reduced``: the fixed workload's documents as float32, bfloat16, float16 and
  int8 (``maxsim.quantize``), each scored with ``maxsim.scores``; ratios
  against maxsim's own float32.

Every round times every implementation once, in turn (one warm-up call each
first), so a shared machine's drift spreads over all of them. Printed per
implementation: the median over rounds of wall-clock and of process CPU
time per call (on an oversubscribed machine CPU time is the steadier of the
two; both are printed), and per ratio its median and range over the rounds'
own ratios.

Usage (from the repository root, in the project's environment)::

    python benches/avx2_table.py float --threads 2 --rounds 7
    python benches/avx2_table.py hamming --threads 1 --rounds 7
    python benches/avx2_table.py reduced --threads 1 --rounds 9

The PyLate rerank row is ``maxsim bench --suite pylate``.

On an AVX-512 machine, ``MAXSIM_DISABLE_CPU_FEATURES=avx512f,avxvnni`` runs
maxsim's kernels as on an AVX2 CPU without AVX-VNNI (AMD Zen 2/3), and
``--peers-avx2`` runs the peers on their AVX2 paths too: faiss through
``FAISS_SIMD_LEVEL=AVX2`` (its dynamic dispatch) and maxsim-cpu through
``LIBXSMM_TARGET=hsw`` (libxsmm's Haswell code), both set before the import.
For PyLate's torch the same is ``ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2`` in the environment of ``maxsim bench``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))


def _rounds(
    impls: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Per implementation, ``rounds`` (wall ms, CPU ms) of one call each."""
    for fn in impls.values():
        fn()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in impls}
    for _ in range(rounds):
        for name, fn in impls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(((time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3))
    return times


def _report(
    title: str,
    times: dict[str, list[tuple[float, float]]],
    ratios: list[tuple[str, str]],
    per_call: float = 1.0,
) -> None:
    """Prints the medians (divided by ``per_call``) and the ratios
    ``numerator / denominator`` of wall and CPU time, per round."""
    print(f"\n### {title}\n")
    print("| impl | wall ms (median) | CPU ms (median) |")
    print("|---|---:|---:|")
    for name, values in times.items():
        wall = statistics.median(v[0] for v in values) / per_call
        cpu = statistics.median(v[1] for v in values) / per_call
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    print("\n| ratio | wall: median (range) | CPU: median (range) |")
    print("|---|---|---|")
    for num, den in ratios:
        cells = []
        for clock in (0, 1):
            per_round = [a[clock] / b[clock] for a, b in zip(times[num], times[den])]
            cells.append(
                f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"
            )
        print(f"| {num} / {den} | {cells[0]} | {cells[1]} |")


def float_row(threads: int, rounds: int) -> None:
    import maxsim
    import maxsim_cpu
    import numpy as np
    from maxsim.bench import workloads as wl

    maxsim.set_num_threads(threads)
    fixed = wl.make("fixed", n_docs=1000)
    docs = fixed.docs3d
    query = fixed.queries[0]
    times = _rounds(
        {
            "maxsim fixed": lambda: maxsim.scores(query, docs),
            "maxsim-cpu fixed": lambda: maxsim_cpu.maxsim_scores(query, docs),
        },
        rounds,
    )
    _report(
        f"float32, fixed workload, {threads} thread(s)",
        times,
        [("maxsim-cpu fixed", "maxsim fixed")],
    )
    batch = wl.make("batch", n_docs=1000)
    queries, bdocs = batch.queries, batch.docs3d
    times = _rounds(
        {
            "maxsim batch": lambda: maxsim.scores_batch(queries, bdocs),
            "maxsim-cpu batch": lambda: np.stack(
                [maxsim_cpu.maxsim_scores(q, bdocs) for q in queries]
            ),
        },
        max(3, rounds // 2),
    )
    _report(
        f"float32, batch workload (32 queries), {threads} thread(s), ms per query",
        times,
        [("maxsim-cpu batch", "maxsim batch")],
        per_call=len(queries),
    )


def hamming_row(threads: int, rounds: int) -> None:
    import faiss
    import numpy as np
    from maxsim import binary as mb

    faiss.omp_set_num_threads(threads)
    from maxsim import _native

    _native.set_num_threads(threads)
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(1_000_000, 64), dtype=np.uint8)
    q = rng.integers(0, 256, size=(100, 64), dtype=np.uint8)
    index = faiss.IndexBinaryFlat(512)
    index.add(db)
    ours = mb.BinaryIndex(512)
    ours.add(db)
    want = index.search(q, 10)
    for got in (mb.search(q, db, 10), ours.search(q, 10)):
        assert (np.asarray(got[0]) == want[0]).all() and (np.asarray(got[1]) == want[1]).all()
    print(f"kernel: {_native.binary_impls()[1]}; results equal faiss's (distances and ids)")
    times = _rounds(
        {
            "maxsim.binary.search": lambda: mb.search(q, db, 10),
            "BinaryIndex.search": lambda: ours.search(q, 10),
            "faiss IndexBinaryFlat": lambda: index.search(q, 10),
        },
        rounds,
    )
    _report(
        f"Hamming, 1M x 512 bit, 100 queries, k=10, {threads} thread(s), ms per query",
        times,
        [
            ("faiss IndexBinaryFlat", "maxsim.binary.search"),
            ("faiss IndexBinaryFlat", "BinaryIndex.search"),
        ],
        per_call=100,
    )


def reduced_row(threads: int, rounds: int) -> None:
    import maxsim
    from maxsim.bench import workloads as wl

    maxsim.set_num_threads(threads)
    fixed = wl.make("fixed", n_docs=1000)
    docs = fixed.docs3d
    query = fixed.queries[0]
    stored = {
        "float32": docs,
        "bfloat16": maxsim.quantize(docs, "bfloat16"),
        "float16": maxsim.quantize(docs, "float16"),
        "int8": maxsim.quantize(docs, "int8_per_token"),
    }
    times = _rounds(
        {name: (lambda d=d: maxsim.scores(query, d)) for name, d in stored.items()}, rounds
    )
    _report(
        f"reduced precision, fixed workload, {threads} thread(s)",
        times,
        [("float32", name) for name in ("bfloat16", "float16", "int8")],
    )


def _peer_paths(row: str) -> str:
    """The code path each peer of ``row`` runs, as far as it says."""
    if row == "hamming":
        import faiss

        return f"faiss {faiss.__version__}, SIMD level {faiss.SIMDConfig.get_level_name()}"
    if row == "float":
        # libxsmm picks its target when it loads and only reports it at exit
        # (LIBXSMM_VERBOSE); the environment is what chose it.
        return f"maxsim-cpu, LIBXSMM_TARGET={os.environ.get('LIBXSMM_TARGET', '(auto)')}"
    return "none (maxsim against its own float32)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("row", choices=("float", "hamming", "reduced"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--peers-avx2",
        action="store_true",
        help="run faiss and maxsim-cpu on their AVX2 code (FAISS_SIMD_LEVEL=AVX2, "
        "LIBXSMM_TARGET=hsw)",
    )
    args = p.parse_args(argv)
    # maxsim-cpu sizes its rayon pool from this when it is imported.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    if args.peers_avx2:
        # Both libraries read these once, when they load.
        os.environ["FAISS_SIMD_LEVEL"] = "AVX2"
        os.environ["LIBXSMM_TARGET"] = "hsw"
    import maxsim

    info = maxsim.info()
    print(f"kernel {info['kernel']}: {info['kernel_paths']}")
    print(f"peers: {_peer_paths(args.row)}")
    {"float": float_row, "hamming": hamming_row, "reduced": reduced_row}[args.row](
        args.threads, args.rounds
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
