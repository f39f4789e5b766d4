"""Tokenization shared by the torch and the ONNX Runtime backends.

Both backends turn text into model inputs through :class:`TextEncoder`, a thin
wrapper over a ``tokenizers.Tokenizer`` (the Rust tokenizer that a transformers
"fast" tokenizer runs underneath, and the one serialized as ``tokenizer.json``).
The torch backend builds it from the transformers tokenizer it loaded
(:meth:`TextEncoder.from_transformers`), the ONNX backend from the exported
``tokenizer.json`` (:meth:`TextEncoder.from_file`); everything after that (prefix
insertion, query expansion, padding, truncation) is this module's code, so the
two backends cannot tokenize differently.

Only ``tokenizers`` and numpy are imported here.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SPECIAL_TOKEN_NAMES", "TextEncoder"]

SPECIAL_TOKEN_NAMES = ("pad", "mask", "unk", "cls", "sep", "eos", "bos")


def _token_content(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` / ``special_tokens_map.json`` store it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class TextEncoder:
    """Tokenizer for both backends: text (or text pairs) -> padded int64 id arrays.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``; this object owns it (its truncation
            and padding settings are changed per call, under a lock).
        special_ids: ids of the special tokens by name (``"pad"``, ``"mask"``,
            ``"unk"``, ``"cls"``, ``"sep"``, ``"eos"``, ``"bos"``); ``None`` when the
            model has no such token.
        model_max_length: the tokenizer's own length limit, if any.
    """

    def __init__(
        self,
        tokenizer: Any,
        special_ids: dict[str, int | None],
        *,
        model_max_length: int | None = None,
        padding_side: str = "right",
    ) -> None:
        self.tokenizer = tokenizer
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.special_ids = {name: special_ids.get(name) for name in SPECIAL_TOKEN_NAMES}
        self.model_max_length = model_max_length
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.padding_side = padding_side
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_transformers(cls, hf_tokenizer: Any) -> TextEncoder:
        """From a transformers fast tokenizer: a copy of its Rust tokenizer and its
        special-token ids (the tokens it added at load time included)."""
        from tokenizers import Tokenizer

        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"{type(hf_tokenizer).__name__} is not a fast tokenizer (no tokenizer.json): "
                "maxsim.models needs the Rust `tokenizers` backend"
            )
        special = {
            name: getattr(hf_tokenizer, f"{name}_token_id", None) for name in SPECIAL_TOKEN_NAMES
        }
        max_len = getattr(hf_tokenizer, "model_max_length", None)
        return cls(
            Tokenizer.from_str(backend.to_str()),
            special,
            model_max_length=int(max_len) if max_len and max_len < 10**9 else None,
            padding_side=getattr(hf_tokenizer, "padding_side", "right") or "right",
        )

    @classmethod
    def from_file(
        cls,
        tokenizer_json: Path,
        special_tokens: dict[str, Any] | None = None,
        *,
        config_dir: Path | None = None,
        model_max_length: int | None = None,
    ) -> TextEncoder:
        """From a ``tokenizer.json``.

        Special tokens come from ``special_tokens`` (name -> token string or id), else
        from ``tokenizer_config.json`` / ``special_tokens_map.json`` in ``config_dir``
        (default: the file's folder), else from the WordPiece model's ``unk_token``.

        Raises:
            ValueError: the file is missing or is not a valid ``tokenizer.json``, or a
                named special token is not in its vocabulary.
        """
        from tokenizers import Tokenizer

        path = Path(tokenizer_json)
        if not path.is_file():
            raise ValueError(f"tokenizer file {path} does not exist")
        try:
            tok = Tokenizer.from_file(os.fspath(path))
        except Exception as exc:  # the Rust side raises a bare Exception on bad JSON
            raise ValueError(f"malformed tokenizer.json at {path}: {exc}") from exc
        names: dict[str, Any] = {}
        folder = Path(config_dir) if config_dir is not None else path.parent
        for fname in ("special_tokens_map.json", "tokenizer_config.json"):
            cfg_path = folder / fname
            if cfg_path.is_file():
                try:
                    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"malformed {fname} at {cfg_path}: {exc}") from exc
                for name in SPECIAL_TOKEN_NAMES:
                    content = _token_content(cfg.get(f"{name}_token"))
                    if content is not None:
                        names[name] = content
                if model_max_length is None and isinstance(cfg.get("model_max_length"), int):
                    if 0 < cfg["model_max_length"] < 10**9:
                        model_max_length = cfg["model_max_length"]
        if "unk" not in names:
            unk = json.loads(tok.to_str()).get("model", {}).get("unk_token")
            if isinstance(unk, str):
                names["unk"] = unk
        names.update(special_tokens or {})
        ids: dict[str, int | None] = {}
        for name, value in names.items():
            if isinstance(value, (int, np.integer)) or value is None:
                ids[name] = None if value is None else int(value)
                continue
            token_id = tok.token_to_id(value)
            if token_id is None:
                raise ValueError(
                    f"{path}: special token {name}={value!r} is not in the tokenizer's vocabulary"
                )
            ids[name] = token_id
        return cls(tok, ids, model_max_length=model_max_length)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        """Vocabulary size, added tokens included (the rows a word-embedding table needs)."""
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def token_id(self, token: str) -> int | None:
        """Id of ``token``, ``None`` when it is not in the vocabulary."""
        return self.tokenizer.token_to_id(token)

    def token_id_or_unk(self, token: str) -> int:
        """Id of ``token``, the unknown-token id when it is not in the vocabulary
        (as transformers' ``convert_tokens_to_ids``)."""
        found = self.tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
        unk = self.special_ids.get("unk")
        if unk is None:
            raise ValueError(
                f"token {token!r} is not in the vocabulary, which has no unknown token"
            )
        return int(unk)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def to_str(self) -> str:
        """The tokenizer as ``tokenizer.json`` text."""
        return self.tokenizer.to_str()

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        inputs: Sequence[str] | Sequence[tuple[str, str]],
        max_length: int | None,
        *,
        add_special_tokens: bool = True,
    ) -> list[Any]:
        """``tokenizers.Encoding`` per text (or ``(a, b)`` pair), truncated to
        ``max_length`` tokens (special tokens included; pairs longest side first),
        unpadded."""
        batch = [tuple(x) if not isinstance(x, str) else x for x in inputs]
        with self._lock:
            if max_length is None:
                self.tokenizer.no_truncation()
            else:
                self.tokenizer.enable_truncation(
                    max_length=int(max_length), strategy="longest_first"
                )
            try:
                return self.tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
            finally:
                self.tokenizer.no_truncation()

    def lengths(self, inputs: Sequence[str], max_length: int | None) -> list[int]:
        """Token counts (special tokens included) after truncation."""
        return [len(e.ids) for e in self.encode(inputs, max_length)]

    def pad(
        self,
        encodings: Sequence[Any],
        pad_id: int,
        *,
        length: int | None = None,
        side: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Stack encodings into ``(batch, seq)`` int64 ``input_ids``,
        ``attention_mask`` and ``token_type_ids``, padded with ``pad_id`` to
        ``length`` (default: the longest) on ``side`` (default: the tokenizer's)."""
        side = side or self.padding_side
        longest = max((len(e.ids) for e in encodings), default=0)
        width = max(longest, length or 0)
        n = len(encodings)
        ids = np.full((n, width), pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            k = len(enc.ids)
            cols = slice(width - k, width) if side == "left" else slice(0, k)
            ids[row, cols] = enc.ids
            mask[row, cols] = 1
            types[row, cols] = enc.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def special_tokens_mask(self, text: str, max_length: int | None) -> list[int]:
        """1 where the encoding of ``text`` holds a special token (``[CLS]``, ``[SEP]``...)."""
        return list(self.encode([text], max_length)[0].special_tokens_mask)
