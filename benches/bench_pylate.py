"""maxsim.pylate against PyLate on the CPU, in the same run.

A thin command-line wrapper: the benchmark lives in :mod:`maxsim.bench.pylate`
(so ``maxsim bench --suite pylate`` runs it from an installed wheel too), where
the workloads, timing and peak-memory method are described. Needs torch and pylate.

Run::

    PYTHONPATH=python python benches/bench_pylate.py            # full, 2 cores
    PYTHONPATH=python python benches/bench_pylate.py --quick    # smaller, seconds
    PYTHONPATH=python python benches/bench_pylate.py --threads 1 --cpu-time

``pylate_rows()`` returns the same figures as table rows for ``maxsim bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PY = Path(__file__).resolve().parents[1] / "python"
if _PY.is_dir() and str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

from maxsim.bench.pylate import main, peak_memory_mib, pylate_rows  # noqa: E402

__all__ = ["main", "peak_memory_mib", "pylate_rows"]

if __name__ == "__main__":
    sys.exit(main())
