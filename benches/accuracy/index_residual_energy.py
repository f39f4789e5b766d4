"""How clustered a corpus is, seen by maxsim.Index's own centroids.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/accuracy/index_residual_energy.py \\
        scifact --cache /tmp/scifact-cache --index /work/sfull-pq/maxsim
    PYTHONPATH=python python3 benches/accuracy/index_residual_energy.py \\
        synthetic --tokens 1250000 --noise 0.7 --index /tmp/syn07/maxsim

For every ``--every``-th token of the corpus (``benches/index_bench.py``'s
corpora and options), its nearest centroid by inner product (the index's
assignment rule) among the centroids of ``--index`` (an index built on that
corpus, e.g. by ``index_bench.py --workdir``). Printed:

* the residual energy fraction ``Σ |x - c(x)|² / Σ |x|²``: the share of the
  tokens' energy the centroids leave to the ``nbits`` residual codes (what
  they cannot encode is lost without a store);
* the participation ratio of the residuals' covariance spectrum,
  ``(Σ λ)² / Σ λ²``, as a share of the dimension: 1 for isotropic residuals
  (no 2-bit code beats the Gaussian rate-distortion bound on them), lower
  where a few directions carry most of the residual energy;
* the same ratio of the per-dimension variances (low where the energy sits
  in a few coordinates, which per-dimension codes exploit).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import index_bench  # noqa: E402


def centroids(index_dir: Path, dim: int) -> np.ndarray:
    """The ``centroids`` section of the index's training file (the sectioned
    layout of ``rust/maxsim-index/src/file.rs``: magic, kind, section count,
    then 40-byte entries of name, offset, length, CRC-32)."""
    # The manifest is one JSON line, then its checksum line.
    manifest = json.loads((index_dir / "manifest.json").read_text().splitlines()[0])
    name = manifest["training"]["name"]
    data = (index_dir / name).read_bytes()
    (count,) = struct.unpack_from("<I", data, 12)
    for i in range(count):
        entry = 16 + 40 * i
        section = data[entry : entry + 16].rstrip(b"\0").decode()
        offset, length = struct.unpack_from("<QQ", data, entry + 16)
        if section == "centroids":
            return np.frombuffer(data, np.float32, length // 4, offset).reshape(-1, dim)
    raise SystemExit(f"{index_dir / name}: no centroids section")


def participation(values: np.ndarray) -> float:
    return float(values.sum() ** 2 / (values**2).sum() / len(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    index_bench.corpus_arguments(parser)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--every", type=int, default=10, help="use every n-th token")
    args = parser.parse_args()
    batches, queries, _ = (
        index_bench.scifact if args.corpus == "scifact" else index_bench.synthetic
    )(args)
    dim = queries[0].shape[1]
    cents = centroids(args.index, dim)
    tokens = np.concatenate([d for _, b in batches(1000) for d in b])[:: args.every]
    residuals = np.empty_like(tokens)
    for start in range(0, len(tokens), 16384):
        x = tokens[start : start + 16384]
        residuals[start : start + 16384] = x - cents[np.argmax(x @ cents.T, axis=1)]
    energy = float((residuals**2).sum() / (tokens**2).sum())
    spectrum = np.linalg.eigvalsh(np.cov(residuals.T))
    print(
        f"{args.corpus}: {len(tokens):,} tokens (every {args.every}th), {len(cents):,} "
        f"centroids, dim {dim}: residual energy fraction {energy:.3f}; participation "
        f"ratio of the residual spectrum {participation(spectrum):.2f} of the dimension, "
        f"of the per-dimension variances {participation(residuals.var(axis=0)):.2f}"
    )


if __name__ == "__main__":
    main()
