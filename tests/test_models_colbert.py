"""maxsim.models.ColBERT against PyLate, plus format checks that need no reference."""

from __future__ import annotations

import json
import string

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.models import ColBERT, ModelNotFoundError

CONFIGS = {
    "default": {},
    "no_expansion": {"do_query_expansion": False},
    "attend_expansion": {"attend_to_expansion_tokens": True},
    "skiplist_residual_bias": {
        "skiplist_words": ["the", "a", ",", "unknownword"],
        "residual": True,
        "bias": True,
    },
    "no_prefixes": {"query_prefix": "", "document_prefix": ""},
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("colbert")
    dirs = {
        name: F.make_pylate_dir(root / name, seed=i, **kw)
        for i, (name, kw) in enumerate(CONFIGS.items())
    }
    dirs["stanford"] = F.make_stanford_dir(root / "stanford", seed=5)
    dirs["stanford_meta"] = F.make_stanford_dir(
        root / "stanford_meta",
        seed=6,
        metadata={
            "query_token_id": "[unused0]",
            "doc_token_id": "[unused1]",
            "query_maxlen": 9,
            "doc_maxlen": 14,
            "attend_to_mask_tokens": True,
        },
    )
    return dirs


def _assert_lists_close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", [*CONFIGS, "stanford", "stanford_meta"])
@pytest.mark.parametrize("is_query", [True, False])
def test_matches_pylate(model_dirs, name, is_query):
    pylate_models = pytest.importorskip("pylate.models")
    d = model_dirs[name]
    ours = ColBERT.from_pretrained(d)
    ref = pylate_models.ColBERT(str(d), device="cpu")
    texts = F.SENTENCES + ["the cell " * 40]  # one over-long text
    a = ours.encode(texts, is_query=is_query, batch_size=3)
    b = ref.encode(texts, is_query=is_query, batch_size=3, show_progress_bar=False)
    _assert_lists_close(a, b)
    for x in a:
        assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]


def test_stanford_metadata_read(model_dirs):
    m = ColBERT.from_pretrained(model_dirs["stanford_meta"])
    assert (m.query_length, m.document_length, m.attend_to_expansion_tokens) == (9, 14, True)
    assert m.query_prefix == "[unused0]" and m.document_prefix == "[unused1]"
    assert m.encode("the cell", is_query=True).shape == (9, 8)
    assert all(x.shape[0] <= 14 for x in m.encode(["the cell " * 30], is_query=False))


def test_format_without_reference(model_dirs):
    """Row counts and prefixes follow from the tokenizer alone."""
    m = ColBERT.from_pretrained(model_dirs["default"])
    tok = m.tokenizer
    q = m.encode(F.SENTENCES, is_query=True)
    assert all(x.shape == (12, 16) for x in q)  # [MASK]-expanded to query_length
    docs = m.encode(F.SENTENCES, is_query=False)
    punct = set(string.punctuation)
    for text, x in zip(F.SENTENCES, docs):
        pieces = tok.tokenize(text)[: 20 - 3]  # [CLS] [D] ... [SEP] within document_length
        kept = [p for p in pieces if p not in punct]
        assert x.shape == (len(kept) + 3, 16)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    feats = m._tokenize(["the cell"], is_query=True)
    ids = feats["input_ids"][0].tolist()
    assert ids[0] == tok.cls_token_id and ids[1] == tok.convert_tokens_to_ids("[Q] ")
    assert ids[-1] == tok.mask_token_id and len(ids) == 12
    # expansion tokens are excluded from attention (attend_to_expansion_tokens=False)
    assert feats["attention_mask"][0].tolist() == [1] * 5 + [0] * 7


def test_single_string_and_batch_independence(model_dirs):
    m = ColBERT.from_pretrained(model_dirs["default"])
    one = m.encode(F.SENTENCES[3], is_query=False)
    many = m.encode(F.SENTENCES, is_query=False, batch_size=2)
    np.testing.assert_allclose(one, many[3], atol=1e-5)
    fast = m.encode(F.SENTENCES, is_query=False, token_budget=40)
    _assert_lists_close(fast, many)


def test_packed_output_scores(model_dirs):
    maxsim = pytest.importorskip("maxsim")
    if not hasattr(maxsim, "PackedDocs"):
        pytest.skip("maxsim extension not built")
    m = ColBERT.from_pretrained(model_dirs["default"])
    docs = m.encode(F.SENTENCES, is_query=False)
    packed = m.encode(F.SENTENCES, is_query=False, packed=True)
    assert isinstance(packed, maxsim.PackedDocs)
    q = m.encode("cell protein study", is_query=True)
    expected = np.array([(q @ d.T).max(axis=1).sum() for d in docs], dtype=np.float32)
    np.testing.assert_allclose(maxsim.scores(q, packed), expected, atol=1e-4)
    np.testing.assert_allclose(maxsim.scores(q, docs), expected, atol=1e-4)


def test_keyword_overrides(model_dirs):
    m = ColBERT.from_pretrained(model_dirs["default"], query_length=7, skiplist_words=[])
    assert m.encode("the cell", is_query=True).shape == (7, 16)
    doc = m.encode("a, b; c.", is_query=False)
    pieces = m.tokenizer.tokenize("a, b; c.")
    assert doc.shape[0] == len(pieces) + 3  # nothing skipped


def test_bad_inputs(model_dirs, tmp_path):
    m = ColBERT.from_pretrained(model_dirs["default"])
    with pytest.raises(ValueError, match="texts"):
        m.encode([], is_query=False)
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        m.encode([None], is_query=False)
    with pytest.raises(TypeError, match="is_query"):
        m.encode(["a"], is_query="yes")
    with pytest.raises(ModelNotFoundError, match="does-not-exist"):
        ColBERT.from_pretrained(tmp_path / "does-not-exist")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "modules.json").write_text("[{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="modules.json"):
        ColBERT.from_pretrained(bad)
    (bad / "modules.json").write_text(json.dumps([{"idx": 0, "path": ""}]), encoding="utf-8")
    with pytest.raises(ValueError, match="modules.json"):
        ColBERT.from_pretrained(bad)
    (bad / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="Pooling"):
        ColBERT.from_pretrained(bad)


def test_int8_linear_keeps_ffn_output_float(model_dirs):
    """ColBERT's int8 fast option quantizes every Linear of the encoder except the
    feed-forward output projections (``encoder.layer.N.output.dense``)."""
    import torch

    fp32 = ColBERT.from_pretrained(model_dirs["default"])
    q = ColBERT.from_pretrained(model_dirs["default"], int8_linear=True)
    float_layers = {n for n, m in q.model.named_modules() if type(m) is torch.nn.Linear}
    n_layers = fp32.model.config.num_hidden_layers
    assert float_layers == {f"encoder.layer.{i}.output.dense" for i in range(n_layers)}
    quantized = {
        n
        for n, m in q.model.named_modules()
        if type(m) is torch.ao.nn.quantized.dynamic.Linear and n.startswith("encoder.")
    }
    assert len(quantized) == 5 * n_layers  # q, k, v, attention output, intermediate
    texts = ["a short document about cells", "another one, on proteins"]
    for a, b in zip(fp32.encode(texts, is_query=False), q.encode(texts, is_query=False)):
        cos = (a * b).sum(axis=1)
        assert np.all(cos > 0.95) and np.abs(a - b).max() > 0  # close, but really quantized
