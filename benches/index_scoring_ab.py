"""maxsim.Index's residual scoring: lookup tables against decoded vectors.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/index_scoring_ab.py scifact \\
        --cache /tmp/scifact-cache --max-queries 100 --workdir /work/sfull-pq
    PYTHONPATH=python python3 benches/index_scoring_ab.py synthetic \\
        --tokens 10000000 --workdir /work/idx10m-pq

Opens the product-codec index a ``benches/index_bench.py`` run left in
``WORKDIR/maxsim`` and times ``search(rerank=None)`` (the default without a
store) over every ``--settings`` ``NPROBE:N_CANDIDATES`` on 1 and 2 threads.
The two ways of scoring the final candidates, ``MAXSIM_INDEX_SCORING=tables``
(each token's score is its centroid's plus one table row per code) and
``decode`` (decode the tokens, then the core's MaxSim kernel), each run in a
fresh process (median of ``--repeats`` timed searches after a warm one),
alternating for ``--rounds`` rounds (first side swapped each round). Prints
the median over rounds of queries per second per side, their ratio, recall@10
against ``WORKDIR/exhaustive.npz`` and whether both sides returned the same
ids (their scores agree to float rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import index_bench as B  # noqa: E402
import maxsim  # noqa: E402


def child(args: argparse.Namespace) -> None:
    _, queries, _ = (B.scifact if args.corpus == "scifact" else B.synthetic)(args)
    index = maxsim.Index.open(str(args.workdir / "maxsim"))
    assert index.stats()["codec"] == "pq", "the tables need the product codec"
    out: dict = {}
    ids = {}
    for setting in args.settings.split(","):
        nprobe, ncand = map(int, setting.split(":"))
        for t in (1, 2):
            maxsim.set_num_threads(t)

            def run(p: int = nprobe, c: int = ncand) -> np.ndarray:
                return index.search(queries, B.K, nprobe=p, n_candidates=c, rerank=None)[1]

            ids[setting] = run()  # warm: mapped pages and tables
            out[f"{setting}/{t}t"] = len(queries) / B.median_time(run, args.repeats)
    np.savez(args.child_out, **{k.replace(":", "_"): v for k, v in ids.items()})
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    B.corpus_arguments(ap)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--settings", default="8:256,8:1024")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="timed searches per process")
    ap.add_argument("--child", choices=["tables", "decode"], default=None)
    ap.add_argument("--child-out", type=Path, default=None)
    args = ap.parse_args()
    if args.child:
        return child(args)
    print(f"CPU: {B.cpu_name()}", file=sys.stderr)
    ref = np.load(args.workdir / "exhaustive.npz")["ids"]
    runs: dict = {"tables": [], "decode": []}
    ids: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("tables", "decode") if r % 2 == 0 else ("decode", "tables"):
                out = Path(tmp) / f"{mode}.npz"
                argv = [a for a in sys.argv[1:]]
                cmd = [sys.executable, __file__, *argv, "--child", mode, "--child-out", str(out)]
                env = dict(os.environ, MAXSIM_INDEX_SCORING=mode)
                res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                runs[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
                ids[mode] = dict(np.load(out))
                print(f"round {r} {mode}: {runs[mode][-1]}", file=sys.stderr, flush=True)
    for key in runs["tables"][0]:
        qps = {m: float(np.median([run[key] for run in runs[m]])) for m in runs}
        setting = key.split("/")[0].replace(":", "_")
        same = bool(np.array_equal(ids["tables"][setting], ids["decode"][setting]))
        row = {
            "setting": key,
            "tables_qps": qps["tables"],
            "decode_qps": qps["decode"],
            "tables_over_decode": qps["tables"] / qps["decode"],
            "recall@10": B.recall(ids["tables"][setting], ref),
            "same_ids": same,
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
