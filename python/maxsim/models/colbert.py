"""ColBERT multi-vector encoder (PyLate model directories and Stanford checkpoints)."""

from __future__ import annotations

import logging
import os
import string
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
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    read_json,
    resolve_dtype,
    resolve_model_dir,
)

__all__ = ["ColBERT"]

logger = logging.getLogger(__name__)

_DENSE_TYPES = {"pylate.models.Dense.Dense", "sentence_transformers.models.Dense"}


class _Projection:
    """PyLate ``Dense``: ``act(linear(x)) [+ residual(x) or x]`` applied per token."""

    def __init__(self, linear: Any, activation: Any, residual: Any | None, use_residual: bool):
        self.linear = linear
        self.activation = activation
        self.residual = residual
        self.use_residual = use_residual

    def __call__(self, x: Any) -> Any:
        y = self.activation(self.linear(x))
        if self.use_residual:
            y = y + (self.residual(x) if self.residual is not None else x)
        return y


def _load_projection(module_dir: Path, dtype: Any, device: str) -> _Projection:
    import torch
    from safetensors.torch import load_file

    from .embedder import _activation_from_name

    cfg = read_json(module_dir / "config.json", what=f"{module_dir.name}/config.json")
    try:
        in_f, out_f = int(cfg["in_features"]), int(cfg["out_features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{module_dir / 'config.json'}: needs in_features/out_features") from exc
    linear = torch.nn.Linear(in_f, out_f, bias=bool(cfg.get("bias", True)))
    use_residual = bool(cfg.get("use_residual", False))
    residual = torch.nn.Linear(in_f, out_f, bias=False) if use_residual and in_f != out_f else None
    st_path = module_dir / "model.safetensors"
    if st_path.is_file():
        state = load_file(os.fspath(st_path))
    else:
        state = torch.load(module_dir / "pytorch_model.bin", map_location="cpu", weights_only=True)
    linear.load_state_dict(
        {k[len("linear.") :]: v for k, v in state.items() if k.startswith("linear.")}
    )
    if residual is not None:
        residual.load_state_dict(
            {k[len("residual.") :]: v for k, v in state.items() if k.startswith("residual.")}
        )
        residual.to(device=device, dtype=dtype).eval()
    linear.to(device=device, dtype=dtype).eval()
    act = _activation_from_name(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))
    return _Projection(linear, act, residual, use_residual)


def _load_stanford_linear(model_dir: Path, dtype: Any, device: str) -> _Projection:
    import torch

    st_path = model_dir / "model.safetensors"
    if st_path.is_file():
        from safetensors import safe_open

        with safe_open(os.fspath(st_path), framework="pt", device="cpu") as fh:
            if "linear.weight" not in fh.keys():
                raise ValueError(f"Stanford ColBERT checkpoint {st_path} has no 'linear.weight'")
            weight = fh.get_tensor("linear.weight")
    else:
        bin_path = model_dir / "pytorch_model.bin"
        if not bin_path.is_file():
            raise ValueError(f"no model.safetensors or pytorch_model.bin in {model_dir}")
        state = torch.load(bin_path, map_location="cpu", weights_only=True)
        if "linear.weight" not in state:
            raise ValueError(f"Stanford ColBERT checkpoint {bin_path} has no 'linear.weight'")
        weight = state["linear.weight"]
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.load_state_dict({"weight": weight})
    linear.to(device=device, dtype=dtype).eval()
    return _Projection(linear, torch.nn.Identity(), None, False)


