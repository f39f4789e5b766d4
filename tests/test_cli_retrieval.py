"""``maxsim index build`` / ``search`` / ``eval`` / ``index info`` end to end on a
small BEIR dataset made here, with tiny fixture models (in-process ``cli.main``).

Expected results come from references computed here: the fixture models
called directly, exhaustive numpy dot products / ``maxsim.topk`` MaxSim, the
cross-encoder's own scores, and ir-measures on runs built from those.
"""

from __future__ import annotations

import json
from pathlib import Path

import _cli_fixtures as C
import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import maxsim
import numpy as np
import pytest
from maxsim import cli

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("ir_measures")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "embedder": F.make_embedder_dir(root / "embedder", seed=1),
        "embedder2": F.make_embedder_dir(root / "embedder2", seed=2),
        "colbert": F.make_pylate_dir(root / "colbert", dim=16, seed=3),
        "reranker": F.make_cross_encoder_dir(root / "reranker", seed=4),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return C.make_beir(tmp_path_factory.mktemp("beir") / "tiny", n_docs=40, n_queries=8)


def run(args: list, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else code), out, err


@pytest.fixture(scope="module")
def embedder(models):
    from maxsim.models import Embedder

    return Embedder.from_pretrained(models["embedder"])


def _dense_reference(embedder, docs: list[dict], query: str, k: int):
    emb = embedder.embed([C.content(d) for d in docs])
    q = embedder.embed(query, is_query=True)
    scores = emb @ q
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return [docs[i]["_id"] for i in order], scores[order]


