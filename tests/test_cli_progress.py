"""The build's commit point (python/maxsim/cli_retrieval/progress.py): a fixed-size
``progress.bin`` and an append-only ``segments.log``, read here by their
documented layout, not by the code under test; the same bytes per batch however
many batches came before; corrupt or truncated files refused, naming the path.

The indexes are built from precomputed embeddings: no model, no torch.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import _cli_fixtures as C
import numpy as np
import pytest
from _cli_fixtures import restore_threads  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("restore_threads")

# The layouts as the module docstring documents them, field by field.
PROGRESS_FIELDS = [
    ("magic", "8s"),
    ("version", "I"),
    ("flags", "I"),
    ("docs", "Q"),
    ("segments", "Q"),
    ("total", "Q"),
    ("journal_crc", "I"),
    ("digest", "32s"),
    ("updated", "d"),
    ("crc", "I"),
]
PROGRESS_FORMAT = "<" + "".join(f for _, f in PROGRESS_FIELDS)
PROGRESS_BYTES = 8 + 4 + 4 + 8 + 8 + 8 + 4 + 32 + 8 + 4  # = 88
JOURNAL_HEADER_BYTES = 8 + 4  # magic, version
RECORD_BYTES = 8 + 8 + 3 * (8 + 4)  # start, count, (size, crc32) of texts, vectors, rescore


run = C.run_main  # exit code and stderr of `maxsim ARGS` in this process


def make_corpus(folder: Path, n_docs: int, dim: int = 4) -> tuple[list[dict], Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [
        {"_id": f"d{i}", "title": "t" if i % 3 == 0 else "", "text": f"document {i} é"}
        for i in range(n_docs)
    ]
    corpus = folder / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    emb = np.random.default_rng(n_docs).standard_normal((n_docs, dim)).astype(np.float32)
    np.save(folder / "emb.npy", emb)
    return docs, corpus, folder / "emb.npy"


def build_args(corpus: Path, idx: Path, emb: Path, batch_size: int) -> list:
    return ["index", "build", corpus, idx, "--embeddings", emb, "--batch-size", batch_size]


def build(tmp_path: Path, capsys, n_docs: int, batch_size: int) -> tuple[list[dict], Path]:
    docs, corpus, emb = make_corpus(tmp_path / f"data-{n_docs}", n_docs)
    idx = tmp_path / f"n{n_docs}-b{batch_size}.idx"
    code, err = run(build_args(corpus, idx, emb, batch_size), capsys)
    assert code == 0, err
    return docs, idx


def corpus_sha256(docs: list[dict]) -> bytes:
    """SHA-256 over each document's id, title and text, each UTF-8 and prefixed with
    its byte length (u64 little-endian): the digest the format documents."""
    h = hashlib.sha256()
    for d in docs:
        for part in (d["_id"], d["title"], d["text"]):
            data = part.encode("utf-8")
            h.update(struct.pack("<Q", len(data)) + data)
    return h.digest()


@pytest.mark.parametrize("n_docs", [3, 40])
def test_progress_record_has_the_same_size_for_any_number_of_batches(
    tmp_path, capsys, n_docs
) -> None:
    docs, idx = build(tmp_path, capsys, n_docs, batch_size=1)  # one batch per document
    raw = (idx / "progress.bin").read_bytes()
    assert struct.calcsize(PROGRESS_FORMAT) == PROGRESS_BYTES
    assert len(raw) == PROGRESS_BYTES  # 3 batches or 40: the same 88 bytes
    p = dict(zip([n for n, _ in PROGRESS_FIELDS], struct.unpack(PROGRESS_FORMAT, raw)))
    journal = (idx / "segments.log").read_bytes()
    # The journal grows by one fixed-size record per batch, nothing more.
    assert len(journal) == JOURNAL_HEADER_BYTES + n_docs * RECORD_BYTES
    assert p["magic"] == b"MXSIMPRG" and p["version"] == 1 and p["flags"] & 1
    assert p["docs"] == p["segments"] == p["total"] == n_docs
    assert p["crc"] == zlib.crc32(raw[:-4])
    assert p["journal_crc"] == zlib.crc32(journal)
    assert p["digest"] == corpus_sha256(docs)
    assert journal[:8] == b"MXSIMSEG"
    for i in range(n_docs):
        record = journal[JOURNAL_HEADER_BYTES + i * RECORD_BYTES :][:RECORD_BYTES]
        start, count, t_size, t_crc, v_size, v_crc, r_size, r_crc = struct.unpack(
            "<QQQIQIQI", record
        )
        texts = (idx / "texts" / f"seg-{i + 1:06d}.jsonl").read_bytes()
        vectors = (idx / "vectors" / f"seg-{i + 1:06d}.npy").read_bytes()
        assert (start, count) == (i, 1)
        assert (t_size, t_crc) == (len(texts), zlib.crc32(texts))
        assert (v_size, v_crc) == (len(vectors), zlib.crc32(vectors))
        assert (r_size, r_crc) == (0, 0)  # dense: no rescore file
        assert json.loads(texts) == docs[i]


def test_each_commit_writes_the_same_bytes(tmp_path, capsys, monkeypatch) -> None:
    """The writes of progress.bin, counted as the build makes them: one per batch
    (and one to create, one to mark complete), every one 88 bytes."""
    from maxsim.cli_retrieval import progress

    written: list[int] = []
    real = progress.atomic_write

    def spy(path: Path, data: bytes) -> dict:
        if path.name == "progress.bin":
            written.append(len(data))
        return real(path, data)

    monkeypatch.setattr(progress, "atomic_write", spy)
    build(tmp_path, capsys, n_docs=25, batch_size=2)
    assert written == [PROGRESS_BYTES] * (1 + 13 + 1)  # create, ceil(25 / 2) batches, complete


def test_a_record_past_the_commit_point_is_replaced_on_resume(tmp_path, capsys) -> None:
    docs, corpus, emb = make_corpus(tmp_path / "data", 10)
    idx, clean = tmp_path / "killed.idx", tmp_path / "clean.idx"
    assert run(build_args(corpus, clean, emb, 3), capsys)[0] == 0
    assert run(build_args(corpus, idx, emb, 3), capsys)[0] == 0
    # As a kill after the second batch's journal record, before its progress.bin:
    # progress.bin commits one segment, the journal holds four records.
    C.roll_back(idx, 1)
    assert C.committed(idx) == 3
    code, err = run(["index", "info", idx, "--json"], capsys)
    assert code == 0, err
    code, err = run(build_args(corpus, idx, emb, 3), capsys)
    assert code == 0 and f"resuming {idx} after 3 committed documents" in err, err
    assert (idx / "segments.log").read_bytes() == (clean / "segments.log").read_bytes()
    from maxsim.cli_retrieval.store import RetrievalIndex

    a, b = RetrievalIndex.open(idx), RetrievalIndex.open(clean)
    np.testing.assert_array_equal(a.load_vectors(), np.load(emb))
    np.testing.assert_array_equal(a.load_vectors(), b.load_vectors())
    assert [a.doc(i)["_id"] for i in range(10)] == [d["_id"] for d in docs]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, file, says",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:60]), "progress.bin", "60 bytes, expected 88"),
        (lambda p: p.write_bytes(b""), "progress.bin", "0 bytes, expected 88"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "progress.bin", "89 bytes, expected 88"),
        (lambda p: _flip(p, 16), "progress.bin", "checksum mismatch (corrupt build progress)"),
        (lambda p: _flip(p, 0), "progress.bin", "not a maxsim build progress file"),
        (lambda p: p.unlink(), "progress.bin", "missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "segments.log", "truncated"),
        (lambda p: _flip(p, 30), "segments.log", "checksum mismatch with"),
        (lambda p: p.unlink(), "segments.log", "missing"),
    ],
)
def test_corrupt_commit_files_are_refused_naming_the_path(
    tmp_path, capsys, damage, file, says
) -> None:
    docs, corpus, emb = make_corpus(tmp_path / "data", 7)
    idx = tmp_path / "x.idx"
    args = build_args(corpus, idx, emb, 2)
    assert run(args, capsys)[0] == 0
    C.roll_back(idx, 2)  # partly built: a rerun would resume
    damage(idx / file)
    for command in (["index", "info", idx], args):  # reading it, and resuming the build
        code, err = run(command, capsys)
        assert code == 1, err
        assert f"maxsim: error: {idx / file}: " in err and says in err, err
        assert "Traceback" not in err
    # --overwrite still replaces the damaged index.
    code, err = run([*args, "--overwrite"], capsys)
    assert code == 0, err
    assert C.committed(idx) == 7
