"""``maxsim export onnx`` / ``export_onnx``: CLI, atomic writes, bad arguments (needs torch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import maxsim  # noqa: F401  (the installed package, before _model_fixtures edits sys.path)
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import _model_fixtures as F  # noqa: E402
import _onnx_fixtures as OF  # noqa: E402
from maxsim.cli import main as cli_main  # noqa: E402
from maxsim.models import Embedder, export  # noqa: E402
from maxsim.models.export import detect_kind, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return F.make_embedder_dir(tmp_path_factory.mktemp("exp") / "emb", pooling="cls")


def test_cli_export_then_load(src, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli_main(["export", "onnx", str(src), str(out), "--opset", "17"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == str(out)
    cfg = json.loads((out / "maxsim_onnx.json").read_text())
    assert (cfg["class"], cfg["opset"], cfg["graphs"]["int8"]) == ("Embedder", 17, {})
    for name, size in cfg["files"].items():
        assert (out / name).stat().st_size == size
    a = Embedder.from_pretrained(src).embed(F.SENTENCES)
    b = Embedder.from_pretrained(out, backend="onnx").embed(F.SENTENCES)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    # a second export into the same folder is refused, and leaves it as it was
    with pytest.raises(SystemExit) as exc:
        cli_main(["export", "onnx", str(src), str(out)])
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err
    assert json.loads((out / "maxsim_onnx.json").read_text()) == cfg


def test_bad_arguments(src, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(src, tmp_path / "o", opset=9)
    with pytest.raises(ValueError, match="kind"):
        export_onnx(src, tmp_path / "o", kind="Colbert")
    with pytest.raises(TypeError, match="model"):
        export_onnx(42, tmp_path / "o")
    with pytest.raises(FileNotFoundError):
        export_onnx(tmp_path / "missing", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    onnx_model = Embedder.from_pretrained(src, backend="torch")
    onnx_model.backend = "onnx"
    with pytest.raises(ValueError, match="torch-backend"):
        export_onnx(onnx_model, tmp_path / "o")


def test_detect_kind(tmp_path):
    assert detect_kind(F.make_pylate_dir(tmp_path / "p")) == "ColBERT"
    assert detect_kind(F.make_stanford_dir(tmp_path / "s")) == "ColBERT"
    assert detect_kind(F.make_embedder_dir(tmp_path / "e")) == "Embedder"
    assert detect_kind(F.make_cross_encoder_dir(tmp_path / "c")) == "Reranker"
    with pytest.raises(ValueError, match="kind="):
        detect_kind(tmp_path)


def test_keeps_float_names():
    """Feed-forward outputs of every family and BERT value projections stay float32;
    the other projections (and ModernBERT's packed Wqkv) are quantized."""
    kept = ["encoder.layer.0.output.dense", "encoder.layer.11.attention.self.value"]
    kept += ["layers.2.mlp.Wo", "model.layers.3.mlp.down_proj"]
    quantized = [f"encoder.layer.0.attention.self.{m}" for m in ("query", "key")]
    quantized += ["encoder.layer.0.attention.output.dense", "encoder.layer.0.intermediate.dense"]
    quantized += ["layers.2.attn.Wqkv", "layers.2.mlp.Wi"]
    assert [export._keeps_float(s) for s in kept] == [True] * len(kept)
    assert [export._keeps_float(s) for s in quantized] == [False] * len(quantized)


def test_int8_quantizes_the_same_matmuls_with_or_without_fusions(src, tmp_path, monkeypatch):
    """The fused graph (MultiHeadAttention, SkipLayerNormalization, BiasGelu) keeps the
    projections' MatMuls and their torch name scopes, so dynamic int8 quantizes the
    same ones as in the plain graph: per BERT layer, 4 of the 6 weight MatMuls (the
    value and feed-forward output projections stay float32)."""
    onnx = pytest.importorskip("onnx")
    fused = export_onnx(src, tmp_path / "fused", int8=True)
    assert json.loads((fused / "maxsim_onnx.json").read_text())["ort_fusions"]["model"]
    monkeypatch.setattr(export, "_fuse_for_ort", lambda *args: {})
    plain = export_onnx(src, tmp_path / "plain", int8=True)
    layers = json.loads((src / "config.json").read_text())["num_hidden_layers"]
    want = sorted(f"model.encoder.layer.{i}.{m}" for i in range(layers) for m in OF.INT8_KEPT_FLOAT)
    for out in (fused, plain):
        graph = onnx.load(os.fspath(out / "model_int8.onnx"))
        assert sorted(OF.float_weight_matmuls(graph)) == want, out.name
        ops = [n.op_type for n in graph.graph.node]
        assert ops.count("MatMulInteger") == 4 * layers, out.name


def test_killed_export_leaves_nothing(src, tmp_path):
    """SIGKILL during the export: OUT_DIR never appears half-written (the folder is
    built in a temporary sibling and renamed); a new export then succeeds."""
    out = tmp_path / "killed"
    code = (
        "from maxsim.models.export import export_onnx\n"
        f"export_onnx({os.fspath(src)!r}, {os.fspath(out)!r})\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=repo)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".killed.*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".killed.*")), "the export never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    export_onnx(src, out)
    assert (out / "maxsim_onnx.json").is_file()
    Embedder.from_pretrained(out, backend="onnx").embed("a cell")
