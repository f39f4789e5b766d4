"""Reading an ONNX model folder: maxsim's own export, or a third-party layout.

maxsim's folder (written by :func:`maxsim.models.export.export_onnx`)::

    maxsim_onnx.json     format, class, graphs (+ sizes), inputs / output, tokenizer
                         special ids, the class's settings
    model.onnx           float32 graph (Matryoshka: exit_<layer>.onnx, one per exit)
    model_int8.onnx      dynamic int8 graph (``--int8``)
    tokenizer.json       the tokenizer, prefix tokens included
    heads.npz            numpy weights of the heads run after the graph, if any
    tokenizer_config.json, special_tokens_map.json, config.json   copied from the
                         source model when present (fastembed reads them)

Third-party folders (no ``maxsim_onnx.json``) are read as documented by their
writers: see :func:`third_party_layout`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ModelNotFoundError, read_json
from ._onnx_runtime import OnnxNetwork
from ._text import TextEncoder

__all__ = ["CONFIG_NAME", "FORMAT", "FORMAT_VERSION", "OnnxFolder", "third_party_layout"]

CONFIG_NAME = "maxsim_onnx.json"
FORMAT = "maxsim-onnx"
FORMAT_VERSION = 1
PYLATE_ONNX_CONFIGS = ("onnx_config.json", "config_sentence_transformers.json")


def third_party_layout(model_dir: Path) -> str | None:
    """``"pylate-onnx-export"`` (``model.onnx`` + ``tokenizer.json`` + an
    ``onnx_config.json``, or the older ``config_sentence_transformers.json`` holding
    ``embedding_dim`` / ``uses_token_type_ids``), ``"plain"`` (any other folder with
    an ``.onnx`` file: fastembed's, optimum's, or a bare graph), or ``None``."""
    for name in PYLATE_ONNX_CONFIGS:
        path = model_dir / name
        if path.is_file() and (model_dir / "model.onnx").is_file():
            cfg = read_json(path)
            if isinstance(cfg, dict) and "embedding_dim" in cfg and "uses_token_type_ids" in cfg:
                return "pylate-onnx-export"
    if any(model_dir.glob("*.onnx")) or any(model_dir.glob("onnx/*.onnx")):
        return "plain"
    return None


def find_onnx_file(model_dir: Path, onnx_file: str | None, int8: bool) -> Path:
    """The graph of a third-party folder: ``onnx_file`` if given, else ``model.onnx``
    (``model_int8.onnx`` / ``model_quantized.onnx`` with ``int8``), also under ``onnx/``."""
    if onnx_file is not None:
        path = model_dir / onnx_file
        if not path.is_file():
            raise ModelNotFoundError(f"ONNX graph {path} does not exist")
        return path
    names = ("model_int8.onnx", "model_quantized.onnx") if int8 else ("model.onnx",)
    for sub in ("", "onnx"):
        for name in names:
            if (model_dir / sub / name).is_file():
                return model_dir / sub / name
    raise ModelNotFoundError(
        f"no {' or '.join(names)} in {model_dir} (or its onnx/ folder); pass onnx_file= "
        "to name the graph"
    )


class OnnxFolder:
    """maxsim's exported folder: its config, tokenizer, heads and graphs.

    Raises:
        ModelNotFoundError: no ``maxsim_onnx.json`` in ``model_dir``.
        ValueError: the config is malformed, is for another class, or a file it
            lists is missing or has the wrong size (a truncated copy).
    """

    def __init__(self, model_dir: Path, expected_class: str | tuple[str, ...]) -> None:
        self.dir = Path(model_dir)
        path = self.dir / CONFIG_NAME
        if not path.is_file():
            raise ModelNotFoundError(f"{self.dir} has no {CONFIG_NAME}")
        cfg = read_json(path)
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} config (field 'format')")
        if cfg.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format_version {cfg.get('format_version')!r} is not supported "
                f"(this maxsim reads {FORMAT_VERSION}); re-export the model"
            )
        expected = (expected_class,) if isinstance(expected_class, str) else expected_class
        if cfg.get("class") not in expected:
            raise ValueError(
                f"{path}: the folder holds a {cfg.get('class')!r} model, not a "
                f"{' / '.join(expected)} (field 'class')"
            )
        for key in ("graphs", "tokenizer", "config", "files"):
            if not isinstance(cfg.get(key), dict):
                raise ValueError(f"{path}: field {key!r} is missing or not an object")
        self.cfg = cfg
        self.config: dict[str, Any] = cfg["config"]
        self._path = path

    def _checked(self, name: str) -> Path:
        file = self.dir / name
        if not file.is_file():
            raise ModelNotFoundError(f"{file} (listed in {self._path}) does not exist")
        size = self.cfg["files"].get(name)
        if size is not None and file.stat().st_size != size:
            raise ValueError(
                f"{file} has {file.stat().st_size} bytes, {self._path} says {size}: "
                "the file is truncated or was replaced; re-export the model"
            )
        return file

    def text_encoder(self) -> TextEncoder:
        tok = self.cfg["tokenizer"]
        enc = TextEncoder.from_file(
            self._checked(tok.get("file", "tokenizer.json")),
            dict(tok.get("special_ids") or {}),
            model_max_length=tok.get("model_max_length"),
        )
        enc.padding_side = tok.get("padding_side", "right")
        expected_vocab = tok.get("vocab_size")
        if expected_vocab is not None and enc.vocab_size != expected_vocab:
            raise ValueError(
                f"{self.dir}: tokenizer.json has {enc.vocab_size} tokens but the graph was "
                f"exported for {expected_vocab} (tokenizer / vocabulary mismatch)"
            )
        return enc

    def heads(self) -> dict[str, np.ndarray]:
        name = self.cfg.get("heads")
        if not name:
            return {}
        try:
            with np.load(self._checked(name), allow_pickle=False) as data:
                return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.dir / name}: unreadable heads file: {exc}") from exc

    def graph_keys(self, int8: bool) -> list[str]:
        kind = "int8" if int8 else "fp32"
        return sorted(self.cfg["graphs"].get(kind) or {})

    def network(
        self,
        key: str,
        *,
        int8: bool,
        allowed_inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids"),
        session_options: Any = None,
        providers: Any = None,
    ) -> OnnxNetwork:
        kind = "int8" if int8 else "fp32"
        graphs = self.cfg["graphs"].get(kind) or {}
        if key not in graphs:
            hint = " (export with --int8 to get int8 graphs)" if int8 else ""
            raise ValueError(f"{self._path}: no {kind} graph {key!r}{hint}")
        net = OnnxNetwork(
            self._checked(graphs[key]),
            output=self.cfg.get("output"),
            allowed_inputs=allowed_inputs,
            required_inputs=tuple(self.cfg.get("inputs") or ("input_ids",)),
            session_options=session_options,
            providers=providers,
        )
        declared = set(self.cfg.get("inputs") or ())
        if declared and set(net.inputs) != declared:
            raise ValueError(
                f"ONNX graph {net.path}: inputs {sorted(net.inputs)} differ from "
                f"{self._path}'s {sorted(declared)}"
            )
        return net


def word_embedding_digest(model_dir: Path) -> str | None:
    """sha256 of the exported word-embedding table (``None`` for other folders)."""
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        return None
    cfg = read_json(path)
    return cfg.get("word_embeddings_sha256") if isinstance(cfg, dict) else None


def write_config(out_dir: Path, cfg: dict[str, Any]) -> None:
    (out_dir / CONFIG_NAME).write_text(json.dumps(cfg, indent=1), encoding="utf-8")
