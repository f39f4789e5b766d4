"""Single-vector (bi-encoder) embedder for sentence-transformers model layouts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._backbone import (
    apply_int8_linear,
    load_backbone,
    load_tokenizer,
    parse_modules,
    run_context,
    to_device,
)
from ._common import (
    PRECISIONS,
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    quantize_embeddings,
    read_json,
    resolve_model_dir,
)

__all__ = ["Embedder"]

_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_POOLING_MODES = tuple(_POOLING_KEYS.values())
_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


class _DenseHead:
    """A sentence-transformers ``Dense`` module (linear + activation) on the pooled vector."""

    def __init__(self, linear: Any, activation: Any) -> None:
        self.linear = linear
        self.activation = activation

    def __call__(self, x: Any) -> Any:
        return self.activation(self.linear(x))


def _activation_from_name(name: str) -> Any:
    import torch

    table = {
        "torch.nn.modules.linear.Identity": torch.nn.Identity(),
        "torch.nn.modules.activation.Tanh": torch.nn.Tanh(),
        "torch.nn.modules.activation.ReLU": torch.nn.ReLU(),
        "torch.nn.modules.activation.GELU": torch.nn.GELU(),
        "torch.nn.modules.activation.Sigmoid": torch.nn.Sigmoid(),
    }
    if name not in table:
        raise ValueError(f"unsupported Dense activation_function {name!r}")
    return table[name]


def _load_dense(module_dir: Path, dtype: Any, device: str) -> _DenseHead:
    import torch
    from safetensors.torch import load_file

    cfg = read_json(module_dir / "config.json", what=f"{module_dir.name}/config.json")
    linear = torch.nn.Linear(
        int(cfg["in_features"]), int(cfg["out_features"]), bias=bool(cfg.get("bias", True))
    )
    st_path = module_dir / "model.safetensors"
    if st_path.is_file():
        state = load_file(os.fspath(st_path))
    else:
        state = torch.load(module_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
    linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
    linear.to(device=device, dtype=dtype).eval()
    act = _activation_from_name(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))
    return _DenseHead(linear, act)


class Embedder:
    """Single-vector text embedder for sentence-transformers model directories.

    Reads ``modules.json`` (Transformer -> Pooling -> [Dense] -> [Normalize]),
    ``1_Pooling/config.json`` (cls / mean / max / lasttoken / mean_sqrt_len_tokens /
    weightedmean, ``include_prompt``), ``sentence_bert_config.json`` (``max_seq_length``,
    ``do_lower_case``) and the prompts of ``config_sentence_transformers.json``.
    Needs only transformers + torch at run time.

    Texts longer than ``max_seq_length`` tokens (special tokens included) are
    truncated, as sentence-transformers does.

    Use :meth:`from_pretrained` to build one.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        pooling: str = "mean",
        include_prompt: bool = True,
        dense: list[_DenseHead] | None = None,
        max_seq_length: int = 512,
        do_lower_case: bool = False,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        if pooling not in _POOLING_MODES:
            raise ValueError(f"pooling must be one of {_POOLING_MODES}, got {pooling!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.include_prompt = include_prompt
        self.dense = dense or []
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = do_lower_case
        self.prompts = dict(prompts or {})
        self.default_prompt_name = default_prompt_name
        self.device = device
        self.name = name

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        device: str = "cpu",
        dtype: Any = None,
        *,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        int8_linear: bool = False,
        max_seq_length: int | None = None,
    ) -> Embedder:
        """Load a sentence-transformers directory or hub id.

        Args:
            path_or_hub_id: local directory or hub id (``"owner/name"``).
            device: torch device string.
            dtype: weight dtype (``"float32"`` default, ``"bfloat16"``, ``"float16"``).
            max_seq_length: override of ``sentence_bert_config.json``'s value.
            int8_linear: fast option, dynamic int8 quantization of the encoder's
                Linear layers (CPU; slightly changes results).

        Raises:
            ModelNotFoundError: the model can't be found locally or in the hub cache.
            ValueError: malformed ``modules.json`` / module configs.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        modules = parse_modules(model_dir)
        pooling = "mean"
        include_prompt = True
        dense_dirs: list[Path] = []
        transformer_dir = model_dir
        if modules is not None:
            transformer_dir = model_dir / modules[0].get("path", "")
            seen_pooling = False
            for entry in modules[1:]:
                mtype = entry["type"].removeprefix("sentence_transformers.models.")
                mtype = mtype.split(".")[-1]
                sub = model_dir / entry.get("path", "")
                if mtype == "Pooling":
                    seen_pooling = True
                    pcfg = read_json(sub / "config.json", what=f"{entry['path']}/config.json")
                    if pcfg.get("pooling_mode"):
                        pooling = str(pcfg["pooling_mode"]).lower()
                    else:
                        chosen = [v for k, v in _POOLING_KEYS.items() if pcfg.get(k)]
                        if len(chosen) != 1:
                            raise ValueError(
                                f"{sub / 'config.json'}: exactly one pooling mode "
                                f"must be set, got {chosen}"
                            )
                        pooling = chosen[0]
                    include_prompt = bool(pcfg.get("include_prompt", True))
                elif mtype == "Dense":
                    dense_dirs.append(sub)
                elif mtype == "Normalize":
                    pass  # outputs are always L2-normalized
                else:
                    raise ValueError(
                        f"modules.json at {model_dir}: unsupported module type {entry['type']!r}"
                    )
            if not seen_pooling:
                raise ValueError(f"modules.json at {model_dir}: no Pooling module")
        st_cfg_path = transformer_dir / "sentence_bert_config.json"
        st_cfg = read_json(st_cfg_path) if st_cfg_path.is_file() else {}
        cfg_path = model_dir / "config_sentence_transformers.json"
        cfg = read_json(cfg_path) if cfg_path.is_file() else {}

        from ._common import resolve_dtype

        torch_dtype = resolve_dtype(dtype)
        model = load_backbone(transformer_dir, dtype=torch_dtype, device=device)
        if int8_linear:
            model = apply_int8_linear(model)
        tokenizer = load_tokenizer(transformer_dir)
        if max_seq_length is None:
            max_seq_length = st_cfg.get("max_seq_length")
        if max_seq_length is None:
            max_seq_length = min(
                getattr(model.config, "max_position_embeddings", 512),
                getattr(tokenizer, "model_max_length", 512),
            )
        dense = [_load_dense(d, torch_dtype, device) for d in dense_dirs]
        return cls(
            model,
            tokenizer,
            pooling=pooling,
            include_prompt=include_prompt,
            dense=dense,
            max_seq_length=int(max_seq_length),
            do_lower_case=bool(st_cfg.get("do_lower_case", False)),
            prompts={k: v for k, v in (cfg.get("prompts") or {}).items() if isinstance(v, str)},
            default_prompt_name=cfg.get("default_prompt_name"),
            device=device,
            name=os.fspath(path_or_hub_id),
        )

    # ------------------------------------------------------------------ helpers
    @property
    def dim(self) -> int:
        """Output dimension ``d`` of the full embedding."""
        if self.dense:
            return int(self.dense[-1].linear.out_features)
        return int(self.model.config.hidden_size)

    def _pick_prompt(
        self, is_query: bool, prompt_name: str | None, prompt: str | None
    ) -> str | None:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(
                    f"prompt_name {prompt_name!r} not in the model's prompts {sorted(self.prompts)}"
                )
            return self.prompts[prompt_name]
        if is_query and "query" in self.prompts:
            return self.prompts["query"]
        if not is_query:
            for name in _DOCUMENT_PROMPT_NAMES:
                if name in self.prompts:
                    return self.prompts[name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    def _prompt_length(self, prompt: str) -> int:
        ids = self.tokenizer([prompt], truncation=True, max_length=self.max_seq_length)[
            "input_ids"
        ][0]
        n = len(ids)
        if ids and ids[-1] in set(self.tokenizer.all_special_ids):
            n -= 1
        return n

    def _prep(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.do_lower_case else text

    def _pool(self, tok: Any, mask: Any) -> Any:
        import torch

        mask_f = mask.unsqueeze(-1).to(tok.dtype)
        if self.pooling == "cls":
            return tok[:, 0]
        if self.pooling == "max":
            return tok.masked_fill(mask_f == 0, -1e9).max(dim=1).values
        if self.pooling == "lasttoken":
            seq_len = mask.shape[1]
            values, idx = mask.flip(1).max(1)
            idx = torch.where(values == 0, seq_len - 1, idx)
            last = seq_len - idx - 1
            return tok[torch.arange(tok.shape[0], device=tok.device), last]
        if self.pooling == "weightedmean":
            w = torch.arange(1, tok.shape[1] + 1, device=tok.device, dtype=tok.dtype)
            mask_f = mask_f * w.view(1, -1, 1)
        summed = (tok * mask_f).sum(dim=1)
        count = mask_f.sum(dim=1).clamp(min=1e-9)
        if self.pooling == "mean_sqrt_len_tokens":
            return summed / torch.sqrt(count)
        return summed / count

    # ------------------------------------------------------------------ encode
    def embed(
        self,
        texts: str | list[str],
        is_query: bool = False,
        dim: int | None = None,
        precision: str = "float32",
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        token_budget: int | None = None,
        autocast: str | None = None,
        int8_ranges: np.ndarray | None = None,
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embed texts into L2-normalized vectors.

        Args:
            texts: a str or a non-empty list of str.
            is_query: use the model's ``"query"`` prompt (else ``"document"`` /
                ``"passage"`` / ``"corpus"``) when the model defines one.
            dim: Matryoshka truncation to the first ``dim`` features, re-normalized.
            precision: ``"float32"`` (default), ``"float16"``, ``"int8"``/``"uint8"``
                (sentence-transformers' calibrated scalar quantization: see
                :func:`maxsim.models._common.quantize_embeddings`), ``"ubinary"``
                (``(n, ceil(dim/8))`` uint8 packed sign bits) or ``"binary"`` (same
                bits XOR 0x80 as int8), bit-identical to ``maxsim.binary.quantize``.
            batch_size: texts per forward pass (at most).
            show_progress_bar: tqdm bar; ``None`` = on for more than 256 texts.
            prompt_name / prompt: explicit prompt (overrides ``is_query``).
            token_budget: fast option: cap padded tokens per batch (length bucketing);
                e.g. ``8192``. Results are unchanged up to float rounding.
            autocast: fast option: ``"bfloat16"`` autocast (helps only on CPUs with
                AMX / AVX512-BF16, and changes results slightly).
            int8_ranges / calibration_embeddings: int8 calibration, see above.

        Returns:
            ``(n, d)`` array (float32 / float16 / int8 / uint8 per ``precision``);
            ``(d,)`` for a single str input.
        """
        import torch

        items, single = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        if not isinstance(is_query, (bool, np.bool_)):
            raise TypeError(f"is_query must be a bool, got {type(is_query).__name__}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        full_dim = self.dim
        if dim is not None:
            if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
                raise TypeError(f"dim must be an int or None, got {type(dim).__name__}")
            if not 1 <= dim <= full_dim:
                raise ValueError(f"dim must be in [1, {full_dim}], got {dim}")
        if token_budget is not None and (
            not isinstance(token_budget, (int, np.integer)) or token_budget < 1
        ):
            raise ValueError(f"token_budget must be a positive int, got {token_budget!r}")

        text_prompt = self._pick_prompt(bool(is_query), prompt_name, prompt)
        prompt_len = None
        if text_prompt:
            items = [text_prompt + t for t in items]
            prompt_len = self._prompt_length(text_prompt)
        items = [self._prep(t) for t in items]

        if token_budget is None:
            lengths = [len(t) for t in items]
        else:
            enc = self.tokenizer(items, truncation=True, max_length=self.max_seq_length)
            lengths = [len(ids) for ids in enc["input_ids"]]
        batches = length_sorted_batches(lengths, batch_size, token_budget=token_budget)

        out = np.empty((len(items), dim or full_dim), dtype=np.float32)
        with run_context(self.device, autocast):
            for idx in progress(
                batches, enable=show_progress_bar, total_items=len(items), desc="Embedding"
            ):
                feats = self.tokenizer(
                    [items[i] for i in idx],
                    padding=True,
                    truncation="longest_first",
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                feats = to_device(dict(feats), self.device)
                tok = self.model(**feats, return_dict=True)[0]
                mask = feats["attention_mask"]
                if not self.include_prompt and prompt_len:
                    mask = mask.clone()
                    pad_lengths = mask.to(torch.int32).argmax(dim=1)
                    if int(pad_lengths.sum()) == 0:
                        mask[:, :prompt_len] = 0
                    else:
                        pos = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
                        mask[pos < (pad_lengths + prompt_len).unsqueeze(1)] = 0
                vec = self._pool(tok, mask)
                for head in self.dense:
                    vec = head(vec)
                if dim is not None:
                    vec = vec[:, :dim]
                vec = torch.nn.functional.normalize(vec.float(), p=2, dim=1)
                out[idx] = vec.cpu().numpy()

        if precision != "float32":
            out = quantize_embeddings(
                out, precision, ranges=int8_ranges, calibration_embeddings=calibration_embeddings
            )
        return out[0] if single else out

    def __repr__(self) -> str:
        return (
            f"Embedder(name={self.name!r}, dim={self.dim}, pooling={self.pooling!r}, "
            f"max_seq_length={self.max_seq_length}, device={self.device!r})"
        )
