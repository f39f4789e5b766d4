"""Smoke test of an installed maxsim wheel: numpy is its only dependency.

Run where the wheel was installed (a fresh venv, an emulated arm64 Python, a
release job), never against the source tree::

    python tests/smoke_wheel.py [--kernel neon] [--version 0.1.0]

It checks ``scores`` (fixed and variable-length documents), ``topk``,
``binary.search`` and the float16 and int8 document paths against float64
numpy references computed here from the definitions, on the kernel picked at
import (``--kernel`` asserts which one that is) and on the scalar kernel.
Exits non-zero on the first mismatch. Not collected by pytest (no ``test_``
prefix): the test suite covers the same calls in depth.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import distribution
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def maxsim_ref(
    query: np.ndarray, docs: Sequence[np.ndarray], roundings: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """float64 sum_i max_j <q_i, d_j> per document, and a bound on float32 rounding.

    A float32 dot product of length dim errs by at most about dim * eps * sum|q||d|,
    and the sum over the nq query tokens adds nq roundings: ``roundings`` defaults to
    dim + nq + 2 (fewer where the dot products are exact, as in int8).
    """
    q64 = np.asarray(query, np.float64)
    nq, dim = q64.shape
    steps = dim + nq + 2 if roundings is None else roundings
    want, bound = [], []
    for doc in docs:
        d64 = np.asarray(doc, np.float64)
        want.append((q64 @ d64.T).max(axis=1).sum())
        absdot = (np.abs(q64) @ np.abs(d64).T).max(axis=1).sum()
        bound.append(steps * EPS32 * absdot)
    return np.array(want), np.array(bound)


def int8_ref(x: np.ndarray) -> np.ndarray:
    """Dequantized values of the documented int8 scheme: s = max|x| / 127 per token,
    c = round_half_even(x / s) clamped to [-127, 127]."""
    x = np.asarray(x, np.float32)
    scale = (np.abs(x).max(axis=-1) / np.float32(127)).astype(np.float32)
    codes = np.clip(np.rint(x / scale[..., None]), -127, 127)
    return scale.astype(np.float64)[..., None] * codes


def hamming_ref(q_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """(n_queries, n_db) Hamming distances by unpacking every bit."""
    xor = q_codes[:, None, :] ^ db_codes[None, :, :]
    return np.unpackbits(xor, axis=-1).sum(axis=-1)


def check_close(name: str, got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> None:
    err = np.abs(np.asarray(got, np.float64) - want)
    if not (err <= bound + EPS32 * np.abs(want)).all():
        worst = int(np.argmax(err - bound))
        raise AssertionError(f"{name}: error {err[worst]:.3g} > bound {bound[worst]:.3g}")


def unit_rows(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def run_checks(maxsim, rng: np.random.Generator) -> list[str]:
    """Every check once on the kernel now in force; returns the names of those that passed."""
    from maxsim import binary

    passed = []
    dim = 67  # odd: every kernel's remainder loop runs
    query = unit_rows(rng, 13, dim)
    fixed = unit_rows(rng, 40, 31, dim)
    ragged = [unit_rows(rng, n, dim) for n in (1, 7, 300, 64, 2)]

    want, bound = maxsim_ref(query, fixed)
    check_close("scores fixed", maxsim.scores(query, fixed), want, bound)
    check_close("scores list", maxsim.scores(query, ragged), *maxsim_ref(query, ragged))
    passed.append("scores")

    top_scores, top_ids = maxsim.topk(query, fixed, k=5)
    order = np.argsort(-want, kind="stable")[:5]
    if not np.array_equal(np.asarray(top_ids), order):
        raise AssertionError(f"topk ids {top_ids} != reference {order}")
    check_close("topk scores", top_scores, want[order], bound[order])
    passed.append("topk")

    db = rng.integers(0, 256, (2000, 64), dtype=np.uint8)  # 512-bit codes
    q_codes = rng.integers(0, 256, (3, 64), dtype=np.uint8)
    dist, ids = binary.search(q_codes, db, k=10)
    ref = hamming_ref(q_codes, db)
    for row in range(len(q_codes)):
        # faiss's order: ascending distance, ties to the lower index.
        ref_ids = np.lexsort((np.arange(len(db)), ref[row]))[:10]
        if not (np.array_equal(ids[row], ref_ids) and np.array_equal(dist[row], ref[row, ref_ids])):
            raise AssertionError(f"binary.search row {row}: {ids[row]} != {ref_ids}")
    passed.append("binary.search")

    half = fixed.astype(np.float16)
    check_close("scores float16", maxsim.scores(query, half), *maxsim_ref(query, half))
    passed.append("float16")

    packed = maxsim.quantize(ragged, "int8_per_token")
    deq = int8_ref(np.concatenate(ragged))
    cuts = np.cumsum([len(d) for d in ragged])[:-1]
    # The query is quantized per token the same way; integer dots are exact,
    # only the scaling and the sum over query tokens round.
    want8, bound8 = maxsim_ref(int8_ref(query), np.split(deq, cuts), roundings=len(query) + 5)
    check_close("scores int8", maxsim.scores(query, packed), want8, bound8)
    passed.append("int8")
    return passed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", help="kernel that maxsim must pick at import (e.g. neon)")
    parser.add_argument("--version", help="version that maxsim.__version__ must report")
    args = parser.parse_args(argv)

    import maxsim

    # An installed wheel's files are where its metadata says; a source tree's
    # (or an editable install's) are not.
    installed = Path(distribution("maxsim").locate_file("maxsim/__init__.py"))
    if not installed.is_file() or not installed.samefile(maxsim.__file__):
        print(f"maxsim imported from {maxsim.__file__}, not from an installed wheel")
        return 1
    info = maxsim.info()
    print(f"maxsim {maxsim.__version__} from {maxsim.__file__}")
    print(f"kernel {info['kernel']} on {info['machine']}; supported {info['supported_kernels']}")
    checks: list[tuple[str, Callable[[], bool]]] = [
        ("kernel", lambda: args.kernel is None or info["kernel"] == args.kernel),
        ("version", lambda: args.version is None or maxsim.__version__ == args.version),
    ]
    for name, ok in checks:
        if not ok():
            print(f"FAIL {name}: {info['kernel']=}, {maxsim.__version__=}, {args}")
            return 1

    for kernel in dict.fromkeys([info["kernel"], "scalar"]):
        maxsim.set_kernel(kernel)
        passed = run_checks(maxsim, np.random.default_rng(20240601))
        print(f"{kernel}: {', '.join(passed)} ok")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
