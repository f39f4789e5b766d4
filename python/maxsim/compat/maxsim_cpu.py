"""Drop-in for the ``maxsim-cpu`` package (Mixedbread): swap the import, nothing else::

# import maxsim_cpu
from maxsim.compat import maxsim_cpu
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._scoring import scores

__all__ = ["maxsim_scores", "maxsim_scores_variable"]


def maxsim_scores(query: Any, docs: Any) -> np.ndarray:
    """``query`` ``(nq, d)`` float32, ``docs`` ``(n_docs, doc_len, d)`` float32 ->
    float32 ``(n_docs,)``, as ``maxsim_cpu.maxsim_scores``."""
    return scores(query, docs)


def maxsim_scores_variable(query: Any, docs: Sequence[Any]) -> np.ndarray:
    """``query`` ``(nq, d)`` float32, ``docs`` a list of ``(len_i, d)`` float32 ->
    float32 ``(n_docs,)``, as ``maxsim_cpu.maxsim_scores_variable``."""
    return scores(query, list(docs))
