"""The ``float`` suite: float32 MaxSim against maxsim-cpu, torch (einsum; matmul +
amax) and numpy.

maxsim-cpu and torch are optional: when one is not installed its rows are
skipped (and recorded in :data:`maxsim.bench._common.SKIPPED`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._common import optional
from .timing import median_seconds
from .workloads import Workload


def implementations(w: Workload) -> dict[str, Callable[[], np.ndarray]]:
    """Every installed implementation of workload ``w`` (all return (n_queries, n_docs))."""
    import maxsim

    impls: dict[str, Callable[[], np.ndarray]] = {}
    queries = w.queries
    if w.fixed_len is not None:
        docs = w.docs3d
        impls["maxsim"] = lambda: maxsim.scores_batch(queries, docs)
    else:
        packed = maxsim.PackedDocs(w.flat, w.offsets)
        impls["maxsim"] = lambda: maxsim.scores_batch(queries, packed)

    maxsim_cpu = optional("maxsim_cpu")
    if maxsim_cpu is not None:
        if w.fixed_len is not None:
            docs = w.docs3d
            impls["maxsim-cpu"] = lambda: np.stack(
                [maxsim_cpu.maxsim_scores(q, docs) for q in queries]
            )
        else:
            doc_list = w.doc_list
            impls["maxsim-cpu"] = lambda: np.stack(
                [maxsim_cpu.maxsim_scores_variable(q, doc_list) for q in queries]
            )

    starts = w.offsets[:-1]
    if w.fixed_len is not None:
        docs = w.docs3d

        def numpy_fixed() -> np.ndarray:
            return np.stack([np.matmul(docs, q.T).max(axis=1).sum(axis=1) for q in queries])

        impls["numpy"] = numpy_fixed
    else:

        def numpy_variable() -> np.ndarray:
            out = []
            for q in queries:
                sims = w.flat @ q.T  # (total_tokens, nq)
                out.append(np.maximum.reduceat(sims, starts, axis=0).sum(axis=1))
            return np.stack(out)

        impls["numpy"] = numpy_variable

    torch = optional("torch")
    if torch is None:
        return impls
    tq = torch.from_numpy(queries)
    if w.fixed_len is not None:
        td = torch.from_numpy(w.docs3d)

        def torch_einsum() -> np.ndarray:
            with torch.inference_mode():
                sims = torch.einsum("qsd,ntd->qnst", tq, td)
                return sims.amax(dim=3).sum(dim=2).numpy()

        def torch_matmul() -> np.ndarray:
            with torch.inference_mode():
                return torch.stack(
                    [torch.matmul(td, q.T).amax(dim=1).sum(dim=1) for q in tq]
                ).numpy()

        impls["torch einsum"] = torch_einsum
        impls["torch matmul+amax"] = torch_matmul
    else:
        tflat = torch.from_numpy(w.flat)
        tlengths = torch.from_numpy(w.lengths)

        def torch_segment() -> np.ndarray:
            with torch.inference_mode():
                out = []
                for q in tq:
                    sims = torch.matmul(tflat, q.T)
                    out.append(
                        torch.segment_reduce(sims, "max", lengths=tlengths, axis=0).sum(dim=1)
                    )
                return torch.stack(out).numpy()

        impls["torch matmul+segment_max"] = torch_segment
    return impls


def run(w: Workload, repeat: int) -> list[dict]:
    """Median time of every implementation on ``w``; also checks they agree."""
    rows = []
    reference = None
    for name, fn in implementations(w).items():
        result = np.asarray(fn())
        if reference is None:
            reference = result
        agree = bool(np.allclose(result, reference, atol=1e-3))
        seconds = median_seconds(fn, repeat)
        n_queries = w.queries.shape[0]
        rows.append(
            {
                "workload": w.name,
                "impl": name,
                "ms_per_query": 1e3 * seconds / n_queries,
                "gflops": w.flops() / seconds / 1e9,
                "agrees_with_maxsim": agree,
            }
        )
    return rows
