"""maxsim: the fastest CPU MaxSim for ColBERT/ColPali-style late interaction.

Quick tour::

    import maxsim
    s = maxsim.scores(query, docs)            # (n_docs,) float32
    S = maxsim.scores_batch(queries, docs)    # (n_queries, n_docs)
    top_scores, top_ids = maxsim.topk(query, docs, k=10)
    packed = maxsim.PackedDocs.from_lengths(flat, doclens)

See ``maxsim.info()`` for the kernel in use and the README for details.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import _native
from ._packed import PackedDocs
from ._reduced import quantize
from ._scoring import get_num_threads, info, scores, scores_batch, set_kernel, set_num_threads, topk
from .index import Index

try:
    __version__ = _version("maxsim")
except PackageNotFoundError:  # running from a source tree
    __version__ = _native.__version__

# Resolve the kernel now so that a bad MAXSIM_KERNEL fails at import, loudly.
_native.kernel()


def _warm_numpy_bridge() -> None:
    # rust-numpy looks up its shared borrow-checking capsule through the
    # deprecated ``numpy.core`` path on first use, which warns under numpy 2.x.
    # Do that first use here, silently, instead of inside a user's call.
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scores(np.ones((1, 1), np.float32), np.ones((1, 1, 1), np.float32))


_warm_numpy_bridge()


def __getattr__(name: str):  # PEP 562: keep `import maxsim` free of torch
    if name == "retrieve":
        from .models.retrieve import retrieve

        return retrieve
    if name in ("binary", "models", "pylate", "colbert"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'maxsim' has no attribute {name!r}")


__all__ = [
    "Index",
    "PackedDocs",
    "get_num_threads",
    "info",
    "quantize",
    "retrieve",
    "scores",
    "scores_batch",
    "set_kernel",
    "set_num_threads",
    "topk",
    "__version__",
]
