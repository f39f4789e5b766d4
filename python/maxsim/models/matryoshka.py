"""2D-Matryoshka cross-encoder: one scoring head per (layer, dim) profile, early exit."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._common import (
    check_batch_size,
    check_texts,
    length_sorted_batches,
    progress,
    read_json,
    resolve_model_dir,
)
from ._heads import MatryoshkaHead, as_numpy
from ._text import TextEncoder
from .reranker import activation_name, check_pairs, rank_results, resolve_activation

__all__ = ["MatryoshkaReranker"]

_HEAD_KEY = re.compile(r"^(\d+)\.(\d+)\.(0|3)\.(weight|bias)$")


class _StopForward(Exception):
    """Raised from a forward hook to stop the encoder after the needed layer."""


class _TorchExit:
    """torch backend: ``[CLS]`` hidden state after ``layer`` encoder layers, the
    encoder's final norm applied for an intermediate layer; only those layers run."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model = model
        self.device = device

    def __call__(self, features: dict[str, np.ndarray], layer: int, autocast: str | None) -> Any:
        import torch

        from ._backbone import run_context

        feats = {k: torch.from_numpy(v).to(self.device) for k, v in features.items()}
        captured: dict[str, Any] = {}

        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured["h"] = output[0] if isinstance(output, tuple) else output
            raise _StopForward

        with run_context(self.device, autocast):
            handle = self.model.layers[layer - 1].register_forward_hook(hook)
            try:
                self.model(**feats)
            except _StopForward:
                pass
            finally:
                handle.remove()
            if "h" not in captured:
                raise RuntimeError("early exit hook did not fire")
            cls_vec = captured["h"][:, 0]
            if layer < len(self.model.layers):
                cls_vec = self.model.final_norm(cls_vec)
        return as_numpy(cls_vec)


