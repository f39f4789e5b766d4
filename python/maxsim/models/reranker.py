"""Cross-encoder reranker (one relevance logit per query-document pair)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._common import (
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    resolve_model_dir,
)
from ._heads import ACTIVATIONS, activation_fn
from ._text import TextEncoder

__all__ = ["Reranker", "activation_name", "check_pairs", "resolve_activation", "rank_results"]


def resolve_activation(activation: str | Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """Map ``"sigmoid"``/``"identity"``/``"tanh"``/``"relu"``/``"gelu"``/``None``
    (identity), a ``torch.nn`` class path, or a callable, to a callable on float32
    numpy arrays of logits.

    Known class paths run in numpy (both backends); any other ``torch.*`` class path
    is imported and run through torch (so it needs torch). A callable is called with
    the ``(n, num_labels)`` float32 numpy logits.
    """
    if activation is None:
        return ACTIVATIONS["identity"]
    if callable(activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"activation must be a str, a callable or None, got {type(activation).__name__}"
        )
    try:
        return ACTIVATIONS[activation_fn(activation)]
    except ValueError:
        if not activation.startswith("torch."):
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)} (or a torch.nn class "
                f"path / callable), got {activation!r}"
            ) from None
    import importlib

    module_name, _, attr = activation.rpartition(".")
    try:
        module = getattr(importlib.import_module(module_name), attr)()
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"activation {activation!r} could not be imported") from exc

    def run_torch(x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x))).float().numpy()

    return run_torch


def activation_name(activation: Any) -> str | None:
    """The canonical name (a key of ``ACTIVATIONS``) of a str / ``None`` activation;
    ``None`` for a callable or a class path that only torch can run."""
    if activation is None:
        return "identity"
    if not isinstance(activation, str):
        return None
    try:
        return activation_fn(activation)
    except ValueError:
        return None


def check_pairs(pairs: Any, name: str = "pairs") -> list[tuple[str, str]]:
    """Validate a non-empty sequence of ``(query, document)`` str pairs."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(
            f"{name} must be a list of (query, document) pairs, got {type(pairs).__name__}"
        )
    if len(pairs) == 0:
        raise ValueError(f"{name} must not be empty")
    out = []
    for i, p in enumerate(pairs):
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
            raise TypeError(f"{name}[{i}] must be a (query, document) pair of str")
        a, b = p
        if not isinstance(a, str) or not isinstance(b, str):
            raise TypeError(
                f"{name}[{i}] must hold two str, got ({type(a).__name__}, {type(b).__name__})"
            )
        out.append((a, b))
    return out


