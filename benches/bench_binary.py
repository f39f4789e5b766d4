"""Binary (Hamming) search benchmark: maxsim vs faiss, usearch and numpy, same run.

A thin command-line wrapper: the benchmark lives in :mod:`maxsim.bench.binary`
(so ``maxsim bench --suite binary`` runs it from an installed wheel too), where
the workloads, implementations and row keys are described.

Usage::

    PYTHONPATH=python python3 benches/bench_binary.py [--n 1000000] [--threads 1,2]
        [--repeat 5] [--quick] [--json out.json] [--markdown]
"""

from __future__ import annotations

import sys
from pathlib import Path

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

from maxsim.bench.binary import binary_rows, format_table, main  # noqa: E402

__all__ = ["binary_rows", "format_table", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
