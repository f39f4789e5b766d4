"""Concurrent calls from several Python threads give the sequential results.

Every native call releases the GIL, so a threaded server (or a PyTorch
DataLoader worker pool) may run many at once on the one rayon pool. Each
call's result must be bitwise what the same call gives alone: no shared
scratch, no cross-talk between calls, whatever the interleaving.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import maxsim
import maxsim.binary as mb
import numpy as np
from conftest import normalised


def _jobs(rng: np.random.Generator) -> list[Callable[[], Any]]:
    dim = 48
    docs = normalised(rng, 60, 40, dim)
    ragged = [normalised(rng, int(n), dim) for n in rng.integers(1, 120, 50)]
    packed_f16 = maxsim.quantize(docs, "float16")
    packed_bf16 = maxsim.quantize(docs, "bfloat16")
    packed_i8 = maxsim.quantize(docs, "int8_per_token")
    half_list = [d.astype(np.float16) for d in ragged]
    vectors = rng.standard_normal((3000, 256)).astype(np.float32)
    codes = mb.quantize(vectors)
    index = mb.BinaryIndex(256)
    index.add(codes)
    jobs: list[Callable[[], Any]] = []
    for i in range(6):
        q = normalised(rng, 1 + 7 * i, dim)
        batch = normalised(rng, 5, 1 + 5 * i, dim)
        qv = vectors[rng.integers(0, 3000, 4)] + 0.1 * rng.standard_normal((4, 256)).astype(
            np.float32
        )
        jobs += [
            lambda q=q: maxsim.scores(q, docs),
            lambda q=q: maxsim.scores(q, ragged, zero_floor=True),
            lambda b=batch: maxsim.scores_batch(b, ragged),
            lambda q=q: maxsim.topk(q, docs, 7),
            lambda q=q: maxsim.scores(q, packed_f16),
            lambda q=q: maxsim.scores(q, packed_bf16),
            lambda q=q: maxsim.scores(q, packed_i8),
            lambda q=q: maxsim.scores(q, half_list),
            lambda qv=qv: mb.search(mb.quantize(qv), codes, 10),
            lambda qv=qv: index.search_rescore(qv, 5, 4, db_float=vectors),
            lambda qv=qv: mb.maxsim_scores(mb.quantize(qv), [codes[:9], codes[9:30]]),
        ]
    return jobs


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def test_threads_calling_at_once_get_sequential_results(rng):
    jobs = _jobs(rng)
    expected = [job() for job in jobs]
    order = np.concatenate([rng.permutation(len(jobs)) for _ in range(4)])
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [(i, pool.submit(jobs[i])) for i in order]
        results = [(i, f.result()) for i, f in futures]
    for i, got in results:
        assert _same(got, expected[i]), f"job {i} differs when run concurrently"
