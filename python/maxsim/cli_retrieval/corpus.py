"""Streaming readers for corpora, queries and qrels, with errors that name the
file, the line and the field.

A corpus is one of:

* a BEIR folder: ``corpus.jsonl`` inside it (``queries.jsonl`` and ``qrels/`` are
  read by ``maxsim eval``);
* a JSONL file: one JSON object per line with ``_id`` (or ``id``), ``text`` and,
  optionally, ``title``; blank lines are skipped;
* a folder of ``.txt`` / ``.md`` files (searched recursively, in sorted path
  order): each file is one document, its id the path relative to the folder.

Documents are read one at a time (:func:`iter_corpus`), so a corpus of any size
streams in constant memory apart from the set of ids seen (to reject duplicates).
The text that is encoded is ``title + " " + text``, stripped, as BEIR and MTEB
build it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from .errors import CliError

TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Doc:
    """One corpus document and where it came from (``source``: ``file:line`` or a path)."""

    id: str
    title: str
    text: str
    source: str

    @property
    def content(self) -> str:
        """What is encoded: ``title text``, stripped (BEIR's and MTEB's concatenation)."""
        return f"{self.title} {self.text}".strip() if self.title else self.text.strip()


@dataclass(frozen=True)
class CorpusSource:
    """A resolved corpus: ``kind`` is ``"jsonl"`` or ``"folder"``; ``path`` the file or folder."""

    kind: str
    path: Path

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path.resolve())}


def resolve_corpus(path: str | os.PathLike) -> CorpusSource:
    """Which kind of corpus ``path`` is; ``CliError`` when it is none of them."""
    p = Path(path)
    if not p.exists():
        raise CliError(
            f"{p}: no such file or folder (expected a BEIR folder, a JSONL file "
            "or a folder of .txt/.md files)"
        )
    if p.is_file():
        return CorpusSource("jsonl", p)
    if (p / "corpus.jsonl").is_file():
        return CorpusSource("jsonl", p / "corpus.jsonl")
    if any(_text_files(p)):
        return CorpusSource("folder", p)
    raise CliError(f"{p}: a folder with neither corpus.jsonl (BEIR) nor .txt/.md files")


def _text_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(TEXT_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def _string_field(obj: dict, field: str, where: str, required: bool) -> Optional[str]:
    if field not in obj:
        if required:
            raise CliError(f"{where}: field {field!r} is missing")
        return None
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CliError(
            f"{where}: field {field!r} must be a string, got {type(value).__name__} {value!r:.60}"
        )
    return str(value)


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line; errors name file and line.

    Lines are read as bytes and decoded one at a time: a text-mode file decodes
    ahead in chunks, and its UTF-8 errors would not say on which line they are.
    """
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CliError(
                    f"{path}:{lineno}: not UTF-8 text (byte {exc.start + 1}: {exc.reason})"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CliError(
                    f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise CliError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _jsonl_docs(path: Path) -> Iterator[Doc]:
    for lineno, obj in _jsonl_objects(path):
        where = f"{path}:{lineno}"
        key = "_id" if "_id" in obj or "id" not in obj else "id"
        doc_id = _string_field(obj, key, where, True)
        text = _string_field(obj, "text", where, True)
        title = _string_field(obj, "title", where, False) or ""
        if not doc_id:
            raise CliError(f"{where}: field {key!r} is empty")
        yield Doc(doc_id, title, text or "", where)


def _folder_docs(folder: Path) -> Iterator[Doc]:
    for path in _text_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CliError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except OSError as exc:
            raise CliError(f"{path}: cannot read: {exc.strerror}") from None
        yield Doc(rel, "", text, str(path))


def iter_corpus(source: CorpusSource) -> Iterator[Doc]:
    """The documents of ``source`` in order; duplicate ids are an error naming both places."""
    docs = _jsonl_docs(source.path) if source.kind == "jsonl" else _folder_docs(source.path)
    seen: dict[str, str] = {}
    for doc in docs:
        first = seen.get(doc.id)
        if first is not None:
            raise CliError(f"{doc.source}: duplicate id {doc.id!r} (first at {first})")
        seen[doc.id] = doc.source
        yield doc


def count_corpus(source: CorpusSource) -> int:
    """Number of documents, for the progress bar and the end-of-build check.

    A JSONL corpus is parsed whole here, before anything is encoded, so that a
    malformed line, a missing field or a duplicate id at the end of a large corpus
    is reported in seconds, not after an hour of encoding. A folder's files are
    only listed (reading them is the encoding pass's job; their only error is a
    file that is not UTF-8).
    """
    if source.kind == "folder":
        return sum(1 for _ in _text_files(source.path))
    return sum(1 for _ in iter_corpus(source))


class CorpusDigest:
    """A running SHA-256 of the documents read so far: a resumed build checks that
    the documents it already indexed are still the corpus's first documents."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, doc: Doc) -> None:
        for part in (doc.id, doc.title, doc.text):
            data = part.encode("utf-8")
            self._hash.update(len(data).to_bytes(8, "little"))
            self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


# -- queries and qrels (maxsim eval) ------------------------------------------


def read_queries(path: Path) -> dict[str, str]:
    """``{query id: text}`` from a BEIR ``queries.jsonl`` (``_id`` and ``text``)."""
    queries: dict[str, str] = {}
    for lineno, obj in _jsonl_objects(path):
        where = f"{path}:{lineno}"
        key = "_id" if "_id" in obj or "id" not in obj else "id"
        qid = _string_field(obj, key, where, True)
        text = _string_field(obj, "text", where, True)
        if qid in queries:
            raise CliError(f"{where}: duplicate query id {qid!r}")
        queries[qid] = text or ""
    return queries


def read_qrels(path: Path) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """``{query id: {doc id: relevance}}`` from a BEIR qrels TSV, and the line where
    each query id first appears (for error messages).

    Lines are ``query-id <TAB> corpus-id <TAB> score``; a first line that does not
    parse as one (BEIR's header) is skipped; TREC's four-column form
    (``qid 0 docid rel``, whitespace-separated) is read too.
    """
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[str, int] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if len(parts) == 4:
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise CliError(
                    f"{path}:{lineno}: expected 3 tab-separated fields "
                    f"(query-id, corpus-id, score), got {len(parts)}"
                )
            qid, did, score = (p.strip() for p in parts)
            try:
                rel = int(score)
            except ValueError:
                if lineno == 1:
                    continue  # the header line
                raise CliError(
                    f"{path}:{lineno}: field 'score' must be an integer, got {score!r}"
                ) from None
            qrels.setdefault(qid, {})[did] = rel
            first_line.setdefault(qid, lineno)
    if not qrels:
        raise CliError(f"{path}: no judgements")
    return qrels, first_line
