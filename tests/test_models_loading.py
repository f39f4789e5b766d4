"""Model resolution and load-time errors of maxsim.models (all offline)."""

from __future__ import annotations

import json

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.models import (
    ColBERT,
    Embedder,
    EmbedRerank,
    MatryoshkaReranker,
    ModelNotFoundError,
    Reranker,
    quantize_embeddings,
)

ALL = [ColBERT, Embedder, Reranker, MatryoshkaReranker]


@pytest.mark.parametrize("cls", ALL)
def test_missing_directory_names_the_model(cls, tmp_path):
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(ModelNotFoundError, match="such-model"):
        cls.from_pretrained(missing)


@pytest.mark.parametrize("cls", ALL)
def test_uncached_hub_id_offline_names_the_model(cls, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFoundError, match="maxsim-test/not-a-real-model"):
        cls.from_pretrained("maxsim-test/not-a-real-model")


def test_router_missing_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="nothing-here"):
        EmbedRerank.from_pretrained(tmp_path / "nothing-here", tmp_path / "nothing-here-either")


def test_path_type_and_file_instead_of_dir(tmp_path):
    with pytest.raises(TypeError, match="path_or_hub_id"):
        Embedder.from_pretrained(123)
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="weights.bin"):
        Embedder.from_pretrained(f)


def test_malformed_modules_json_embedder(tmp_path):
    d = F.make_embedder_dir(tmp_path / "e")
    (d / "modules.json").write_text('{"idx": 0', encoding="utf-8")
    with pytest.raises(ValueError, match="modules.json"):
        Embedder.from_pretrained(d)
    (d / "modules.json").write_text(json.dumps({"idx": 0}), encoding="utf-8")
    with pytest.raises(ValueError, match="modules.json"):
        Embedder.from_pretrained(d)
    (d / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "path": "x", "type": "my.custom.Module"},
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="my.custom.Module"):
        Embedder.from_pretrained(d)


def test_bad_dtype(tmp_path):
    d = F.make_embedder_dir(tmp_path / "e")
    with pytest.raises(ValueError, match="dtype"):
        Embedder.from_pretrained(d, dtype="int7")
    m = Embedder.from_pretrained(d, dtype="bfloat16")
    assert m.model.dtype.__repr__() == "torch.bfloat16"
    full = Embedder.from_pretrained(d).embed(F.SENTENCES)
    np.testing.assert_allclose(m.embed(F.SENTENCES), full, atol=5e-2)


def test_quantize_embeddings_input_checks():
    x = np.random.default_rng(0).standard_normal((5, 9)).astype(np.float32)
    assert quantize_embeddings(x, "ubinary").shape == (5, 2)
    with pytest.raises(ValueError, match="precision"):
        quantize_embeddings(x, "int4")
    with pytest.raises(ValueError, match="ranges"):
        quantize_embeddings(x, "int8", ranges=np.zeros((2, 3)))
