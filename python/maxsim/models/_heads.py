"""Post-processing shared by the torch and the ONNX Runtime backends, in numpy.

The backends differ only in how they run the transformer (torch module or ONNX
Runtime session); what comes after it is computed here for both, on float32
numpy arrays: pooling, the sentence-transformers ``Dense`` heads, PyLate's
projection layers, the 2D-Matryoshka scoring heads, activations and L2
normalisation. Head weights are plain numpy arrays, read from safetensors /
``torch.save`` files by the torch loader and from ``heads.npz`` by the ONNX one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "DenseHead",
    "MatryoshkaHead",
    "Projection",
    "activation_fn",
    "l2_normalize",
    "pool",
]

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x: np.ndarray) -> np.ndarray:
    # exact (erf) GELU, as torch.nn.GELU(); computed in float64, returned in x's dtype
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _ERF(x64 / math.sqrt(2.0)))).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # split by sign so that exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "gelu": _gelu,
}

# torch.nn class paths as sentence-transformers / PyLate configs name them
_TORCH_PATHS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
    "torch.nn.Identity": "identity",
    "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.Tanh": "tanh",
    "torch.nn.ReLU": "relu",
    "torch.nn.GELU": "gelu",
}


def activation_fn(name: str) -> str:
    """Canonical activation name (a key of :data:`ACTIVATIONS`) for a name or a
    ``torch.nn`` class path; ``ValueError`` for anything else."""
    key = _TORCH_PATHS.get(name, name.lower() if isinstance(name, str) else name)
    if key == "none":
        key = "identity"
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unsupported activation {name!r}: expected one of {sorted(ACTIVATIONS)} "
            "or a torch.nn class path for one of them"
        )
    return key


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x / max(||x||, 1e-12)`` along ``axis`` (``torch.nn.functional.normalize``)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers ``Pooling``: ``(B, L, H)`` token vectors and ``(B, L)``
    0/1 mask -> ``(B, H)`` float32.

    Modes: ``cls`` (first token), ``mean``, ``max``, ``lasttoken`` (last position
    whose mask is 1), ``weightedmean`` (position weights 1..L), and
    ``mean_sqrt_len_tokens`` (sum / sqrt(count)).
    """
    tokens = np.asarray(tokens, dtype=np.float32)
    mask_f = mask.astype(np.float32)[:, :, None]
    if mode == "cls":
        return tokens[:, 0]
    if mode == "max":
        return np.where(mask_f > 0, tokens, np.float32(-1e9)).max(axis=1)
    if mode == "lasttoken":
        seq_len = mask.shape[1]
        flipped = mask[:, ::-1]
        last = seq_len - 1 - flipped.argmax(axis=1)
        last = np.where(flipped.max(axis=1) == 0, 0, last)
        return tokens[np.arange(tokens.shape[0]), last]
    if mode == "weightedmean":
        weights = np.arange(1, tokens.shape[1] + 1, dtype=np.float32)
        mask_f = mask_f * weights[None, :, None]
    summed = (tokens * mask_f).sum(axis=1)
    count = np.maximum(mask_f.sum(axis=1), np.float32(1e-9))
    if mode == "mean_sqrt_len_tokens":
        return summed / np.sqrt(count)
    if mode in ("mean", "weightedmean"):
        return summed / count
    raise ValueError(f"unknown pooling mode {mode!r}")


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weight.T
    return y + bias if bias is not None else y


class DenseHead:
    """sentence-transformers ``Dense``: ``activation(x @ W.T + b)``.

    Args:
        weight: ``(out, in)`` float32.
        bias: ``(out,)`` float32 or ``None``.
        activation: a key of :data:`ACTIVATIONS` or a ``torch.nn`` class path.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, activation: str) -> None:
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self.activation = activation_fn(activation)
        if self.weight.ndim != 2 or (
            self.bias is not None and self.bias.shape != (self.weight.shape[0],)
        ):
            raise ValueError(
                f"Dense head: weight {self.weight.shape} and bias "
                f"{None if self.bias is None else self.bias.shape} do not fit"
            )

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](_linear(x, self.weight, self.bias))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.weight": self.weight}
        if self.bias is not None:
            out[f"{prefix}.bias"] = self.bias
        return out


class Projection(DenseHead):
    """PyLate ``Dense``: ``activation(x @ W.T + b) [+ x @ R.T, or + x]`` per token.

    ``residual`` is ``(out, in)`` for a projected residual; with ``use_residual``
    and no ``residual`` the input itself is added (``in == out``).
    """

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        activation: str,
        *,
        residual: np.ndarray | None = None,
        use_residual: bool = False,
    ) -> None:
        super().__init__(weight, bias, activation)
        self.residual = None if residual is None else np.asarray(residual, dtype=np.float32)
        self.use_residual = bool(use_residual)
        if self.use_residual and self.residual is None and self.in_features != self.out_features:
            raise ValueError(
                "Dense with use_residual needs a residual weight when in_features != out_features"
            )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = super().__call__(x)
        if self.use_residual:
            y = y + (x @ self.residual.T if self.residual is not None else x)
        return y

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = super().arrays(prefix)
        if self.residual is not None:
            out[f"{prefix}.residual"] = self.residual
        return out


class MatryoshkaHead:
    """One 2D-Matryoshka profile head: ``Linear(dim, h) -> GELU -> Linear(h, 1)`` on
    the first ``dim`` features of the ``[CLS]`` vector; ``(B, H)`` -> ``(B,)``."""

    def __init__(self, w0: np.ndarray, b0: np.ndarray, w3: np.ndarray, b3: np.ndarray) -> None:
        self.w0, self.b0 = np.asarray(w0, np.float32), np.asarray(b0, np.float32)
        self.w3, self.b3 = np.asarray(w3, np.float32), np.asarray(b3, np.float32)
        hidden, dim = self.w0.shape
        if self.b0.shape != (hidden,) or self.w3.shape != (1, hidden) or self.b3.shape != (1,):
            raise ValueError(
                f"Matryoshka head shapes {self.w0.shape}, {self.b0.shape}, "
                f"{self.w3.shape}, {self.b3.shape} do not fit Linear(dim, h) -> Linear(h, 1)"
            )
        self.dim = int(dim)

    def __call__(self, cls_vec: np.ndarray) -> np.ndarray:
        h = _gelu(_linear(cls_vec[:, : self.dim].astype(np.float32), self.w0, self.b0))
        return _linear(h, self.w3, self.b3)[:, 0]

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.0.weight": self.w0,
            f"{prefix}.0.bias": self.b0,
            f"{prefix}.3.weight": self.w3,
            f"{prefix}.3.bias": self.b3,
        }


def as_numpy(value: Any) -> np.ndarray:
    """A torch tensor (any dtype / device) or array as float32 numpy."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