class ColBERT:
    """ColBERT late-interaction encoder: text -> one L2-normalized vector per token.

    Loads PyLate model directories (``modules.json`` with a Transformer and Dense
    layer(s), and ``config_sentence_transformers.json`` with ``query_prefix``,
    ``document_prefix``, ``query_length``, ``document_length``,
    ``do_query_expansion``, ``attend_to_expansion_tokens`` and ``skiplist_words``)
    and Stanford ColBERT checkpoints (``HF_ColBERT`` architecture, ``linear.weight``,
    ``[unused0]``/``[unused1]`` markers, optional ``artifact.metadata``). Encodings
    match ``pylate.models.ColBERT.encode``:

    * the query / document prefix token is inserted right after ``[CLS]``;
    * queries are padded with ``[MASK]`` to ``query_length`` (query expansion), and
      the expansion tokens are kept in the output; they take part in attention only
      when ``attend_to_expansion_tokens``;
    * documents are truncated to ``document_length`` tokens and the skiplist tokens
      (punctuation by default) are dropped from the output (they are still encoded);
    * token vectors are projected by the Dense layer(s) and L2-normalized.

    Use :meth:`from_pretrained` to build one.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        projections: list[_Projection],
        *,
        query_prefix: str = "[Q] ",
        document_prefix: str = "[D] ",
        query_length: int = 32,
        document_length: int = 180,
        do_query_expansion: bool = True,
        attend_to_expansion_tokens: bool = False,
        skiplist_words: list[str] | None = None,
        do_lower_case: bool = False,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.projections = projections
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.query_length = int(query_length)
        self.document_length = int(document_length)
        self.do_query_expansion = bool(do_query_expansion)
        self.attend_to_expansion_tokens = (
            bool(attend_to_expansion_tokens) and self.do_query_expansion
        )
        self.skiplist_words = (
            list(string.punctuation) if skiplist_words is None else list(skiplist_words)
        )
        self.do_lower_case = do_lower_case
        self.device = device
        self.name = name
        self._setup_tokens()

    def _setup_tokens(self) -> None:
        tok = self.tokenizer
        missing = [
            p for p in (self.query_prefix, self.document_prefix) if p and p not in tok.get_vocab()
        ]
        if missing:
            # PyLate adds the prefixes as new tokens; a trained checkpoint already has them.
            logger.warning(
                "prefix token(s) %s not in the vocabulary of %s: adding them with "
                "freshly initialised embeddings (the model was not trained with them)",
                missing,
                self.name,
            )
            tok.add_tokens(missing)
            self.model.resize_token_embeddings(len(tok))
        self.query_prefix_id = (
            tok.convert_tokens_to_ids(self.query_prefix) if self.query_prefix else None
        )
        self.document_prefix_id = (
            tok.convert_tokens_to_ids(self.document_prefix) if self.document_prefix else None
        )
        if tok.mask_token_id is not None:
            self.pad_id = tok.mask_token_id
        elif tok.eos_token_id is not None:
            self.pad_id = tok.eos_token_id
        elif tok.pad_token_id is not None:
            self.pad_id = tok.pad_token_id
        else:
            raise ValueError(
                f"model {self.name!r}: the tokenizer has no [MASK], EOS or pad token "
                "for query expansion"
            )
        tok.pad_token_id = self.pad_id
        # As in PyLate: words outside the vocabulary map to the unknown-token id.
        self.skiplist_ids = sorted({int(tok.convert_tokens_to_ids(w)) for w in self.skiplist_words})

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
        query_length: int | None = None,
        document_length: int | None = None,
        do_query_expansion: bool | None = None,
        attend_to_expansion_tokens: bool | None = None,
        skiplist_words: list[str] | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
    ) -> ColBERT:
        """Load a PyLate directory, a Stanford ColBERT checkpoint, or a hub id.

        Keyword overrides take precedence over the values read from the model files
        (and PyLate's defaults: ``"[Q] "``/``"[D] "``, 32, 180, expansion on,
        no attention to expansion tokens, ``string.punctuation`` skiplist).
        ``int8_linear=True`` is a fast option: dynamic int8 quantization of the
        encoder's Linear layers except the feed-forward output projections, which
        stay float32 (CPU; slightly changes results): their inputs, the GELU
        activations, carry the outliers that one per-tensor activation scale
        resolves worst, and ColBERT's per-token outputs feel that error where
        pooled ones average it out. The SciFact accuracy of both choices is in
        BENCHMARKS.md ("Encoders on SciFact").

        Raises:
            ModelNotFoundError: the model can't be found locally or in the hub cache.
            ValueError: malformed ``modules.json`` / configs, or no projection layer.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        torch_dtype = resolve_dtype(dtype)
        conf: dict[str, Any] = {}
        modules = parse_modules(model_dir)
        do_lower_case = False
        if modules is not None:
            transformer_dir = model_dir / modules[0].get("path", "")
            dense_dirs = []
            for entry in modules[1:]:
                if entry["type"] in _DENSE_TYPES or entry["type"].endswith(".Dense"):
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
                for key in (
                    "query_prefix",
                    "document_prefix",
                    "query_length",
                    "document_length",
                    "do_query_expansion",
                    "attend_to_expansion_tokens",
                    "skiplist_words",
                ):
                    if key in cfg and cfg[key] is not None:
                        conf[key] = cfg[key]
            st_cfg_path = transformer_dir / "sentence_bert_config.json"
            if st_cfg_path.is_file():
                do_lower_case = bool(read_json(st_cfg_path).get("do_lower_case", False))
            model = load_backbone(transformer_dir, dtype=torch_dtype, device=device)
            tokenizer = load_tokenizer(transformer_dir)
            projections = [_load_projection(d, torch_dtype, device) for d in dense_dirs]
        else:
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
                if meta.get("query_token_id"):
                    conf["query_prefix"] = meta["query_token_id"]
                if meta.get("doc_token_id"):
                    conf["document_prefix"] = meta["doc_token_id"]
                if meta.get("query_maxlen") is not None:
                    conf["query_length"] = meta["query_maxlen"]
                if meta.get("doc_maxlen") is not None:
                    conf["document_length"] = meta["doc_maxlen"]
                if meta.get("attend_to_mask_tokens") is not None:
                    conf["attend_to_expansion_tokens"] = meta["attend_to_mask_tokens"]
            model = load_backbone(model_dir, dtype=torch_dtype, device=device)
            tokenizer = load_tokenizer(model_dir)
            projections = [_load_stanford_linear(model_dir, torch_dtype, device)]

        overrides = {
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "query_length": query_length,
            "document_length": document_length,
            "do_query_expansion": do_query_expansion,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "skiplist_words": skiplist_words,
        }
        conf.update({k: v for k, v in overrides.items() if v is not None})
        if int8_linear:
            model = apply_int8_linear(model, keep_ffn_output=True)
        return cls(
            model,
            tokenizer,
            projections,
            do_lower_case=do_lower_case,
            device=device,
            name=os.fspath(path_or_hub_id),
            **conf,
        )

    # ------------------------------------------------------------------ encode
    @property
    def dim(self) -> int:
        """Output dimension of the token vectors."""
        return int(self.projections[-1].linear.out_features)

    def _prep(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.do_lower_case else text

    def _tokenize(self, texts: list[str], is_query: bool) -> dict[str, Any]:
        import torch

        max_length = self.query_length if is_query else self.document_length
        prefix_id = self.query_prefix_id if is_query else self.document_prefix_id
        expand = is_query and self.do_query_expansion
        feats = self.tokenizer(
            texts,
            padding="max_length" if expand else True,
            truncation="longest_first",
            max_length=max_length - 1 if prefix_id is not None else max_length,
            return_tensors="pt",
        )
        feats = dict(feats)

        def insert(t: Any, value: int) -> Any:
            col = torch.full((t.shape[0], 1), value, dtype=t.dtype)
            return torch.cat([t[:, :1], col, t[:, 1:]], dim=1)

        if prefix_id is not None:
            feats["input_ids"] = insert(feats["input_ids"], prefix_id)
            feats["attention_mask"] = insert(feats["attention_mask"], 1)
            if "token_type_ids" in feats:
                feats["token_type_ids"] = insert(feats["token_type_ids"], 0)
        if is_query and self.attend_to_expansion_tokens:
            feats["attention_mask"].fill_(1)
        return feats

    def encode(
        self,
        texts: str | list[str],
        is_query: bool,
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        packed: bool = False,
        token_budget: int | None = None,
        autocast: str | None = None,
    ) -> list[np.ndarray] | np.ndarray | Any:
        """Encode texts into token-vector matrices.

        Args:
            texts: a str or a non-empty list of str.
            is_query: queries get the query prefix and ``[MASK]`` expansion to
                ``query_length``; documents the document prefix, truncation to
                ``document_length`` and the skiplist filter.
            batch_size: texts per forward pass (at most); texts are sorted by length.
            show_progress_bar: tqdm bar; ``None`` = on for more than 256 texts.
            packed: return a ``maxsim.PackedDocs`` (all rows in one float32 buffer).
            token_budget: fast option: cap padded tokens per batch (length bucketing).
            autocast: fast option, ``"bfloat16"`` autocast (AMX / AVX512-BF16 CPUs).

        Returns:
            A list of ``(n_tokens_i, dim)`` float32 C-contiguous arrays (one per text,
            input order), a single array for a str input, or a ``maxsim.PackedDocs``
            when ``packed=True``.
        """
        import torch

        items, single = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        if not isinstance(is_query, (bool, np.bool_)):
            raise TypeError(f"is_query must be a bool, got {type(is_query).__name__}")
        is_query = bool(is_query)
        items = [self._prep(t) for t in items]
        if token_budget is None:
            lengths = [len(t) for t in items]
        else:
            enc = self.tokenizer(items, truncation=True, max_length=self.document_length)
            lengths = [len(ids) for ids in enc["input_ids"]]
        batches = length_sorted_batches(lengths, batch_size, token_budget=token_budget)
        results: list[np.ndarray | None] = [None] * len(items)
        skip = torch.tensor(self.skiplist_ids, dtype=torch.long)
        with run_context(self.device, autocast):
            for idx in progress(
                batches,
                enable=show_progress_bar,
                total_items=len(items),
                desc="Encoding queries" if is_query else "Encoding documents",
            ):
                feats = self._tokenize([items[i] for i in idx], is_query)
                input_ids = feats["input_ids"]
                attn = feats["attention_mask"]
                tok = self.model(**to_device(feats, self.device), return_dict=True)[0]
                for proj in self.projections:
                    tok = proj(tok)
                tok = tok.float().cpu()
                if is_query:
                    keep = (
                        torch.ones_like(input_ids, dtype=torch.bool)
                        if self.do_query_expansion
                        else attn.bool()
                    )
                else:
                    keep = attn.bool() & ~torch.isin(input_ids, skip)
                for row, i in enumerate(idx):
                    vecs = torch.nn.functional.normalize(tok[row][keep[row]], p=2, dim=1)
                    results[i] = np.ascontiguousarray(vecs.numpy(), dtype=np.float32)
        out: list[np.ndarray] = results  # type: ignore[assignment]
        if packed:
            import maxsim

            return maxsim.PackedDocs.from_list(out)
        return out[0] if single else out

    def __repr__(self) -> str:
        return (
            f"ColBERT(name={self.name!r}, dim={self.dim}, query_length={self.query_length}, "
            f"document_length={self.document_length}, device={self.device!r})"
        )