class MatryoshkaReranker:
    """2D-Matryoshka cross-encoder (ModernBERT + ``classification_heads.pt``).

    The layout published with mmbert-rerank-32k-2d-matryoshka /
    elephant-rerank-v1-text-small: a ModernBERT encoder directory, a
    ``matryoshka_config.json`` and a ``classification_heads.pt`` state dict of heads
    ``Linear(dim, dim // 2) -> GELU -> Dropout -> Linear(dim // 2, 1)`` keyed
    ``"{layer}.{dim}.{0|3}.{weight|bias}"`` (indices in the ``nn.Sequential``).

    Profile ``(layer, dim)``: run the first ``layer`` encoder layers only (early exit),
    take the ``[CLS]`` (first) token, apply the encoder's final LayerNorm when
    ``layer`` is an intermediate layer, but not for the last layer (its output is
    taken before the final norm, as ``hidden_states[-1]`` was in transformers 4),
    keep the first ``dim`` features and apply that profile's head. The score is the
    raw logit unless ``activation`` says otherwise.

    Backends: ``"torch"`` (a forward hook stops the encoder after ``layer``) and
    ``"onnx"`` (one exported graph per exit layer, so an early exit runs only the
    layers it needs); tokenization and the heads (numpy) are shared.
    """

    def __init__(
        self,
        exit_network: Any,
        text: TextEncoder,
        heads: dict[tuple[int, int], MatryoshkaHead],
        *,
        num_layers: int,
        activation: str | Callable[[Any], Any] | None = None,
        max_length: int = 8192,
        backend: str = "torch",
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        if not heads:
            raise ValueError("heads must not be empty")
        self.exit_network = exit_network
        self.text = text
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else text.tokenizer
        self.heads = heads
        self.activation = resolve_activation(activation)
        self.activation_name = activation_name(activation)
        self.num_layers = int(num_layers)
        self.max_length = int(max_length)
        self.backend = backend
        self.device = device
        self.name = name
        for layer, _ in heads:
            if not 1 <= layer <= self.num_layers:
                raise ValueError(
                    f"head for layer {layer} but the encoder has {self.num_layers} layers"
                )

    @property
    def profiles(self) -> list[tuple[int, int]]:
        """Available ``(layer, dim)`` pairs, sorted."""
        return sorted(self.heads)

    @property
    def layers(self) -> list[int]:
        return sorted({layer for layer, _ in self.heads})

    @property
    def dims(self) -> list[int]:
        return sorted({d for _, d in self.heads})

    @staticmethod
    def build_heads(state: dict[str, Any]) -> dict[tuple[int, int], MatryoshkaHead]:
        """Group ``"{layer}.{dim}.{0|3}.{weight|bias}"`` arrays into numpy heads."""
        grouped: dict[tuple[int, int], dict[str, Any]] = {}
        for key, value in state.items():
            m = _HEAD_KEY.match(key)
            if m is None:
                raise ValueError(
                    f"classification_heads.pt: unexpected key {key!r} "
                    "(expected '{layer}.{dim}.{0|3}.{weight|bias}')"
                )
            layer, dim = int(m.group(1)), int(m.group(2))
            grouped.setdefault((layer, dim), {})[f"{m.group(3)}.{m.group(4)}"] = as_numpy(value)
        heads = {}
        for (layer, dim), sd in grouped.items():
            if set(sd) != {"0.weight", "0.bias", "3.weight", "3.bias"}:
                raise ValueError(f"classification_heads.pt: head {layer}.{dim} is incomplete")
            if sd["0.weight"].ndim != 2 or sd["0.weight"].shape[1] != dim:
                raise ValueError(
                    f"classification_heads.pt: head {layer}.{dim} has shapes "
                    f"{tuple(sd['0.weight'].shape)} / {tuple(sd['3.weight'].shape)}"
                )
            try:
                head = MatryoshkaHead(sd["0.weight"], sd["0.bias"], sd["3.weight"], sd["3.bias"])
            except ValueError as exc:
                raise ValueError(f"classification_heads.pt: head {layer}.{dim}: {exc}") from exc
            heads[(layer, dim)] = head
        return heads

    @staticmethod
    def check_config(cfg_path: Any, heads: dict[tuple[int, int], Any]) -> None:
        """``matryoshka_config.json``'s layers x dims must be the heads' profiles."""
        cfg = read_json(cfg_path)
        layers = cfg.get("layers", cfg.get("layer_indices"))
        dims = cfg.get("dims", cfg.get("dimensions", cfg.get("hidden_dims")))
        if layers is not None and dims is not None:
            expected = {(int(layer), int(d)) for layer in layers for d in dims}
            if expected != set(heads):
                raise ValueError(
                    f"{cfg_path}: layers x dims {sorted(expected)} disagree with the heads "
                    f"in classification_heads.pt {sorted(heads)}"
                )

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        device: str = "cpu",
        dtype: Any = None,
        *,
        activation: str | Callable[[Any], Any] | None = None,
        max_length: int | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        backend: str = "torch",
        int8_linear: bool = False,
        session_options: Any = None,
        providers: Any = None,
    ) -> MatryoshkaReranker:
        """Load the encoder, ``matryoshka_config.json`` and ``classification_heads.pt``,
        or (``backend="onnx"``) a folder written by ``maxsim export onnx``, whose exit
        graphs are loaded on first use (``int8_linear``: its int8 graphs).

        Raises:
            ModelNotFoundError: model not found locally / in the hub cache.
            ValueError: missing or malformed heads, or a config that disagrees with them.
        """
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        name = os.fspath(path_or_hub_id)
        if backend == "onnx":
            from ._onnx_load import load_matryoshka

            return load_matryoshka(
                cls,
                model_dir,
                name=name,
                device=device,
                dtype=dtype,
                int8=int8_linear,
                activation=activation,
                max_length=max_length,
                session_options=session_options,
                providers=providers,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        import torch

        from ._backbone import load_backbone, load_tokenizer
        from ._common import resolve_dtype

        heads_path = model_dir / "classification_heads.pt"
        if not heads_path.is_file():
            raise ValueError(f"{model_dir} has no classification_heads.pt")
        model = load_backbone(model_dir, dtype=resolve_dtype(dtype), device=device)
        if not hasattr(model, "layers") or not hasattr(model, "final_norm"):
            raise ValueError(
                f"model must be a ModernBERT-style encoder with .layers and .final_norm, "
                f"got {type(model).__name__}"
            )
        tokenizer = load_tokenizer(model_dir)
        text = TextEncoder.from_transformers(tokenizer)
        state = torch.load(heads_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{heads_path}: expected a state dict")
        heads = cls.build_heads(state)
        cfg_path = model_dir / "matryoshka_config.json"
        if cfg_path.is_file():
            cls.check_config(cfg_path, heads)
        if max_length is None:
            max_length = min(
                int(text.model_max_length or 8192),
                int(getattr(model.config, "max_position_embeddings", 8192) or 8192),
            )
        return cls(
            _TorchExit(model, device),
            text,
            heads,
            num_layers=len(model.layers),
            activation=activation,
            max_length=max_length,
            backend="torch",
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
        )

    # ------------------------------------------------------------------ scoring
    def _check_profile(self, layer: int | None, dim: int | None) -> tuple[int, int]:
        layer = self.layers[-1] if layer is None else layer
        dim = self.dims[-1] if dim is None else dim
        for name, v in (("layer", layer), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if (int(layer), int(dim)) not in self.heads:
            raise ValueError(
                f"no head for layer={layer}, dim={dim}; "
                f"available layers {self.layers}, dims {self.dims}"
            )
        return int(layer), int(dim)

    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        """``input_ids`` / ``attention_mask`` of the pairs (ModernBERT has no token types)."""
        pad_id = self.text.special_ids.get("pad") or 0
        feats = self.text.pad(self.text.encode(pairs, self.max_length), pad_id)
        del feats["token_type_ids"]
        return feats

    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        layer: int | None = None,
        dim: int | None = None,
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        autocast: str | None = None,
    ) -> np.ndarray:
        """Score ``(query, document)`` pairs with profile ``(layer, dim)``.

        Defaults: the deepest layer and the widest dim (best quality); smaller values
        are cheaper (only ``layer`` encoder layers run).

        Returns:
            ``(n_pairs,)`` float32 scores (raw logits unless ``activation`` was set).
        """
        items = check_pairs(pairs)
        batch_size = check_batch_size(batch_size)
        layer, dim = self._check_profile(layer, dim)
        head = self.heads[(layer, dim)]
        lengths = [len(a) + len(b) for a, b in items]
        out = np.empty(len(items), dtype=np.float32)
        for idx in progress(
            length_sorted_batches(lengths, batch_size),
            enable=show_progress_bar,
            total_items=len(items),
            desc="Scoring",
        ):
            feats = self._features([items[i] for i in idx])
            cls_vec = self.exit_network(feats, layer, autocast)
            logits = np.asarray(self.activation(head(cls_vec)[:, None]), dtype=np.float32)
            out[idx] = logits.reshape(-1)
        return out

    def rerank(
        self,
        query: str,
        docs: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = True,
        *,
        layer: int | None = None,
        dim: int | None = None,
        batch_size: int = 32,
    ) -> list[tuple[str, float]] | list[dict[str, Any]]:
        """Rank ``docs`` for ``query`` with profile ``(layer, dim)``, best first
        (same output format as :meth:`Reranker.rerank`)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        doc_list, _ = check_texts(docs, "docs")
        scores = self.score([(query, d) for d in doc_list], layer, dim, batch_size=batch_size)
        return rank_results(doc_list, scores, top_k, return_documents)

    def __repr__(self) -> str:
        return (
            f"MatryoshkaReranker(name={self.name!r}, layers={self.layers}, dims={self.dims}, "
            f"device={self.device!r})"
        )
