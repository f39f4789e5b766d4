"""Resumable builds: a real ``maxsim index build`` child killed (SIGKILL) or
interrupted (SIGINT) mid-build, then run again, ends with the index a clean
build makes; a kill between a colbert batch's ``Index.add`` and its
``progress.bin`` commit is undone on resume; a corpus changed under a partial
index is refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import time
from pathlib import Path

import _cli_fixtures as C
import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from _cli_fixtures import restore_threads  # noqa: F401  (a fixture)
from maxsim import cli

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("restore_threads")
N_DOCS = 160  # in batches of 2: a kill lands mid-build
# The dense builds commit ~800 docs/s on a 2-core machine: 160 documents can be
# done before a signal sent after the 10th lands, if the test process is
# descheduled for 0.2 s; 800 would need a 1-second stall.
N_DENSE = 800


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "embedder": F.make_embedder_dir(root / "embedder", seed=1),
        "colbert": F.make_pylate_dir(root / "colbert", dim=16, seed=3),
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return C.make_beir(tmp_path_factory.mktemp("beir") / "big", n_docs=N_DOCS, n_queries=2)


@pytest.fixture(scope="module")
def dense_data(tmp_path_factory) -> Path:
    return C.make_beir(tmp_path_factory.mktemp("beir") / "dense", n_docs=N_DENSE, n_queries=2)


def kill_when(proc, idx: Path, at_least: int, sig: int) -> int:
    """Send ``sig`` to ``proc`` once ``at_least`` documents are committed; the count then."""
    deadline = time.monotonic() + 600
    while C.committed(idx) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build made no progress"
        time.sleep(0.005)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return C.committed(idx)


def build_args(data: Path, idx: Path, model: Path, *extra) -> list[str]:
    # One thread: the tiny models are faster on one than fighting for a shared machine.
    args = ["index", "build", str(data), str(idx), "--model", str(model), "--threads", "1"]
    return args + list(map(str, extra))


def run_in_process(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    return exc.value.code or 0


def search_json(idx: Path, query: str, *extra) -> list:
    """``maxsim search --json`` in this process (a child would spend its time importing)."""
    out = io.StringIO()
    args = ["search", str(idx), query, "--json", "-k", "10", "--threads", "1", *map(str, extra)]
    with contextlib.redirect_stdout(out):
        assert run_in_process(args) == 0
    return json.loads(out.getvalue())["results"]


def test_dense_build_survives_sigkill_twice(tmp_path, models, dense_data) -> None:
    idx = tmp_path / "killed.idx"
    args = build_args(dense_data, idx, models["embedder"], "--batch-size", 2)
    seen = []
    for at_least in (16, 64):
        proc = C.popen_cli(args)
        seen.append(kill_when(proc, idx, at_least, signal.SIGKILL))
        assert proc.returncode == -signal.SIGKILL
    assert seen[0] < N_DENSE and seen[1] < N_DENSE, "the build finished before the kill"
    # What the killed builds left behind opens and searches.
    assert len(search_json(idx, "protein")) == 10
    proc = C.run_cli(args)
    assert proc.returncode == 0, proc.stderr
    clean = tmp_path / "clean.idx"
    assert run_in_process(build_args(dense_data, clean, models["embedder"], "--batch-size", 2)) == 0
    assert C.texts(idx) == C.texts(clean)
    from maxsim.cli_retrieval.store import RetrievalIndex

    a, b = RetrievalIndex.open(idx), RetrievalIndex.open(clean)
    assert a.n_docs == b.n_docs == N_DENSE and a.complete
    np.testing.assert_array_equal(a.load_vectors(), b.load_vectors())
    assert search_json(idx, "cancer risk") == search_json(clean, "cancer risk")


def test_colbert_build_survives_sigkill(tmp_path, models, data) -> None:
    idx = tmp_path / "killed.idx"
    extra = ("--batch-size", 2, "--train-docs", 16, "--store", "float32")
    args = build_args(data, idx, models["colbert"], *extra)
    proc = C.popen_cli(args)
    assert kill_when(proc, idx, 40, signal.SIGKILL) < N_DOCS
    proc = C.run_cli(args)
    assert proc.returncode == 0, proc.stderr
    clean = tmp_path / "clean.idx"
    assert run_in_process(build_args(data, clean, models["colbert"], *extra)) == 0
    import maxsim

    index, reference = maxsim.Index.open(idx / "index"), maxsim.Index.open(clean / "index")
    assert sorted(index.ids().tolist()) == list(range(N_DOCS))
    # The build ends by merging its per-batch segments into one.
    assert index.stats()["n_segments"] == reference.stats()["n_segments"] == 1
    for got, want in zip(index.get(np.arange(N_DOCS)), reference.get(np.arange(N_DOCS))):
        np.testing.assert_array_equal(got, want)
    assert C.texts(idx) == C.texts(clean)
    query = "the effect of treatment on patients"
    assert search_json(idx, query, "--nprobe", 4096) == search_json(clean, query, "--nprobe", 4096)


def test_sigint_stops_cleanly_and_resumes(tmp_path, models, dense_data) -> None:
    idx = tmp_path / "int.idx"
    args = build_args(dense_data, idx, models["embedder"], "--batch-size", 2)
    proc = C.popen_cli(args)
    docs = kill_when(proc, idx, 10, signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err and "Traceback" not in err
    assert docs % 2 == 0 and docs < N_DENSE
    proc = C.run_cli(args)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {idx} after" in proc.stderr
    assert C.committed(idx) == N_DENSE


def test_colbert_docs_added_after_the_last_commit_are_redone(tmp_path, models) -> None:
    import maxsim

    data = C.make_beir(tmp_path / "small", n_docs=24, n_queries=1)
    idx = tmp_path / "c.idx"
    extra = ("--batch-size", 8, "--train-docs", 8, "--store", "float32")
    assert run_in_process(build_args(data, idx, models["colbert"], *extra)) == 0
    query = "the effect of treatment on patients"
    before = search_json(idx, query, "--nprobe", 4096)
    # A kill after Index.add of the third batch, before its progress.bin.
    C.roll_back(idx, 2)
    assert len(maxsim.Index.open(idx / "index")) == 24
    assert run_in_process(build_args(data, idx, models["colbert"], *extra)) == 0
    index = maxsim.Index.open(idx / "index")
    assert sorted(index.ids().tolist()) == list(range(24))
    assert search_json(idx, query, "--nprobe", 4096) == before


def test_changed_corpus_is_refused_on_resume(tmp_path, models, capsys) -> None:
    data = C.make_beir(tmp_path / "small", n_docs=24, n_queries=1)
    idx = tmp_path / "d.idx"
    args = build_args(data, idx, models["embedder"], "--batch-size", 8)
    assert run_in_process(args) == 0
    C.roll_back(idx, 1)
    lines = (data / "corpus.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] += " changed"
    lines[0] = json.dumps(first)
    (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run_in_process(args) == 1
    assert "the corpus changed" in capsys.readouterr().err
    assert not list(idx.glob(".progress.bin.tmp-*"))


def _precomputed_colbert(tmp_path: Path, n_docs: int = 30, dim: int = 8) -> list[str]:
    """Build arguments of a colbert index from precomputed token vectors (no model)."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 9, n_docs)
    np.save(tmp_path / "flat.npy", rng.standard_normal((lengths.sum(), dim)).astype(np.float32))
    np.save(tmp_path / "lens.npy", lengths.astype(np.int64))
    data = C.make_beir(tmp_path / "pre", n_docs=n_docs, n_queries=1)
    return [
        "index",
        "build",
        str(data),
        str(tmp_path / "pre.idx"),
        "--embeddings",
        str(tmp_path / "flat.npy"),
        "--doclens",
        str(tmp_path / "lens.npy"),
        "--store",
        "float32",
        "--batch-size",
        "8",
        "--train-docs",
        "8",
    ]


def test_kill_during_creation_leaves_nothing_to_refuse(tmp_path) -> None:
    import maxsim

    args = _precomputed_colbert(tmp_path)
    idx = tmp_path / "pre.idx"
    # A kill while the index folder was being made: only the hidden staging folder
    # is left, and OUT_DIR does not exist.
    staging = tmp_path / ".pre.idx.creating-999999"
    (staging / "texts").mkdir(parents=True)
    (staging / "progress.bin").write_bytes(b"MXSIMPRG\0")
    assert run_in_process(args) == 0
    reference = maxsim.Index.open(idx / "index")
    want = reference.get(np.arange(30))
    del reference
    # A kill while Index.create wrote the first files of index/ (no manifest yet),
    # before any batch was committed: the rerun starts index/ again.
    C.roll_back(idx, 0)
    for f in (idx / "index").iterdir():
        if f.is_file():
            f.unlink()
    (idx / "index" / "half-written.tmp").write_bytes(b"\0" * 10)
    assert run_in_process(args) == 0
    index = maxsim.Index.open(idx / "index")
    assert sorted(index.ids().tolist()) == list(range(30))
    for got, expected in zip(index.get(np.arange(30)), want):
        np.testing.assert_array_equal(got, expected)
