"""Reading sentence-transformers / PyLate / Stanford ColBERT model folders into
backend-free settings and numpy head weights (no torch for safetensors files).

Used by the torch loaders, by the exporter (which stores the result in
``maxsim_onnx.json`` + ``heads.npz``) and by the ONNX loader for third-party
folders that carry these files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._backbone import load_state_numpy, parse_modules
from ._common import read_json
from ._heads import DenseHead, Projection

__all__ = [
    "COLBERT_KEYS",
    "ColbertLayout",
    "EmbedderLayout",
    "read_colbert_layout",
    "read_embedder_layout",
]

POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
POOLING_MODES = tuple(POOLING_KEYS.values())
COLBERT_KEYS = (
    "query_prefix",
    "document_prefix",
    "query_length",
    "document_length",
    "do_query_expansion",
    "attend_to_expansion_tokens",
    "skiplist_words",
)
_IDENTITY = "torch.nn.modules.linear.Identity"


@dataclass
class EmbedderLayout:
    transformer_dir: Path
    pooling: str = "mean"
    include_prompt: bool = True
    dense: list[DenseHead] = field(default_factory=list)
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def _dense_head(module_dir: Path, residual_ok: bool) -> DenseHead:
    cfg_path = module_dir / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"Dense module {module_dir} has no config.json")
    cfg = read_json(cfg_path, what=f"{module_dir.name}/config.json")
    try:
        in_f, out_f = int(cfg["in_features"]), int(cfg["out_features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_path}: needs in_features/out_features") from exc
    state = load_state_numpy(module_dir, what="Dense weights")
    weight = state.get("linear.weight")
    if weight is None or weight.shape != (out_f, in_f):
        raise ValueError(
            f"{module_dir}: linear.weight has shape "
            f"{None if weight is None else weight.shape}, config says ({out_f}, {in_f})"
        )
    bias = state.get("linear.bias") if cfg.get("bias", True) else None
    activation = cfg.get("activation_function", _IDENTITY)
    if not residual_ok:
        return DenseHead(weight, bias, activation)
    return Projection(
        weight,
        bias,
        activation,
        residual=state.get("residual.weight"),
        use_residual=bool(cfg.get("use_residual", False)),
    )


def read_embedder_layout(model_dir: Path) -> EmbedderLayout:
    """Settings of a sentence-transformers folder (a folder without ``modules.json``
    is a bare transformer with mean pooling, as sentence-transformers loads it).

    Raises:
        ValueError: malformed ``modules.json`` / module configs (naming the file).
    """
    modules = parse_modules(model_dir)
    layout = EmbedderLayout(transformer_dir=model_dir)
    if modules is not None:
        layout.transformer_dir = model_dir / modules[0].get("path", "")
        seen_pooling = False
        for entry in modules[1:]:
            mtype = entry["type"].removeprefix("sentence_transformers.models.").split(".")[-1]
            sub = model_dir / entry.get("path", "")
            if mtype == "Pooling":
                seen_pooling = True
                pcfg = read_json(sub / "config.json", what=f"{entry['path']}/config.json")
                if pcfg.get("pooling_mode"):
                    layout.pooling = str(pcfg["pooling_mode"]).lower()
                else:
                    chosen = [v for k, v in POOLING_KEYS.items() if pcfg.get(k)]
                    if len(chosen) != 1:
                        raise ValueError(
                            f"{sub / 'config.json'}: exactly one pooling mode must be set, "
                            f"got {chosen}"
                        )
                    layout.pooling = chosen[0]
                layout.include_prompt = bool(pcfg.get("include_prompt", True))
            elif mtype == "Dense":
                layout.dense.append(_dense_head(sub, residual_ok=False))
            elif mtype == "Normalize":
                pass  # outputs are always L2-normalized
            else:
                raise ValueError(
                    f"modules.json at {model_dir}: unsupported module type {entry['type']!r}"
                )
        if not seen_pooling:
            raise ValueError(f"modules.json at {model_dir}: no Pooling module")
    st_cfg_path = layout.transformer_dir / "sentence_bert_config.json"
    st_cfg = read_json(st_cfg_path) if st_cfg_path.is_file() else {}
    cfg_path = model_dir / "config_sentence_transformers.json"
    cfg = read_json(cfg_path) if cfg_path.is_file() else {}
    if st_cfg.get("max_seq_length") is not None:
        layout.max_seq_length = int(st_cfg["max_seq_length"])
    layout.do_lower_case = bool(st_cfg.get("do_lower_case", False))
    layout.prompts = {k: v for k, v in (cfg.get("prompts") or {}).items() if isinstance(v, str)}
    layout.default_prompt_name = cfg.get("default_prompt_name")
    return layout


@dataclass
class ColbertLayout:
    transformer_dir: Path
    conf: dict[str, Any]
    projections: list[Projection]
    do_lower_case: bool = False


def _stanford_linear(model_dir: Path) -> Projection:
    st_path = model_dir / "model.safetensors"
    if st_path.is_file():
        from safetensors import safe_open

        with safe_open(os.fspath(st_path), framework="np") as fh:
            if "linear.weight" not in fh.keys():
                raise ValueError(f"Stanford ColBERT checkpoint {st_path} has no 'linear.weight'")
            weight = np.asarray(fh.get_tensor("linear.weight"), dtype=np.float32)
    else:
        state = load_state_numpy(model_dir, what="Stanford ColBERT weights")
        if "linear.weight" not in state:
            raise ValueError(f"Stanford ColBERT checkpoint in {model_dir} has no 'linear.weight'")
        weight = state["linear.weight"]
    return Projection(weight, None, _IDENTITY)


def read_colbert_layout(model_dir: Path) -> ColbertLayout:
    """Settings and projection weights of a PyLate folder or a Stanford checkpoint.

    Raises:
        ValueError: malformed ``modules.json`` / configs, or no projection layer.
    """
    conf: dict[str, Any] = {}
    modules = parse_modules(model_dir)
    if modules is not None:
        transformer_dir = model_dir / modules[0].get("path", "")
        dense_dirs = []
        for entry in modules[1:]:
            if entry["type"].endswith(".Dense"):
                dense_dirs.append(model_dir / entry.get("path", ""))
            else:
                raise ValueError(
                    f"modules.json at {model_dir}: unsupported module type {entry['type']!r} "
                    "for a ColBERT model (expected Transformer then Dense)"
                )
        if not dense_dirs:
            raise ValueError(f"modules.json at {model_dir}: no Dense projection layer")
        cfg_path = model_dir / "config_sentence_transformers.json"
        if cfg_path.is_file():
            cfg = read_json(cfg_path)
            conf.update({k: cfg[k] for k in COLBERT_KEYS if cfg.get(k) is not None})
        st_cfg_path = transformer_dir / "sentence_bert_config.json"
        lower = st_cfg_path.is_file() and bool(read_json(st_cfg_path).get("do_lower_case", False))
        projections = [_dense_head(d, residual_ok=True) for d in dense_dirs]
        return ColbertLayout(transformer_dir, conf, projections, lower)  # type: ignore[arg-type]
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"{model_dir} is neither a PyLate directory (modules.json) nor a "
            "transformers checkpoint (config.json)"
        )
    hf_cfg = read_json(config_path)
    if (hf_cfg.get("architectures") or [None])[0] != "HF_ColBERT":
        raise ValueError(
            f"{model_dir} has no modules.json and is not a Stanford ColBERT "
            "checkpoint (architectures[0] == 'HF_ColBERT')"
        )
    conf["query_prefix"] = "[unused0]"
    conf["document_prefix"] = "[unused1]"
    meta_path = model_dir / "artifact.metadata"
    if meta_path.is_file():
        meta = read_json(meta_path)
        for src, dst in (("query_token_id", "query_prefix"), ("doc_token_id", "document_prefix")):
            if meta.get(src):
                conf[dst] = meta[src]
        for src, dst in (
            ("query_maxlen", "query_length"),
            ("doc_maxlen", "document_length"),
            ("attend_to_mask_tokens", "attend_to_expansion_tokens"),
        ):
            if meta.get(src) is not None:
                conf[dst] = meta[src]
    return ColbertLayout(model_dir, conf, [_stanford_linear(model_dir)])
