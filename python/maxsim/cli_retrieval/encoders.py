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


def _check_class(name: str, kind: str, cls: str) -> str:
    """The index kind for a model of class ``cls`` (``auto``: from the class)."""
    if kind == "auto":
        kind = kind_for_class(cls)
    wanted = "ColBERT" if kind == "colbert" else "Embedder"
    if cls != wanted:
        raise CliError(
            f"--kind {kind} needs a {'ColBERT' if kind == 'colbert' else 'bi-encoder'} model; "
            f"{name} is a {cls}"
        )
    return kind


def _record(name: str, folder: Path, backend: str, cls: str, settings: dict) -> dict:
    local = os.path.isdir(os.path.expanduser(name))
    return {
        "name": str(Path(name).resolve()) if local else name,
        "path": str(folder),
        "backend": backend,
        "class": cls,
        "dim": int(settings["dim"]),
        "fingerprint": fingerprint(folder),
        **{k: v for k, v in settings.items() if k != "dim"},
    }


def load_encoder(name: str, kind: str, backend: str = "auto") -> Encoder:
    """Load ``name`` (folder or hub id) for an index of ``kind`` (``auto``: from the model)."""
    folder = model_dir(name)
    backend = detect_backend(folder, backend)
    cls = detect_class(folder, backend)
    kind = _check_class(name, kind, cls)
    from maxsim import models

    loader = models.ColBERT if cls == "ColBERT" else models.Embedder
    model = loader.from_pretrained(str(folder), backend=backend)
    record = _record(name, folder, backend, cls, {"dim": int(model.dim), **_prompts(cls, model)})
    return Encoder(kind, model, record)


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _embedder_settings(
    dim: int, prompts: dict, default_prompt_name: Optional[str], max_seq_length: int
) -> dict:
    """The record's settings of an ``Embedder``, its prompts picked by its own rule."""
    from types import SimpleNamespace

    from maxsim.models import Embedder

    model = SimpleNamespace(prompts=prompts, default_prompt_name=default_prompt_name)
    pick = Embedder._pick_prompt
    return {
        "dim": int(dim),
        "query_prompt": pick(model, True, None, None),  # type: ignore[arg-type]
        "document_prompt": pick(model, False, None, None),  # type: ignore[arg-type]
        "max_seq_length": int(max_seq_length),
    }


def _torch_embedder_settings(folder: Path) -> Optional[dict]:
    """What ``Embedder.from_pretrained(folder, backend="torch")`` sets, from the
    sentence-transformers files; ``None`` where only the loaded backbone tells."""
    from maxsim.models._common import read_json
    from maxsim.models._st_layout import read_embedder_layout

    layout = read_embedder_layout(folder)  # reads the Dense heads' (small) weights
    config_path = layout.transformer_dir / "config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    if layout.dense:
        dim = layout.dense[-1].out_features
    else:
        # config.hidden_size; some architectures name it otherwise (transformers maps
        # them by attribute_map): then only the loaded config tells.
        dim = _int(config.get("hidden_size"))
    max_seq_length = layout.max_seq_length
    if max_seq_length is None:
        # min(config.max_position_embeddings, tokenizer.model_max_length), as the torch
        # loader; a value missing from the files takes a class default: load then.
        tok_path = layout.transformer_dir / "tokenizer_config.json"
        tok = read_json(tok_path) if tok_path.is_file() else {}
        positions = _int(config.get("max_position_embeddings"))
        tok_max = _int(tok.get("model_max_length"))
        max_seq_length = min(positions, tok_max) if positions and tok_max else None
    if dim is None or max_seq_length is None:
        return None
    return _embedder_settings(dim, layout.prompts, layout.default_prompt_name, max_seq_length)


def _colbert_settings(conf: dict, dim: int) -> dict:
    """The record's prefixes and lengths, with ColBERT's defaults (PyLate's)."""
    import inspect

    from maxsim.models import ColBERT

    defaults = inspect.signature(ColBERT.__init__).parameters
    get = lambda k: conf[k] if conf.get(k) is not None else defaults[k].default  # noqa: E731
    return {
        "dim": dim,
        "query_prefix": get("query_prefix"),
        "document_prefix": get("document_prefix"),
        "query_length": int(get("query_length")),
        "document_length": int(get("document_length")),
    }


def _onnx_settings(folder: Path, cls: str) -> Optional[dict]:
    """What the ONNX loader sets for maxsim's exported folder (``maxsim_onnx.json``);
    ``None`` for third-party folders, whose dimension only a run of the graph tells."""
    from maxsim.models._onnx_folder import CONFIG_NAME, OnnxFolder

    if not (folder / CONFIG_NAME).is_file():
        return None
    onnx = OnnxFolder(folder, cls)
    cfg = onnx.config
    if cls == "ColBERT":
        return _colbert_settings(cfg, int(cfg["output_dim"]))
    dense = cfg.get("dense") or []
    dim = (
        int(onnx.heads()[f"dense.{len(dense) - 1}.weight"].shape[0])
        if dense
        else int(cfg["hidden_size"])
    )
    prompts = dict(cfg.get("prompts") or {})
    return _embedder_settings(dim, prompts, cfg.get("default_prompt_name"), cfg["max_seq_length"])


def settings_from_files(folder: Path, cls: str, backend: str) -> Optional[dict]:
    """The record's dimension, prompts / prefixes and lengths read from the model
    folder's config files (no backbone, no graph loaded), exactly as loading the
    model sets them; ``None`` when the files cannot tell."""
    if backend == "onnx":
        return _onnx_settings(folder, cls)
    if cls == "ColBERT":
        from maxsim.models._st_layout import read_colbert_layout

        layout = read_colbert_layout(folder)  # reads the projection weights, not the backbone
        return _colbert_settings(layout.conf, layout.projections[-1].out_features)
    return _torch_embedder_settings(folder)


def model_record(name: str, kind: str, backend: str = "auto") -> dict:
    """The record :func:`load_encoder` makes of ``name``, read from the model folder's
    config files without loading the encoder (an index built from ``--embeddings``
    needs only the record and its dimension)."""
    folder = model_dir(name)
    backend = detect_backend(folder, backend)
    cls = detect_class(folder, backend)
    kind = _check_class(name, kind, cls)
    settings = settings_from_files(folder, cls, backend)
    if settings is None:
        # The files do not tell (a third-party ONNX graph's output dimension, a
        # transformer config without hidden_size / a length limit): load the model,
        # which knows. (A hub id resolves to its local snapshot first, as for loading.)
        return load_encoder(name, kind, backend).record
    return _record(name, folder, backend, cls, settings)


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
