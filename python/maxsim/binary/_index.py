"""``BinaryIndex``: an exact Hamming index in the kernels' interleaved layout,
saved to and memory-mapped from a small documented file (docs/binary.md)."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any, Optional, Tuple, Union

import numpy as np

from .. import _native
from .._convert import as_k, describe, to_numpy
from ._codes import as_codes, quantize, to_ubinary
from ._search import as_db_float, rescore_query

GROUP = 8  # codes per interleaved group (see docs/binary.md)


def _as_position(value: Any, name: str, upper: int) -> int:
    """An integer in ``[0, upper]``, else ValueError naming ``name``."""
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_integer or not 0 <= value <= upper:
        raise ValueError(f"{name}: expected an integer in [0, {upper}], got {value!r}")
    return int(value)


_MAGIC = b"MXSMBIN1"
_VERSION = 1
_HEADER = struct.Struct("<8sIIQIIQII16x")  # 64 bytes, see docs/binary.md
assert _HEADER.size == 64


class BinaryIndex:
    """An exact Hamming index over ``dim``-bit codes (``ceil(dim / 8)`` bytes each).

    Codes are kept in the kernels' interleaved layout (groups of 8 codes, word by
    word), so searches read them with no conversion. ``save`` writes a small
    documented file (docs/binary.md); ``load`` memory-maps it (read-only; the
    first ``add`` after a load copies it into memory). Indices are insertion order.
    """

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim: expected an integer >= 1 (bits per code), got {dim!r}")
        self.dim = int(dim)
        self.n_bytes = -(-self.dim // 8)
        self._words_per_code = -(-self.n_bytes // 8)
        self._n = 0
        self._words = np.zeros(0, dtype=np.uint64)  # capacity, whole groups

    # -- size and layout
    def __len__(self) -> int:
        return self._n

    @property
    def ntotal(self) -> int:
        """Number of codes (faiss's name)."""
        return self._n

    def _group_words(self) -> int:
        return self._words_per_code * GROUP

    def _used_words(self) -> int:
        return -(-self._n // GROUP) * self._group_words()

    def _view(self) -> np.ndarray:
        return self._words[: self._used_words()]

    def codes(self) -> np.ndarray:
        """All codes, ``(ntotal, n_bytes)`` uint8 ubinary, in insertion order (a copy)."""
        return self._deinterleave(self._view(), self._n)

    def _deinterleave(self, words: np.ndarray, n: int) -> np.ndarray:
        w = self._words_per_code
        groups = words.reshape(-1, w, GROUP).transpose(0, 2, 1)
        as_bytes = np.ascontiguousarray(groups).astype("<u8", copy=False).view(np.uint8)
        return np.ascontiguousarray(as_bytes.reshape(-1, w * 8)[:n, : self.n_bytes])

    def reconstruct_n(self, i0: int = 0, ni: Optional[int] = None) -> np.ndarray:
        """Codes ``i0 .. i0 + ni`` (default: to the end), ``(ni, n_bytes)`` uint8
        ubinary, as faiss's ``reconstruct_n``. Reads only their groups."""
        i0 = _as_position(i0, "i0", self._n)
        ni = self._n - i0 if ni is None else _as_position(ni, "ni", self._n - i0)
        if ni == 0:
            return np.zeros((0, self.n_bytes), dtype=np.uint8)
        first, last = i0 // GROUP, (i0 + ni - 1) // GROUP
        gw = self._group_words()
        groups = self._words[first * gw : (last + 1) * gw]
        skip = i0 - first * GROUP
        return self._deinterleave(groups, skip + ni)[skip:]

    def reconstruct(self, key: int) -> np.ndarray:
        """Code ``key`` as ``(n_bytes,)`` uint8 ubinary (faiss's ``reconstruct``)."""
        if self._n == 0 or not isinstance(key, (int, np.integer)) or not 0 <= key < self._n:
            raise ValueError(f"key: expected an index in [0, {self._n}), got {key!r}")
        return self.reconstruct_n(int(key), 1)[0]

    def reset(self) -> None:
        """Removes every code (faiss's ``reset``)."""
        self._n = 0
        self._words = np.zeros(0, dtype=np.uint64)

    def remove_ids(self, ids: Any) -> int:
        """Removes the codes at indices ``ids`` (1-D integers; repeats and
        indices outside ``[0, ntotal)`` are ignored) and returns how many were
        removed. The remaining codes keep their insertion order and are
        renumbered densely, as faiss's ``IndexBinaryFlat.remove_ids`` does."""
        array = to_numpy(ids, "ids")
        if array.dtype.kind not in "iu" or array.ndim != 1:
            raise TypeError(f"ids: expected a 1-D integer array, got {describe(array)}")
        inside = array[(array >= 0) & (array < self._n)].astype(np.int64)
        keep = np.ones(self._n, dtype=bool)
        keep[inside] = False
        removed = self._n - int(keep.sum())
        if removed:
            kept = self.codes()[keep]
            self.reset()
            self.add(kept)
        return removed

    # -- adding
    def _as_index_codes(self, x: Any, name: str) -> np.ndarray:
        array = to_numpy(x, name)
        if array.dtype in (np.uint8, np.int8):
            codes = as_codes(array, name, (1, 2))
            if codes.shape[-1] != self.n_bytes:
                raise ValueError(
                    f"{name}: codes of {codes.shape[-1]} bytes ({describe(codes)}) do not match "
                    f"the index dimension {self.dim} ({self.n_bytes} bytes per code)"
                )
            return to_ubinary(codes).reshape(-1, self.n_bytes)
        if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
            if array.ndim not in (1, 2) or array.shape[-1] != self.dim:
                raise ValueError(
                    f"{name}: float vectors must be ({self.dim},) or (n, {self.dim}) for an index "
                    f"of dimension {self.dim}, got {describe(array)}"
                )
            return quantize(array.reshape(-1, self.dim))
        raise TypeError(
            f"{name}: expected uint8/int8 codes or float vectors, got {describe(array)}"
        )

    def add(self, x: Any) -> None:
        """Appends codes (``(n, n_bytes)`` uint8/int8) or float vectors (``(n, dim)``,
        quantized with :func:`quantize`). 1-D input adds one entry."""
        new = self._as_index_codes(x, "x")
        if new.shape[0] == 0:
            return
        gw = self._group_words()
        start_group = self._n // GROUP
        partial = self._n % GROUP
        if partial:
            tail_words = self._words[start_group * gw : (start_group + 1) * gw]
            new = np.concatenate([self._deinterleave(tail_words, partial), new])
        block = _native.binary_interleave(np.ascontiguousarray(new))
        needed = start_group * gw + block.shape[0]
        if needed > self._words.shape[0] or not self._words.flags.writeable:
            capacity = max(
                needed, 2 * self._words.shape[0] if self._words.flags.writeable else needed
            )
            grown = np.zeros(capacity, dtype=np.uint64)
            grown[: start_group * gw] = self._words[: start_group * gw]
            self._words = grown
        self._words[start_group * gw : needed] = block
        self._n = start_group * GROUP + new.shape[0]

    # -- searching
    def _query_codes(self, query: Any) -> Tuple[np.ndarray, bool]:
        codes = self._as_index_codes(query, "query")
        array = to_numpy(query, "query")
        return np.ascontiguousarray(codes), array.ndim == 1

    def search(self, query: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Exact Hamming k-NN of query codes or float vectors (quantized), as :func:`search`."""
        k = as_k(k)
        q, single = self._query_codes(query)
        dist, idx = _native.binary_search(
            q, k, db_words=self._view(), n=self._n, n_bytes=self.n_bytes
        )
        return (dist[0], idx[0]) if single else (dist, idx)

    def search_rescore(
        self, query_float: Any, k: int, rescore_multiplier: int = 4, db_float: Any = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """As :func:`search_rescore` over the index's codes; ``db_float`` rows follow
        insertion order."""
        k = as_k(k)
        mult = as_k(rescore_multiplier, "rescore_multiplier")
        q, single = rescore_query(query_float, self.n_bytes, f"the index (dim {self.dim})")
        if q.shape[1] != self.dim:
            raise ValueError(
                f"query_float: dimension {q.shape[1]} does not match the index dimension {self.dim}"
            )
        extra = {} if db_float is None else as_db_float(db_float, self._n, self.dim)
        scores, idx = _native.binary_search_rescore(
            q, k, mult, db_words=self._view(), n=self._n, n_bytes=self.n_bytes, **extra
        )
        return (scores[0], idx[0]) if single else (scores, idx)

    # -- persistence
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the index (header + interleaved little-endian words; docs/binary.md)."""
        payload = np.ascontiguousarray(self._view()).astype("<u8", copy=False)
        payload_bytes = memoryview(payload).cast("B")
        head = _HEADER.pack(
            _MAGIC,
            _VERSION,
            self.dim,
            self._n,
            self.n_bytes,
            GROUP,
            payload.shape[0],
            zlib.crc32(payload_bytes),
            0,
        )
        head = head[:44] + struct.pack("<I", zlib.crc32(head[:44])) + head[48:]
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as f:
            f.write(head)
            f.write(payload_bytes)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], *, verify: bool = True) -> BinaryIndex:
        """Memory-maps an index written by :meth:`save`.

        The header is always checked (magic, version, checksum, sizes against the
        file length); with ``verify=True`` the payload checksum is checked too
        (one sequential read). Any mismatch raises ``ValueError``.
        """
        path = os.fspath(path)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise ValueError(f"{path}: truncated: {size} bytes, shorter than the 64-byte header")
        magic, version, dim, n, n_bytes, group, n_words, payload_crc, head_crc = _HEADER.unpack(
            head
        )
        if magic != _MAGIC:
            raise ValueError(
                f"{path}: not a maxsim binary index (magic {magic!r}, expected {_MAGIC!r})"
            )
        if version != _VERSION:
            raise ValueError(
                f"{path}: unsupported version {version} (this maxsim reads {_VERSION})"
            )
        if zlib.crc32(head[:44]) != head_crc:
            raise ValueError(f"{path}: corrupted header (checksum mismatch)")
        if dim < 1 or n_bytes != -(-dim // 8) or group != GROUP:
            raise ValueError(
                f"{path}: inconsistent header (dim {dim}, n_bytes {n_bytes}, group {group})"
            )
        index = cls(dim)
        expected_words = -(-n // GROUP) * index._group_words()
        if n_words != expected_words:
            raise ValueError(
                f"{path}: inconsistent header ({n} codes of {n_bytes} bytes need {expected_words} "
                f"words, header says {n_words})"
            )
        if size != _HEADER.size + 8 * n_words:
            state = "truncated" if size < _HEADER.size + 8 * n_words else "has trailing bytes"
            raise ValueError(
                f"{path}: {state}: {size} bytes, expected {_HEADER.size + 8 * n_words} "
                f"for {n} codes of {n_bytes} bytes"
            )
        if n_words == 0:
            words = np.zeros(0, dtype=np.uint64)
        else:
            words = np.memmap(path, dtype="<u8", mode="r", offset=_HEADER.size, shape=(n_words,))
            if verify and zlib.crc32(memoryview(words).cast("B")) != payload_crc:
                raise ValueError(f"{path}: corrupted payload (checksum mismatch)")
        index._words = words
        index._n = int(n)
        return index

    def __repr__(self) -> str:
        return f"BinaryIndex(dim={self.dim}, ntotal={self._n})"
