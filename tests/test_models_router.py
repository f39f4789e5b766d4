"""maxsim.models.EmbedRerank: one word-embedding table for both roles."""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
import torch
from maxsim.models import Embedder, EmbedRerank, Reranker

PAIRS = [("cell protein", d) for d in F.SENTENCES]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("router")
    emb = F.make_embedder_dir(root / "emb", seed=0)
    table = Embedder.from_pretrained(emb).model.get_input_embeddings().weight.detach().clone()
    rr_same = F.make_cross_encoder_dir(root / "rr_same", seed=4, word_embeddings=table)
    rr_other = F.make_cross_encoder_dir(root / "rr_other", seed=5)
    # a reranker checkpoint stored without its word-embedding table
    from safetensors.torch import load_file, save_file

    rr_nowe = root / "rr_nowe"
    F.make_cross_encoder_dir(rr_nowe, seed=4, word_embeddings=table)
    state = load_file(str(rr_nowe / "model.safetensors"))
    key = "bert.embeddings.word_embeddings.weight"
    assert key in state
    del state[key]
    save_file(state, str(rr_nowe / "model.safetensors"), metadata={"format": "pt"})
    return {"emb": emb, "rr_same": rr_same, "rr_other": rr_other, "rr_nowe": rr_nowe}


def _tables(router):
    return (
        router.embedder.model.get_input_embeddings().weight,
        router.reranker.model.get_input_embeddings().weight,
    )


def test_equal_tables_are_deduplicated(dirs):
    router = EmbedRerank.from_pretrained(dirs["emb"], dirs["rr_same"])
    a, b = _tables(router)
    assert a is b and a.data_ptr() == b.data_ptr()
    assert router.shared_word_embeddings
    vocab, hidden = a.shape
    assert router.memory_saved_bytes == vocab * hidden * 4
    # one table less in the parameter count of the pair
    ids = {id(p) for m in (router.embedder.model, router.reranker.model) for p in m.parameters()}
    sep_e = Embedder.from_pretrained(dirs["emb"])
    sep_r = Reranker.from_pretrained(dirs["rr_same"])
    n_sep = len(list(sep_e.model.parameters())) + len(list(sep_r.model.parameters()))
    assert len(ids) == n_sep - 1
    # both roles give the same outputs as when loaded separately
    np.testing.assert_array_equal(router.embed(F.SENTENCES), sep_e.embed(F.SENTENCES))
    np.testing.assert_array_equal(
        router.embed(F.SENTENCES, is_query=True, dim=16),
        sep_e.embed(F.SENTENCES, is_query=True, dim=16),
    )
    np.testing.assert_array_equal(router.score(PAIRS), sep_r.score(PAIRS))
    assert router.rerank("cell protein", F.SENTENCES) == sep_r.rerank("cell protein", F.SENTENCES)


def test_missing_table_is_injected(dirs):
    router = EmbedRerank.from_pretrained(dirs["emb"], dirs["rr_nowe"])
    a, b = _tables(router)
    assert a is b
    full = Reranker.from_pretrained(dirs["rr_same"])  # same weights, table stored
    np.testing.assert_allclose(router.score(PAIRS), full.score(PAIRS), atol=1e-6)
    with pytest.raises(ValueError, match="no word-embedding table"):
        EmbedRerank.from_pretrained(dirs["emb"], dirs["rr_nowe"], share_word_embeddings=False)


def test_different_tables(dirs):
    with pytest.raises(ValueError, match="differ"):
        EmbedRerank.from_pretrained(dirs["emb"], dirs["rr_other"])
    separate = EmbedRerank.from_pretrained(
        dirs["emb"], dirs["rr_other"], share_word_embeddings=False
    )
    a, b = _tables(separate)
    assert a is not b and not torch.equal(a, b)
    assert separate.memory_saved_bytes == 0
    forced = EmbedRerank.from_pretrained(
        dirs["emb"], dirs["rr_other"], share_word_embeddings="force"
    )
    a, b = _tables(forced)
    assert a is b
    with pytest.raises(ValueError, match="share_word_embeddings"):
        EmbedRerank.from_pretrained(dirs["emb"], dirs["rr_other"], share_word_embeddings="yes")
