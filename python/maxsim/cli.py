"""The ``maxsim`` command line: ``maxsim bench`` and ``maxsim info``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Sequence

THREAD_ENV = (
    "MAXSIM_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)


def _worker(args: argparse.Namespace) -> None:
    """Runs in a child process whose thread variables are already set."""
    import maxsim
    from maxsim.bench import core, workloads

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    maxsim.set_num_threads(args.threads)
    rows = []
    for name in args.workloads.split(","):
        w = workloads.make(name, n_docs=args.docs)
        for row in core.run(w, args.repeat):
            row["threads"] = args.threads
            rows.append(row)
        del w
    print(json.dumps(rows))


def _spawn(threads: int, args: argparse.Namespace) -> list[dict]:
    env = dict(os.environ)
    for var in THREAD_ENV:
        env[var] = str(threads)
    cmd = [
        sys.executable,
        "-m",
        "maxsim.cli",
        "_worker",
        "--threads",
        str(threads),
        "--workloads",
        args.workloads,
        "--repeat",
        str(args.repeat),
        "--docs",
        str(args.docs),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"benchmark worker with {threads} thread(s) failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], peak_gflops: float | None, markdown: bool) -> str:
    headers = ["workload", "threads", "impl", "ms/query", "GFLOP/s", "% peak", "maxsim speedup"]
    lines = []
    ours = {(r["workload"], r["threads"]): r["ms_per_query"] for r in rows if r["impl"] == "maxsim"}
    for r in rows:
        peak = f"{100 * r['gflops'] / (peak_gflops * r['threads']):.0f}%" if peak_gflops else "-"
        base = ours.get((r["workload"], r["threads"]))
        speed = "-" if r["impl"] == "maxsim" or not base else f"{r['ms_per_query'] / base:.1f}x"
        mark = "" if r.get("agrees_with_maxsim", True) else " (!)"
        lines.append(
            [
                r["workload"],
                str(r["threads"]),
                r["impl"] + mark,
                f"{r['ms_per_query']:.2f}",
                f"{r['gflops']:.1f}",
                peak,
                speed,
            ]
        )
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*line) for line in lines]
    )


def _bench(args: argparse.Namespace) -> None:
    import maxsim

    info = maxsim.info()
    cpu = _cpu_name()
    peak = maxsim._native.fma_peak_gflops(info["kernel"]) if info["kernel"] != "scalar" else None
    print(f"maxsim {info['version']}  kernel={info['kernel']}  cpu={cpu}  cores={os.cpu_count()}")
    if peak:
        print(f"measured single-core fp32 FMA peak: {peak:.1f} GFLOP/s ({info['kernel']} vectors)")
    threads = (
        sorted({1, os.cpu_count() or 1})
        if args.threads == "1,all"
        else [int(t) for t in args.threads.split(",")]
    )
    rows: list[dict] = []
    for t in threads:
        rows.extend(_spawn(t, args))
    rows.sort(key=lambda r: (args.workloads.split(",").index(r["workload"]), r["threads"]))
    print(_table(rows, peak, args.markdown))
    print(
        "speedup = peer ms / maxsim ms in the same run; "
        "% peak = GFLOP/s / (threads x single-core peak)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "cpu": cpu, "peak_gflops": peak, "rows": rows}, f, indent=1)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="maxsim", description="maxsim command line")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench", help="compare maxsim's kernels with installed peers on this machine"
    )
    bench.add_argument(
        "--workloads", default="fixed,variable,batch", help="comma list of fixed, variable, batch"
    )
    bench.add_argument("--threads", default="1,all", help="comma list of thread counts, or '1,all'")
    bench.add_argument(
        "--repeat", type=int, default=7, help="timed repetitions per cell (median reported)"
    )
    bench.add_argument("--docs", type=int, default=1000, help="documents per workload")
    bench.add_argument("--markdown", action="store_true", help="print a markdown table")
    bench.add_argument("--json", help="also write the results to this file")
    sub.add_parser("info", help="print the kernel, CPU features and thread count")
    worker = sub.add_parser("_worker")
    worker.add_argument("--threads", type=int, required=True)
    worker.add_argument("--workloads", required=True)
    worker.add_argument("--repeat", type=int, required=True)
    worker.add_argument("--docs", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "bench":
        _bench(args)
    elif args.command == "info":
        import maxsim

        print(json.dumps(maxsim.info(), indent=1))
    else:
        _worker(args)


if __name__ == "__main__":
    main()
