"""Causal-LM reranker: ``logit(yes) - logit(no)`` at the last prompt position."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import resolve_model_dir
from ._text import TextEncoder
from .reranker import Reranker

__all__ = ["CausalReranker"]

DEFAULT_TEMPLATE = (
    "query: {query}\ndocument: {document}\n"
    "Is the document relevant to the query (1 for relevant, 0 for not relevant)? Answer:"
)


class CausalReranker(Reranker):
    """Reranker on a decoder-only LM (the mxbai-rerank-v2 / Qwen-style design).

    Each pair is formatted with ``prompt_template`` (``{query}``, ``{document}``),
    left-padded, and scored ``logit(yes_token) - logit(no_token)`` at the last
    position (mxbai-rerank-v2 uses ``"1"`` and ``"0"``). Documents are truncated
    (in tokens) so that the formatted prompt fits ``max_length``; the template's
    tail is never cut. ``DEFAULT_TEMPLATE`` is generic: pass the model's own
    template (e.g. its chat format) for published checkpoints.

    This is an extension point: it is tested for batching/padding correctness on a
    tiny random Qwen2 model, not against a published reranker.
    """

    def __init__(
        self,
        network: Any,
        text: TextEncoder,
        *,
        prompt_template: str = DEFAULT_TEMPLATE,
        yes_token: str = "1",
        no_token: str = "0",
        activation: str | Callable[[Any], Any] | None = None,
        max_length: int = 512,
        backend: str = "torch",
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        name: str = "",
    ) -> None:
        if (
            not isinstance(prompt_template, str)
            or "{query}" not in prompt_template
            or ("{document}" not in prompt_template)
        ):
            raise ValueError("prompt_template must contain {query} and {document}")
        super().__init__(
            network,
            text,
            activation=activation,
            max_length=max_length,
            num_labels=1,
            backend=backend,
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
        )
        self.prompt_template = prompt_template
        self.yes_token, self.no_token = yes_token, no_token
        ids = []
        for label, tok in (("yes_token", yes_token), ("no_token", no_token)):
            enc = text.encode([tok], None, add_special_tokens=False)[0].ids
            if len(enc) != 1:
                raise ValueError(f"{label} {tok!r} must be a single token, got ids {enc}")
            ids.append(enc[0])
        self.yes_id, self.no_id = ids
        pad = text.special_ids.get("pad")
        self.pad_id = pad if pad is not None else text.special_ids.get("eos")
        if self.pad_id is None:
            raise ValueError(f"model {name!r}: the tokenizer has no pad or EOS token for padding")

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        path_or_hub_id: str | os.PathLike[str],
        device: str = "cpu",
        dtype: Any = None,
        *,
        prompt_template: str = DEFAULT_TEMPLATE,
        yes_token: str = "1",
        no_token: str = "0",
        activation: str | Callable[[Any], Any] | None = None,
        max_length: int | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | bool | None = None,
        backend: str = "torch",
        session_options: Any = None,
        providers: Any = None,
    ) -> CausalReranker:
        """Load an ``AutoModelForCausalLM`` directory or hub id (raw score by default),
        or, with ``backend="onnx"``, a folder written by ``maxsim export onnx`` (whose
        template and yes/no tokens are the exported ones unless given here)."""
        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        name = os.fspath(path_or_hub_id)
        settings = {
            "prompt_template": prompt_template,
            "yes_token": yes_token,
            "no_token": no_token,
            "activation": activation,
            "max_length": max_length,
        }
        if backend == "onnx":
            from ._onnx_load import load_causal_reranker

            return load_causal_reranker(
                cls,
                model_dir,
                settings,
                name=name,
                device=device,
                dtype=dtype,
                session_options=session_options,
                providers=providers,
            )
        if backend != "torch":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from transformers import AutoModelForCausalLM

        from ._backbone import TorchNetwork, load_backbone, load_tokenizer

        model = load_backbone(
            model_dir, dtype=dtype, device=device, model_class=AutoModelForCausalLM
        )
        tokenizer = load_tokenizer(model_dir)
        text = TextEncoder.from_transformers(tokenizer)
        if max_length is None:
            settings["max_length"] = cls.default_max_length(
                text, getattr(model.config, "max_position_embeddings", None)
            )
        return cls(
            TorchNetwork(
                model,
                device,
                ("input_ids", "attention_mask", "position_ids"),
                forward=lambda m, feats: m(**feats, return_dict=True).logits[:, -1, :],
            ),
            text,
            backend="torch",
            model=model,
            tokenizer=tokenizer,
            device=device,
            name=name,
            **settings,
        )

    def format_pair(self, query: str, document: str) -> str:
        """The prompt for one pair, the document cut to fit ``max_length`` tokens."""
        text = self.text
        head = self.prompt_template.format(query=query, document="")
        budget = self.max_length - len(text.encode([head], None)[0].ids)
        if budget <= 0:
            raise ValueError(f"the query alone exceeds max_length={self.max_length} tokens")
        doc_ids = text.encode([document], None, add_special_tokens=False)[0].ids
        if len(doc_ids) > budget:
            document = text.decode(doc_ids[:budget])
        return self.prompt_template.format(query=query, document=document)

    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        prompts = [self.format_pair(q, d) for q, d in pairs]
        feats = self.text.pad(self.text.encode(prompts, None), self.pad_id, side="left")
        mask = feats["attention_mask"]
        # left padding: positions count real tokens only, as in generation
        feats["position_ids"] = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        del feats["token_type_ids"]
        return feats

    def _forward_logits(self, features: dict[str, np.ndarray], autocast: str | None) -> np.ndarray:
        logits = self.network(features, autocast)  # (batch, vocab) at the last position
        return (logits[:, self.yes_id] - logits[:, self.no_id])[:, None]

    def _num_outputs(self) -> int:
        return 1
