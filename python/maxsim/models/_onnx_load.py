"""``from_pretrained(..., backend="onnx")`` for each encoder (no torch imported).

Each loader reads maxsim's exported folder (:class:`~._onnx_folder.OnnxFolder`)
or, where their writers document them, third-party folders, and builds the same
class the torch loader builds, with an :class:`~._onnx_runtime.OnnxNetwork` in
place of the torch module.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from ._common import ModelNotFoundError, read_json
from ._heads import DenseHead, MatryoshkaHead, Projection
from ._onnx_folder import (
    CONFIG_NAME,
    PYLATE_ONNX_CONFIGS,
    OnnxFolder,
    find_onnx_file,
    third_party_layout,
)
from ._onnx_runtime import OnnxNetwork, import_onnxruntime
from ._st_layout import COLBERT_KEYS
from ._text import TextEncoder

__all__ = [
    "load_causal_reranker",
    "load_colbert",
    "load_embedder",
    "load_matryoshka",
    "load_reranker",
]

_TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _check_torch_options(device: Any, dtype: Any) -> None:
    import_onnxruntime()
    if device not in (None, "cpu"):
        raise ValueError(
            f"device={device!r} is a torch-backend option; with backend='onnx' pass "
            "providers=[...] (e.g. ['CUDAExecutionProvider']) instead"
        )
    if dtype not in (None, "float32", "fp32", "float"):
        raise ValueError(
            f"dtype={dtype!r} is a torch-backend option; the ONNX backend runs the graph "
            "as exported (float32, or int8 with int8_linear=True)"
        )


def _heads_list(heads: dict, prefix: str, meta: list[dict], cls: type) -> list[Any]:
    out = []
    for i, m in enumerate(meta):
        key = f"{prefix}.{i}"
        if f"{key}.weight" not in heads:
            raise ValueError(f"heads.npz has no {key}.weight")
        kwargs = {}
        if cls is Projection:
            kwargs = {"residual": heads.get(f"{key}.residual"), "use_residual": m["use_residual"]}
        out.append(cls(heads[f"{key}.weight"], heads.get(f"{key}.bias"), m["activation"], **kwargs))
    return out


def _is_maxsim(model_dir: Path) -> bool:
    return (model_dir / CONFIG_NAME).is_file()


def _no_layout(model_dir: Path) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{model_dir} has no {CONFIG_NAME} (write one with `maxsim export onnx`) and no "
        "third-party ONNX graph (model.onnx)"
    )


# ---------------------------------------------------------------------- Embedder
def load_embedder(
    cls: type,
    model_dir: Path,
    *,
    name: str,
    device: Any,
    dtype: Any,
    int8: bool,
    max_seq_length: int | None,
    session_options: Any,
    providers: Any,
    onnx_file: str | None,
    tokenizer_path: Any,
    pooling: str | None,
) -> Any:
    _check_torch_options(device, dtype)
    if _is_maxsim(model_dir):
        folder = OnnxFolder(model_dir, "Embedder")
        cfg = folder.config
        heads = folder.heads()
        network = folder.network(
            "model", int8=int8, session_options=session_options, providers=providers
        )
        return cls(
            network,
            folder.text_encoder(),
            hidden_size=cfg["hidden_size"],
            pooling=pooling or cfg["pooling"],
            include_prompt=cfg["include_prompt"],
            dense=_heads_list(heads, "dense", cfg.get("dense") or [], DenseHead),
            max_seq_length=max_seq_length or cfg["max_seq_length"],
            do_lower_case=cfg["do_lower_case"],
            prompts=cfg.get("prompts"),
            default_prompt_name=cfg.get("default_prompt_name"),
            backend="onnx",
            name=name,
        )
    if third_party_layout(model_dir) is None:
        raise _no_layout(model_dir)
    from ._st_layout import read_embedder_layout

    # Third-party folder: the graph gives token vectors, the settings come from the
    # sentence-transformers files beside it (or in tokenizer_path), else defaults.
    settings_dir = Path(tokenizer_path) if tokenizer_path is not None else model_dir
    if not settings_dir.is_dir():
        raise ModelNotFoundError(f"tokenizer_path {settings_dir} is not a directory")
    layout = read_embedder_layout(settings_dir)
    tok_dir = layout.transformer_dir
    if not (tok_dir / "tokenizer.json").is_file():
        raise ValueError(
            f"no tokenizer.json in {tok_dir}: pass tokenizer_path= a folder with the model's "
            "tokenizer (e.g. the sentence-transformers folder it was exported from)"
        )
    text = TextEncoder.from_file(tok_dir / "tokenizer.json")
    network = OnnxNetwork(
        find_onnx_file(model_dir, onnx_file, int8),
        allowed_inputs=_TOKEN_INPUTS,
        session_options=session_options,
        providers=providers,
    )
    for preferred in ("last_hidden_state", "token_embeddings"):
        if preferred in network.output_names:
            network.output = preferred
    hidden = _check_third_party_graph(network, text)
    if max_seq_length is None:
        max_seq_length = layout.max_seq_length or text.model_max_length or 512
    return cls(
        network,
        text,
        hidden_size=hidden,
        pooling=pooling or layout.pooling,
        include_prompt=layout.include_prompt,
        dense=layout.dense,
        max_seq_length=max_seq_length,
        do_lower_case=layout.do_lower_case,
        prompts=layout.prompts,
        default_prompt_name=layout.default_prompt_name,
        backend="onnx",
        name=name,
    )


def _check_third_party_graph(network: OnnxNetwork, text: TextEncoder) -> int:
    """Run a one-token probe: the output must be ``(1, seq, hidden)`` and the graph must
    accept the tokenizer's largest id (a vocabulary mismatch fails here, by name)."""
    import numpy as np

    probe_ids = np.array([[text.vocab_size - 1]], dtype=np.int64)
    probe = {"input_ids": probe_ids, "attention_mask": np.ones_like(probe_ids)}
    probe["token_type_ids"] = np.zeros_like(probe_ids)
    try:
        out = network(probe)
    except Exception as exc:
        raise ValueError(
            f"ONNX graph {network.path} fails on token id {text.vocab_size - 1}, the "
            f"tokenizer's largest ({text.vocab_size} tokens): tokenizer / vocabulary "
            f"mismatch? ({type(exc).__name__}: {exc})"
        ) from exc
    if out.ndim != 3 or out.shape[:2] != (1, 1):
        raise ValueError(
            f"ONNX graph {network.path}: output {network.output!r} has shape {out.shape} for "
            "one token; expected (batch, seq, hidden) token vectors"
        )
    return int(out.shape[2])


