"""Route PyLate itself through maxsim: :func:`patch`, :func:`unpatch`, :func:`patched`.

The replacements are this package's drop-ins; PyLate's originals are kept in
:data:`maxsim.pylate._fallback.SAVED`, where the drop-ins find them for the
calls they hand back (CUDA/MPS tensors, gradients, explicit backends).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ._fallback import LOCK, SAVED, require_pylate
from .rank import rerank
from .scores import colbert_kd_scores, colbert_scores, colbert_scores_pairwise

__all__ = ["is_patched", "patch", "patched", "unpatch"]

# (module, attribute, replacement). Modules missing from an older PyLate are
# skipped. ``pylate.scores`` alone does not reach ``rerank`` (it imports
# ``colbert_scores`` at import time), hence the explicit entries.
_TARGETS: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("pylate.rank", "rerank", rerank),
    ("pylate.rank.rank", "rerank", rerank),
    ("pylate.retrieve.colbert", "rerank", rerank),
    ("pylate.rank.rank", "colbert_scores", colbert_scores),
    ("pylate.scores", "colbert_scores", colbert_scores),
    ("pylate.scores", "colbert_scores_pairwise", colbert_scores_pairwise),
    ("pylate.scores", "colbert_kd_scores", colbert_kd_scores),
)


def patch() -> list[str]:
    """Route PyLate's CPU scoring and reranking through maxsim.

    Replaces ``pylate.rank.rerank``, ``pylate.rank.rank.rerank``,
    ``pylate.retrieve.colbert.rerank``, ``pylate.rank.rank.colbert_scores``
    and ``pylate.scores.colbert_scores`` (plus ``pylate.scores``'
    ``colbert_scores_pairwise`` and ``colbert_kd_scores``). Calls on CUDA/MPS
    tensors, calls that need gradients and explicit PyLate backends still run
    PyLate's originals. Idempotent.

    Returns
    -------
    list[str]
        The ``module.attribute`` names that are patched.

    Raises
    ------
    ImportError
        If PyLate is not installed (the message says how to install it).
    """
    require_pylate()
    with LOCK:
        for module_name, attr, replacement in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if not hasattr(module, attr) or (module_name, attr) in SAVED:
                continue
            SAVED[(module_name, attr)] = getattr(module, attr)
            setattr(module, attr, replacement)
        return [f"{m}.{a}" for m, a in SAVED]


def unpatch() -> None:
    """Restore PyLate's original functions. A no-op when not patched."""
    with LOCK:
        for (module_name, attr), original in list(SAVED.items()):
            module = sys.modules.get(module_name)
            if module is not None:
                setattr(module, attr, original)
            del SAVED[(module_name, attr)]


def is_patched() -> bool:
    """True while :func:`patch` is in effect."""
    return bool(SAVED)


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """Context manager: PyLate patched inside the block, as before after it.

    Nested use is fine; only the outermost block that patched unpatches.
    """
    with LOCK:
        was_patched = is_patched()
        patch()
    try:
        yield
    finally:
        if not was_patched:
            unpatch()
