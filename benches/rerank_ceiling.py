"""How close ``maxsim.pylate.rerank`` can get to 20x PyLate on this machine.

The PyLate ``rerank`` workload (``maxsim bench --suite pylate``: 10 queries of
32 tokens, 1000 float32 candidates of 50-300 tokens each, d = 128) timed in
stages, with ``pylate.rank.rerank`` in the same process, alternating rounds:

* ``pylate.rank.rerank``: the peer (its padded einsum and sort);
* ``maxsim.pylate.rerank``: the whole call (checks, one native call for all
  ten queries, ``torch.sort`` and the ``{"id", "score"}`` dicts);
* ``native float32``: that native call alone (``_native.maxsim_list_groups``):
  each candidate converted to bf16 with its rounding-error bound while it is
  screened, the maxima recomputed in float32;
* ``native bf16 in place``: the same screen on the same candidates stored in
  bfloat16 beforehand (``_native.maxsim_half_list_groups``), so nothing is
  converted and half the bytes stream: what the float32 call would cost if
  conversion were free (it is not a substitute: its maxima are those of the
  bf16-rounded candidates);
* ``products floor``: the MaxSim products alone at this core's measured
  ``vdpbf16ps`` peak times the threads (``_native.bf16_dot_peak_gflops``);
* ``reading the candidates``: one plain read of as many bytes as the float32
  candidates, at the read bandwidth the same threads reach
  (``_native.read_bandwidth_gbs``, best of 5 passes over a buffer of that
  size): the time a float32 call spends at least on memory, overlapped or not.

Each stage's line gives its median and PyLate's median over it: the best
ratio a rerank built on that stage could reach. Needs torch, pylate and
ml_dtypes.

    PYTHONPATH=python python3 benches/rerank_ceiling.py [--threads 1,2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
from pathlib import Path
from typing import Any, Callable

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random data: no model downloads

import maxsim  # noqa: E402
from maxsim import _native  # noqa: E402
from maxsim.bench.pylate import FULL, floor_ms, rerank_workload  # noqa: E402
from maxsim.bench.timing import alternating_medians_ms  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per count")
    args = parser.parse_args(argv)

    import maxsim.pylate as mp
    import ml_dtypes
    import pylate.rank.rank
    import torch

    mp.unpatch()
    workload = rerank_workload(FULL)
    _, queries, candidates = workload
    flat = [doc for group in candidates for doc in group]
    offsets = [0, *itertools.accumulate(len(group) for group in candidates)]
    flat_bf16 = [doc.astype(ml_dtypes.bfloat16) for doc in flat]
    flop = 2.0 * FULL["query_len"] * FULL["dim"] * sum(doc.shape[0] for doc in flat)
    candidate_bytes = sum(doc.nbytes for doc in flat)
    bf16_peak = _native.bf16_dot_peak_gflops()
    stages: dict[str, Callable[[], Any]] = {
        "pylate.rank.rerank": lambda: pylate.rank.rank.rerank(*workload),
        "native float32": lambda: _native.maxsim_list_groups(queries, flat, offsets, None),
        "native bf16 in place": lambda: _native.maxsim_half_list_groups(
            queries, flat_bf16, offsets, True, None
        ),
        "maxsim.pylate.rerank": lambda: mp.rerank(*workload),
    }
    print(
        f"maxsim {maxsim.__version__}, {os.cpu_count()} CPUs; {FULL['n_queries']} queries x "
        f"{FULL['query_len']} tokens, {FULL['n_docs']} candidates of {FULL['min_len']}-"
        f"{FULL['max_len']} tokens each, d={FULL['dim']}; {flop / 1e9:.1f} GFLOP of MaxSim, "
        f"{candidate_bytes / 1e6:.0f} MB of float32 candidates; "
        f"vdpbf16ps peak {bf16_peak and round(bf16_peak)} GFLOP/s per core"
    )
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        maxsim.set_num_threads(threads)
        # One call per stage per round: PyLate's takes seconds.
        ms = alternating_medians_ms(list(stages.values()), args.rounds, repeat=1)
        medians = dict(zip(stages, ms))
        floor = floor_ms(flop, bf16_peak, threads)
        if floor is not None:
            medians["products floor"] = floor
        gbs = _native.read_bandwidth_gbs(threads, mib=candidate_bytes >> 20, passes=5)
        medians["reading the candidates"] = candidate_bytes / (gbs * 1e9) * 1e3
        base = medians["pylate.rank.rerank"]
        print(f"\n{threads} thread(s), median of {args.rounds}:")
        for name, ms in medians.items():
            print(f"  {name:<22} {ms:9.1f} ms   PyLate / this = {base / ms:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
