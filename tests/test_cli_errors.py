"""Bad input to ``maxsim index build`` / ``search`` / ``eval`` / ``index info``:
each error names the file, the line and the field; exit code 2 for usage
errors, 1 for failures; no traceback unless ``--debug``.

Most cases fail before any model loads (the corpus is validated first), so
they run in-process; the traceback checks run a real ``python -m maxsim.cli``.
"""

from __future__ import annotations

import json
from pathlib import Path

import _cli_fixtures as C
import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest
from _cli_fixtures import restore_threads  # noqa: F401  (a fixture)
from maxsim import cli

pytestmark = pytest.mark.usefixtures("restore_threads")

GOOD = '{"_id": "a", "text": "the dog"}'


run = C.run_main  # exit code and stderr of `maxsim ARGS` in this process


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "lines, where, says",
    [
        ([GOOD, '{"_id": "b", "text": "x"', GOOD], ":2:", "invalid JSON"),
        ([GOOD, "", '{"text": "no id"}'], ":3:", "field '_id' is missing"),
        ([GOOD, '{"_id": "b"}'], ":2:", "field 'text' is missing"),
        ([GOOD, '{"_id": "b", "text": ["a", "list"]}'], ":2:", "field 'text' must be a string"),
        ([GOOD, '{"_id": "", "text": "x"}'], ":2:", "field '_id' is empty"),
        ([GOOD, '["not", "an", "object"]'], ":2:", "expected a JSON object, got list"),
        ([GOOD, '{"_id": "b", "text": "x"}', GOOD], ":3:", "duplicate id 'a' (first at"),
    ],
)
def test_corpus_errors_name_file_line_and_field(tmp_path, capsys, lines, where, says) -> None:
    corpus = write_lines(tmp_path / "docs.jsonl", lines)
    out = tmp_path / "out.idx"
    # The corpus is checked before the model loads: a model that does not exist
    # is not reached, and no index folder is left behind.
    code, err = run(["index", "build", corpus, out, "--model", tmp_path / "no-model"], capsys)
    assert code == 1
    assert f"{corpus}{where}" in err and says in err, err
    assert not out.exists()


def test_corpus_not_utf8_names_the_line(tmp_path, capsys) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_bytes(GOOD.encode() + b'\n{"_id": "b", "text": "caf\xe9"}\n')
    code, err = run(["index", "build", corpus, tmp_path / "o", "--model", "x"], capsys)
    assert code == 1 and f"{corpus}:2: not UTF-8" in err, err


def test_missing_corpus_and_empty_folder(tmp_path, capsys) -> None:
    code, err = run(["index", "build", tmp_path / "nope", tmp_path / "o", "--model", "x"], capsys)
    assert code == 1 and f"{tmp_path / 'nope'}: no such file or folder" in err
    (tmp_path / "empty").mkdir()
    code, err = run(["index", "build", tmp_path / "empty", tmp_path / "o", "--model", "x"], capsys)
    assert code == 1 and "neither corpus.jsonl (BEIR) nor .txt/.md files" in err


def _beir(tmp_path: Path, qrels: list[str]) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write_lines(folder / "corpus.jsonl", [GOOD])
    write_lines(folder / "queries.jsonl", ['{"_id": "q1", "text": "dog"}'])
    write_lines(folder / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", *qrels])
    return folder


@pytest.mark.parametrize(
    "qrels, line, says",
    [
        (["q1\ta\t1", "q9\ta\t1"], 3, "field 'query-id': 'q9' is not in"),
        (["q1\ta\t1", "q1\tb\tyes"], 3, "field 'score' must be an integer, got 'yes'"),
        (["q1\ta"], 2, "expected 3 tab-separated fields"),
    ],
)
def test_qrels_errors_name_file_line_and_field(tmp_path, capsys, qrels, line, says) -> None:
    folder = _beir(tmp_path, qrels)
    code, err = run(["eval", folder, "--model", "x", "--output", tmp_path / "r.json"], capsys)
    assert code == 1
    assert f"{folder / 'qrels' / 'test.tsv'}:{line}: {says}" in err, err


def test_eval_missing_split_lists_the_splits(tmp_path, capsys) -> None:
    folder = _beir(tmp_path, ["q1\ta\t1"])
    code, err = run(["eval", folder, "--model", "x", "--split", "dev"], capsys)
    assert code == 1 and "dev.tsv: missing (splits here: test)" in err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["search"],
        ["index"],
        ["index", "build", "corpus"],
        ["search", "idx", "q", "-k", "0"],
        ["search", "idx", "q", "--threads", "zero"],
        ["search", "idx", "q", "--candidates", "20"],
        ["eval", "data"],
        ["eval", "data", "--index", "i", "--top-n", "5"],
        ["eval", "data", "--index", "i", "--rerank", "r", "--candidates", "5", "--top-n", "9"],
        ["eval", "data", "--index", "i", "--metrics", "bleu@4"],
        ["eval", "data", "--index", "i", "--metrics", "ndcg"],
        ["index", "build", "c", "o", "--kind", "sparse"],
        ["index", "build", "c", "o", "--nbits", "3"],
    ],
)
def test_usage_errors_exit_2(capsys, args) -> None:
    code, err = run(args, capsys)
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err