# ---------------------------------------------------------------------- ColBERT
def load_colbert(
    cls: type,
    model_dir: Path,
    overrides: dict[str, Any],
    *,
    name: str,
    device: Any,
    dtype: Any,
    int8: bool,
    session_options: Any,
    providers: Any,
    onnx_file: str | None,
) -> Any:
    _check_torch_options(device, dtype)
    if _is_maxsim(model_dir):
        folder = OnnxFolder(model_dir, "ColBERT")
        cfg = dict(folder.config)
        projections = _heads_list(folder.heads(), "proj", cfg.pop("projections"), Projection)
        lower = cfg.pop("do_lower_case")
        output_dim = cfg.pop("output_dim")
        network = folder.network(
            "model", int8=int8, session_options=session_options, providers=providers
        )
        text = folder.text_encoder()
        return cls(
            network,
            text,
            projections,
            do_lower_case=lower,
            output_dim=output_dim,
            backend="onnx",
            name=name,
            **{**cfg, **overrides},
        )
    layout = third_party_layout(model_dir)
    if layout is None:
        raise _no_layout(model_dir)
    cfg: dict[str, Any] = {}
    special: dict[str, Any] = {}
    if layout == "pylate-onnx-export":
        cfg_name = next(n for n in PYLATE_ONNX_CONFIGS if (model_dir / n).is_file())
        cfg = read_json(model_dir / cfg_name)
        special = {"mask": cfg.get("mask_token_id"), "pad": cfg.get("pad_token_id")}
        special = {k: v for k, v in special.items() if v is not None}
    if not (model_dir / "tokenizer.json").is_file():
        raise ValueError(f"no tokenizer.json in {model_dir}")
    text = TextEncoder.from_file(model_dir / "tokenizer.json", special)
    network = OnnxNetwork(
        find_onnx_file(model_dir, onnx_file, int8),
        allowed_inputs=_TOKEN_INPUTS,
        session_options=session_options,
        providers=providers,
    )
    dim = _check_third_party_graph(network, text)
    if layout == "pylate-onnx-export":
        # pylate-onnx-export writes PyLate's settings and resolved ids beside the graph,
        # whose output is already projected and normalized.
        conf = {k: cfg[k] for k in COLBERT_KEYS if cfg.get(k) is not None}
        lower = bool(cfg.get("do_lower_case", False))
        if cfg.get("embedding_dim") not in (None, dim):
            raise ValueError(
                f"{model_dir / cfg_name}: embedding_dim {cfg['embedding_dim']} but the graph "
                f"outputs {dim}"
            )
    else:
        # fastembed's ColBERT convention (its colbert.py): Stanford markers [unused0] /
        # [unused1] after [CLS], queries [MASK]-padded to 32 tokens, documents cut at the
        # tokenizer's model_max_length, punctuation skipped, the graph's output projected.
        conf = {
            "query_prefix": "[unused0]",
            "document_prefix": "[unused1]",
            "query_length": 32,
            "document_length": text.model_max_length or 512,
            "attend_to_expansion_tokens": False,
            "skiplist_words": list(string.punctuation),
        }
        lower = False
    return cls(
        network,
        text,
        [],
        do_lower_case=lower,
        output_dim=dim,
        backend="onnx",
        name=name,
        **{**conf, **overrides},
    )


