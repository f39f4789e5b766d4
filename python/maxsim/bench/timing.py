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

# Untimed calls go on for at least this long. A pool's idle worker threads (on a
# VM, their idle vCPUs too) wake slowly, and until they have been kept busy for
# a while a multi-threaded call runs at about one thread's speed: without a
# warm-up measured in time, whichever implementation a table times first pays
# for waking the machine.
MIN_WARMUP_SECONDS = 0.2


def warm_up(
    fn: Callable[[], object], calls: int = 1, min_seconds: float = MIN_WARMUP_SECONDS
) -> None:
    """Calls ``fn`` at least ``calls`` times and until ``min_seconds`` have passed."""
    start = time.perf_counter()
    done = 0
    while done < calls or time.perf_counter() - start < min_seconds:
        fn()
        done += 1


def median_seconds(
    fn: Callable[[], object],
    repeat: int,
    warmup: int = 1,
    *,
    clock: str = "wall",
    min_warmup_seconds: float = MIN_WARMUP_SECONDS,
) -> float:
    """Median time of ``repeat`` calls of ``fn`` after untimed ones, in seconds.

    The untimed calls are at least ``warmup`` and go on until
    ``min_warmup_seconds`` have passed (see :data:`MIN_WARMUP_SECONDS`); a
    ``warmup`` of 0 times from the first call.

    ``clock="wall"``: ``time.perf_counter``. ``clock="cpu"``: ``time.process_time``
    (CPU time of all the process's threads), which a busy machine disturbs far
    less; meaningful with one thread.
    """
    timer = time.perf_counter if clock == "wall" else time.process_time
    if warmup > 0:
        warm_up(fn, warmup, min_warmup_seconds)
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
