"""ColBERT multi-vector encoder (PyLate model directories and Stanford checkpoints)."""

from __future__ import annotations

import logging
import os
import string
from typing import Any

import numpy as np

from ._common import (
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    resolve_model_dir,
)
from ._heads import Projection, l2_normalize
from ._st_layout import read_colbert_layout
from ._text import TextEncoder

__all__ = ["ColBERT"]

logger = logging.getLogger(__name__)


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

    Two backends run the transformer (``from_pretrained(..., backend=...)``):
    ``"torch"`` and ``"onnx"`` (ONNX Runtime, no torch). All of the above is the
    same code for both.

    Use :meth:`from_pretrained` to build one.
    """

    def __init__(
        self,
        network: Any,
        text: TextEncoder,
        projections: list[Projection],
        *,
        query_prefix: str = "[Q] ",
        document_prefix: str = "[D] ",
        query_length: int = 32,
        document_length: int = 180,
        do_query_expansion: bool = True,
        attend_to_expansion_tokens: bool = False,
        skiplist_words: list[str] | None = None,
        do_lower_case: bool = False,
        output_dim: int | None = None,
        backend: str = "torch",
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        self.network = network
        self.text = text
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else text.tokenizer
        self.projections = projections
        self._output_dim = output_dim
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
        self.backend = backend
        self.device = device
        self.name = name
        self._setup_tokens()

    @staticmethod
    def missing_prefixes(text: TextEncoder, *prefixes: str) -> list[str]:
        """Prefix tokens that the vocabulary lacks (PyLate adds them at load)."""
        return [p for p in prefixes if p and text.token_id(p) is None]

    def _setup_tokens(self) -> None:
        text = self.text
        missing = self.missing_prefixes(text, self.query_prefix, self.document_prefix)
        if missing:
            raise ValueError(
                f"model {self.name!r}: prefix token(s) {missing} are not in the vocabulary"
            )
        self.query_prefix_id = text.token_id(self.query_prefix) if self.query_prefix else None
        self.document_prefix_id = (
            text.token_id(self.document_prefix) if self.document_prefix else None
        )
        for key in ("mask", "eos", "pad"):
            if text.special_ids.get(key) is not None:
                self.pad_id = int(text.special_ids[key])
                break
        else:
            raise ValueError(
                f"model {self.name!r}: the tokenizer has no [MASK], EOS or pad token "
                "for query expansion"
            )
        # As in PyLate: words outside the vocabulary map to the unknown-token id.
        self.skiplist_ids = sorted({text.token_id_or_unk(w) for w in self.skiplist_words})

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
        query_length: int | None = None,
        document_length: int | None = None,
        do_query_expansion: bool | None = None,
        attend_to_expansion_tokens: bool | None = None,
        skiplist_words: list[str] | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        session_options: Any = None,
        providers: Any = None,
        onnx_file: str | None = None,
    ) -> ColBERT:
        """Load a PyLate directory, a Stanford ColBERT checkpoint, a hub id, or an
        ONNX folder (``backend="onnx"``).

        Keyword overrides take precedence over the values read from the model files
        (and PyLate's defaults: ``"[Q] "``/``"[D] "``, 32, 180, expansion on,
        no attention to expansion tokens, ``string.punctuation`` skiplist).
        ``int8_linear=True`` is a fast option: dynamic int8 quantization of the
        encoder's Linear layers except the feed-forward output projections, which
        stay float32 (torch: on CPU at load; onnx: the folder's int8 graph, exported
        the same way by ``maxsim export onnx --int8``): their inputs, the GELU
        activations, carry the outliers that one per-tensor activation scale
        resolves worst, and ColBERT's per-token outputs feel that error where
        pooled ones average it out. The SciFact accuracy of both choices is in
        BENCHMARKS.md ("Encoders on SciFact").

        ``backend="onnx"`` reads a folder written by ``maxsim export onnx``, one
        written by ``pylate-onnx-export`` (``model.onnx`` + ``onnx_config.json``), or
        a fastembed ColBERT folder (``model.onnx`` + ``tokenizer.json``, Stanford
        ``[unused0]``/``[unused1]`` markers, query length 32; ``onnx_file=`` names
        another graph file). ``session_options`` / ``providers`` go to ONNX Runtime.

        Raises:
            ModelNotFoundError: the model can't be found locally or in the hub cache.
            ValueError: malformed ``modules.json`` / configs, no projection layer, or an
                ONNX graph that does not load or does not match its config.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        overrides = {
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "query_length": query_length,
            "document_length": document_length,
            "do_query_expansion": do_query_expansion,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "skiplist_words": skiplist_words,
        }
        overrides = {k: v for k, v in overrides.items() if v is not None}
        name = os.fspath(path_or_hub_id)
        if backend == "onnx":
            from ._onnx_load import load_colbert

            return load_colbert(
                cls,
                model_dir,
                overrides,
                name=name,
                device=device,
                dtype=dtype,
                int8=int8_linear,
                session_options=session_options,
                providers=providers,
                onnx_file=onnx_file,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from ._backbone import TorchNetwork, apply_int8_linear, load_backbone, load_tokenizer
        from ._common import resolve_dtype

        layout = read_colbert_layout(model_dir)
        conf = {**layout.conf, **overrides}
        model = load_backbone(layout.transformer_dir, dtype=resolve_dtype(dtype), device=device)
        tokenizer = load_tokenizer(layout.transformer_dir)
        missing = cls.missing_prefixes(
            TextEncoder.from_transformers(tokenizer),
            conf.get("query_prefix", "[Q] "),
            conf.get("document_prefix", "[D] "),
        )
        if missing:
            # PyLate adds the prefixes as new tokens; a trained checkpoint already has them.
            logger.warning(
                "prefix token(s) %s not in the vocabulary of %s: adding them with "
                "freshly initialised embeddings (the model was not trained with them)",
                missing,
                name,
            )
            tokenizer.add_tokens(missing)
            model.resize_token_embeddings(len(tokenizer))
        if int8_linear:
            model = apply_int8_linear(model, keep_ffn_output=True)
        return cls(
            TorchNetwork(model, device, tokenizer.model_input_names),
            TextEncoder.from_transformers(tokenizer),
            layout.projections,
            do_lower_case=layout.do_lower_case,
            backend="torch",
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
            **conf,
        )

    # ------------------------------------------------------------------ encode
    @property
    def dim(self) -> int:
        """Output dimension of the token vectors."""
        if self.projections:
            return self.projections[-1].out_features
        return int(self._output_dim or 0)

    def _prep(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.do_lower_case else text

    def _tokenize(self, texts: list[str], is_query: bool) -> dict[str, np.ndarray]:
        """``(batch, seq)`` int64 model inputs, as PyLate builds them: the prefix token
        right after ``[CLS]``, queries padded with ``[MASK]`` to ``query_length``."""
        max_length = self.query_length if is_query else self.document_length
        prefix_id = self.query_prefix_id if is_query else self.document_prefix_id
        expand = is_query and self.do_query_expansion
        room = max_length - 1 if prefix_id is not None else max_length
        feats = self.text.pad(
            self.text.encode(texts, room), self.pad_id, length=room if expand else None
        )

        def insert(t: np.ndarray, value: int) -> np.ndarray:
            return np.insert(t, 1, value, axis=1)

        if prefix_id is not None:
            feats["input_ids"] = insert(feats["input_ids"], prefix_id)
            feats["attention_mask"] = insert(feats["attention_mask"], 1)
            feats["token_type_ids"] = insert(feats["token_type_ids"], 0)
        if is_query and self.attend_to_expansion_tokens:
            feats["attention_mask"][:] = 1
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
        items, single = check_texts(texts)
        batch_size = check_batch_size(batch_size)
        if not isinstance(is_query, (bool, np.bool_)):
            raise TypeError(f"is_query must be a bool, got {type(is_query).__name__}")
        is_query = bool(is_query)
        items = [self._prep(t) for t in items]
        if token_budget is None:
            lengths = [len(t) for t in items]
        else:
            lengths = self.text.lengths(items, self.document_length)
        batches = length_sorted_batches(lengths, batch_size, token_budget=token_budget)
        results: list[np.ndarray | None] = [None] * len(items)
        skip = np.asarray(self.skiplist_ids, dtype=np.int64)
        for idx in progress(
            batches,
            enable=show_progress_bar,
            total_items=len(items),
            desc="Encoding queries" if is_query else "Encoding documents",
        ):
            feats = self._tokenize([items[i] for i in idx], is_query)
            input_ids = feats["input_ids"]
            attn = feats["attention_mask"].astype(bool)
            tok = self.network(feats, autocast)
            for proj in self.projections:
                tok = proj(tok)
            if is_query:
                keep = np.ones_like(attn) if self.do_query_expansion else attn
            else:
                keep = attn & ~np.isin(input_ids, skip)
            for row, i in enumerate(idx):
                vecs = l2_normalize(tok[row][keep[row]])
                results[i] = np.ascontiguousarray(vecs, dtype=np.float32)
        out: list[np.ndarray] = results  # type: ignore[assignment]
        if packed:
            import maxsim

            return maxsim.PackedDocs.from_list(out)
        return out[0] if single else out

    def __repr__(self) -> str:
        return (
            f"ColBERT(name={self.name!r}, dim={self.dim}, query_length={self.query_length}, "
            f"document_length={self.document_length}, backend={self.backend!r}, "
            f"device={self.device!r})"
        )
