"""The on-disk retrieval index that ``maxsim index build`` writes (docs: README
"From the shell", docs/cli-benchmarks.md).

Layout of ``OUT_DIR``::

    maxsim-retrieval.json   settings: kind, model (id/path, fingerprint, dim,
                            prompts), build settings, corpus; written once
    progress.bin            the commit point, a fixed-size record: documents
                            and segments committed, the corpus digest, the
                            CRC-32 of the journal (progress.py)
    segments.log            append-only journal, one fixed-size record per
                            committed segment (start, count, file sizes, CRC-32s)
    texts/seg-NNNNNN.jsonl  one {"_id", "title", "text"} line per document
    vectors/seg-NNNNNN.npy  dense: (n, dim) float32; binary: (n, ceil(dim/8))
                            uint8 codes, plus seg-NNNNNN.rescore.npy with the
                            float vectors kept for rescoring (--store)
    index/                  colbert: a maxsim.Index, ids = document ordinals

A batch commits in this order: its segment files are written and fsynced (and,
for colbert, added to ``index/`` as one atomic ``Index.add``); then its record
is appended to ``segments.log`` and ``progress.bin`` is replaced atomically,
both fsynced: the same few bytes per batch however many came before. A process
killed at any point leaves the last committed batch: files and a journal record
of an uncommitted batch are rewritten on resume, and colbert documents added
after the last ``progress.bin`` are deleted from ``index/`` before the build
goes on (:meth:`RetrievalIndex.resume_point`).
"""

from __future__ import annotations

import bisect
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import progress as progress_file
from .errors import CliError
from .fileio import atomic_write, fsync_dir, npy_bytes, read_checked, read_json, write_json
from .progress import PROGRESS, Progress

FORMAT = "maxsim-retrieval"
# 2: progress.bin + segments.log (O(1) bytes per commit) replace progress.json.
VERSION = 2
SETTINGS = "maxsim-retrieval.json"
KINDS = ("colbert", "dense", "binary")


