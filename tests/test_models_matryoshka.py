"""maxsim.models.MatryoshkaReranker against an independent straightforward implementation."""

from __future__ import annotations

import json

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
import torch
from maxsim.models import MatryoshkaReranker

LAYERS = (1, 2, 3, 4)
DIMS = (8, 16, 32, 64)
PAIRS = [(q, d) for q in ("cell protein", "a dog and a cat") for d in F.SENTENCES]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return F.make_modernbert_matryoshka_dir(
        tmp_path_factory.mktemp("mb") / "m", layers=LAYERS, dims=DIMS, num_layers=4
    )


@pytest.fixture(scope="module")
def ours(model_dir):
    return MatryoshkaReranker.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def reference(model_dir):
    """Full forward pass of the plain transformers model, every hidden state kept,
    heads applied with explicit matmuls."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    heads = torch.load(model_dir / "classification_heads.pt", weights_only=True)
    feats = tok([list(p) for p in PAIRS], padding=True, truncation=True, return_tensors="pt")
    last_pre_norm = {}
    hook = model.layers[-1].register_forward_hook(lambda m, i, o: last_pre_norm.__setitem__("h", o))
    with torch.no_grad():
        out = model(
            input_ids=feats["input_ids"],
            attention_mask=feats["attention_mask"],
            output_hidden_states=True,
        )
    hook.remove()
    # transformers 5: hidden_states[l] = output of layer l, the last one after final_norm.
    np.testing.assert_allclose(
        out.hidden_states[-1], model.final_norm(last_pre_norm["h"]).detach(), atol=1e-5
    )
    result = {}
    with torch.no_grad():
        for layer in LAYERS:
            if layer < len(model.layers):
                cls_vec = model.final_norm(out.hidden_states[layer][:, 0])
            else:
                cls_vec = last_pre_norm["h"][:, 0]  # transformers-4 behaviour: before the norm
            for d in DIMS:
                x = cls_vec[:, :d]
                h = x @ heads[f"{layer}.{d}.0.weight"].T + heads[f"{layer}.{d}.0.bias"]
                h = 0.5 * h * (1 + torch.erf(h / np.sqrt(2.0)))  # exact GELU
                y = h @ heads[f"{layer}.{d}.3.weight"].T + heads[f"{layer}.{d}.3.bias"]
                result[(layer, d)] = y[:, 0].numpy()
    return result


def test_profiles(ours):
    assert ours.layers == list(LAYERS) and ours.dims == list(DIMS)
    assert len(ours.profiles) == 16


@pytest.mark.parametrize("layer", LAYERS)
def test_all_profiles_match_reference(ours, reference, layer):
    for d in DIMS:
        got = ours.score(PAIRS, layer=layer, dim=d, batch_size=5)
        assert got.dtype == np.float32 and got.shape == (len(PAIRS),)
        np.testing.assert_allclose(got, reference[(layer, d)], atol=1e-5, rtol=0)


def test_default_profile_is_deepest_widest(ours, reference):
    np.testing.assert_allclose(ours.score(PAIRS), reference[(4, 64)], atol=1e-5)


def test_early_exit_runs_only_needed_layers(ours):
    calls = [0] * len(ours.model.layers)
    handles = [
        layer.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, layer in enumerate(ours.model.layers)
    ]
    try:
        ours.score(PAIRS[:3], layer=2, dim=8, batch_size=8)
        assert calls == [1, 1, 0, 0]
        ours.score(PAIRS[:3], layer=1, dim=64, batch_size=8)
        assert calls == [2, 1, 0, 0]
    finally:
        for h in handles:
            h.remove()


def test_rerank_orders_by_profile_score(ours):
    docs = F.SENTENCES
    s = ours.score([("cell protein", d) for d in docs], layer=3, dim=32)
    got = ours.rerank("cell protein", docs, layer=3, dim=32, return_documents=False)
    assert [g["corpus_id"] for g in got] == list(np.argsort(-s, kind="stable"))
    assert len(ours.rerank("cell protein", docs, top_k=2)) == 2


def test_bad_inputs(ours, model_dir, tmp_path):
    with pytest.raises(ValueError, match="layer=5"):
        ours.score(PAIRS, layer=5, dim=8)
    with pytest.raises(ValueError, match="dim=12"):
        ours.score(PAIRS, layer=1, dim=12)
    with pytest.raises(TypeError, match="layer"):
        ours.score(PAIRS, layer="2", dim=8)
    with pytest.raises(ValueError, match="pairs"):
        ours.score([])
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "matryoshka_config.json").write_text(json.dumps({"layers": [1, 2], "dims": [8]}))
    with pytest.raises(ValueError, match="disagree"):
        MatryoshkaReranker.from_pretrained(broken)
    (broken / "classification_heads.pt").unlink()
    with pytest.raises(ValueError, match="classification_heads.pt"):
        MatryoshkaReranker.from_pretrained(broken)
