"""The ``maxsim`` command line: ``bench``, ``info``, ``export`` and ``--version``;
``index``, ``search`` and ``eval`` live in :mod:`maxsim.cli_retrieval`.

``maxsim _worker`` is internal (``maxsim bench`` runs each suite and thread
count in one) and has its own parser, so it stays out of ``maxsim --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from maxsim.bench._common import THREAD_ENV, child_env, skipped_notes
from maxsim.bench.progress import SuiteProgress, format_duration, read_worker_output
from maxsim.bench.suites import BINARY_CODES_PER_DOC, DEFAULT_SUITES, SUITES
from maxsim.cli_retrieval.parser import add_commands as add_retrieval_commands

__all__ = ["THREAD_ENV", "main"]

BENCH_EPILOG = f"""\
suites (each prints its own table; --json holds the rows of all of them):
  float    float32 MaxSim, workloads fixed / variable / batch (--workloads), vs
           maxsim-cpu, numpy and, when installed, torch (einsum; matmul + amax;
           the bench extra does not install it)
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
one-query rows: 3; reduced's end-to-end rows: max(3, R); PyLate's own rows:
max(3, R // 4)).

Every (suite, thread count) runs in a fresh worker process with the thread
variables set:
  {", ".join(THREAD_ENV[:3])}, ...

Peers are optional: a missing one is skipped, with a note. The 'bench' extra
installs maxsim-cpu, faiss-cpu, usearch and NumKong (these two on Python >=
3.10) and ml-dtypes, not torch:
  from a clone         pip install '.[bench]'
  from a built wheel   pip install 'dist/maxsim-<version>-<tags>.whl[bench]'
                       (README, "Install")
  from PyPI            pip install 'maxsim[bench]', once maxsim is published
                       there (it is not yet)

time: a full run at the default sizes took 10 minutes of wall time (13
minutes of CPU time) on an otherwise idle 2-vCPU AMD EPYC (Zen 3), without
torch, and 34 minutes on the same machine shared with other work.
binary is the longest suite. Each suite's table prints as soon as the suite
ends; meanwhile stderr shows a progress bar on a terminal, one line per
workload otherwise. Smaller --docs and --repeat shorten the run.

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
    """Runs in a child process whose thread variables are already set: progress
    events, then the rows, on stdout (:mod:`maxsim.bench.progress`)."""
    from maxsim.bench import _common, progress
    from maxsim.bench.suites import run_suite

    _common.progress_hook = progress.emit

    rows = run_suite(
        args.suite,
        args.threads,
        args.repeat,
        args.docs,
        workloads=args.workloads.split(","),
        first=args.first,
    )
    print(json.dumps({"rows": rows, "skipped": _common.SKIPPED}))


def _spawn(
    suite: str, threads: int, first: bool, args: argparse.Namespace, shown: SuiteProgress
) -> dict | None:
    """One suite at one thread count in a fresh process, its progress shown as
    it runs; None when the worker failed."""
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
    shown.start(threads)
    # stderr goes to a file, read only on failure: a pipe left unread could
    # fill up and stall the worker while stdout is being read.
    with tempfile.TemporaryFile("w+") as err:
        with subprocess.Popen(
            cmd, env=child_env(threads), stdout=subprocess.PIPE, stderr=err, text=True
        ) as worker:
            assert worker.stdout is not None
            result = read_worker_output(worker.stdout, shown)
        shown.finish_run()
        if worker.returncode != 0 or result is None:
            err.seek(0)
            sys.stderr.write(err.read()[-4000:])
            return None
    return result


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
    sys.stdout.flush()
    threads: list[int] = args.threads
    suites: list[str] = args.suite
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    failed: list[str] = []
    started = time.perf_counter()
    for suite in suites:
        # Each suite's table is printed as soon as the suite is done.
        shown = SuiteProgress(suite, runs=len(threads))
        suite_rows: list[dict] = []
        for i, t in enumerate(threads):
            out = _spawn(suite, t, i == 0, args, shown)
            if out is None:
                failed.append(f"{suite} with {t} thread(s)")
                continue
            suite_rows.extend(out["rows"])
            for name, why in out["skipped"].items():
                skipped.setdefault(name, why)
        seconds = shown.close()
        if suite == "binary":
            from maxsim.bench.binary import add_scaling

            add_scaling(suite_rows)
        suite_rows = sx.sort_rows(sx.annotate(suite_rows), [suite])
        rows.extend(suite_rows)
        print()
        print(sx.format_suite(suite, suite_rows, args.markdown, peak), flush=True)
        print(f"[maxsim bench] {suite}: {format_duration(seconds)}", file=sys.stderr, flush=True)
    notes = skipped_notes(skipped)
    if "pylate" in suites and not any(r["suite"] == "pylate" for r in rows):
        notes.append("the pylate suite needs torch and pylate (pip install pylate)")
    notes += [f"the worker for {f} failed (its error is above)" for f in failed]
    total = format_duration(time.perf_counter() - started)
    print(f"[maxsim bench] all suites: {total}", file=sys.stderr, flush=True)
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    if args.json:
        _write_json(
            args.json,
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
        )
    return 1 if failed else 0


def _json_target_problem(path: str) -> str | None:
    """Why ``--json path`` could not be written, checked before a run of many
    minutes rather than after it; None when it can."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"{path} is a directory"
    if not os.path.isdir(parent):
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None


def _write_json(path: str, data: dict) -> None:
    """Writes ``data`` to ``path`` atomically: a temporary sibling, fsynced,
    then renamed over ``path``; a killed or failed write leaves the old file
    (or none) and no temporary."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def _version() -> str:
    import platform

    import maxsim

    where = os.path.dirname(os.path.abspath(maxsim.__file__))
    return f"maxsim {maxsim.__version__} from {where} (Python {platform.python_version()})"


class _VersionAction(argparse.Action):
    """``--version``, printed as one line: argparse's own version action wraps
    the text to the terminal's width, which would split a long install path."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(_version())
        parser.exit()


def _worker_parser() -> argparse.ArgumentParser:
    """``maxsim _worker``: one suite at one thread count, rows as JSON on stdout."""
    worker = argparse.ArgumentParser(prog="maxsim _worker")
    worker.add_argument("--suite", choices=SUITES, default="float")
    worker.add_argument("--threads", type=int, required=True)
    worker.add_argument("--workloads", required=True)
    worker.add_argument("--repeat", type=int, required=True)
    worker.add_argument("--docs", type=int, required=True)
    worker.add_argument("--first", action="store_true")
    return worker


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        _worker(_worker_parser().parse_args(argv[1:]))
        return
    parser = argparse.ArgumentParser(prog="maxsim", description="maxsim command line")
    parser.add_argument("--version", action=_VersionAction)
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
    args = parser.parse_args(argv)
    if hasattr(args, "run"):  # index / search / eval
        raise SystemExit(args.run(args))
    if args.command == "bench":
        if args.repeat < 1 or args.docs < 1:
            bench.error("--repeat and --docs must be >= 1")
        unknown = set(args.workloads.split(",")) - {"fixed", "variable", "batch"}
        if unknown:
            bench.error(f"unknown float workload(s): {', '.join(sorted(unknown))}")
        problem = args.json and _json_target_problem(args.json)
        if problem:
            bench.error(f"--json {args.json}: {problem}")
        raise SystemExit(_bench(args))
    elif args.command == "export":
        from maxsim.models.export import main as export_main

        raise SystemExit(export_main(args.args))
    elif args.command == "info":
        import maxsim

        print(json.dumps(maxsim.info(), indent=1))


if __name__ == "__main__":
    main()
