"""The native layer never panics, whatever it is handed.

The Python API checks its arguments before calling ``maxsim._native``, but the
native functions are importable and must hold their own bounds: a Rust panic
surfaces as ``pyo3_runtime.PanicException``, a ``BaseException`` that escapes
``except Exception``. Each test draws arguments around a valid call (random
sizes including zero, mismatched shapes, wrong dtypes, non-contiguous and
byte-swapped arrays, junk offsets and counts) and accepts a result or a
TypeError / ValueError / OverflowError, nothing else.

The expected values of valid calls are checked elsewhere; this file only
asks that no input crashes, panics or hangs.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maxsim import _native

ml_dtypes = pytest.importorskip("ml_dtypes")

ALLOWED = (TypeError, ValueError, OverflowError)
JUNK_DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.uint16,
    np.uint8,
    np.int8,
    np.int64,
    np.uint64,
    np.bool_,
]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def call_safely(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except ALLOWED:
        pass  # a clear Python error is a fine answer to a bad call


@st.composite
def spoiled(draw: st.DrawFn, array: np.ndarray) -> Any:
    """``array`` as it is (most of the time) or spoiled in one way."""
    how = draw(
        st.sampled_from(
            ["keep"] * 28 + ["dtype", "fortran", "strided", "swapped", "ndim", "empty", "none"]
        )
    )
    if how == "keep":
        return array
    if how == "dtype":
        with np.errstate(over="ignore", invalid="ignore"):
            return array.astype(draw(st.sampled_from(JUNK_DTYPES)))
    if how == "fortran":
        return np.asfortranarray(array)
    if how == "strided":
        return np.repeat(array, 2, axis=0)[::2] if array.ndim else array
    if how == "swapped":
        return array.astype(array.dtype.newbyteorder("S"))
    if how == "ndim":
        return array.reshape(-1) if array.ndim != 1 else array[:, None]
    if how == "empty":
        return array[:0]
    return None


def sizes(low: int = 0, high: int = 5) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def rand(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + len(shape))
    return rng.standard_normal(shape).astype(dtype)


def offsets_for(draw: st.DrawFn, n_tokens: int, n_docs: int) -> np.ndarray:
    """Valid offsets most of the time; otherwise arbitrary (decreasing, past
    the end, negative)."""
    if draw(st.booleans()):
        cuts = (
            sorted(
                draw(st.lists(st.integers(0, n_tokens), min_size=n_docs - 1, max_size=n_docs - 1))
            )
            if n_docs
            else []
        )
        return np.array([0, *cuts, n_tokens][: n_docs + 1] if n_docs else [0], dtype=np.int64)
    values = draw(st.lists(st.integers(-3, n_tokens + 3), min_size=0, max_size=n_docs + 2))
    return np.array(values, dtype=np.int64)


@st.composite
def float_call(draw: st.DrawFn) -> tuple[str, tuple, dict]:
    """One of the float32 / 16-bit / int8 MaxSim entry points with arguments."""
    dim = draw(sizes(0, 9))
    n_q = draw(sizes(0, 3))
    q_tokens = draw(sizes(0, 4))
    queries = [
        draw(spoiled(rand((q_tokens, dim + draw(st.sampled_from([0, 0, 0, 1]))))))
        for _ in range(n_q)
    ]
    masks = draw(st.one_of(st.none(), st.just([np.ones(q_tokens + draw(sizes(0, 1)), bool)] * n_q)))
    n_docs = draw(sizes(0, 4))
    doc_len = draw(sizes(0, 4))
    floor = draw(
        st.one_of(st.none(), st.just(np.ones(n_docs + draw(st.sampled_from([0, 0, 1])), bool)))
    )
    name = draw(
        st.sampled_from(
            [
                "maxsim_fixed",
                "maxsim_list",
                "maxsim_packed",
                "maxsim_list_groups",
                "maxsim_half_fixed",
                "maxsim_half_list",
                "maxsim_half_packed",
                "maxsim_half_list_groups",
                "maxsim_int8_packed",
            ]
        )
    )
    half = "half" in name
    bf16 = draw(st.booleans())
    # 16-bit documents travel as uint16 bits; lists may also hold the float arrays.
    elem = np.uint16 if half else np.float32
    if half and name.startswith("maxsim_half_list") and draw(st.booleans()):
        elem = ml_dtypes.bfloat16 if bf16 else np.float16
    if name in ("maxsim_fixed", "maxsim_half_fixed"):
        docs = draw(spoiled(rand((n_docs, doc_len, dim), elem)))
        args = (queries, docs, bf16) if half else (queries, docs)
        return name, args, {"queries_mask": masks, "zero_floor": floor}
    if name in ("maxsim_list", "maxsim_half_list"):
        docs = [draw(spoiled(rand((draw(sizes(0, 4)), dim), elem))) for _ in range(n_docs)]
        given_dim = dim + draw(st.sampled_from([0, 0, 1]))
        args = (queries, docs, given_dim, bf16) if half else (queries, docs, given_dim)
        return name, args, {"queries_mask": masks, "zero_floor": floor}
    if name in ("maxsim_list_groups", "maxsim_half_list_groups"):
        docs = [draw(spoiled(rand((draw(sizes(0, 4)), dim), elem))) for _ in range(n_docs)]
        if draw(st.booleans()):  # a valid partition of the documents into n_q groups
            cuts = draw(
                st.lists(st.integers(0, n_docs), min_size=max(n_q - 1, 0), max_size=max(n_q - 1, 0))
            )
            group_offsets = [0, *sorted(cuts), n_docs] if n_q else [0]
        else:
            group_offsets = draw(st.lists(st.integers(0, n_docs + 1), max_size=n_q + 2))
        args = (queries, docs, group_offsets, bf16) if half else (queries, docs, group_offsets)
        return name, args, {"zero_floor": floor}
    n_tokens = draw(sizes(0, 8))
    offsets = draw(spoiled(offsets_for(draw, n_tokens, n_docs)))
    if name == "maxsim_int8_packed":
        codes = draw(spoiled(rand((n_tokens, dim), np.int8)))
        scales = draw(spoiled(np.abs(rand((n_tokens + draw(st.sampled_from([0, 0, 1])),)))))
        return name, (queries, codes, scales, offsets), {"queries_mask": masks, "zero_floor": floor}
    flat = draw(spoiled(rand((n_tokens, dim), elem)))
    args = (queries, flat, offsets, bf16) if half else (queries, flat, offsets)
    return name, args, {"queries_mask": masks, "zero_floor": floor}


@given(call=float_call())
@SETTINGS
def test_float_entry_points_never_panic(call):
    name, args, kwargs = call
    call_safely(getattr(_native, name), *args, **kwargs)


@st.composite
def binary_call(draw: st.DrawFn) -> tuple[str, tuple, dict]:
    """One of the binary entry points with arguments around a valid call."""
    n_bytes = draw(sizes(0, 9))
    n_q = draw(sizes(0, 3))
    n_db = draw(sizes(0, 6))
    rng = np.random.default_rng(n_bytes * 100 + n_q * 10 + n_db)
    q = draw(spoiled(rng.integers(0, 256, (n_q, n_bytes), dtype=np.uint8)))
    db = draw(
        spoiled(
            rng.integers(0, 256, (n_db, n_bytes + draw(st.sampled_from([0, 0, 1]))), dtype=np.uint8)
        )
    )
    k = draw(st.integers(-1, 12))
    impl = draw(st.sampled_from([None, None, "scalar", "bogus"]))
    name = draw(
        st.sampled_from(
            [
                "binary_hamming",
                "binary_search",
                "binary_search_words",
                "binary_search_rescore",
                "binary_maxsim_fixed",
                "binary_maxsim_list",
                "binary_maxsim_packed",
                "binary_interleave",
                "topk_rows",
                "quantize_int8",
                "to_half_bits",
                "binary_quantize_f32",
            ]
        )
    )
    if name == "binary_hamming":
        return name, (q, db), {"impl_name": impl}
    if name == "binary_search":
        return name, (q, k), {"db_codes": db, "impl_name": impl}
    if name == "binary_search_words":
        # Interleaved words with claimed sizes that may not match the buffer.
        words = draw(spoiled(rng.integers(0, 2**63, draw(sizes(0, 20)), dtype=np.uint64)))
        kwargs = {"db_words": words, "n": draw(sizes(0, 40)), "n_bytes": draw(sizes(0, 70))}
        return "binary_search", (q, k), {**kwargs, "impl_name": impl}
    if name == "binary_search_rescore":
        dim = max(n_bytes * 8 - draw(st.integers(0, 8)), 0)  # codes of n_bytes, mostly
        query = draw(spoiled(rand((n_q, dim))))
        store = draw(st.sampled_from(["none", "db_f32", "db_f16", "db_i8"]))
        kwargs: dict[str, Any] = {"db_codes": db, "impl_name": impl}
        if store != "none":
            dtype = {"db_f32": np.float32, "db_f16": np.uint16, "db_i8": np.int8}[store]
            kwargs[store] = draw(spoiled(rand((n_db + draw(st.sampled_from([0, 1])), dim), dtype)))
        return name, (query, k, draw(st.integers(-1, 4)), draw(st.booleans())), kwargs
    dim = draw(st.one_of(st.none(), st.integers(0, 80)))
    if name == "binary_maxsim_fixed":
        docs = draw(
            spoiled(rng.integers(0, 256, (n_db, draw(sizes(0, 3)), n_bytes), dtype=np.uint8))
        )
        return name, (q, docs), {"dim": dim, "impl_name": impl}
    if name == "binary_maxsim_list":
        docs = [
            draw(spoiled(rng.integers(0, 256, (draw(sizes(0, 3)), n_bytes), dtype=np.uint8)))
            for _ in range(n_db)
        ]
        return (
            name,
            ([q], docs, n_bytes + draw(st.sampled_from([0, 0, 1]))),
            {"dim": dim, "impl_name": impl},
        )
    if name == "binary_maxsim_packed":
        offsets = draw(spoiled(offsets_for(draw, n_db, draw(sizes(0, 3)))))
        return name, ([q], db, offsets), {"dim": dim, "impl_name": impl}
    if name == "binary_interleave":
        return name, (db,), {}
    if name == "topk_rows":
        return name, (draw(spoiled(rand((n_q, n_db)))), k), {}
    if name == "quantize_int8":
        return name, (draw(spoiled(rand((n_db, n_bytes)))),), {}
    if name == "to_half_bits":
        return name, (draw(spoiled(rand((n_db, n_bytes)))), draw(st.booleans())), {}
    return name, (draw(spoiled(rand((n_db, n_bytes)))),), {}


@given(call=binary_call())
@SETTINGS
def test_binary_and_helper_entry_points_never_panic(call):
    name, args, kwargs = call
    call_safely(getattr(_native, name), *args, **kwargs)


@pytest.mark.parametrize(
    "value",
    [None, 0, 1.5, "x", [], [None], [[1.0, 2.0]], (np.zeros((2, 2)),), np.zeros(3)],
)
def test_readiness_checks_take_anything(value):
    assert _native.ready_f32_list(value) is None
    assert _native.ready_half_list(value) is None


@st.composite
def public_call(draw: st.DrawFn) -> tuple[Callable[..., Any], tuple, dict]:
    """``maxsim.scores`` / ``scores_batch`` / ``topk`` / ``quantize`` around a
    valid call, documents in every layout and dtype."""
    import maxsim

    dim = draw(sizes(0, 9))
    query = draw(spoiled(rand((draw(sizes(0, 4)), dim))))
    n_docs = draw(sizes(0, 4))
    dtype = draw(st.sampled_from([np.float32, np.float16, ml_dtypes.bfloat16, np.int8]))
    layout = draw(st.sampled_from(["fixed", "list", "packed", "quantized"]))
    if layout == "fixed":
        docs: Any = draw(spoiled(rand((n_docs, draw(sizes(0, 4)), dim), dtype)))
    elif layout == "list":
        docs = [draw(spoiled(rand((draw(sizes(0, 4)), dim), dtype))) for _ in range(n_docs)]
    else:
        n_tokens = draw(sizes(0, 8))
        flat = draw(spoiled(rand((n_tokens, dim), dtype)))
        offsets = draw(spoiled(offsets_for(draw, n_tokens, n_docs)))
        try:
            if layout == "packed":
                scales = np.ones(n_tokens, np.float32) if dtype is np.int8 else None
                docs = maxsim.PackedDocs(flat, offsets, scales)
            else:
                docs = maxsim.quantize(
                    rand((n_docs, 3, dim)),
                    draw(st.sampled_from(["int8_per_token", "float16", "bfloat16"])),
                )
        except ALLOWED:
            docs = None
    name = draw(st.sampled_from(["scores", "scores_batch", "topk"]))
    kwargs: dict[str, Any] = {"zero_floor": draw(st.sampled_from([None, True, [True] * n_docs]))}
    if name == "scores_batch":
        return maxsim.scores_batch, ([query], docs), kwargs
    if name == "topk":
        return maxsim.topk, (query, docs, draw(st.integers(-1, 6))), {}
    return maxsim.scores, (query, docs), kwargs


@given(call=public_call())
@SETTINGS
def test_public_scoring_api_never_panics(call):
    fn, args, kwargs = call
    call_safely(fn, *args, **kwargs)
