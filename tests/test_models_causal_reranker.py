"""maxsim.models.CausalReranker (extension point) on a tiny random Qwen2."""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
import torch
from maxsim.models import CausalReranker

PAIRS = [("cell protein", d) for d in F.SENTENCES] + [("a", "b")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return F.make_qwen2_dir(tmp_path_factory.mktemp("qwen") / "q")


def test_batched_left_padded_scores_match_one_by_one(model_dir):
    """Reference: each prompt alone (no padding), logit("1") - logit("0") at the end."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rr = CausalReranker.from_pretrained(model_dir)
    got = rr.score(PAIRS, batch_size=4)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    yes, no = tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("0")
    exp = []
    with torch.no_grad():
        for q, d in PAIRS:
            ids = tok(rr.prompt_template.format(query=q, document=d), return_tensors="pt")
            logits = model(input_ids=ids["input_ids"]).logits[0, -1]
            exp.append(float(logits[yes] - logits[no]))
    assert got.shape == (len(PAIRS),) and got.dtype == np.float32
    np.testing.assert_allclose(got, exp, atol=1e-5, rtol=0)
    ranked = rr.rerank("cell protein", F.SENTENCES, return_documents=False)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(-got[:-1], kind="stable"))


def test_long_document_truncated_to_max_length(model_dir):
    rr = CausalReranker.from_pretrained(model_dir, max_length=64)
    prompt = rr.format_pair("cell", "the cell protein " * 100)
    assert len(rr.tokenizer(prompt)["input_ids"]) <= 64
    assert prompt.endswith("Answer:")  # the template's tail survives
    assert np.isfinite(rr.score([("cell", "the cell protein " * 100)])).all()


def test_bad_arguments(model_dir):
    with pytest.raises(ValueError, match="prompt_template"):
        CausalReranker.from_pretrained(model_dir, prompt_template="no placeholders")
    with pytest.raises(ValueError, match="yes_token"):
        CausalReranker.from_pretrained(model_dir, yes_token="relevant yes")
