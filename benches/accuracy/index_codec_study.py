"""Which residual codec can lift maxsim.Index's residual-only recall: a study.

    PYTHONPATH=python python3 benches/accuracy/index_codec_study.py \\
        --cache /tmp/scifact-cache1000 --centroids 4096

The index stores each token as its centroid plus the residual quantized to
``nbits`` per dimension with per-dimension buckets (ColBERTv2's scalar codec,
fitted per dimension). Without a full-vector store its recall@10 against
exhaustive MaxSim is capped by that codec, whatever ``nprobe`` and
``n_candidates`` are. This measures the cap of several codecs at the same bit
budget (2 bits per dimension) on the documents of ``--cache`` (the
``reduced_accuracy.cached`` token embeddings ``benches/index_bench.py`` uses):
MaxSim of the first ``--queries`` queries against every document rebuilt as
centroid + decoded residual, recall@10 against the same on the original
vectors. Centroids: faiss k-means (4 iterations, 32 sample tokens per
centroid, as the index trains).

Codecs: the scalar per-dimension codec (bucket cutoffs at the quartiles,
weights the bucket means), the same after a PCA or a random rotation, and
product quantization with 4-dimension sub-vectors and 8-bit codes (faiss
``ProductQuantizer``, and with an ``OPQMatrix`` rotation), which spends the
same 2 bits per dimension; and, as a bound, the reconstruction of an ideal
2-bit code of Gaussian values (Shannon's rate-distortion test channel).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import faiss
import maxsim
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp/scifact-cache1000"))
    ap.add_argument("--centroids", type=int, default=4096)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument(
        "--rows",
        default="scalar,rotations,pq,opq,bound",
        help="codecs to measure, comma-separated (default: all)",
    )
    args = ap.parse_args()

    docs = np.load(args.cache / "docs256_flat.npy")
    lengths = np.load(args.cache / "docs256_lengths.npy").astype(np.int64)
    q_flat = np.load(args.cache / "queries64_flat.npy")
    q_off = np.concatenate([[0], np.cumsum(np.load(args.cache / "queries64_lengths.npy"))])
    queries = [q_flat[q_off[i] : q_off[i + 1]] for i in range(args.queries)]
    dim, k = docs.shape[1], args.centroids
    faiss.omp_set_num_threads(1)  # deterministic k-means; OpenMP spin-waits on a shared machine

    rng = np.random.default_rng(0)
    sample = docs[rng.choice(len(docs), min(len(docs), 32 * k), replace=False)]
    kmeans = faiss.Kmeans(dim, k, niter=4, seed=0)
    kmeans.train(sample)
    _, assign = kmeans.index.search(docs, 1)
    centroid = kmeans.centroids[assign[:, 0]]
    residual = np.ascontiguousarray(docs - centroid)

    def top10(x: np.ndarray) -> np.ndarray:
        packed = maxsim.PackedDocs.from_lengths(np.ascontiguousarray(x, np.float32), lengths)
        return np.argsort(-maxsim.scores_batch(queries, packed), axis=1, kind="stable")[:, :10]

    reference = top10(docs)

    def report(name: str, decoded: np.ndarray) -> None:
        got = top10(centroid + decoded)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, reference)])
        mse = float(np.mean((decoded - residual) ** 2))
        print(f"{name:<44} residual MSE {mse:.3e}  recall@10 {recall:.3f}", flush=True)

    def scalar(x: np.ndarray, nbits: int = 2) -> np.ndarray:
        n = 1 << nbits
        cut = np.quantile(x[::7], np.linspace(0, 1, n + 1)[1:-1], axis=0)
        codes = (x[:, None, :] > cut[None]).sum(1)
        weights = np.zeros((n, dim), np.float32)
        for b in range(n):
            member = codes == b
            weights[b] = np.where(
                member.any(0), (x * member).sum(0) / np.maximum(member.sum(0), 1), 0
            )
        return weights[codes, np.arange(dim)]

    rows = set(args.rows.split(","))
    report("centroid only", np.zeros_like(residual))
    if "scalar" in rows:
        report("scalar 2 bits per dimension", scalar(residual))
    if "rotations" in rows:
        _, pca = np.linalg.eigh(np.cov(residual[::5].T))
        report("scalar 2 bits after a PCA rotation", scalar(residual @ pca) @ pca.T)
        rot, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((dim, dim)))
        report("scalar 2 bits after a random rotation", scalar(residual @ rot) @ rot.T)
    m = dim // 4
    if "pq" in rows:
        pq = faiss.ProductQuantizer(dim, m, 8)
        pq.train(np.ascontiguousarray(residual[::2]))
        report(f"PQ {m} x 8 bits (2 bits per dimension)", pq.decode(pq.compute_codes(residual)))
    if "opq" in rows:
        opq = faiss.OPQMatrix(dim, m)
        opq.train(np.ascontiguousarray(residual[::4]))
        rotated = opq.apply(residual)
        pq = faiss.ProductQuantizer(dim, m, 8)
        pq.train(np.ascontiguousarray(rotated[::2]))
        decoded = opq.reverse_transform(pq.decode(pq.compute_codes(rotated)))
        report(f"OPQ + PQ {m} x 8 bits", decoded)
    if "bound" in rows:
        # No code of 2 bits per dimension reconstructs i.i.d. Gaussian values
        # with a mean squared error below D = sigma^2 / 16 (Shannon's
        # rate-distortion bound, sigma^2 2^(-2R)). The optimal test channel
        # reconstructs x as mean + a (x - mean) + noise, a = 1 - D / sigma^2,
        # noise variance a D: the recall of such an ideal code where the
        # residuals are Gaussian (the synthetic corpus's are, up to each
        # centroid's offset from its topic).
        mean, var = residual.mean(axis=0), residual.var(axis=0)
        a = 1 - 1 / 16
        noise = np.random.default_rng(2).standard_normal(residual.shape).astype(np.float32)
        ideal = mean + a * (residual - mean) + np.sqrt(a * var / 16) * noise
        report("ideal 2-bit code of Gaussian values (bound)", ideal.astype(np.float32))


if __name__ == "__main__":
    main()
