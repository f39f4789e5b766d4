"""``maxsim.pylate.colbert_scores_pairwise``: one native call for every pair
against one ``maxsim.scores`` call per pair (what it did before), same process.

B pairs of a 32-token query and a 180-token document (d = 128, torch float32,
as PyLate passes them), medians of 21 calls, two rounds. Needs torch.

    PYTHONPATH=python python3 benches/bench_pairwise.py [--batches 32,256]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import maxsim  # noqa: E402
from maxsim.bench.core import alternating_medians_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="32,256")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import maxsim.pylate as mp
    import torch

    rng = np.random.default_rng(0)
    print(f"threads {maxsim.get_num_threads()}")
    print("| pairs | one call per pair ms | one call ms | speedup |")
    print("|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        queries = torch.from_numpy(rng.standard_normal((batch, 32, 128), dtype=np.float32))
        docs = torch.from_numpy(rng.standard_normal((batch, 180, 128), dtype=np.float32))

        def per_pair(q: torch.Tensor = queries, d: torch.Tensor = docs) -> list[float]:
            return [float(maxsim.scores(a.numpy(), b.numpy()[None])[0]) for a, b in zip(q, d)]

        def one_call(q: torch.Tensor = queries, d: torch.Tensor = docs) -> torch.Tensor:
            return mp.colbert_scores_pairwise(q, d)

        np.testing.assert_array_equal(one_call().numpy(), np.float32(per_pair()))
        o, n = alternating_medians_ms([per_pair, one_call], args.rounds, 21)
        print(f"| {batch} | {o:.2f} | {n:.2f} | {o / n:.2f}x |")


if __name__ == "__main__":
    main()