def test_dense_build_search_info(tmp_path, models, data, embedder, capsys) -> None:
    idx = tmp_path / "dense.idx"
    code, _, err = run(
        ["index", "build", data, idx, "--model", models["embedder"], "--batch-size", 7], capsys
    )
    assert code == 0, err
    docs = C.read_corpus(data)
    query = "protein expression in human cells"
    code, out, err = run(["search", idx, query, "-k", 5, "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    ids, scores = _dense_reference(embedder, docs, query, 5)
    assert [r["id"] for r in result["results"]] == ids
    np.testing.assert_allclose([r["score"] for r in result["results"]], scores, atol=1e-5)
    first = next(d for d in docs if d["_id"] == ids[0])
    assert result["results"][0]["text"] == first["text"]
    assert set(result["latency_ms"]) == {"encode", "search"}

    code, out, err = run(["search", idx, query, "-k", 3], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"query: {query}" and lines[1].split() == ["rank", "id", "score", "text"]
    assert [line.split()[1] for line in lines[2:5]] == ids[:3]

    code, out, err = run(["index", "info", idx, "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["documents"] == 40 and info["complete"] and info["kind"] == "dense"
    assert info["segments"] == 6  # ceil(40 / 7)
    assert info["model"]["dim"] == embedder.dim and info["model"]["class"] == "Embedder"
    code, out, _ = run(["index", "info", idx], capsys)
    assert "documents    40" in out and "dense" in out


def test_search_reads_queries_from_stdin(tmp_path, models, data, capsys, monkeypatch) -> None:
    import io

    idx = tmp_path / "dense.idx"
    assert run(["index", "build", data, idx, "--model", models["embedder"]], capsys)[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("blue house\n\ncancer risk genes\n"))
    code, out, err = run(["search", idx, "-", "-k", 2, "--json"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["query"] for r in rows] == ["blue house", "cancer risk genes"]
    assert all(len(r["results"]) == 2 for r in rows)


def test_binary_index_rescores_with_stored_float16(tmp_path, models, data, embedder, capsys):
    idx = tmp_path / "binary.idx"
    code, _, err = run(
        ["index", "build", data, idx, "--model", models["embedder"], "--kind", "binary"], capsys
    )
    assert code == 0, err
    docs = C.read_corpus(data)
    query = "cancer risk genes"
    code, out, err = run(["search", idx, query, "-k", 10, "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)["results"]
    # 10 x the default rescore multiplier 4 = all 40 documents are candidates:
    # the result is the exact ranking by the float16-stored vectors.
    emb = embedder.embed([C.content(d) for d in docs]).astype(np.float16).astype(np.float32)
    q = embedder.embed(query, is_query=True)
    scores = emb.astype(np.float64) @ q.astype(np.float64)
    order = np.lexsort((np.arange(len(scores)), -scores))[:10]
    assert [r["id"] for r in got] == [docs[i]["_id"] for i in order]
    np.testing.assert_allclose([r["score"] for r in got], scores[order], atol=1e-5)


def test_colbert_index_equals_exhaustive_maxsim(tmp_path, models, data, capsys) -> None:
    from maxsim.models import ColBERT

    idx = tmp_path / "colbert.idx"
    code, _, err = run(
        [
            "index",
            "build",
            data,
            idx,
            "--model",
            models["colbert"],
            "--store",
            "float32",
            "--batch-size",
            16,
            "--train-docs",
            20,
        ],
        capsys,
    )
    assert code == 0, err
    docs = C.read_corpus(data)
    model = ColBERT.from_pretrained(models["colbert"])
    doc_vecs = model.encode([C.content(d) for d in docs], is_query=False)
    query = "the effect of treatment on patients"
    q = model.encode(query, is_query=True)
    ref_scores, ref_idx = maxsim.topk(q, doc_vecs, 5)
    # nprobe above the centroid count probes every centroid: the search is exhaustive.
    code, out, err = run(["search", idx, query, "-k", 5, "--json", "--nprobe", 4096], capsys)
    assert code == 0, err
    got = json.loads(out)["results"]
    assert [r["id"] for r in got] == [docs[i]["_id"] for i in ref_idx]
    np.testing.assert_allclose([r["score"] for r in got], ref_scores, rtol=1e-5)
    info = json.loads(run(["index", "info", idx, "--json"], capsys)[1])
    assert info["kind"] == "colbert" and info["tokens"] == sum(len(v) for v in doc_vecs)
    assert info["build"]["store"] == "float32" and info["model"]["query_length"] == 12
    assert info["build"]["codec"] == "pq"
    assert maxsim.Index.open(idx / "index").stats()["codec"] == "pq"


def test_eval_with_rerank_matches_references(tmp_path, models, data, embedder, capsys) -> None:
    import ir_measures
    from maxsim.cli_retrieval.corpus import read_qrels, read_queries
    from maxsim.models import Reranker

    out_json = tmp_path / "res" / "results.json"
    plot = tmp_path / "res" / "plot.png"
    code, out, err = run(
        [
            "eval",
            data,
            "--model",
            models["embedder"],
            "--rerank",
            models["reranker"],
            "--candidates",
            10,
            "--top-n",
            3,
            "--metrics",
            "ndcg@10,recall@3,mrr@3",
            "--output",
            out_json,
            "--plot",
            plot,
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out_json.read_text())
    qrels, _ = read_qrels(data / "qrels" / "test.tsv")
    queries = read_queries(data / "queries.jsonl")
    docs = C.read_corpus(data)
    emb = embedder.embed([C.content(d) for d in docs])
    reranker = Reranker.from_pretrained(models["reranker"])
    first, reranked = {}, {}
    for qid in qrels:
        scores = emb @ embedder.embed(queries[qid], is_query=True)
        order = np.lexsort((np.arange(len(scores)), -scores))[:100]
        first[qid] = {docs[i]["_id"]: float(scores[i]) for i in order}
        cand = order[:10]
        new = reranker.score([(queries[qid], C.content(docs[i])) for i in cand])
        keep = np.lexsort((np.arange(len(new)), -new))[:3]
        reranked[qid] = {docs[cand[j]]["_id"]: float(new[j]) for j in keep}
    measures = [ir_measures.parse_measure(m) for m in ("nDCG@10", "R@3", "RR@3")]
    for stage, run_ in (("first_stage", first), ("reranked", reranked)):
        ref = ir_measures.calc_aggregate(measures, qrels, run_)
        got = result["metrics"][stage]
        for ours, theirs in zip(("ndcg@10", "recall@3", "mrr@3"), measures):
            assert got[ours] == pytest.approx(ref[theirs], abs=1e-6), (stage, ours)
    assert result["n_queries"] == 8 and "unjudged" not in first
    assert set(result["latency_ms"]) == {"encode", "search", "rerank", "total"}
    for lat in result["latency_ms"].values():
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert [p["candidates"] for p in result["sweep"]] == [3, 10, 20, 50]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out_json.parent / "results.reranked.trec").read_text().splitlines()
    assert len(lines) == 8 * 3 and lines[0].split()[1] == "Q0"
    assert "first stage" in out and "reranked" in out and "p99" in out


def test_precomputed_dense_embeddings(tmp_path, models, data, embedder, capsys) -> None:
    docs = C.read_corpus(data)
    np.save(tmp_path / "emb.npy", embedder.embed([C.content(d) for d in docs]))
    idx = tmp_path / "pre.idx"
    code, _, err = run(
        [
            "index",
            "build",
            data,
            idx,
            "--embeddings",
            tmp_path / "emb.npy",
            "--model",
            models["embedder"],
        ],
        capsys,
    )
    assert code == 0, err
    query = "blue house dog"
    code, out, err = run(["search", idx, query, "-k", 4, "--json"], capsys)
    assert code == 0, err
    ids, _ = _dense_reference(embedder, docs, query, 4)
    assert [r["id"] for r in json.loads(out)["results"]] == ids


def test_precomputed_colbert_embeddings(tmp_path, models, data, capsys) -> None:
    from maxsim.models import ColBERT

    docs = C.read_corpus(data)
    model = ColBERT.from_pretrained(models["colbert"])
    vecs = model.encode([C.content(d) for d in docs], is_query=False)
    np.save(tmp_path / "flat.npy", np.concatenate(vecs))
    np.save(tmp_path / "lens.npy", np.array([len(v) for v in vecs], dtype=np.int64))
    idx = tmp_path / "pre.idx"
    code, _, err = run(
        [
            "index",
            "build",
            data,
            idx,
            "--embeddings",
            tmp_path / "flat.npy",
            "--doclens",
            tmp_path / "lens.npy",
            "--store",
            "float32",
            "--codec",
            "scalar",
        ],
        capsys,
    )
    assert code == 0, err
    assert maxsim.Index.open(idx / "index").stats()["codec"] == "scalar"
    # No model recorded: search needs one, and checks its dimension.
    code, _, err = run(["search", idx, "blue house"], capsys)
    assert code == 2 and "--model" in err
    query = "search rank score"
    code, out, err = run(
        ["search", idx, query, "-k", 3, "--json", "--nprobe", 4096, "--model", models["colbert"]],
        capsys,
    )
    assert code == 0, err
    _, ref_idx = maxsim.topk(model.encode(query, is_query=True), vecs, 3)
    assert [r["id"] for r in json.loads(out)["results"]] == [docs[i]["_id"] for i in ref_idx]


def test_folder_of_text_files(tmp_path, models, capsys) -> None:
    corpus = tmp_path / "notes"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("the dog and the cat\nsecond line")
    (corpus / "sub" / "b.md").write_text("# protein expression\n\ncancer genes")
    (corpus / "skip.pdf").write_text("not read")
    idx = tmp_path / "notes.idx"
    assert run(["index", "build", corpus, idx, "--model", models["embedder"]], capsys)[0] == 0
    code, out, _ = run(["search", idx, "dog", "--json"], capsys)
    results = json.loads(out)["results"]
    assert sorted(r["id"] for r in results) == ["a.txt", "sub/b.md"]
    code, out, _ = run(["search", idx, "dog"], capsys)
    assert "# protein expression" in out and "second line" not in out  # first lines only


def test_search_refuses_another_model(tmp_path, models, data, capsys) -> None:
    idx = tmp_path / "dense.idx"
    assert run(["index", "build", data, idx, "--model", models["embedder"]], capsys)[0] == 0
    code, _, err = run(["search", idx, "dog", "--model", models["embedder2"]], capsys)
    assert code == 1 and "not the model" in err and "Traceback" not in err
    code, _, err = run(["search", idx, "dog", "--model", models["colbert"]], capsys)
    assert code == 1
    # Same folder, changed files: refused too.
    cfg = models["embedder"] / "sentence_bert_config.json"
    saved = cfg.read_text()
    try:
        cfg.write_text(saved.replace("24", "20"))
        code, _, err = run(["search", idx, "dog"], capsys)
        assert code == 1 and "changed since the index was built" in err
    finally:
        cfg.write_text(saved)
    # A rebuild into the same folder with another model is not a resume.
    code, _, err = run(["index", "build", data, idx, "--model", models["embedder2"]], capsys)
    assert code == 1 and "--overwrite" in err
    code, _, err = run(
        ["index", "build", data, idx, "--model", models["embedder2"], "--overwrite"], capsys
    )
    assert code == 0, err


def test_rebuild_of_complete_index_is_a_no_op(tmp_path, models, data, capsys) -> None:
    idx = tmp_path / "dense.idx"
    assert run(["index", "build", data, idx, "--model", models["embedder"]], capsys)[0] == 0
    before = (idx / "progress.bin").read_bytes()
    code, _, err = run(["index", "build", data, idx, "--model", models["embedder"]], capsys)
    assert code == 0 and "nothing to do" in err
    assert (idx / "progress.bin").read_bytes() == before


def test_dense_first_stage_ties_and_depth(tmp_path, models, data, embedder, capsys) -> None:
    """Exact scores (small integers) with duplicated rows: best first, ties to the lower
    ordinal (as ``maxsim.topk``), and a depth past the corpus returns every document."""
    from maxsim.cli_retrieval.searcher import Searcher

    rng = np.random.default_rng(7)
    emb = rng.integers(0, 3, size=(40, embedder.dim)).astype(np.float32)
    emb[20:30] = emb[0:10]  # ten exact ties
    np.save(tmp_path / "emb.npy", emb)
    idx = tmp_path / "ties.idx"
    args = ["index", "build", data, idx, "--embeddings", tmp_path / "emb.npy"]
    code, _, err = run(args + ["--model", models["embedder"], "--batch-size", 9], capsys)
    assert code == 0, err
    searcher = Searcher(idx)
    query = rng.integers(0, 3, size=embedder.dim).astype(np.float32)
    exact = emb.astype(np.int64) @ query.astype(np.int64)
    expected = np.lexsort((np.arange(40), -exact))
    for depth in (1, 7, 25, 40, 100):
        ordinals, scores = searcher.first_stage(query, depth)
        assert ordinals.dtype == np.int64
        np.testing.assert_array_equal(ordinals, expected[:depth])
        np.testing.assert_array_equal(scores, exact[expected[:depth]].astype(np.float32))
    _, ref_idx = maxsim.topk(query[None, :], emb[:, None, :], 40)
    np.testing.assert_array_equal(ref_idx, expected)
