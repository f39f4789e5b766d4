"""Shared helpers for :mod:`maxsim.models`: model resolution, input checks, batching."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ModelNotFoundError",
    "resolve_model_dir",
    "check_texts",
    "check_batch_size",
    "resolve_dtype",
    "length_sorted_batches",
    "progress",
    "read_json",
    "quantize_embeddings",
    "PRECISIONS",
]

PRECISIONS = ("float32", "float16", "int8", "uint8", "ubinary", "binary")


class ModelNotFoundError(FileNotFoundError):
    """A model directory or hub id could not be resolved to local files."""


def _looks_like_local_path(name: str) -> bool:
    if name.startswith((".", "/", "~")) or os.path.isabs(name):
        return True
    if "\\" in name:
        return True
    # Hub ids are "name" or "owner/name"; more separators means a filesystem path.
    return name.count("/") > 1


def resolve_model_dir(
    path_or_id: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Resolve a local directory or a Hugging Face hub id to a local directory.

    A hub id goes through ``huggingface_hub.snapshot_download``, which reuses the hub
    cache and, with ``HF_HUB_OFFLINE=1`` or no network, only looks in that cache.

    Raises:
        TypeError: ``path_or_id`` is not a string or path.
        ModelNotFoundError: neither a directory nor a resolvable hub id (the message
            names the model).
    """
    if not isinstance(path_or_id, (str, os.PathLike)):
        raise TypeError(
            f"path_or_hub_id must be a str or os.PathLike, got {type(path_or_id).__name__}"
        )
    name = os.fspath(path_or_id)
    if not name:
        raise ValueError("path_or_hub_id must be a non-empty string")
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return Path(expanded)
    if os.path.exists(expanded):
        raise ModelNotFoundError(f"model {name!r}: expected a model directory, found a file")
    if _looks_like_local_path(name):
        raise ModelNotFoundError(f"model directory {name!r} does not exist")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id=name, revision=revision, cache_dir=cache_dir, token=token)
    except Exception as exc:  # network errors, offline mode, unknown repo ...
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        hint = (
            " (HF_HUB_OFFLINE is set and the model is not in the local hub cache)"
            if offline
            else " (no local directory of that name, and the hub download failed:"
            " check the id, the network, or pre-download it)"
        )
        raise ModelNotFoundError(
            f"model {name!r} could not be loaded{hint}: {type(exc).__name__}: {exc}"
        ) from exc
    return Path(local)


def read_json(path: Path, *, what: str | None = None) -> Any:
    """Read a JSON file, raising ``ValueError`` naming the file when it is malformed."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed {what or path.name} at {path}: {exc}") from exc


def check_texts(texts: Any, name: str = "texts") -> tuple[list[str], bool]:
    """Validate a text or list of texts.

    Returns:
        ``(list_of_str, was_single_string)``.

    Raises:
        TypeError: not a str / sequence of str, or an item is not a str.
        ValueError: an empty sequence.
    """
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Sequence):
        if isinstance(texts, np.ndarray) and texts.ndim == 1:
            texts = texts.tolist()
        else:
            raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} must not be empty")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(t).__name__}")
    return texts, False


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def resolve_dtype(dtype: Any) -> Any:
    """Map ``None``/str/``torch.dtype`` to a floating ``torch.dtype`` (default float32)."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating point dtype, got {dtype}")
        return dtype
    if isinstance(dtype, str):
        table = {
            "float32": torch.float32,
            "fp32": torch.float32,
            "float": torch.float32,
            "float16": torch.float16,
            "fp16": torch.float16,
            "half": torch.float16,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
        }
        key = dtype.lower().removeprefix("torch.")
        if key in table:
            return table[key]
        raise ValueError(
            f"dtype must be one of {sorted(set(table))} or a torch.dtype, got {dtype!r}"
        )
    raise TypeError(f"dtype must be a str or torch.dtype, got {type(dtype).__name__}")


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, *, token_budget: int | None = None
) -> list[np.ndarray]:
    """Split item indices into batches of similar length, longest first.

    With ``token_budget`` a batch holds at most ``token_budget`` padded tokens
    (``len(batch) * longest``), and at most ``batch_size`` items: short texts then
    go in bigger batches and long ones in smaller, which keeps the padded work
    close to the real work.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    if token_budget is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(batch_size, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def progress(
    iterable: Sequence[Any], *, enable: bool | None, total_items: int, desc: str
) -> Iterator[Any]:
    """Wrap ``iterable`` in a tqdm bar when ``enable`` (default: more than 256 items)."""
    if enable is None:
        enable = total_items > 256
    if not enable:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, desc=desc, total=len(iterable))


def quantize_embeddings(
    embeddings: np.ndarray,
    precision: str,
    *,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize ``(n, d)`` float embeddings.

    * ``"float32"`` / ``"float16"``: a cast.
    * ``"ubinary"``: ``np.packbits(x > 0, axis=-1)`` -> ``(n, ceil(d / 8))`` uint8 (the
      same bits as ``maxsim.binary.quantize`` and sentence-transformers).
    * ``"binary"``: the ubinary bytes minus 128 (i.e. XOR 0x80) viewed as int8.
    * ``"int8"`` / ``"uint8"``: sentence-transformers' calibrated scalar scheme: per
      dimension ``start = ranges[0]``, ``step = (ranges[1] - ranges[0]) / 255``,
      ``uint8 = trunc((x - start) / step)`` and ``int8 = trunc((x - start) / step - 128)``.
      ``ranges`` (shape ``(2, d)``: min row then max row) comes from the argument, else
      from ``calibration_embeddings``, else from ``embeddings`` themselves. This
      is sentence-transformers' ``"int8"``, not ``maxsim.quantize(docs,
      "int8_per_token")`` (one symmetric scale per token, for the MaxSim kernels).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    x = np.asarray(embeddings)
    if precision == "float32":
        return x.astype(np.float32, copy=False)
    if precision == "float16":
        return x.astype(np.float16)
    if precision == "ubinary":
        return np.packbits(x > 0, axis=-1)
    if precision == "binary":
        return (np.packbits(x > 0, axis=-1) ^ np.uint8(0x80)).view(np.int8)
    # int8 / uint8
    if ranges is None:
        calib = x if calibration_embeddings is None else np.asarray(calibration_embeddings)
        if calib.ndim != 2 or calib.shape[1] != x.shape[-1]:
            raise ValueError(
                "calibration_embeddings must have shape (n, d) with d = "
                f"{x.shape[-1]}, got {calib.shape}"
            )
        ranges = np.vstack((calib.min(axis=0), calib.max(axis=0)))
    ranges = np.asarray(ranges)
    if ranges.shape != (2, x.shape[-1]):
        raise ValueError(f"ranges must have shape (2, {x.shape[-1]}), got {ranges.shape}")
    starts = ranges[0, :]
    steps = (ranges[1, :] - ranges[0, :]) / 255
    if precision == "uint8":
        return ((x - starts) / steps).astype(np.uint8)
    return ((x - starts) / steps - 128).astype(np.int8)
