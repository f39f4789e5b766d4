"""The ``maxsim`` command line: ``maxsim bench`` and ``maxsim info``; ``maxsim index``,
``maxsim search`` and ``maxsim eval`` (in :mod:`maxsim.cli_retrieval`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Sequence

from maxsim.bench._common import THREAD_ENV, child_env, skipped_notes
from maxsim.bench.suites import BINARY_CODES_PER_DOC, DEFAULT_SUITES, SUITES
from maxsim.cli_retrieval.parser import add_commands as add_retrieval_commands

__all__ = ["THREAD_ENV", "main"]

BENCH_EPILOG = f"""\
suites (each prints its own table; --json holds the rows of all of them):
  float    float32 MaxSim, workloads fixed / variable / batch (--workloads), vs
           maxsim-cpu, torch (einsum; matmul + amax) and numpy
  binary   Hamming search, 512 and 1024-bit codes, 100 queries, k = 10 and 100,
           and one query at a time, vs faiss IndexBinaryFlat, usearch and numpy
  reduced  float16 / bfloat16 / int8 documents vs float32, maxsim-cpu and
           NumKong; plus top-10 overlap with float32 MaxSim
  pylate   maxsim.pylate vs pylate.rank.rerank and pylate.scores.colbert_scores
           (needs torch and pylate; runs only when named: --suite ...,pylate or all)