# ---------------------------------------------------------------------- rerankers
def _own_folder(model_dir: Path, kind: str, device: Any, dtype: Any) -> OnnxFolder:
    """maxsim's exported folder of a ``kind`` model (rerankers have no third-party layout)."""
    _check_torch_options(device, dtype)
    if not _is_maxsim(model_dir):
        raise _no_layout(model_dir)
    return OnnxFolder(model_dir, kind)


def _activation(cfg: dict[str, Any], activation: Any, default: Any) -> Any:
    if isinstance(activation, str) and activation == "config":
        return cfg.get("activation", default)
    return activation


def load_reranker(
    cls: type,
    model_dir: Path,
    *,
    name: str,
    device: Any,
    dtype: Any,
    int8: bool,
    activation: Any,
    max_length: int | None,
    session_options: Any,
    providers: Any,
) -> Any:
    folder = _own_folder(model_dir, "Reranker", device, dtype)
    cfg = folder.config
    return cls(
        folder.network("model", int8=int8, session_options=session_options, providers=providers),
        folder.text_encoder(),
        activation=_activation(cfg, activation, "sigmoid"),
        max_length=max_length or cfg["max_length"],
        num_labels=cfg["num_labels"],
        backend="onnx",
        name=name,
    )


def load_causal_reranker(
    cls: type,
    model_dir: Path,
    settings: dict[str, Any],
    *,
    name: str,
    device: Any,
    dtype: Any,
    session_options: Any,
    providers: Any,
) -> Any:
    from .causal_reranker import DEFAULT_TEMPLATE

    folder = _own_folder(model_dir, "CausalReranker", device, dtype)
    cfg = folder.config
    defaults = {"prompt_template": DEFAULT_TEMPLATE, "yes_token": "1", "no_token": "0"}
    merged = {
        k: (cfg.get(k) if settings.get(k) in (None, defaults.get(k)) else settings[k])
        for k in ("prompt_template", "yes_token", "no_token", "max_length")
    }
    network = folder.network(
        "model",
        int8=False,
        allowed_inputs=("input_ids", "attention_mask", "position_ids"),
        session_options=session_options,
        providers=providers,
    )
    return cls(
        network,
        folder.text_encoder(),
        activation=settings.get("activation") or cfg.get("activation"),
        backend="onnx",
        name=name,
        **merged,
    )


class _OnnxExits:
    """One graph per exit layer, each loaded on first use."""

    def __init__(self, folder: OnnxFolder, int8: bool, options: Any, providers: Any) -> None:
        self.folder, self.int8 = folder, int8
        self.options, self.providers = options, providers
        self.networks: dict[int, OnnxNetwork] = {}
        available = folder.graph_keys(int8)
        wanted = [f"exit_{layer}" for layer in folder.config["layers"]]
        missing = [k for k in wanted if k not in available]
        if missing:
            raise ValueError(f"{folder.dir}: exit graphs {missing} are missing from its config")

    def __call__(self, features: dict[str, Any], layer: int, autocast: Any) -> Any:
        if layer not in self.networks:
            self.networks[layer] = self.folder.network(
                f"exit_{layer}",
                int8=self.int8,
                allowed_inputs=("input_ids", "attention_mask"),
                session_options=self.options,
                providers=self.providers,
            )
        return self.networks[layer](features, autocast)


def load_matryoshka(
    cls: type,
    model_dir: Path,
    *,
    name: str,
    device: Any,
    dtype: Any,
    int8: bool,
    activation: Any,
    max_length: int | None,
    session_options: Any,
    providers: Any,
) -> Any:
    folder = _own_folder(model_dir, "MatryoshkaReranker", device, dtype)
    cfg = folder.config
    arrays = folder.heads()
    heads = {}
    for layer in cfg["layers"]:
        for dim in cfg["dims"]:
            p = f"head.{layer}.{dim}"
            heads[(layer, dim)] = MatryoshkaHead(
                arrays[f"{p}.0.weight"], arrays[f"{p}.0.bias"], arrays[f"{p}.3.weight"],
                arrays[f"{p}.3.bias"],
            )  # fmt: skip
    return cls(
        _OnnxExits(folder, int8, session_options, providers),
        folder.text_encoder(),
        heads,
        num_layers=cfg["num_layers"],
        activation=activation if activation is not None else cfg.get("activation"),
        max_length=max_length or cfg["max_length"],
        backend="onnx",
        name=name,
    )
