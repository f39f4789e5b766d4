"""Errors, exit codes, logging and thread settings shared by the retrieval commands.

Exit codes: 0 success, 1 a failure (bad file, model mismatch, I/O error), 2 a
usage error (argparse's own code, and :class:`UsageError`), 130 interrupted
(Ctrl-C). Tracebacks are printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

log = logging.getLogger("maxsim.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report in one line (exit code 1): bad input file, model mismatch, ..."""


class UsageError(CliError):
    """Arguments that do not fit together (exit code 2), found after parsing."""


def setup_logging(args: argparse.Namespace) -> None:
    """``--quiet``: errors only; ``--verbose``: debug details; else warnings and info."""
    level = logging.INFO
    if getattr(args, "quiet", False):
        level = logging.ERROR
    elif getattr(args, "verbose", False):
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if level > logging.DEBUG:
        # transformers' load reports and weight-loading bars are noise on a command
        # line; --verbose keeps them.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def apply_threads(threads: int | None) -> None:
    """Use ``threads`` threads in maxsim's kernels and in the encoders' frameworks.

    Set before the frameworks load: the environment variables are read by
    OpenMP / MKL / ONNX Runtime at import; torch is also told directly when it
    is already imported.
    """
    if threads is None:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["MAXSIM_NUM_THREADS"] = str(threads)
    import maxsim

    maxsim.set_num_threads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def passive_openmp_wait() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``)
    in the query-by-query commands, unless the user set the policy.

    Each query alternates torch's OpenMP encode with the first stage; spinning
    idle threads took the CPU from the next step and from the other processes
    of a busy machine. On 2 vCPUs (SciFact, AMD Zen 5, load 3.7-5.1) ``maxsim
    eval --index`` took 71.1 s with the default policy and 9.3 s with PASSIVE
    (query encode p50 50 ms -> 11 ms); ``maxsim search -`` encode p50 137 ms
    -> 11 ms. OpenMP reads it when torch loads, so it only acts when torch is
    not imported yet.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run_guarded(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command: set up logging and threads, turn errors into exit codes.

    Expected failures (bad files, bad values, missing files, a model that does
    not match the index) print ``maxsim: error: ...`` and return 1 (2 for a
    :class:`UsageError`); Ctrl-C returns 130. ``--debug`` re-raises instead,
    with the traceback.
    """
    setup_logging(args)
    debug = bool(getattr(args, "debug", False))
    try:
        apply_threads(getattr(args, "threads", None))
        return command(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("maxsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        if debug:
            raise
        print(f"maxsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # `maxsim search ... | head`: the reader went away; not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CliError, ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        if debug:
            raise
        message = str(exc) if not isinstance(exc, KeyError) else str(exc.args[0])
        print(f"maxsim: error: {message}", file=sys.stderr)
        if isinstance(exc, ImportError):
            print("maxsim: hint: pip install 'maxsim[cli]'", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a framework's own error (torch, onnxruntime, ...)
        if debug:
            raise
        print(
            f"maxsim: error: {type(exc).__name__}: {exc} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
