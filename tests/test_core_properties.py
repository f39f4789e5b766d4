"""Hypothesis: random shapes, layouts and kernels against the numpy reference."""

from __future__ import annotations

import maxsim
import numpy as np
from conftest import reference_maxsim
from hypothesis import given, settings
from hypothesis import strategies as st

KERNELS = maxsim._native.supported_kernels()


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(1, 140),
    nq=st.integers(1, 64),
    lengths=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    kernel=st.sampled_from(KERNELS),
    layout=st.sampled_from(["list", "packed", "fixed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes(dim, nq, lengths, kernel, layout, seed):
    rng = np.random.default_rng(seed)
    q = rng.uniform(-1, 1, (nq, dim)).astype(np.float32)
    if layout == "fixed":
        lengths = [lengths[0]] * len(lengths)
    docs = [rng.uniform(-1, 1, (n, dim)).astype(np.float32) for n in lengths]
    if layout == "list":
        arg = docs
    elif layout == "packed":
        arg = maxsim.PackedDocs.from_list(docs)
    else:
        arg = np.stack(docs)
    previous = maxsim._native.kernel()
    maxsim.set_kernel(kernel)
    try:
        got = maxsim.scores(q, arg)
    finally:
        maxsim.set_kernel(previous)
    eps = np.finfo(np.float32).eps
    for g, d in zip(got, docs):
        abs_sims = np.abs(q.astype(np.float64)) @ np.abs(d.astype(np.float64)).T
        bound = (dim + nq + 2) * eps * float(abs_sims.max(axis=1).sum())
        assert abs(g - reference_maxsim(q, d)) <= bound + 1e-30
