"""``maxsim.pylate.colbert_kd_scores`` against PyLate's own, same process.

A knowledge-distillation batch as PyLate's trainer passes it: B queries of 32
tokens, each with N candidates of up to 180 tokens (d = 128, torch float32,
padded, with the padding masked), scored query b against its own
candidates. Medians of 11 calls, two rounds; threads from
``MAXSIM_NUM_THREADS`` (PyLate's torch from ``torch.get_num_threads``,
set to the same count). Needs torch and pylate.

    MAXSIM_NUM_THREADS=1 PYTHONPATH=python python3 benches/bench_kd_scores.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim.bench.timing import alternating_medians_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="16x32,64x16", help="BxN pairs, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import maxsim.pylate as mp
    import torch
    from pylate.scores import colbert_kd_scores as pylate_kd_scores

    threads = maxsim.get_num_threads()
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"threads {threads}")
    print("| B x N | PyLate ms | maxsim ms | speedup |")
    print("|---|---:|---:|---:|")
    for shape in args.shapes.split(","):
        batch, n_cand = (int(x) for x in shape.split("x"))
        q_len, d_len, dim = 32, 180, 128
        queries = rng.standard_normal((batch, q_len, dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=-1, keepdims=True)
        docs = rng.standard_normal((batch, n_cand, d_len, dim), dtype=np.float32)
        docs /= np.linalg.norm(docs, axis=-1, keepdims=True)
        lengths = rng.integers(40, d_len + 1, size=(batch, n_cand))
        mask = np.arange(d_len) < lengths[..., None]
        docs[~mask] = 0.0  # padding, as PyLate's collator leaves it
        q, d = torch.from_numpy(queries), torch.from_numpy(docs)
        qm = torch.ones((batch, q_len))
        dm = torch.from_numpy(mask.astype(np.float32))

        inputs = (q, d, qm, dm)

        def theirs(inputs: tuple[torch.Tensor, ...] = inputs) -> torch.Tensor:
            return pylate_kd_scores(*inputs)

        def ours(inputs: tuple[torch.Tensor, ...] = inputs) -> torch.Tensor:
            return mp.colbert_kd_scores(*inputs)

        torch.testing.assert_close(ours(), theirs(), atol=1e-4, rtol=0)
        p, m = alternating_medians_ms([theirs, ours], args.rounds, 11)
        print(f"| {batch} x {n_cand} | {p:.2f} | {m:.2f} | {p / m:.1f}x |")


if __name__ == "__main__":
    main()
