"""PyLate's own functions, for the calls maxsim hands back to them.

Inputs on CUDA/MPS, inputs that need gradients, an explicit PyLate
``backend`` other than ``"auto"``, non-binary masks and integer embeddings are
scored by PyLate's original function, reached even while :func:`~maxsim.pylate.patch`
has replaced it (:data:`SAVED` keeps the originals). Without PyLate installed,
the same calls run PyLate's torch reference (einsum, mask products, max, sum),
copied here so that the drop-ins need only torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

INSTALL_HINT = (
    "PyLate is not installed. Install it with `pip install pylate` "
    "(PyLate 1.4 to 1.6 are supported; pylate==1.6.0 pins torch==2.11.0 "
    "through fast-plaid)."
)

BACKENDS = ("auto", "torch", "flash", "lik")

#: PyLate's originals replaced by ``patch()``: ``(module, attribute) -> function``.
SAVED: dict[tuple[str, str], Any] = {}
#: Guards :data:`SAVED` and the patched attributes.
LOCK = threading.RLock()

# Functions of this package (the replacements) are never "originals".
_PACKAGE = __name__.rpartition(".")[0]


def resolve_backend(backend: str | None) -> str:
    """``backend`` (or ``PYLATE_SCORES_BACKEND``) checked and lower-cased."""
    resolved = backend
    if resolved is None:
        resolved = os.environ.get("PYLATE_SCORES_BACKEND", "auto")
    if not isinstance(resolved, str) or resolved.lower() not in BACKENDS:
        raise ValueError(
            f"backend must be one of 'auto', 'torch', 'flash', 'lik'; got {resolved!r}"
        )
    return resolved.lower()


def require_pylate() -> None:
    """Raises ImportError with :data:`INSTALL_HINT` when PyLate cannot be imported."""
    try:
        import pylate  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def _pylate_available() -> bool:
    if "pylate" in sys.modules:
        return True
    return importlib.util.find_spec("pylate") is not None


def _is_ours(fn: Any) -> bool:
    module = getattr(fn, "__module__", None) or ""
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def original(module: str, attr: str) -> Callable[..., Any] | None:
    """PyLate's own ``module.attr``, even while patched; None without PyLate."""
    fn = SAVED.get((module, attr))
    if fn is None:
        if not _pylate_available():
            return None
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
        fn = getattr(mod, attr, None)
    if fn is None or _is_ours(fn):
        return None
    return fn


def call_original_scores(name: str, args: tuple[Any, ...], backend: str | None) -> torch.Tensor:
    """``pylate.scores.<name>(*args, backend=backend)``, or PyLate's torch
    reference without PyLate (``"flash"``/``"lik"`` then raise RuntimeError)."""
    fn = original("pylate.scores", name)
    if fn is None:
        resolved = resolve_backend(backend)
        if resolved in ("flash", "lik"):
            raise RuntimeError(
                f"backend={resolved!r} needs PyLate and an accelerator. " + INSTALL_HINT
            )
        return _TORCH_REFERENCE[name](*args)
    if backend is not None:
        return fn(*args, backend=backend)
    return fn(*args)


def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        return torch.stack(list(x))
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _torch_colbert_scores(q: Any, d: Any, qm: Any = None, dm: Any = None) -> torch.Tensor:
    """PyLate's torch path, for fall-throughs when PyLate is not installed."""
    q, d = _to_tensor(q), _to_tensor(d)
    s = torch.einsum("ash,bth->abst", q, d)
    if qm is not None:
        s = s * _to_tensor(qm).unsqueeze(1).unsqueeze(3)
    if dm is not None:
        s = s * _to_tensor(dm).unsqueeze(0).unsqueeze(2)
    return s.max(axis=-1).values.sum(axis=-1)


def _torch_colbert_kd_scores(q: Any, d: Any, qm: Any = None, dm: Any = None) -> torch.Tensor:
    """PyLate's torch path of ``colbert_kd_scores`` (fall-through without PyLate)."""
    q, d = _to_tensor(q), _to_tensor(d)
    s = torch.einsum("ash,abth->abst", q, d)
    if qm is not None:
        s = s * _to_tensor(qm).unsqueeze(1).unsqueeze(3)
    if dm is not None:
        s = s * _to_tensor(dm).unsqueeze(2)
    return s.max(axis=-1).values.sum(axis=-1)


def _torch_colbert_scores_pairwise(q: Any, d: Any) -> torch.Tensor:
    """PyLate's torch path of ``colbert_scores_pairwise`` (fall-through without PyLate)."""
    out = [
        torch.einsum("sh,th->st", _to_tensor(a), _to_tensor(b)).max(axis=-1).values.sum()
        for a, b in zip(q, d)
    ]
    return torch.stack(out, dim=0)


_TORCH_REFERENCE: dict[str, Callable[..., torch.Tensor]] = {
    "colbert_scores": _torch_colbert_scores,
    "colbert_kd_scores": _torch_colbert_kd_scores,
    "colbert_scores_pairwise": _torch_colbert_scores_pairwise,
}