sizes: --docs N is the number of documents per workload in float and reduced
(300 tokens each, or 50-800 in 'variable'), N x {BINARY_CODES_PER_DOC} database codes in binary
(default: {1000 * BINARY_CODES_PER_DOC:,}), and the candidates per query / padded batch size in
pylate. --repeat R timed repetitions, median reported, in every suite (binary's
one-query rows: 3; reduced's end-to-end rows: max(3, R // 2); PyLate's own
rows: max(3, R // 4)).

Every (suite, thread count) runs in a fresh worker process with the thread
variables set ({", ".join(THREAD_ENV[:3])}, ...). Peers are optional
(pip install 'maxsim[bench]'): a missing one is skipped, with a note.
speedup = median ms of the suite's reference peer (float: maxsim-cpu, else
numpy; binary: faiss, else usearch, else numpy; reduced: maxsim-cpu float32,
else maxsim float32; pylate: PyLate) / median ms of the row, in the same
workload and thread count: above 1, the row is that much faster than the peer.
"""


def _suite_list(text: str) -> list[str]:
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        expanded = list(SUITES) if part == "all" else [part]
        for name in expanded:
            if name not in SUITES:
                raise argparse.ArgumentTypeError(
                    f"unknown suite {name!r}; choose from {', '.join(SUITES)} or all"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise argparse.ArgumentTypeError("no suite given")
    return names


def _thread_list(text: str) -> list[int]:
    counts = set()
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            counts.add(os.cpu_count() or 1)
        elif part:
            try:
                value = int(part)
            except ValueError:
                raise argparse.ArgumentTypeError(f"bad thread count {part!r}") from None
            if value < 1:
                raise argparse.ArgumentTypeError(f"thread count must be >= 1, got {value}")
            counts.add(value)
    if not counts:
        raise argparse.ArgumentTypeError("no thread count given")
    return sorted(counts)


def _worker(args: argparse.Namespace) -> None:
    """Runs in a child process whose thread variables are already set."""
    from maxsim.bench import _common
    from maxsim.bench.suites import run_suite

    rows = run_suite(
        args.suite,
        args.threads,
        args.repeat,
        args.docs,
        workloads=args.workloads.split(","),
        first=args.first,
    )
    print(json.dumps({"rows": rows, "skipped": _common.SKIPPED}))


def _spawn(suite: str, threads: int, first: bool, args: argparse.Namespace) -> dict | None:
    """One suite at one thread count in a fresh process; None when the worker failed."""
    cmd = [
        sys.executable,
        "-m",
        "maxsim.cli",
        "_worker",
        "--suite",
        suite,
        "--threads",
        str(threads),
        "--workloads",
        args.workloads,
        "--repeat",
        str(args.repeat),
        "--docs",
        str(args.docs),
    ]
    if first:
        cmd.append("--first")
    out = subprocess.run(cmd, env=child_env(threads), capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        sys.stderr.write(out.stderr[-4000:])
        return None
    return json.loads(lines[-1])


def _bench(args: argparse.Namespace) -> int:
    import maxsim
    from maxsim.bench import suites as sx

    info = maxsim.info()
    cpu = _cpu_name()
    peak = maxsim._native.fma_peak_gflops(info["kernel"]) if info["kernel"] != "scalar" else None
    print(f"maxsim {info['version']}  kernel={info['kernel']}  cpu={cpu}  cores={os.cpu_count()}")
    print(sx.summary(info))
    if peak:
        print(f"measured single-core fp32 FMA peak: {peak:.1f} GFLOP/s ({info['kernel']} vectors)")
    threads: list[int] = args.threads
    suites: list[str] = args.suite
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    failed: list[str] = []
    for suite in suites:
        for i, t in enumerate(threads):
            print(f"[maxsim bench] {suite}, {t} thread(s)...", file=sys.stderr, flush=True)
            out = _spawn(suite, t, i == 0, args)
            if out is None:
                failed.append(f"{suite} with {t} thread(s)")
                continue
            rows.extend(out["rows"])
            for name, why in out["skipped"].items():
                skipped.setdefault(name, why)
    if "binary" in suites:
        from maxsim.bench.binary import add_scaling

        add_scaling([r for r in rows if r.get("suite") == "binary"])
    rows = sx.sort_rows(sx.annotate(rows), suites)
    notes = skipped_notes(skipped)
    if "pylate" in suites and not any(r["suite"] == "pylate" for r in rows):
        notes.append("the pylate suite needs torch and pylate (pip install pylate)")
    notes += [f"the worker for {f} failed (its error is above)" for f in failed]
    for suite in suites:
        print()
        print(sx.format_suite(suite, rows, args.markdown, peak))
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "info": info,
                    "cpu": cpu,
                    "peak_gflops": peak,
                    "suites": suites,
                    "threads": threads,
                    "docs": args.docs,
                    "repeat": args.repeat,
                    "notes": notes,
                    "rows": rows,
                },
                f,
                indent=1,
            )
    return 1 if failed else 0


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
        "bench",
        help="compare maxsim's kernels with installed peers on this machine",
        description="Compare maxsim's kernels with the installed peers on this machine, "
        "in one run: one table per suite.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--suite",
        type=_suite_list,
        default=list(DEFAULT_SUITES),
        help=f"comma list of {', '.join(SUITES)}, or all "
        f"(default: {','.join(DEFAULT_SUITES)}; pylate only when named)",
    )
    bench.add_argument(
        "--workloads",
        default="fixed,variable,batch",
        help="float suite: comma list of fixed, variable, batch",
    )
    bench.add_argument(
        "--threads",
        type=_thread_list,
        default="1,all",
        help="comma list of thread counts, 'all' = every CPU (default: 1,all)",
    )
    bench.add_argument(
        "--repeat",
        type=int,
        default=7,
        help="timed repetitions per cell, median reported (default: 7)",
    )
    bench.add_argument(
        "--docs",
        type=int,
        default=1000,
        help="documents per workload (default: 1000; binary: x 1000 codes; see below)",
    )
    bench.add_argument("--markdown", action="store_true", help="print markdown tables")
    bench.add_argument("--json", help="also write every row of every suite to this file")
    sub.add_parser("info", help="print the kernel, CPU features and thread count")
    export = sub.add_parser("export", help="export an encoder to ONNX (maxsim export onnx -h)")
    export.add_argument("format", choices=["onnx"])
    export.add_argument("args", nargs=argparse.REMAINDER, help="MODEL OUT_DIR [--int8] ...")
    add_retrieval_commands(sub)
    worker = sub.add_parser("_worker")
    worker.add_argument("--suite", choices=SUITES, default="float")
    worker.add_argument("--threads", type=int, required=True)
    worker.add_argument("--workloads", required=True)
    worker.add_argument("--repeat", type=int, required=True)
    worker.add_argument("--docs", type=int, required=True)
    worker.add_argument("--first", action="store_true")
    args = parser.parse_args(argv)
    if hasattr(args, "run"):  # index / search / eval
        raise SystemExit(args.run(args))
    if args.command == "bench":
        if args.repeat < 1 or args.docs < 1:
            bench.error("--repeat and --docs must be >= 1")
        unknown = set(args.workloads.split(",")) - {"fixed", "variable", "batch"}
        if unknown:
            bench.error(f"unknown float workload(s): {', '.join(sorted(unknown))}")
        raise SystemExit(_bench(args))
    elif args.command == "export":
        from maxsim.models.export import main as export_main

        raise SystemExit(export_main(args.args))
    elif args.command == "info":
        import maxsim

        print(json.dumps(maxsim.info(), indent=1))
    else:
        _worker(args)


if __name__ == "__main__":
    main()
