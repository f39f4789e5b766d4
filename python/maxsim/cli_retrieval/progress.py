"""The commit point of ``maxsim index build``: a fixed-size progress record and an
append-only journal of the committed segments.

Committing a batch writes a constant number of bytes here, whatever the number
of batches before it: one journal record appended, and the progress record
(always :data:`PROGRESS_SIZE` bytes) replaced atomically. (The JSON file of
earlier development builds listed every segment and was rewritten whole per
batch: quadratic in the number of batches.)

``progress.bin``, little-endian, :data:`PROGRESS_SIZE` = 88 bytes::

    magic        8s   b"MXSIMPRG"
    version      u32  1
    flags        u32  bit 0: the build is complete
    docs         u64  documents committed
    segments     u64  journal records committed
    total        u64  documents in the corpus, once complete (else 0)
    journal_crc  u32  CRC-32 of the journal's committed bytes (header + records)
    digest       32s  SHA-256 of the committed documents (corpus.CorpusDigest)
    updated      f64  time.time() of the commit
    crc          u32  CRC-32 of the 84 bytes above

``segments.log``: a :data:`JOURNAL_HEADER_SIZE` = 12 byte header (magic
b"MXSIMSEG", u32 version 1), then one :data:`RECORD_SIZE` = 52 byte record per
committed batch, segment ``i`` (from 1) being ``seg-{i:06d}``::

    start u64, count u64, then for texts, vectors, rescore: size u64, crc32 u32
    (size 0: the segment has no such file)

A batch commits: its files are written and fsynced, its record is written at
the end of the committed journal (replacing any record a killed build left
past it) and fsynced, then ``progress.bin`` is replaced (temp file, fsync,
rename, fsync of the folder). Readers use only the records ``progress.bin``
commits, checked against its ``journal_crc``; committed bytes are never
rewritten, so a search may read an index that is still being built.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import CliError
from .fileio import atomic_write

PROGRESS = "progress.bin"
JOURNAL = "segments.log"
VERSION = 1
FILE_KINDS = ("texts", "vectors", "rescore")

_PROGRESS = struct.Struct("<8sIIQQQI32sdI")
_JOURNAL_HEADER = struct.Struct("<8sI")
_RECORD = struct.Struct("<QQ" + "QI" * len(FILE_KINDS))
PROGRESS_SIZE = _PROGRESS.size
JOURNAL_HEADER_SIZE = _JOURNAL_HEADER.size
RECORD_SIZE = _RECORD.size
PROGRESS_MAGIC = b"MXSIMPRG"
JOURNAL_MAGIC = b"MXSIMSEG"
_COMPLETE = 1
_NO_DIGEST = bytes(hashlib.sha256().digest_size)
_HEADER_BYTES = _JOURNAL_HEADER.pack(JOURNAL_MAGIC, VERSION)


@dataclass
class Segment:
    """One committed batch: documents ``start .. start + count`` and their files,
    ``{kind: {"size", "crc32"}}`` for the kinds of :data:`FILE_KINDS` it has."""

    seq: int
    start: int
    count: int
    files: dict[str, dict[str, int]]

    @property
    def name(self) -> str:
        return f"seg-{self.seq:06d}"

    def record(self) -> bytes:
        values: list[int] = [self.start, self.count]
        for kind in FILE_KINDS:
            ref = self.files.get(kind)
            values += [ref["size"], ref["crc32"]] if ref else [0, 0]
        return _RECORD.pack(*values)


@dataclass
class Progress:
    """What ``progress.bin`` commits, with the committed journal records."""

    docs: int = 0
    digest: Optional[str] = None
    complete: bool = False
    total: int = 0
    segments: list[Segment] = field(default_factory=list)
    journal_crc: int = zlib.crc32(_HEADER_BYTES)
    updated: float = 0.0

    def pack(self, n_segments: Optional[int] = None) -> bytes:
        """The ``progress.bin`` bytes; ``n_segments``: records committed (default:
        ``len(segments)``)."""
        digest = bytes.fromhex(self.digest) if self.digest else _NO_DIGEST
        body = _PROGRESS.pack(
            PROGRESS_MAGIC,
            VERSION,
            _COMPLETE if self.complete else 0,
            self.docs,
            len(self.segments) if n_segments is None else n_segments,
            self.total,
            self.journal_crc,
            digest,
            self.updated,
            0,
        )[:-4]
        return body + struct.pack("<I", zlib.crc32(body))


def journal_crc(segments: list[Segment]) -> int:
    """CRC-32 of a journal holding ``segments`` (O(len(segments)); commits update it
    in O(1))."""
    crc = zlib.crc32(_HEADER_BYTES)
    for seg in segments:
        crc = zlib.crc32(seg.record(), crc)
    return crc


def create(folder: Path) -> Progress:
    """An empty journal and progress record in ``folder``."""
    atomic_write(folder / JOURNAL, _HEADER_BYTES)
    progress = Progress(updated=time.time())
    write(folder, progress)
    return progress


def write(folder: Path, progress: Progress) -> None:
    """Replace ``progress.bin`` atomically (the records it commits must be in the journal)."""
    atomic_write(folder / PROGRESS, progress.pack())


def read_record(folder: Path) -> tuple[Progress, int]:
    """``progress.bin`` alone, checked: the progress without its segments, and the
    number of journal records it commits."""
    path = folder / PROGRESS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: missing (the build progress of the index)") from None
    if len(data) != PROGRESS_SIZE:
        raise CliError(
            f"{path}: {len(data)} bytes, expected {PROGRESS_SIZE} "
            "(truncated or corrupt build progress); rebuild with --overwrite"
        )
    fields = _PROGRESS.unpack(data)
    magic, version, flags, docs, n_segments, total, jcrc, digest, updated, crc = fields
    if magic != PROGRESS_MAGIC:
        raise CliError(f"{path}: not a maxsim build progress file (magic {magic!r})")
    if crc != zlib.crc32(data[:-4]):
        raise CliError(
            f"{path}: checksum mismatch (corrupt build progress); rebuild with --overwrite"
        )
    if version != VERSION:
        raise CliError(f"{path}: progress format version {version}; this maxsim reads {VERSION}")
    progress = Progress(
        docs=docs,
        digest=digest.hex() if docs else None,
        complete=bool(flags & _COMPLETE),
        total=total,
        journal_crc=jcrc,
        updated=updated,
    )
    return progress, int(n_segments)


def load(folder: Path) -> Progress:
    """``progress.bin`` and the journal records it commits, checked: sizes, CRC-32s,
    and segments that follow one another and add up to the committed documents."""
    path, jpath = folder / PROGRESS, folder / JOURNAL
    progress, n_segments = read_record(folder)
    need = JOURNAL_HEADER_SIZE + n_segments * RECORD_SIZE
    try:
        with open(jpath, "rb") as f:
            data = f.read(need)
    except FileNotFoundError:
        raise CliError(f"{jpath}: missing (the segment journal of {path})") from None
    if len(data) < need:
        raise CliError(
            f"{jpath}: {len(data)} bytes, but {path} commits {n_segments} segments "
            f"({need} bytes): truncated; rebuild with --overwrite"
        )
    if zlib.crc32(data) != progress.journal_crc:
        raise CliError(
            f"{jpath}: checksum mismatch with {path} (the segment journal is corrupt); "
            "rebuild with --overwrite"
        )
    if data[:JOURNAL_HEADER_SIZE] != _HEADER_BYTES:
        raise CliError(f"{jpath}: not a maxsim segment journal of version {VERSION}")
    start = 0
    for i, values in enumerate(_RECORD.iter_unpack(data[JOURNAL_HEADER_SIZE:])):
        files = {
            kind: {"size": values[2 + 2 * k], "crc32": values[3 + 2 * k]}
            for k, kind in enumerate(FILE_KINDS)
            if values[2 + 2 * k]
        }
        seg = Segment(seq=i + 1, start=values[0], count=values[1], files=files)
        if seg.start != start or seg.count < 1 or "texts" not in files:
            raise CliError(f"{jpath}: record {i + 1} is inconsistent (corrupt journal)")
        progress.segments.append(seg)
        start += seg.count
    if start != progress.docs:
        raise CliError(f"{jpath}: segments hold {start} documents, {path} commits {progress.docs}")
    return progress


def commit(folder: Path, progress: Progress, count: int, files: dict, digest: str) -> Segment:
    """Commit the next segment, of ``count`` documents whose ``files`` (``{kind:
    {"size", "crc32"}}``) are already durable; ``digest``: the corpus digest after
    them. Writes one journal record and the fixed-size progress record; updates
    ``progress`` in place once both are durable."""
    seg = Segment(seq=len(progress.segments) + 1, start=progress.docs, count=count, files=files)
    record = seg.record()
    with open(folder / JOURNAL, "r+b") as f:
        # Past the committed records: only records of a build killed before its
        # progress.bin; this batch replaces them.
        f.seek(JOURNAL_HEADER_SIZE + len(progress.segments) * RECORD_SIZE)
        f.write(record)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    # Not a copy of ``progress``: that would copy the segment list, O(batches).
    committed = Progress(
        docs=progress.docs + count,
        digest=digest,
        journal_crc=zlib.crc32(record, progress.journal_crc),
        updated=time.time(),
    )
    atomic_write(folder / PROGRESS, committed.pack(n_segments=len(progress.segments) + 1))
    progress.docs, progress.digest = committed.docs, committed.digest
    progress.complete, progress.total = False, 0  # more documents than when completed
    progress.journal_crc, progress.updated = committed.journal_crc, committed.updated
    progress.segments.append(seg)
    return seg


def mark_complete(folder: Path, progress: Progress, total: int) -> None:
    progress.complete, progress.total, progress.updated = True, total, time.time()
    write(folder, progress)
