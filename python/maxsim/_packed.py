"""``PackedDocs``: variable-length documents in one flat buffer (ColBERT "doclens")."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from ._convert import (
    as_doc_storage,
    as_float32,
    as_int64_vector,
    as_scales,
    check_doc_list,
    describe,
)


class PackedDocs:
    """Documents stored back to back: ``flat`` is ``(total_tokens, d)`` float32 and
    document ``i`` is ``flat[offsets[i]:offsets[i + 1]]``.

    ``offsets`` has ``n_docs + 1`` strictly increasing int64 entries (every document
    has at least one token); it need not start at 0, which is what makes slices
    free. Constructors taking ``flat`` do not copy it when it already is
    C-contiguous float32 (numpy or torch CPU). ``len()``, integer indexing and
    step-1 slicing return views.

    Reduced precision (see ``maxsim.quantize``): ``flat`` may also be float16,
    bfloat16 (``ml_dtypes.bfloat16``; torch bfloat16 is viewed as such) or int8
    codes, which are kept as they are. int8 needs ``scales``, one float32 per row
    of ``flat`` (``x ≈ scales[:, None] * flat``); integer indexing of int8
    documents returns the codes.
    """

    __slots__ = ("flat", "offsets", "scales")

    flat: np.ndarray
    offsets: np.ndarray
    scales: Optional[np.ndarray]

    def __init__(self, flat: Any, offsets: Any, scales: Any = None) -> None:
        self.flat = as_doc_storage(flat, "flat", 2)
        offs = as_int64_vector(offsets, "offsets")
        if offs.shape[0] < 1:
            raise ValueError("offsets: needs n_docs + 1 >= 1 entries, got an empty array")
        n_tokens = self.flat.shape[0]
        if offs[0] < 0:
            raise ValueError(f"offsets: offsets[0] = {offs[0]} is negative")
        steps = np.diff(offs)
        if steps.size and steps.min() <= 0:
            bad = int(np.argmax(steps <= 0))
            if steps[bad] == 0:
                raise ValueError(
                    f"docs: document {bad} has zero tokens (offsets[{bad}] == offsets[{bad + 1}]"
                    f" == {offs[bad]}); every document needs at least one token"
                )
            raise ValueError(
                f"offsets: not monotonic, offsets[{bad + 1}] = {offs[bad + 1]} < "
                f"offsets[{bad}] = {offs[bad]}"
            )
        if offs[-1] > n_tokens:
            raise ValueError(
                f"offsets: last offset {offs[-1]} runs past flat, which has {n_tokens} tokens "
                f"(flat {describe(self.flat)})"
            )
        self.offsets = offs
        if self.flat.dtype == np.int8:
            if scales is None:
                raise TypeError(
                    f"flat: int8 codes without scales ({describe(self.flat)}); pass "
                    "scales=(one float32 per row), or build them with "
                    "maxsim.quantize(docs, 'int8_per_token')"
                )
            self.scales = as_scales(scales, n_tokens)
        elif scales is not None:
            raise ValueError(f"scales: only int8 documents take scales, not {describe(self.flat)}")
        else:
            self.scales = None

    @classmethod
    def from_lengths(cls, flat: Any, lengths: Any, scales: Any = None) -> PackedDocs:
        """From ColBERT's ``doclens``: ``lengths[i]`` tokens per document, summing to
        ``flat.shape[0]``. ``flat`` is not copied."""
        lens = as_int64_vector(lengths, "lengths")
        if lens.size and lens.min() < 1:
            bad = int(np.argmin(lens))
            raise ValueError(
                f"lengths: document {bad} has {lens[bad]} tokens; every document needs at least one"
            )
        flat32 = as_doc_storage(flat, "flat", 2)
        total = int(lens.sum())
        if total != flat32.shape[0]:
            raise ValueError(
                f"lengths: sum to {total} tokens but flat has {flat32.shape[0]} rows "
                f"(flat {describe(flat32)})"
            )
        offsets = np.zeros(lens.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        return cls(flat32, offsets, scales=scales)

    @classmethod
    def from_list(cls, docs: Sequence[Any]) -> PackedDocs:
        """Packs a list of ``(len_i, d)`` arrays (this copies them into one buffer)."""
        if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
            raise TypeError(f"docs: expected a list of 2-D arrays, got {type(docs).__name__}")
        arrays = [as_doc_storage(d, f"docs[{i}]", 2) for i, d in enumerate(docs)]
        if len({a.dtype for a in arrays}) > 1:  # mixed dtypes: float32 for all
            arrays = [as_float32(a, f"docs[{i}]", 2) for i, a in enumerate(arrays)]
        if not arrays:
            raise ValueError("docs: empty list; PackedDocs.from_list needs at least one document")
        check_doc_list(arrays)
        lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        return cls.from_lengths(np.concatenate(arrays, axis=0), lengths)

    @property
    def dim(self) -> int:
        """Embedding width ``d``."""
        return int(self.flat.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per document, int64 ``(n_docs,)``."""
        return np.diff(self.offsets)

    @property
    def n_tokens(self) -> int:
        """Tokens over all documents."""
        return int(self.offsets[-1] - self.offsets[0])

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def __getitem__(self, index: Union[int, slice]) -> Union[np.ndarray, PackedDocs]:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                raise ValueError("PackedDocs slices must have step 1 (they are views)")
            stop = max(stop, start)
            if stop == start:
                raise ValueError(f"PackedDocs slice [{start}:{stop}] is empty")
            view = object.__new__(PackedDocs)
            view.flat = self.flat
            view.offsets = self.offsets[start : stop + 1]
            view.scales = self.scales
            return view
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"PackedDocs indices must be integers or slices, not {type(index).__name__}"
            )
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"document index {index} out of range for {n} documents")
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.flat[self.offsets[i] : self.offsets[i + 1]]

    def to_list(self) -> list[np.ndarray]:
        """The documents as a list of ``(len_i, d)`` views."""
        return list(self)

    def __repr__(self) -> str:
        return (
            f"PackedDocs(n_docs={len(self)}, n_tokens={self.n_tokens}, "
            f"dim={self.dim}, dtype={self.flat.dtype})"
        )
