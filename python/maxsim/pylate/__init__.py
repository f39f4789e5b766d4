"""Drop-in MaxSim scoring for `PyLate <https://github.com/lightonai/pylate>`_.

Everything here keeps PyLate's contracts (arguments, shapes, return types,
ordering) while scoring on the CPU with :mod:`maxsim` and never materialising
padding or the ``(Nq, Nd, Lq, Ld)`` similarity tensor that PyLate's einsum
builds. The modules follow PyLate's own:

* :mod:`~maxsim.pylate.scores`: :func:`colbert_scores`,
  :func:`colbert_scores_pairwise` and :func:`colbert_kd_scores` mirror
  :mod:`pylate.scores`, masks included.
* :mod:`~maxsim.pylate.rank`: :func:`rerank` mirrors :func:`pylate.rank.rerank`;
  by default it reproduces PyLate's zero-padding artefact (a candidate shorter
  than the longest one gets ``max(0, .)`` per query token), ``exact=True``
  gives true MaxSim.
* :mod:`~maxsim.pylate.patch`: :func:`patch`, :func:`unpatch` and
  :func:`patched` reroute PyLate itself.
* :mod:`~maxsim.pylate.indexes`: :class:`Index` is an end-to-end PyLate index
  with exact MaxSim search.
* :mod:`~maxsim.pylate.plaid`: :class:`PLAID` is PyLate's PLAID index
  interface on :class:`maxsim.Index` (compressed, memory-mapped, updatable).

Inputs on CUDA/MPS, inputs that need gradients, an explicit PyLate
``backend`` other than ``"auto"``, non-binary masks and integer embeddings
are handed to PyLate's original function, so nothing changes for them
(:mod:`maxsim.pylate._fallback`).

PyLate itself is only needed for :func:`patch`/:func:`patched` and for those
fall-throughs; the scoring functions and :class:`Index` need only torch.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "maxsim.pylate needs PyTorch, which PyLate depends on. Install PyLate "
        "with `pip install pylate` (it brings torch), or torch alone with "
        "`pip install torch`."
    ) from exc

from .indexes import Index
from .patch import is_patched, patch, patched, unpatch
from .plaid import PLAID
from .rank import rerank
from .scores import colbert_kd_scores, colbert_scores, colbert_scores_pairwise

__all__ = [
    "Index",
    "PLAID",
    "colbert_kd_scores",
    "colbert_scores",
    "colbert_scores_pairwise",
    "is_patched",
    "patch",
    "patched",
    "rerank",
    "unpatch",
]