class RetrievalIndex:
    """A built (or partly built) retrieval index folder: settings, progress, segments."""

    def __init__(self, path: Path, settings: dict, progress: Progress) -> None:
        self.path = path
        self.settings = settings
        self.progress = progress
        self._starts = [seg.start for seg in progress.segments]
        self._text_cache: dict[int, list[dict]] = {}
        self._colbert: Any = None

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def create(cls, path: Path, settings: dict) -> RetrievalIndex:
        """A new, empty index at ``path`` (absent or an empty folder).

        The folder is made beside ``path`` under a hidden name and renamed into
        place, so that a kill during the creation leaves no half-made ``path``
        for the rerun to refuse (only a hidden ``.NAME.creating-PID`` folder).
        """
        if (path / SETTINGS).exists():
            raise CliError(f"{path}: already holds an index")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".{path.name}.creating-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for sub in ("texts", "vectors"):
            (staging / sub).mkdir()
        settings = {"format": FORMAT, "version": VERSION, **settings}
        progress = progress_file.create(staging)
        write_json(staging / SETTINGS, settings)
        if path.exists():
            path.rmdir()  # empty: the caller refuses a folder with files in it
        os.rename(staging, path)
        fsync_dir(path.parent)
        return cls(path, settings, progress)

    @classmethod
    def open(cls, path: Path) -> RetrievalIndex:
        path = Path(path)
        if not (path / SETTINGS).is_file():
            hint = (
                " (a maxsim.Index folder? `maxsim search` reads folders that "
                "`maxsim index build` wrote)"
                if (path / "manifest.json").exists()
                else ""
            )
            raise CliError(f"{path}: not a maxsim retrieval index (no {SETTINGS}){hint}")
        settings = read_json(path / SETTINGS, "index settings")
        if settings.get("format") != FORMAT:
            raise CliError(f"{path / SETTINGS}: field 'format' is not {FORMAT!r}")
        if settings.get("version") != VERSION:
            raise CliError(
                f"{path / SETTINGS}: field 'version' is {settings.get('version')!r}; "
                f"this maxsim reads version {VERSION} (rebuild the index with --overwrite)"
            )
        if settings.get("kind") not in KINDS:
            raise CliError(f"{path / SETTINGS}: field 'kind' is {settings.get('kind')!r}")
        return cls(path, settings, progress_file.load(path))

    @property
    def kind(self) -> str:
        return self.settings["kind"]

    @property
    def dim(self) -> int:
        return int(self.settings["dim"])

    @property
    def n_docs(self) -> int:
        return self.progress.docs

    @property
    def complete(self) -> bool:
        return self.progress.complete

    def colbert_index(self) -> Any:
        """The ``maxsim.Index`` of a colbert index (created on first use when building)."""
        if self._colbert is None:
            import maxsim

            folder = self.path / "index"
            if (folder / "manifest.json").exists():
                self._colbert = maxsim.Index.open(folder)
            else:
                # No manifest: nothing was ever committed there (a kill while
                # Index.create wrote its first files); start it again.
                shutil.rmtree(folder, ignore_errors=True)
                build = self.settings["build"]
                self._colbert = maxsim.Index.create(
                    folder,
                    self.dim,
                    nbits=build["nbits"],
                    store=build["store"],
                    seed=0,
                    # Settings written before codecs had a name: the scalar one.
                    codec=build.get("codec", "scalar"),
                )
        return self._colbert

    # -- building ------------------------------------------------------------

    def resume_point(self) -> int:
        """Documents committed; for colbert, drops from ``index/`` any document added
        after the last commit of ``progress.bin`` (a kill between the two commits)."""
        if self.kind == "colbert" and (self.path / "index" / "manifest.json").exists():
            index = self.colbert_index()
            ids = np.asarray(index.ids(), dtype=np.int64)
            extra = ids[ids >= self.n_docs]
            if extra.size:
                index.delete(extra)
            if len(index) != self.n_docs:
                raise CliError(
                    f"{self.path / 'index'}: holds {len(index)} documents but "
                    f"{self.path / PROGRESS} commits {self.n_docs}; rebuild with --overwrite"
                )
        return self.n_docs

    def commit_batch(
        self, docs: Sequence[Any], vectors: Any, digest: str, *, rescore: Any = None
    ) -> None:
        """Commit one batch: ``docs`` (corpus.Doc), their vectors (dense: ``(n, dim)``
        float32; binary: ``(n, bytes)`` uint8 codes; colbert: a list of ``(len_i, dim)``
        float32), and the corpus digest after them."""
        name = f"seg-{len(self.progress.segments) + 1:06d}"
        lines = [
            json.dumps({"_id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False)
            for d in docs
        ]
        files = {
            "texts": atomic_write(
                self.path / "texts" / f"{name}.jsonl", ("\n".join(lines) + "\n").encode("utf-8")
            )
        }
        start = self.n_docs
        if self.kind == "colbert":
            self.colbert_index().add(np.arange(start, start + len(docs), dtype=np.int64), vectors)
        else:
            files["vectors"] = atomic_write(
                self.path / "vectors" / f"{name}.npy", npy_bytes(vectors)
            )
            if rescore is not None:
                files["rescore"] = atomic_write(
                    self.path / "vectors" / f"{name}.rescore.npy", npy_bytes(rescore)
                )
        segment = progress_file.commit(self.path, self.progress, len(docs), files, digest)
        assert segment.name == name and segment.start == start
        self._starts.append(start)

    def mark_complete(self, total: int) -> None:
        progress_file.mark_complete(self.path, self.progress, total)

    def update_settings(self, **fields: Any) -> None:
        self.settings = {**self.settings, **fields}
        write_json(self.path / SETTINGS, self.settings)

    # -- reading -------------------------------------------------------------

    def _segment_texts(self, s: int) -> list[dict]:
        rows = self._text_cache.get(s)
        if rows is None:
            seg = self.progress.segments[s]
            path = self.path / "texts" / f"{seg.name}.jsonl"
            data = read_checked(path, seg.files["texts"])
            rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
            if len(rows) != seg.count:
                raise CliError(f"{path}: {len(rows)} documents, expected {seg.count}")
            self._text_cache[s] = rows
        return rows

    def doc(self, ordinal: int) -> dict:
        """``{"_id", "title", "text"}`` of the document at ``ordinal`` (corpus order)."""
        if not 0 <= ordinal < self.n_docs:
            raise IndexError(f"document {ordinal} of {self.n_docs}")
        s = bisect.bisect_right(self._starts, ordinal) - 1
        return self._segment_texts(s)[ordinal - self._starts[s]]

    def load_vectors(self, which: str = "vectors") -> Optional[np.ndarray]:
        """All committed rows of the ``vectors`` (or ``rescore``) segments, concatenated."""
        parts = []
        for seg in self.progress.segments:
            ref = seg.files.get(which)
            if ref is None:
                return None
            suffix = ".npy" if which == "vectors" else f".{which}.npy"
            path = self.path / "vectors" / f"{seg.name}{suffix}"
            array = np.load(io.BytesIO(read_checked(path, ref)), allow_pickle=False)
            if array.shape[0] != seg.count:
                raise CliError(f"{path}: {array.shape[0]} rows, expected {seg.count}")
            parts.append(array)
        if not parts:
            return None
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def disk_bytes(self) -> dict:
        """Bytes on disk by part: texts, vectors, index (colbert), total."""
        sizes = {"texts": 0, "vectors": 0, "index": 0}
        for seg in self.progress.segments:
            for key, ref in seg.files.items():
                sizes["texts" if key == "texts" else "vectors"] += int(ref["size"])
        index_dir = self.path / "index"
        if index_dir.is_dir():
            sizes["index"] = sum(f.stat().st_size for f in index_dir.iterdir() if f.is_file())
        sizes["total"] = sum(sizes.values())
        return sizes
