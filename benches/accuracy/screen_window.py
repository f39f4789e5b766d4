"""How many document tokens a screen must refine, bf16 against int8, on real embeddings.

The float32 kernels screen every document token in bf16 (``vdpbf16ps``) and
recompute exactly only the tokens whose approximate similarity lies within twice
the error bound of the best one (``rust/maxsim-core/src/float/screen.rs``). The
screen tracks four candidates per query token; a 16-token query vector with a
lane that has more is screened a second time. A screen in int8 (``vpdpbusd``,
twice the products per instruction on Zen 4) would have a wider bound. This
script measures both windows on SciFact token embeddings of the bundled
all-MiniLM-L6-v2 (as ``benches/accuracy/reduced_accuracy.py`` makes them), at 384
dimensions and after a seeded Gaussian projection to 128 (ColBERT's width,
L2-normalised again).

For query token ``q`` with rounding ``q̂`` and a document with tokens ``d_j``
(roundings ``d̂_j``), the screen's bound is, up to float32 terms,
``ε = ‖q − q̂‖ · max_j ‖d_j‖ + ‖q̂‖ · max_j ‖d_j − d̂_j‖``. bf16 rounds to
nearest even; int8 is ``maxsim.quantize``'s per-token symmetric absmax scale.
A token is a candidate when its similarity is at least ``max_j s_j − 2ε``
(similarities in float32 here; the estimate does not depend on that).

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/accuracy/screen_window.py \\
        [--docs 1000] [--queries 100] [--cache DIR]

Encoding the documents takes about a minute on 2 CPU cores; ``--cache`` (the
same files as ``benches/accuracy/reduced_accuracy.py --cache``, all 5,183 documents) skips it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reduced_accuracy import encode_tokens  # noqa: E402
from scifact import DEFAULT_DATA, load_scifact  # noqa: E402

#: Candidates the screen tracks per query token before it screens a vector again.
TRACKED = 4
#: Query tokens per screened vector.
LANES = 16


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 → bf16 (round to nearest even) → float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32)


def int8_round(x: np.ndarray) -> np.ndarray:
    """Per-token symmetric int8 (scale = max|x| / 127, round half to even), dequantized."""
    scale = np.abs(x).max(axis=-1, keepdims=True) / 127
    safe = np.where(scale > 0, scale, 1)
    return (np.clip(np.rint(x / safe), -127, 127) * scale).astype(np.float32)


def windows(queries, docs, rounding) -> np.ndarray:
    """Candidates per (query token, document): tokens within twice the bound of the best."""
    counts = []
    doc_rounded = [rounding(d) for d in docs]
    doc_norm = np.array([np.linalg.norm(d, axis=1).max() for d in docs])
    doc_error = np.array([np.linalg.norm(d - r, axis=1).max() for d, r in zip(docs, doc_rounded)])
    for q in queries:
        q_rounded = rounding(q)
        q_error = np.linalg.norm(q - q_rounded, axis=1)[:, None]
        q_norm = np.linalg.norm(q_rounded, axis=1)[:, None]
        per_doc = []
        for d, norm, error in zip(docs, doc_norm, doc_error):
            sims = q @ d.T
            eps = q_error * norm + q_norm * error
            best = sims.max(axis=1, keepdims=True)
            per_doc.append((sims >= best - 2 * eps).sum(axis=1))
        counts.append(np.stack(per_doc, axis=1))  # (query tokens, documents)
    return counts


def summarise(counts: list[np.ndarray]) -> dict[str, float]:
    flat = np.concatenate([c.ravel() for c in counts])
    rescans = []
    for c in counts:
        for v0 in range(0, c.shape[0], LANES):
            rescans.append((c[v0 : v0 + LANES] > TRACKED).any(axis=0))
    return {
        "mean": float(flat.mean()),
        "p99": float(np.percentile(flat, 99)),
        "over_tracked": float((flat > TRACKED).mean()),
        "vectors_rescreened": float(np.concatenate(rescans).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    _, doc_texts, _, query_texts, _ = load_scifact(args.data)
    doc_texts, query_texts = doc_texts[: args.docs], query_texts[: args.queries]
    if args.cache is not None and (args.cache / "docs256_flat.npy").exists():
        flat = np.load(args.cache / "docs256_flat.npy")
        lengths = np.load(args.cache / "docs256_lengths.npy")[: args.docs]
        flat = flat[: lengths.sum()]
        q_flat = np.load(args.cache / "queries64_flat.npy")
        q_lengths = np.load(args.cache / "queries64_lengths.npy")[: args.queries]
        q_flat = q_flat[: q_lengths.sum()]
    else:
        flat, lengths = encode_tokens(doc_texts, 256)
        q_flat, q_lengths = encode_tokens(query_texts, 64)

    rng = np.random.default_rng(0)
    projection = rng.standard_normal((flat.shape[1], 128)).astype(np.float32)
    print(
        f"{len(lengths)} documents ({lengths.mean():.0f} tokens on average), "
        f"{len(q_lengths)} queries ({q_lengths.mean():.1f} tokens)"
    )
    print(
        "| embeddings | screen | candidates per query token | p99 | share > 4 "
        "| vectors screened twice |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for label, proj in (("MiniLM 384-d", None), ("projected to 128-d", projection)):

        def prepare(x: np.ndarray, proj=proj) -> np.ndarray:
            y = x if proj is None else x @ proj
            return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)

        d_all, q_all = prepare(flat), prepare(q_flat)
        docs = np.split(d_all, np.cumsum(lengths)[:-1])
        queries = np.split(q_all, np.cumsum(q_lengths)[:-1])
        for name, rounding in (("bf16", bf16_round), ("int8", int8_round)):
            s = summarise(windows(queries, docs, rounding))
            print(
                f"| {label} | {name} | {s['mean']:.2f} | {s['p99']:.0f} | "
                f"{100 * s['over_tracked']:.1f} % | {100 * s['vectors_rescreened']:.1f} % |"
            )


if __name__ == "__main__":
    main()
