"""``maxsim.pylate.Index`` search, float32 and float16 storage, one process.

The index stores packed token embeddings; a float16 index is scored as it is
stored (maxsim widens float16 to float32 in registers), so it should search
as fast as a float32 one while holding half the bytes. ``--cache DIR`` takes
the documents from the SciFact ColBERT token embeddings that
``benches/accuracy/reduced_accuracy.py --cache DIR`` keeps
(``colbert_default_n5183_bs32_{flat,lens}.npy``); without it, 5,000 random
unit-norm documents of 50–300 tokens (d = 128). 10 queries of 32 tokens drawn
from the documents' tokens; full search (k = 10) and a per-query subset of
every third document. Needs torch (``maxsim.pylate``).

    PYTHONPATH=python python3 benches/bench_pylate_index.py [--cache DIR]
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
from maxsim.bench.timing import median_seconds  # noqa: E402


def load_docs(cache: Path | None, rng: np.random.Generator) -> list[np.ndarray]:
    if cache is not None:
        flat = np.load(cache / "colbert_default_n5183_bs32_flat.npy", mmap_mode="r")
        lengths = np.load(cache / "colbert_default_n5183_bs32_lens.npy")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return [
            np.ascontiguousarray(flat[offsets[i] : offsets[i + 1]], dtype=np.float32)
            for i in range(len(lengths))
        ]
    docs = []
    for n in rng.integers(50, 301, size=5000):
        x = rng.standard_normal((int(n), 128), dtype=np.float32)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import maxsim.pylate as mp

    rng = np.random.default_rng(0)
    docs = load_docs(args.cache, rng)
    ids = list(range(len(docs)))
    picks = rng.choice(len(docs), size=10)
    queries = np.stack([docs[j][rng.choice(len(docs[j]), 32)] for j in picks])
    subset = [ids[::3]] * len(queries)
    print(f"threads {maxsim.get_num_threads()}; {len(docs)} documents")
    print("| storage | search | ms |")
    print("|---|---|---:|")
    results = {}
    for dtype in ("float32", "float16"):
        index = mp.Index(dtype=dtype).add_documents(ids, docs)
        results[dtype] = index(queries, k=10)
        full = 1e3 * median_seconds(lambda i=index: i(queries, k=10), args.repeat)
        part = 1e3 * median_seconds(lambda i=index: i(queries, k=10, subset=subset), args.repeat)
        print(f"| {dtype} | full, k = 10 | {full:.1f} |")
        print(f"| {dtype} | subset of every third document | {part:.1f} |")
    same = [[r["id"] for r in q] for q in results["float32"]] == [
        [r["id"] for r in q] for q in results["float16"]
    ]
    print(f"float16 top-10 ids equal float32's: {same}")


if __name__ == "__main__":
    main()
