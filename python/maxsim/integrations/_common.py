"""What the integrations share: loading a text scorer, scoring, ranking.

Nothing here imports a framework or torch: each integration module imports
its own framework, and an encoder imports its backend (torch or ONNX
Runtime) when a model loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

import maxsim
from maxsim._convert import as_k

__all__ = ["TextScorer", "best_first", "check_count", "load_colbert", "load_scorer"]

#: What a :class:`TextScorer` runs: late interaction, or a cross-encoder.
KINDS = ("colbert", "cross-encoder")
ModelLike = Union[str, "os.PathLike[str]", Any]


def missing_framework(package: str, extra: str, module: str) -> str:
    """The message of the ImportError an integration raises without its framework."""
    return f"{module} needs {package}, which is not installed: pip install 'maxsim[{extra}]'"


def check_count(value: Any, name: str, *, allow_none: bool = False) -> Optional[int]:
    """``value`` as an int >= 1 (or None where allowed), else TypeError / ValueError."""
    if value is None and allow_none:
        return None
    return as_k(value, name)


def best_first(scores: np.ndarray) -> np.ndarray:
    """Positions of ``scores`` (1-D) sorted best first; ties keep input order, NaN last."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _folder_kind(model_dir: Path, need_class: bool) -> tuple[str, Optional[str]]:
    """``(backend, class name or None)`` of a model folder: a ``maxsim export
    onnx`` folder names its class; another folder with ``model.onnx`` is a
    third-party ONNX ColBERT layout; anything else loads with torch (its class
    detected from its files when ``need_class``)."""
    config = model_dir / "maxsim_onnx.json"
    if config.is_file():
        try:
            cls = json.loads(config.read_text(encoding="utf-8")).get("class")
        except (OSError, ValueError, AttributeError) as err:
            raise ValueError(f"{config}: unreadable ({err})") from err
        return "onnx", cls
    if (model_dir / "model.onnx").is_file():
        return "onnx", "ColBERT"
    if not need_class:
        return "torch", None
    from maxsim.models.export import detect_kind

    return "torch", detect_kind(model_dir)


_CLASS_KINDS = {
    "ColBERT": "colbert",
    "Reranker": "cross-encoder",
    "CausalReranker": "cross-encoder",
}


def _instance_kind(model: Any) -> Optional[str]:
    from maxsim.models import ColBERT, Reranker

    if isinstance(model, ColBERT):
        return "colbert"
    if isinstance(model, Reranker):  # CausalReranker included
        return "cross-encoder"
    return None


def load_scorer(
    model: ModelLike,
    *,
    kind: Optional[str] = None,
    backend: Optional[str] = None,
    batch_size: int = 32,
    **load_kwargs: Any,
) -> TextScorer:
    """A :class:`TextScorer` for ``model``.

    Args:
        model: a loaded ``maxsim.models.ColBERT`` or ``Reranker`` (or
            ``CausalReranker``), or a model folder / hub id to load.
        kind: ``"colbert"`` or ``"cross-encoder"``; ``None``: from the model
            (the class of a loaded model, else the folder's files).
        backend: ``"torch"`` or ``"onnx"`` for a folder; ``None``: ``"onnx"``
            for a folder with ``maxsim_onnx.json`` or ``model.onnx``, else torch.
        batch_size: texts (or pairs) per forward pass.
        load_kwargs: passed to ``from_pretrained`` (``int8_linear=True``, ...).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: expected 'colbert', 'cross-encoder' or None, got {kind!r}")
    if backend is not None and backend not in ("torch", "onnx"):
        raise ValueError(f"backend: expected 'torch', 'onnx' or None, got {backend!r}")
    batch_size = check_count(batch_size, "batch_size")
    if isinstance(model, (str, os.PathLike)):
        from maxsim.models import CausalReranker, ColBERT, Reranker
        from maxsim.models._common import resolve_model_dir

        model_dir = resolve_model_dir(model)
        found_backend, cls = _folder_kind(model_dir, need_class=kind is None)
        if kind is None:
            kind = _CLASS_KINDS.get(cls or "")
            if kind is None:
                raise ValueError(
                    f"model {os.fspath(model)!r}: a {cls} (its class in maxsim.models) does "
                    "not score (query, document) pairs; expected a ColBERT model or a "
                    "cross-encoder"
                )
        if kind == "colbert":
            loader: Any = ColBERT
        else:
            loader = CausalReranker if cls == "CausalReranker" else Reranker
        loaded = loader.from_pretrained(model, backend=backend or found_backend, **load_kwargs)
        return TextScorer(loaded, kind, batch_size)
    if load_kwargs or backend is not None:
        raise ValueError(
            "backend and from_pretrained options apply to a model path, not a loaded "
            f"{type(model).__name__}"
        )
    found = _instance_kind(model)
    if found is None:
        raise TypeError(
            "model: expected a maxsim.models.ColBERT, Reranker or CausalReranker, or a "
            f"model path, got {type(model).__name__}"
        )
    if kind is not None and kind != found:
        raise ValueError(f"kind={kind!r} but model is a {type(model).__name__} ({found!r})")
    return TextScorer(model, found, batch_size)


def load_colbert(model: ModelLike, *, backend: Optional[str] = None, **load_kwargs: Any) -> Any:
    """A ``maxsim.models.ColBERT`` (``model`` loaded, or a folder / hub id to load)."""
    return load_scorer(model, kind="colbert", backend=backend, **load_kwargs).model


class TextScorer:
    """Scores texts against a query: MaxSim of a ColBERT model's token
    vectors, or a cross-encoder's relevance score.

    Build one with :func:`load_scorer`.
    """

    def __init__(self, model: Any, kind: str, batch_size: int = 32) -> None:
        self.model = model
        self.kind = kind
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return str(getattr(self.model, "name", "") or type(self.model).__name__)

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts),)`` float32 relevance of each text to ``query``.

        ColBERT: ``Σ_i max_j ⟨q_i, d_j⟩`` over the L2-normalised token vectors
        (the query expanded to ``query_length`` as PyLate does). Cross-encoder:
        the model's score after its activation.
        """
        if not isinstance(query, str):
            raise TypeError(f"query: expected a str, got {type(query).__name__}")
        texts = list(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"texts[{bad}]: expected a str, got {type(texts[bad]).__name__}")
        if not texts:
            return np.zeros(0, dtype=np.float32)
        if self.kind == "colbert":
            q = self.model.encode(query, is_query=True, batch_size=self.batch_size)
            docs = self.model.encode(texts, is_query=False, batch_size=self.batch_size, packed=True)
            return maxsim.scores(q, docs)
        pairs = [(query, t) for t in texts]
        return np.asarray(self.model.score(pairs, batch_size=self.batch_size), dtype=np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        """``(nq, dim)`` float32 query token vectors (ColBERT only)."""
        if self.kind != "colbert":
            raise ValueError("a cross-encoder has no query vectors; use a ColBERT model")
        return self.model.encode(query, is_query=True, batch_size=self.batch_size)