def rank_results(
    docs: list[str], scores: np.ndarray, top_k: int | None, return_documents: bool
) -> list[tuple[str, float]] | list[dict[str, Any]]:
    """Sort by score (best first, stable for ties) and format the rerank output."""
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
            raise TypeError(f"top_k must be an int or None, got {type(top_k).__name__}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    if return_documents:
        return [(docs[i], float(scores[i])) for i in order]
    return [{"corpus_id": int(i), "score": float(scores[i])} for i in order]


class Reranker:
    """Cross-encoder: ``AutoModelForSequenceClassification`` with one logit.

    The activation comes from the model config as sentence-transformers'
    ``CrossEncoder`` reads it (``config.sentence_transformers["activation_fn"]``,
    else the legacy ``sbert_ce_default_activation_function``, else sigmoid for one
    label and identity otherwise); ``activation=`` overrides it. Pairs longer than
    ``max_length`` tokens are truncated (longest side first), as in ``CrossEncoder``.

    Causal LLM rerankers (e.g. mxbai-rerank-v2: ``logit("1") - logit("0")`` at the
    last position of a chat-formatted prompt) are an extension point: subclass and
    override :meth:`_forward_logits` (and the tokenization in :meth:`_features`).
    """

    def __init__(
        self,
        network: Any,
        text: TextEncoder,
        *,
        activation: str | Callable[[Any], Any] | None = "sigmoid",
        max_length: int = 512,
        num_labels: int = 1,
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
        self.activation = resolve_activation(activation)
        self.activation_name = activation_name(activation)
        self.max_length = int(max_length)
        self.num_labels = int(num_labels)
        self.backend = backend
        self.device = device
        self.name = name

    @staticmethod
    def default_max_length(text: TextEncoder, max_position_embeddings: int | None) -> int:
        """The tokenizer's ``model_max_length`` capped by the position table."""
        return min(int(text.model_max_length or 512), int(max_position_embeddings or 512))

    @staticmethod
    def default_activation(config: Any) -> str:
        st = getattr(config, "sentence_transformers", None)
        path = None
        if isinstance(st, dict) and st.get("activation_fn"):
            path = st["activation_fn"]
        elif getattr(config, "sbert_ce_default_activation_function", None):
            path = config.sbert_ce_default_activation_function
        if isinstance(path, str) and path.startswith("torch."):
            return path  # as CrossEncoder: only torch.* paths are trusted
        return "sigmoid" if getattr(config, "num_labels", 1) == 1 else "identity"

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        device: str = "cpu",
        dtype: Any = None,
        *,
        activation: str | Callable[[Any], Any] | None = "config",
        max_length: int | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        int8_linear: bool = False,
        backend: str = "torch",
        session_options: Any = None,
        providers: Any = None,
    ) -> Reranker:
        """Load a cross-encoder directory or hub id.

        Args:
            activation: ``"config"`` (default: as sentence-transformers reads it from
                the model config), or an override (``"sigmoid"``, ``"identity"``,
                ``None``, a callable on logits).
            max_length: token limit per pair (default: the tokenizer's
                ``model_max_length`` capped by ``max_position_embeddings``).
            int8_linear: fast option, dynamic int8 quantization of the Linear layers
                (CPU; slightly changes scores); onnx: the folder's int8 graph.
            backend: ``"torch"`` or ``"onnx"`` (a folder written by ``maxsim export
                onnx``; ONNX Runtime + tokenizers, no torch).
            session_options / providers: ONNX Runtime ``SessionOptions`` (their thread
                settings then replace ``maxsim.set_num_threads``) and providers.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        name = os.fspath(path_or_hub_id)
        if backend == "onnx":
            from ._onnx_load import load_reranker

            return load_reranker(
                cls,
                model_dir,
                name=name,
                device=device,
                dtype=dtype,
                int8=int8_linear,
                activation=activation,
                max_length=max_length,
                session_options=session_options,
                providers=providers,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from transformers import AutoModelForSequenceClassification

        from ._backbone import load_backbone, load_tokenizer

        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir} has no config.json: not a transformers model directory")
        model = load_backbone(
            model_dir, dtype=dtype, device=device, model_class=AutoModelForSequenceClassification
        )
        return cls.from_torch_model(
            model,
            load_tokenizer(model_dir),
            activation=activation,
            max_length=max_length,
            int8_linear=int8_linear,
            device=device,
            name=name,
        )

    @classmethod
    def from_torch_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        activation: str | Callable[[Any], Any] | None = "config",
        max_length: int | None = None,
        int8_linear: bool = False,
        device: str = "cpu",
        name: str = "",
    ) -> Reranker:
        """Wrap a loaded ``AutoModelForSequenceClassification`` and its tokenizer."""
        from ._backbone import TorchNetwork, apply_int8_linear

        text = TextEncoder.from_transformers(tokenizer)
        if isinstance(activation, str) and activation == "config":
            activation = cls.default_activation(model.config)
        max_pos = getattr(model.config, "max_position_embeddings", None)
        num_labels = int(getattr(model.config, "num_labels", 1))
        if int8_linear:
            model = apply_int8_linear(model)
        return cls(
            TorchNetwork(
                model,
                device,
                tokenizer.model_input_names,
                forward=lambda m, feats: m(**feats, return_dict=True).logits,
            ),
            text,
            activation=activation,
            max_length=max_length or cls.default_max_length(text, max_pos),
            num_labels=num_labels,
            backend="torch",
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
        )

    # ------------------------------------------------------------------ scoring
    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        pad_id = self.text.special_ids.get("pad") or 0
        return self.text.pad(self.text.encode(pairs, self.max_length), pad_id)

    def _forward_logits(self, features: dict[str, np.ndarray], autocast: str | None) -> np.ndarray:
        return self.network(features, autocast)

    def _num_outputs(self) -> int:
        return self.num_labels

    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation: str | Callable[[Any], Any] | None = "default",
        autocast: str | None = None,
    ) -> np.ndarray:
        """Score ``(query, document)`` pairs.

        Returns:
            ``(n_pairs,)`` float32 (``(n_pairs, num_labels)`` for multi-label models),
            after the activation (``activation="default"`` keeps the model's).
        """
        items = check_pairs(pairs)
        batch_size = check_batch_size(batch_size)
        act = self.activation if activation == "default" else resolve_activation(activation)
        lengths = [len(a) + len(b) for a, b in items]
        batches = length_sorted_batches(lengths, batch_size)
        num_labels = self._num_outputs()
        out = np.empty((len(items), num_labels), dtype=np.float32)
        for idx in progress(
            batches, enable=show_progress_bar, total_items=len(items), desc="Scoring"
        ):
            logits = self._forward_logits(self._features([items[i] for i in idx]), autocast)
            scores = np.asarray(act(np.asarray(logits, dtype=np.float32)), dtype=np.float32)
            out[idx] = scores.reshape(len(idx), num_labels)
        return out[:, 0] if num_labels == 1 else out

    def rerank(
        self,
        query: str,
        docs: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = True,
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
    ) -> list[tuple[str, float]] | list[dict[str, Any]]:
        """Rank ``docs`` for ``query``, best first.

        Returns:
            ``[(doc, score), ...]`` when ``return_documents`` else
            ``[{"corpus_id": index_in_docs, "score": score}, ...]``; at most ``top_k``.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        doc_list, _ = check_texts(docs, "docs")
        if self._num_outputs() != 1:
            raise ValueError("rerank needs a model with a single relevance logit (num_labels == 1)")
        scores = self.score(
            [(query, d) for d in doc_list],
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )
        return rank_results(doc_list, scores, top_k, return_documents)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, max_length={self.max_length}, "
            f"backend={self.backend!r}, device={self.device!r})"
        )
