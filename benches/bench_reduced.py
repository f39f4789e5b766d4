"""Reduced-precision MaxSim benchmark: float32 vs float16 / bfloat16 / int8 documents.

A thin command-line wrapper: the benchmark lives in :mod:`maxsim.bench.reduced`
(so ``maxsim bench --suite reduced`` runs it from an installed wheel too), where
the workloads and implementations are described.

Usage::

    PYTHONPATH=python python benches/bench_reduced.py [--threads 1,2] [--repeat 7] [--json out.json]
        [--docs 1000] [--workloads fixed,variable,batch64] [--no-peers]

``reduced_rows(threads_list=(1, 2))`` returns the rows (one dict per measurement)
for the ``maxsim bench`` CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

from maxsim.bench.reduced import format_table, main, make_workload, reduced_rows  # noqa: E402

__all__ = ["format_table", "main", "make_workload", "reduced_rows"]

if __name__ == "__main__":
    main()
