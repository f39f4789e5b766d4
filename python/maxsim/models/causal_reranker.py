"""Causal-LM reranker: ``logit(yes) - logit(no)`` at the last prompt position."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._backbone import load_backbone, load_tokenizer
from ._common import resolve_model_dir
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
        model: Any,
        tokenizer: Any,
        *,
        prompt_template: str = DEFAULT_TEMPLATE,
        yes_token: str = "1",
        no_token: str = "0",
        activation: str | Callable[[Any], Any] | None = None,
        max_length: int | None = None,
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
            model, tokenizer, activation=activation, max_length=max_length, device=device, name=name
        )
        self.prompt_template = prompt_template
        ids = []
        for label, tok in (("yes_token", yes_token), ("no_token", no_token)):
            enc = tokenizer(tok, add_special_tokens=False)["input_ids"]
            if len(enc) != 1:
                raise ValueError(f"{label} {tok!r} must be a single token, got ids {enc}")
            ids.append(enc[0])
        self.yes_id, self.no_id = ids
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

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
    ) -> CausalReranker:
        """Load an ``AutoModelForCausalLM`` directory or hub id (raw score by default)."""
        from transformers import AutoModelForCausalLM

        model_dir = resolve_model_dir(
            path_or_hub_id, revision=revision, cache_dir=cache_dir, token=token
        )
        model = load_backbone(
            model_dir, dtype=dtype, device=device, model_class=AutoModelForCausalLM
        )
        return cls(
            model,
            load_tokenizer(model_dir),
            prompt_template=prompt_template,
            yes_token=yes_token,
            no_token=no_token,
            activation=activation,
            max_length=max_length,
            device=device,
            name=os.fspath(path_or_hub_id),
        )

    def format_pair(self, query: str, document: str) -> str:
        """The prompt for one pair, the document cut to fit ``max_length`` tokens."""
        tok = self.tokenizer
        budget = self.max_length - len(
            tok(self.prompt_template.format(query=query, document=""))["input_ids"]
        )
        if budget <= 0:
            raise ValueError(f"the query alone exceeds max_length={self.max_length} tokens")
        doc_ids = tok(document, add_special_tokens=False)["input_ids"]
        if len(doc_ids) > budget:
            document = tok.decode(doc_ids[:budget])
        return self.prompt_template.format(query=query, document=document)

    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        texts = [self.format_pair(q, d) for q, d in pairs]
        feats = self.tokenizer(texts, padding=True, return_tensors="pt")
        mask = feats["attention_mask"]
        # left padding: positions count real tokens only, as in generation
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": feats["input_ids"],
            "attention_mask": mask,
            "position_ids": position_ids,
        }

    def _forward_logits(self, features: dict[str, Any]) -> Any:
        logits = self.model(**features, return_dict=True).logits[:, -1, :]
        return (logits[:, self.yes_id] - logits[:, self.no_id]).unsqueeze(-1)

    def _num_outputs(self) -> int:
        return 1