def test_build_needs_model_or_embeddings(tmp_path, capsys) -> None:
    corpus = write_lines(tmp_path / "docs.jsonl", [GOOD])
    code, err = run(["index", "build", corpus, tmp_path / "o"], capsys)
    assert code == 2 and "--model MODEL (or --embeddings FILE)" in err


def _index_from_embeddings(tmp_path: Path, capsys, n: int = 6, dim: int = 8) -> Path:
    lines = [json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) for i in range(n)]
    corpus = write_lines(tmp_path / "docs.jsonl", lines)
    emb = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    np.save(tmp_path / "emb.npy", emb)
    idx = tmp_path / "pre.idx"
    args = ["index", "build", corpus, idx, "--embeddings", tmp_path / "emb.npy"]
    code, err = run([*args, "--batch-size", 4], capsys)
    assert code == 0, err
    return idx


def test_embeddings_that_do_not_fit_the_corpus(tmp_path, capsys) -> None:
    lines = [json.dumps({"_id": f"d{i}", "text": "x"}) for i in range(5)]
    corpus = write_lines(tmp_path / "docs.jsonl", lines)
    np.save(tmp_path / "short.npy", np.ones((3, 4), np.float32))
    code, err = run(
        ["index", "build", corpus, tmp_path / "a", "--embeddings", tmp_path / "short.npy"], capsys
    )
    assert code == 1 and f"{tmp_path / 'short.npy'}: embeddings for 3 documents" in err, err
    nan = np.ones((5, 4), np.float32)
    nan[4, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    code, err = run(
        ["index", "build", corpus, tmp_path / "b", "--embeddings", tmp_path / "nan.npy"], capsys
    )
    assert code == 1 and "NaN or inf" in err and f"{corpus}:" in err, err
    np.save(tmp_path / "ints.npy", np.ones((5, 4), np.int32))
    code, err = run(
        ["index", "build", corpus, tmp_path / "c", "--embeddings", tmp_path / "ints.npy"], capsys
    )
    assert code == 1 and "expected a 2-D float array" in err and "int32" in err, err


def test_embeddings_of_another_dimension_than_the_model(tmp_path, capsys) -> None:
    pytest.importorskip("transformers")
    model = F.make_embedder_dir(tmp_path / "embedder", seed=1)  # dim 32
    corpus = write_lines(tmp_path / "docs.jsonl", [GOOD])
    np.save(tmp_path / "e.npy", np.ones((1, 8), np.float32))
    args = ["index", "build", corpus, tmp_path / "o", "--embeddings", tmp_path / "e.npy"]
    code, err = run([*args, "--model", model, "--threads", 1], capsys)
    assert code == 1 and "dimension 8" in err and "gives 32" in err, err


def test_search_of_a_folder_that_is_not_an_index(tmp_path, capsys) -> None:
    code, err = run(["search", tmp_path, "dog"], capsys)
    assert code == 1 and f"{tmp_path}: not a maxsim retrieval index" in err


def test_corrupt_index_files_are_named(tmp_path, capsys) -> None:
    pytest.importorskip("transformers")
    model = F.make_embedder_dir(tmp_path / "embedder", seed=1)  # dim 32, as the embeddings
    idx = _index_from_embeddings(tmp_path, capsys, dim=32)
    search = ["search", idx, "dog", "--model", model, "--threads", 1]
    code, err = run(search, capsys)
    assert code == 0, err
    # A truncated text segment: its committed size no longer matches.
    seg = sorted((idx / "texts").glob("seg-*.jsonl"))[0]
    seg.write_bytes(seg.read_bytes()[:-5])
    code, err = run(search, capsys)
    assert code == 1 and f"{seg}: " in err and "(truncated?)" in err, err
    # One flipped byte in a vector segment: the CRC-32 catches it.
    vec = sorted((idx / "vectors").glob("seg-*.npy"))[-1]
    data = bytearray(vec.read_bytes())
    data[-1] ^= 0xFF
    vec.write_bytes(bytes(data))
    code, err = run(search, capsys)
    assert code == 1 and f"{vec}: checksum mismatch" in err, err
    # The commit record cut short (tests/test_cli_progress.py tries the other ways).
    (idx / "progress.bin").write_bytes((idx / "progress.bin").read_bytes()[:40])
    code, err = run(["index", "info", idx], capsys)
    assert code == 1 and f"{idx / 'progress.bin'}: 40 bytes, expected 88" in err, err


def test_no_traceback_without_debug_and_one_with_it(tmp_path) -> None:
    corpus = write_lines(tmp_path / "docs.jsonl", [GOOD, "{oops"])
    args = ["index", "build", str(corpus), str(tmp_path / "o"), "--model", "x"]
    proc = C.run_cli(args, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"maxsim: error: {corpus}:2: invalid JSON (Expecting property name enclosed in "
        "double quotes at column 2)"
    )
    proc = C.run_cli([*args, "--debug"], timeout=120)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr and "CliError" in proc.stderr
    proc = C.run_cli(["eval", str(tmp_path)], timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_every_command_help_shows_an_example(capsys) -> None:
    for command in (["index"], ["index", "build"], ["index", "info"], ["search"], ["eval"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            cli.main([*command, "--help"])
        out = capsys.readouterr().out
        assert exc.value.code == 0 and "example" in out and f"maxsim {command[0]}" in out, command
