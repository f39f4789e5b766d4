"""Loading the encoders a retrieval index is built with, and checking that a
search uses the same one.

An index records its model (:func:`model_record`): the name the user gave, the
resolved folder, the backend, the class, a fingerprint of the folder's files,
the output dimension and the prompts / prefixes. :func:`check_same_model`
refuses a different model, or the same folder whose files changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .errors import CliError, UsageError

BACKENDS = ("auto", "torch", "onnx")
# Files up to this size are hashed whole; larger ones (the weights) by their
# size and their first and last MiB, which differ between any two trainings
# or checkpoints, so that a search does not reread gigabytes of weights.
_HASHED_MAX_BYTES = 4 << 20
_EDGE_BYTES = 1 << 20


def model_dir(name: str) -> Path:
    """The local folder of a model path or hub id (the hub only through its local cache
    when ``HF_HUB_OFFLINE=1``)."""
    from maxsim.models._common import resolve_model_dir

    return Path(resolve_model_dir(name)).resolve()


def fingerprint(folder: Path) -> str:
    """SHA-256 over the folder's file names, sizes and contents (large files: their
    first and last MiB)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\n".encode())
        with open(path, "rb") as f:
            if size <= _HASHED_MAX_BYTES:
                digest.update(f.read())
            else:
                digest.update(f.read(_EDGE_BYTES))
                f.seek(size - _EDGE_BYTES)
                digest.update(f.read(_EDGE_BYTES))
    return digest.hexdigest()


def detect_backend(folder: Path, backend: str) -> str:
    """``torch`` or ``onnx``; ``auto`` picks onnx for a folder of ONNX graphs without
    torch weights."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    has_onnx = (folder / "maxsim_onnx.json").is_file() or any(folder.glob("*.onnx"))
    has_torch = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    return "onnx" if has_onnx and not has_torch else "torch"


def detect_class(folder: Path, backend: str) -> str:
    """The ``maxsim.models`` class of the model in ``folder`` (``ColBERT``, ``Embedder``, ...)."""
    import json

    config = folder / "maxsim_onnx.json"
    if backend == "onnx" and config.is_file():
        return str(json.loads(config.read_text(encoding="utf-8")).get("class"))
    if backend == "onnx":
        from maxsim.models._onnx_folder import third_party_layout

        if third_party_layout(folder) == "pylate-onnx-export":
            return "ColBERT"
        if not (folder / "modules.json").is_file():
            return "Embedder"
    from maxsim.models.export import detect_kind

    return detect_kind(folder)


def kind_for_class(cls: str) -> str:
    if cls == "ColBERT":
        return "colbert"
    if cls == "Embedder":
        return "dense"
    raise CliError(f"a {cls} cannot build an index (it scores pairs); pass it to --rerank")


@dataclass
class Encoder:
    """A loaded query/document encoder for one index kind."""

    kind: str
    model: Any
    record: dict

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    def encode_documents(self, texts: Sequence[str], batch_size: int) -> Any:
        """colbert: a list of ``(len_i, dim)`` float32; dense/binary: ``(n, dim)`` float32."""
        if self.kind == "colbert":
            return self.model.encode(
                list(texts), is_query=False, batch_size=batch_size, show_progress_bar=False
            )
        return self.model.embed(
            list(texts), is_query=False, batch_size=batch_size, show_progress_bar=False
        )

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """colbert: a list of ``(query_length, dim)``; dense/binary: ``(n, dim)`` float32."""
        if self.kind == "colbert":
            return self.model.encode(
                list(texts), is_query=True, batch_size=batch_size, show_progress_bar=False
            )
        return self.model.embed(
            list(texts), is_query=True, batch_size=batch_size, show_progress_bar=False
        )


def _prompts(cls: str, model: Any) -> dict:
    if cls == "ColBERT":
        return {
            "query_prefix": model.query_prefix,
            "document_prefix": model.document_prefix,
            "query_length": model.query_length,
            "document_length": model.document_length,
        }
    return {
        "query_prompt": model._pick_prompt(True, None, None),
        "document_prompt": model._pick_prompt(False, None, None),
        "max_seq_length": model.max_seq_length,
    }


def load_encoder(name: str, kind: str, backend: str = "auto") -> Encoder:
    """Load ``name`` (folder or hub id) for an index of ``kind`` (``auto``: from the model)."""
    folder = model_dir(name)
    backend = detect_backend(folder, backend)
    cls = detect_class(folder, backend)
    if kind == "auto":
        kind = kind_for_class(cls)
    wanted = "ColBERT" if kind == "colbert" else "Embedder"
    if cls != wanted:
        raise CliError(
            f"--kind {kind} needs a {'ColBERT' if kind == 'colbert' else 'bi-encoder'} model; "
            f"{name} is a {cls}"
        )
    from maxsim import models

    loader = models.ColBERT if cls == "ColBERT" else models.Embedder
    model = loader.from_pretrained(str(folder), backend=backend)
    local = os.path.isdir(os.path.expanduser(name))
    record = {
        "name": str(Path(name).resolve()) if local else name,
        "path": str(folder),
        "backend": backend,
        "class": cls,
        "dim": int(model.dim),
        "fingerprint": fingerprint(folder),
        **_prompts(cls, model),
    }
    return Encoder(kind, model, record)


def check_same_model(recorded: Optional[dict], given: Optional[str], index_path: Path) -> str:
    """The model to load for searching an index: the recorded one, or ``given`` when it is
    the same model. Raises ``CliError`` naming both when they differ."""
    if given is None:
        if recorded is None:
            raise UsageError(
                f"{index_path} was built from precomputed embeddings with no --model; "
                "pass --model with the encoder that made them"
            )
        folder = Path(recorded["path"])
        if not folder.is_dir():
            raise CliError(
                f"{index_path}: its model folder {folder} is gone; pass --model with the "
                f"same model ({recorded['name']})"
            )
        if fingerprint(folder) != recorded["fingerprint"]:
            raise CliError(
                f"{index_path}: the files of its model {folder} changed since the index was "
                "built; rebuild the index"
            )
        return str(folder)
    if recorded is None:
        return given
    folder = model_dir(given)
    if fingerprint(folder) != recorded["fingerprint"]:
        raise CliError(
            f"--model {given} is not the model {index_path} was built with "
            f"({recorded['name']}, dim {recorded['dim']}); search with that model or rebuild"
        )
    return str(folder)


def load_reranker(name: str, backend: str = "auto") -> Any:
    folder = model_dir(name)
    backend = detect_backend(folder, backend)
    cls = detect_class(folder, backend)
    if cls != "Reranker":
        raise CliError(f"--rerank needs a cross-encoder (Reranker) model; {name} is a {cls}")
    from maxsim.models import Reranker

    return Reranker.from_pretrained(str(folder), backend=backend)


def check_dim(vectors: np.ndarray, dim: int, what: str) -> None:
    if vectors.shape[-1] != dim:
        raise CliError(f"{what}: dimension {vectors.shape[-1]} does not match the index's {dim}")
