"""Export ``maxsim.models`` encoders to ONNX: ``maxsim export onnx MODEL OUT_DIR``.

Only the transformer goes into the graph (the torch backend's network, traced by
``torch.onnx.export(dynamo=True)``); the tokenizer, the settings and the numpy
heads are written beside it, so the ONNX backend runs exactly the
pre/post-processing code of the torch backend. torch and transformers are
needed here, never at run time.

``int8=True`` adds ``*_int8.onnx`` graphs made with ONNX Runtime's dynamic
quantization (int8 weights per output channel, activations quantized per call
with one scale per tensor, MatMul only). Two kinds of projection stay float32
(``_keeps_float``), because their rounding error reaches the residual stream
unfiltered:

* the feed-forward output projections, in every class. Their inputs (the GELU
  activations) carry the outliers that one per-tensor scale resolves worst:
  ``benches/accuracy/encoders_fast_accuracy.py`` showed that ColBERT needs it
  (quantizing them cost 0.026 SciFact NDCG@10, keeping them float measured
  +0.002), and on all-MiniLM-L6-v2 quantizing them too doubled the embedding
  error (mean 1 - cosine to float32 on 256 SciFact documents 0.0049, against
  0.0022 kept float).
* the BERT family's attention value projections (``attention.self.value``).
  Q, K and V read the same quantized layer-norm output, but the error of Q and K
  is damped by the softmax, while V's goes straight through the attention
  output into the residual. On all-MiniLM-L6-v2, keeping the 6 value
  projections float took the error from 0.0022 to 0.0012 (queries 0.0036 to
  0.0023) for a twelfth of the weight FLOPs, and SciFact NDCG@10 from 0.63942 to
  0.64675 (published float32: 0.64508), at about 5% of the int8 encoding time;
  keeping Q, K or the attention output projection float instead gained under 3%
  (``benches/accuracy/onnx_int8_keep_float.py``). ModernBERT packs Q, K and V in one
  ``Wqkv`` and Llama-style models were not measured; they keep only the
  feed-forward outputs float.

The folder is written into a temporary sibling and renamed into place, so a
killed export leaves no half-written model behind.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ._backbone import is_ffn_output
from ._onnx_folder import CONFIG_NAME, FORMAT, FORMAT_VERSION, write_config

__all__ = ["DEFAULT_OPSET", "detect_kind", "export_onnx"]

DEFAULT_OPSET = 18
KINDS = ("ColBERT", "Embedder", "Reranker", "CausalReranker", "MatryoshkaReranker")
_COPIED_FILES = ("tokenizer_config.json", "special_tokens_map.json", "config.json")


def detect_kind(model_dir: Path) -> str:
    """Which ``maxsim.models`` class loads ``model_dir`` (PyLate / Stanford ColBERT,
    sentence-transformers, 2D-Matryoshka, sequence classification, causal LM)."""
    from ._common import read_json

    if (model_dir / "classification_heads.pt").is_file():
        return "MatryoshkaReranker"
    modules_path = model_dir / "modules.json"
    if modules_path.is_file():
        types = [str(m.get("type", "")) for m in read_json(modules_path)]
        if any(t.startswith("pylate.") for t in types):
            return "ColBERT"
        cfg_path = model_dir / "config_sentence_transformers.json"
        if cfg_path.is_file() and read_json(cfg_path).get("model_type") == "ColBERT":
            return "ColBERT"
        return "Embedder"
    config_path = model_dir / "config.json"
    if config_path.is_file():
        arch = (read_json(config_path).get("architectures") or [""])[0] or ""
        if arch == "HF_ColBERT":
            return "ColBERT"
        if arch.endswith("ForSequenceClassification"):
            return "Reranker"
        if arch.endswith("ForCausalLM"):
            return "CausalReranker"
    raise ValueError(
        f"cannot tell which encoder {model_dir} is (no modules.json, classification_heads.pt "
        "or a known architecture in config.json); pass kind="
    )


def _load(model: Any, kind: str | None) -> tuple[Any, Path | None]:
    from . import CausalReranker, ColBERT, Embedder, MatryoshkaReranker, Reranker
    from ._common import resolve_model_dir

    classes = {
        "ColBERT": ColBERT,
        "Embedder": Embedder,
        "Reranker": Reranker,
        "CausalReranker": CausalReranker,
        "MatryoshkaReranker": MatryoshkaReranker,
    }
    if isinstance(model, tuple(classes.values())):
        if getattr(model, "backend", "torch") != "torch":
            raise ValueError("export_onnx needs a torch-backend model")
        return model, None
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model must be a path, a hub id or a maxsim.models encoder, got {type(model).__name__}"
        )
    model_dir = resolve_model_dir(model)
    kind = kind or detect_kind(model_dir)
    if kind not in classes:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return classes[kind].from_pretrained(model_dir), model_dir


def _wrap(model: Any, forward: Any) -> Any:
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            token_type_ids: Any = None,
            position_ids: Any = None,
        ) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            if position_ids is not None:
                features["position_ids"] = position_ids
            return forward(self.model, features)

    return Graph().eval()


def _export_graph(
    module: Any, features: dict[str, np.ndarray], output: str, path: Path, opset: int
) -> None:
    import torch

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    kwargs = {k: torch.from_numpy(v) for k, v in features.items()}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (),
            os.fspath(path),
            kwargs=kwargs,
            input_names=list(kwargs),
            output_names=[output],
            dynamic_shapes={k: {0: batch, 1: seq} for k in kwargs},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _fuse_for_ort(path: Path, max_abs_diff: Any, feats: dict[str, np.ndarray]) -> dict[str, int]:
    """Replace the graph at ``path`` by one with ONNX Runtime's fused transformer ops
    (``MultiHeadAttention``, ``SkipLayerNormalization``, ``BiasGelu``...: onnxscript's
    ``ort_fusions``, written for graphs from the dynamo exporter). ONNX Runtime's own
    load-time fusions do not recognise the dynamo exporter's attention (a decomposed
    scaled-dot-product attention with ``IsNaN`` / ``Where`` guards), which then runs
    as a dozen element-wise passes over ``(batch, heads, seq, seq)`` tensors per layer.

    The fused graph is kept only if it still matches torch (``max_abs_diff(path,
    feats)`` at most 1e-4); otherwise, or when onnxscript cannot rewrite the graph,
    the plain graph stays. Returns the fusions applied (name -> count; empty when
    none).

    Q, K and V stay three MatMuls feeding ``MultiHeadAttention`` (onnxscript's last
    step, packing them into one ``Attention`` op, is skipped): dynamic quantization
    turns a packed ``Attention`` into ``QAttention``, which has no attention-bias
    input and would drop the padding mask, while three MatMuls quantize as usual."""
    from unittest import mock

    try:
        import onnx_ir as ir
        from onnxscript.rewriter.ort_fusions import _core as ort_fusions
    except ImportError:  # pragma: no cover - onnxscript is an export requirement
        return {}
    fused_path = path.with_name(path.stem + ".fused.onnx")
    try:
        model = ir.load(os.fspath(path))
        with mock.patch.object(ort_fusions, "fuse_attention", lambda model, debug=False: 0):
            model, counts = ort_fusions.optimize_for_ort(model)
        ir.save(model, os.fspath(fused_path))
        applied = {k: int(v) for k, v in counts.items() if v}
        if applied and max_abs_diff(fused_path, feats) <= 1e-4:
            os.replace(fused_path, path)
            return applied
    except Exception as exc:  # a rewrite that fails leaves the (checked) plain graph
        logging.getLogger(__name__).info("ORT fusions skipped for %s: %s", path.name, exc)
    fused_path.unlink(missing_ok=True)
    return {}


def _module_scopes(node: Any) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                return [str(s) for s in ast.literal_eval(prop.value)]
            except (ValueError, SyntaxError):
                return []
    return []


def _keeps_float(scope: str) -> bool:
    """Whether the int8 graph keeps the projection at module path ``scope`` float32
    (a feed-forward output or a BERT attention value projection; module docstring)."""
    return is_ffn_output(scope) or scope.endswith(".attention.self.value")


def _quantize(src: Path, dst: Path) -> int:
    """Dynamic int8 quantization of ``src``'s MatMuls, except those ``_keeps_float``
    names (found by the exporter's module name scopes); returns how many were kept
    float."""
    import onnx

    graph = onnx.load(os.fspath(src))
    keep, ffn = [], 0
    for node in graph.graph.node:
        if node.op_type == "MatMul":
            scopes = [s.removeprefix("model.") for s in _module_scopes(node)]
            if any(_keeps_float(s) for s in scopes):
                keep.append(node.name)
                ffn += any(is_ffn_output(s) for s in scopes)
    if not ffn:
        raise RuntimeError(
            f"{src}: no feed-forward output projection found in the graph's name scopes; "
            "cannot keep them float32"
        )
    quantize_matmuls(src, dst, keep)
    return len(keep)


def quantize_matmuls(src: Path, dst: Path, keep: list[str]) -> None:
    """ONNX Runtime's dynamic int8 quantization of ``src``'s MatMuls (int8 weights
    per output channel), except the nodes named in ``keep``, written to ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs a generic "consider pre-processing" advice on the root logger
    advice = _DropMessage("Please consider to run pre-processing")
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            os.fspath(src),
            os.fspath(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep,
        )
    finally:
        logging.getLogger().removeFilter(advice)


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _sample_features(obj: Any, kind: str) -> dict[str, np.ndarray]:
    texts = ["an example sentence for the export", "short one"]
    if kind == "ColBERT":
        return obj._tokenize(texts, is_query=False)
    if kind == "Embedder":
        pad = obj.text.special_ids.get("pad") or 0
        return obj.text.pad(obj.text.encode(texts, obj.max_seq_length), pad)
    return obj._features([(texts[0], texts[1]), (texts[1], texts[0])])


def _tokenizer_cfg(text: Any) -> dict[str, Any]:
    return {
        "file": "tokenizer.json",
        "special_ids": text.special_ids,
        "padding_side": text.padding_side,
        "model_max_length": text.model_max_length,
        "vocab_size": text.vocab_size,
    }


def _settings(obj: Any, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The class's settings (JSON) and head weights (npz) as its constructor takes them."""
    heads: dict[str, np.ndarray] = {}
    if kind == "ColBERT":
        meta = []
        for i, proj in enumerate(obj.projections):
            heads.update(proj.arrays(f"proj.{i}"))
            meta.append({"activation": proj.activation, "use_residual": proj.use_residual})
        keys = ("query_prefix", "document_prefix", "query_length", "document_length")
        keys += ("do_query_expansion", "attend_to_expansion_tokens", "skiplist_words")
        cfg = {k: getattr(obj, k) for k in (*keys, "do_lower_case")}
        cfg.update(projections=meta, output_dim=obj.dim)
        return cfg, heads
    if kind == "Embedder":
        for i, head in enumerate(obj.dense):
            heads.update(head.arrays(f"dense.{i}"))
        keys = ("pooling", "include_prompt", "max_seq_length", "do_lower_case", "prompts")
        cfg = {k: getattr(obj, k) for k in (*keys, "default_prompt_name", "hidden_size")}
        cfg["dense"] = [{"activation": h.activation} for h in obj.dense]
        return cfg, heads
    if obj.activation_name is None:
        raise ValueError(
            f"{kind} with a custom activation callable cannot be exported; "
            "load it with a named activation (or None) and apply yours to the scores"
        )
    cfg = {"activation": obj.activation_name, "max_length": obj.max_length}
    if kind == "Reranker":
        cfg["num_labels"] = obj.num_labels
    elif kind == "CausalReranker":
        cfg.update(
            prompt_template=obj.prompt_template, yes_token=obj.yes_token, no_token=obj.no_token
        )
    elif kind == "MatryoshkaReranker":
        for (layer, dim), head in obj.heads.items():
            heads.update(head.arrays(f"head.{layer}.{dim}"))
        cfg.update(layers=obj.layers, dims=obj.dims, num_layers=obj.num_layers)
    return cfg, heads


def _exit_module(model: Any, layer: int) -> Any:
    """A shallow copy of a ModernBERT-style encoder that runs only its first ``layer``
    layers; the final norm is kept for an intermediate exit and dropped for the last
    (as the torch backend's hook takes the last layer's output before the norm)."""
    import copy

    import torch

    short = copy.copy(model)
    short._modules = dict(model._modules)
    short.layers = torch.nn.ModuleList(list(model.layers)[:layer])
    if layer == len(model.layers):
        short.final_norm = torch.nn.Identity()
    return short


def _graphs(obj: Any, kind: str) -> dict[str, tuple[Any, str, dict[str, np.ndarray]]]:
    """Graph key -> (torch module to trace, output name, sample features)."""
    feats = _sample_features(obj, kind)
    if kind == "MatryoshkaReranker":
        feats.pop("token_type_ids", None)
        return {
            f"exit_{layer}": (
                _wrap(
                    _exit_module(obj.model, layer),
                    lambda m, f: m(**f, return_dict=True).last_hidden_state[:, 0],
                ),
                "cls",
                feats,
            )
            for layer in obj.layers
        }
    names = obj.network.input_names
    feats = {k: v for k, v in feats.items() if k in names}
    forward, output = {
        "ColBERT": (obj.network.forward, "token_embeddings"),
        "Embedder": (obj.network.forward, "token_embeddings"),
        "Reranker": (obj.network.forward, "logits"),
        "CausalReranker": (obj.network.forward, "last_logits"),
    }[kind]
    return {"model": (_wrap(obj.model, forward), output, feats)}


def _max_abs_diff(obj: Any, kind: str, module: Any, path: Path, feats: dict) -> float:
    """The exported graph against the torch module on the sample features."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, feats)
    with torch.inference_mode():
        want = module(**{k: torch.from_numpy(v) for k, v in feats.items()}).float().numpy()
    return float(np.abs(got - want).max())


def export_onnx(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    int8: bool = False,
    opset: int = DEFAULT_OPSET,
    kind: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export an encoder to an ONNX folder that ``from_pretrained(..., backend="onnx")``
    loads without torch.

    Args:
        model: a model directory / hub id (the class is detected, or ``kind``), or a
            loaded torch-backend ``ColBERT``, ``Embedder``, ``Reranker``,
            ``CausalReranker`` or ``MatryoshkaReranker``.
        out_dir: the folder to create (must not exist, unless ``overwrite``).
        int8: also write dynamic-int8 graphs (``model_int8.onnx``, ``exit_<k>_int8.onnx``).
        opset: ONNX opset of the graphs (default 18).
        kind: the class name, when it cannot be detected from the folder.
        overwrite: replace an existing ``out_dir``.

    Returns:
        The folder's path.

    Raises:
        ValueError: an unknown kind, an existing ``out_dir``, a bad opset, or an
            exported graph that does not reproduce the torch module (max abs diff
            above 1e-4 on sample inputs).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or not 14 <= opset <= 23:
        raise ValueError(f"opset must be an int in [14, 23], got {opset!r}")
    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out_dir {out} already exists (pass overwrite=True to replace it)")
    obj, source_dir = _load(model, kind)
    kind = type(obj).__name__
    with atomic_directory(out) as tmp:
        graphs: dict[str, dict[str, str]] = {"fp32": {}, "int8": {}}
        fusions: dict[str, dict[str, int]] = {}
        input_names: list[str] = []
        output = ""
        for key, (module, output, feats) in _graphs(obj, kind).items():
            name = f"{key}.onnx"
            _export_graph(module, feats, output, tmp / name, opset)
            diff = _max_abs_diff(obj, kind, module, tmp / name, feats)
            if not diff <= 1e-4:
                raise ValueError(f"exported {name} differs from torch by {diff:.2e} (> 1e-4)")
            check = partial(_max_abs_diff, obj, kind, module)
            fusions[key] = _fuse_for_ort(tmp / name, check, feats)
            graphs["fp32"][key] = name
            input_names = list(feats)
            if int8:
                graphs["int8"][key] = f"{key}_int8.onnx"
                _quantize(tmp / name, tmp / graphs["int8"][key])
        (tmp / "tokenizer.json").write_text(obj.text.to_str(), encoding="utf-8")
        for fname in _COPIED_FILES:
            src = (source_dir / fname) if source_dir is not None else None
            if src is not None and src.is_file():
                shutil.copyfile(src, tmp / fname)
        cfg, heads = _settings(obj, kind)
        heads_name = None
        if heads:
            heads_name = "heads.npz"
            np.savez(tmp / heads_name, **heads)
        files = sorted(p.name for p in tmp.iterdir())
        write_config(
            tmp,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "class": kind,
                "opset": opset,
                "source": str(model) if isinstance(model, (str, os.PathLike)) else obj.name,
                "graphs": graphs,
                "ort_fusions": fusions,
                "inputs": input_names,
                "output": output,
                "tokenizer": _tokenizer_cfg(obj.text),
                "heads": heads_name,
                "word_embeddings_sha256": _table_digest(obj),
                "config": cfg,
                "files": {f: (tmp / f).stat().st_size for f in files},
                "sha256": {f: _sha256(tmp / f) for f in files},
            },
        )
        for f in [*files, CONFIG_NAME]:
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
    return out


def _table_digest(obj: Any) -> str | None:
    """sha256 of the float32 word-embedding table (EmbedRerank checks that two
    exported folders hold the same one)."""
    get = getattr(obj.model, "get_input_embeddings", None)
    if get is None:
        return None
    table = get().weight.detach().float().cpu().numpy()
    return hashlib.sha256(np.ascontiguousarray(table).tobytes()).hexdigest()


@contextlib.contextmanager
def atomic_directory(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to fill; on success it is renamed to ``out`` (an
    older ``out`` is moved aside first and removed after), on any error removed.
    A SIGKILL leaves at most a hidden ``.<name>.*`` sibling, never a partial ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    """``maxsim export onnx MODEL OUT_DIR [--int8] [--opset N] [--kind K] [--overwrite]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="maxsim export onnx",
        description="Export a ColBERT / Embedder / Reranker / CausalReranker / "
        "MatryoshkaReranker model to an ONNX folder for backend='onnx' (needs torch, "
        "transformers, onnx, onnxscript and onnxruntime here; only onnxruntime, "
        "tokenizers and numpy where it runs).",
    )
    parser.add_argument("model", help="model directory or hub id")
    parser.add_argument("out_dir", help="folder to create")
    parser.add_argument("--int8", action="store_true", help="also write dynamic-int8 graphs")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (18)")
    parser.add_argument("--kind", choices=KINDS, help="the class, if it cannot be detected")
    parser.add_argument("--overwrite", action="store_true", help="replace out_dir")
    args = parser.parse_args(argv)
    try:
        path = export_onnx(
            args.model,
            args.out_dir,
            int8=args.int8,
            opset=args.opset,
            kind=args.kind,
            overwrite=args.overwrite,
        )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        parser.error(str(exc))
    print(path)
    return 0
