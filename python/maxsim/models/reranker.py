"""Cross-encoder reranker (one relevance logit per query-document pair)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._backbone import apply_int8_linear, load_backbone, load_tokenizer, run_context, to_device
from ._common import (
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    resolve_model_dir,
)

__all__ = ["Reranker", "check_pairs", "resolve_activation", "rank_results"]

_ACTIVATION_PATHS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.Identity": "identity",
    "torch.nn.Tanh": "tanh",
}


def resolve_activation(activation: str | Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """Map ``"sigmoid"``/``"identity"``/``"tanh"``/``"relu"``/``None`` (identity),
    a ``torch.nn`` class path, or a callable on tensors, to a callable."""
    import torch

    if activation is None:
        return torch.nn.Identity()
    if callable(activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"activation must be a str, a callable or None, got {type(activation).__name__}"
        )
    if activation.startswith("torch.") and activation not in _ACTIVATION_PATHS:
        import importlib

        module_name, _, attr = activation.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)()
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"activation {activation!r} could not be imported") from exc
    name = _ACTIVATION_PATHS.get(activation, activation.lower())
    table = {
        "sigmoid": torch.nn.Sigmoid(),
        "identity": torch.nn.Identity(),
        "none": torch.nn.Identity(),
        "tanh": torch.nn.Tanh(),
        "relu": torch.nn.ReLU(),
    }
    if name not in table:
        raise ValueError(
            f"activation must be one of {sorted(table)} (or a torch.nn class path / callable), "
            f"got {activation!r}"
        )
    return table[name]


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
        model: Any,
        tokenizer: Any,
        *,
        activation: str | Callable[[Any], Any] | None = "sigmoid",
        max_length: int | None = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.activation = resolve_activation(activation)
        if max_length is None:
            max_length = min(
                int(getattr(tokenizer, "model_max_length", 512) or 512),
                int(getattr(model.config, "max_position_embeddings", 512) or 512),
            )
        self.max_length = int(max_length)
        self.device = device
        self.name = name

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
    ) -> Reranker:
        """Load a cross-encoder directory or hub id.

        Args:
            activation: ``"config"`` (default: as sentence-transformers reads it from
                the model config), or an override (``"sigmoid"``, ``"identity"``,
                ``None``, a callable on logits).
            max_length: token limit per pair (default: the tokenizer's
                ``model_max_length`` capped by ``max_position_embeddings``).
            int8_linear: fast option, dynamic int8 quantization of the Linear layers
                (CPU; slightly changes scores).
        """
        from transformers import AutoModelForSequenceClassification

        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{model_dir} has no config.json: not a transformers model directory")
        model = load_backbone(
            model_dir, dtype=dtype, device=device, model_class=AutoModelForSequenceClassification
        )
        tokenizer = load_tokenizer(model_dir)
        if isinstance(activation, str) and activation == "config":
            activation = cls.default_activation(model.config)
        if int8_linear:
            model = apply_int8_linear(model)
        return cls(
            model,
            tokenizer,
            activation=activation,
            max_length=max_length,
            device=device,
            name=os.fspath(path_or_hub_id),
        )

    # ------------------------------------------------------------------ scoring
    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        return dict(
            self.tokenizer(
                [list(p) for p in pairs],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        )

    def _forward_logits(self, features: dict[str, Any]) -> Any:
        return self.model(**features, return_dict=True).logits

    def _num_outputs(self) -> int:
        return int(getattr(self.model.config, "num_labels", 1))

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
        with run_context(self.device, autocast):
            for idx in progress(
                batches, enable=show_progress_bar, total_items=len(items), desc="Scoring"
            ):
                feats = to_device(self._features([items[i] for i in idx]), self.device)
                logits = act(self._forward_logits(feats))
                out[idx] = logits.float().cpu().numpy().reshape(len(idx), num_labels)
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
        return f"Reranker(name={self.name!r}, max_length={self.max_length}, device={self.device!r})"
