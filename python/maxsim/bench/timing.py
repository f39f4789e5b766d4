"""Timing helpers shared by the suites and the scripts in ``benches/``.

Medians, never means: a shared machine's stalls are outliers, not noise to
average in. Callables compared with each other are timed in turn, round after
round (:func:`alternating_medians_ms`), so the drift of a shared machine
spreads over all of them instead of landing on whichever ran last.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Callable

import numpy as np


def median_seconds(
    fn: Callable[[], object], repeat: int, warmup: int = 1, *, clock: str = "wall"
) -> float:
    """Median time of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones, in seconds.

    ``clock="wall"``: ``time.perf_counter``. ``clock="cpu"``: ``time.process_time``
    (CPU time of all the process's threads), which a busy machine disturbs far
    less; meaningful with one thread.
    """
    timer = time.perf_counter if clock == "wall" else time.process_time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = timer()
        fn()
        times.append(timer() - start)
    return float(np.median(times))


def alternating_medians_ms(
    calls: Sequence[Callable[[], object]], rounds: int, repeat: int
) -> list[float]:
    """Per call, the median over ``rounds`` of its median of ``repeat`` calls, in ms.

    Each call is warmed up once; then every round times every call in turn,
    so the drift of a shared machine spreads over all of them instead of
    landing on whichever ran last. For A/B scripts that compare callables in
    one process.
    """
    for call in calls:
        call()
    per_call: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for call, times in zip(calls, per_call):
            times.append(1e3 * median_seconds(call, repeat, warmup=0))
    return [float(np.median(times)) for times in per_call]
