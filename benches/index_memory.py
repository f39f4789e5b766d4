"""Resident memory of maxsim.Index and fast-plaid after open and one search.

Every measurement is a fresh child process that reads ``/proc/self/status``
(``VmRSS``, and its parts ``RssAnon``: private heap and stacks, ``RssFile``:
mapped file pages, which are page cache shared with other processes and
evictable) at four marks:

* ``python+numpy``: an empty interpreter with numpy imported (the baseline);
* ``imports``: after importing maxsim (its index module included), or
  torch and fast-plaid;
* ``open``: after opening the index folder;
* ``search``: after one search of the first query (k=10, default settings;
  maxsim also with ``rerank=None``, the residual scoring that fast-plaid's
  search does, and with the default exact rerank on the stored vectors
  when the index has a store).

The reported figure is ``search`` minus ``imports`` (what opening and one
search add), as in ``benches/index_bench.py``. Rounds alternate between the
systems; the median of ``--rounds`` is printed. The page cache is warm
(each folder was just read by an earlier round). Command (the SciFact-1000
folders of ``benches/index_bench.py --max-docs 1000 --fast-plaid``)::

    python benches/index_memory.py --maxsim /tmp/sf1000/maxsim --fast-plaid /tmp/sf1000/fp \\
        --queries /tmp/scifact-cache/queries64_flat.npy --rounds 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys
import numpy as np

def status():
    out = {}
    for line in open("/proc/self/status"):
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) * 1024
    return out

system, path, qfile, mode = sys.argv[1:5]
q = np.load(qfile)
marks = {"python+numpy": status()}
if system == "maxsim":
    import maxsim
    maxsim.Index  # noqa: B018 (imports the index module)
    marks["imports"] = status()
    index = maxsim.Index.open(path)
    marks["open"] = status()
    index.search(q, 10, **({"rerank": None} if mode == "residual" else {}))
else:
    import torch
    from fast_plaid import search
    marks["imports"] = status()
    index = search.FastPlaid(index=path, device="cpu")
    marks["open"] = status()
    index.search(queries_embeddings=torch.from_numpy(q[None]), top_k=10, show_progress=False)
marks["search"] = status()
print(json.dumps(marks))
"""


def measure(system: str, path: str, qfile: str, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, system, path, qfile, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_mb(marks: list[dict], mark: str, key: str = "VmRSS", base: str | None = "imports"):
    """Median over rounds of ``key`` at ``mark`` (minus at ``base``), in MB."""
    values = [m[mark][key] - (m[base][key] if base else 0) for m in marks]
    return float(np.median(values)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maxsim", required=True, help="a maxsim.Index folder")
    parser.add_argument("--fast-plaid", default=None, help="a fast-plaid index folder")
    parser.add_argument(
        "--queries",
        type=Path,
        default=Path("/tmp/scifact-cache/queries64_flat.npy"),
        help="a (tokens, dim) float32 .npy; the first query is its first --query-len rows",
    )
    parser.add_argument("--query-len", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    flat = np.load(args.queries, mmap_mode="r")
    if args.query_len is None:
        lengths = args.queries.with_name(args.queries.name.replace("_flat", "_lengths"))
        args.query_len = int(np.load(lengths)[0]) if lengths.exists() else 32
    with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
        np.save(f, np.ascontiguousarray(flat[: args.query_len], dtype=np.float32))
    runs = [("maxsim, rerank=None", "maxsim", args.maxsim, "residual")]
    runs.append(("maxsim, defaults", "maxsim", args.maxsim, "default"))
    if args.fast_plaid:
        runs.append(("fast-plaid", "fast_plaid", args.fast_plaid, "default"))
    results: dict[str, list[dict]] = {label: [] for label, *_ in runs}
    for _ in range(args.rounds):
        for label, system, path, mode in runs:
            results[label].append(measure(system, path, f.name, mode))
    print("| system | python+numpy | imports | open | search | RssAnon | RssFile |")
    print("|---|---|---|---|---|---|---|")
    for label, marks in results.items():
        print(
            f"| {label} | {median_mb(marks, 'python+numpy', base=None):.1f} | "
            f"{median_mb(marks, 'imports', base='python+numpy'):+.1f} | "
            f"{median_mb(marks, 'open'):+.1f} | {median_mb(marks, 'search'):+.1f} | "
            f"{median_mb(marks, 'search', 'RssAnon'):+.1f} | "
            f"{median_mb(marks, 'search', 'RssFile'):+.1f} |"
        )
    print(
        "(MB; python+numpy: absolute VmRSS of the empty process; imports: above it; "
        "open, search, RssAnon, RssFile: above the imports)"
    )


if __name__ == "__main__":
    main()
