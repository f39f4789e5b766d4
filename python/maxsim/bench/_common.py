"""Helpers shared by the benchmark suites: optional peers, child processes, tables."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

#: Environment variables that size the thread pools of maxsim, rayon, OpenMP and BLAS.
THREAD_ENV = (
    "MAXSIM_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)

#: Peers that could not be imported in this process: module name -> reason.
SKIPPED: dict[str, str] = {}

#: Where :func:`plan` and :func:`step` report, or None (nothing reported).
#: ``maxsim bench``'s worker sets it to print progress events for the parent,
#: which draws the progress bar.
progress_hook: Optional[Callable[[dict[str, Any]], None]] = None


def plan(workloads: int) -> None:
    """Announces ``workloads`` more workloads to come in this process."""
    if progress_hook is not None:
        progress_hook({"plan": workloads})


def step(label: str) -> None:
    """Marks the start of one announced workload, named ``label``."""
    if progress_hook is not None:
        progress_hook({"step": label})


def optional(name: str) -> Optional[Any]:
    """``import name``, or ``None`` (recorded in :data:`SKIPPED`) when it is not installed.

    Peers are optional: a benchmark skips the rows of a missing peer instead of
    failing, and the ``maxsim bench`` command line prints a note for each.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        SKIPPED.setdefault(name.split(".")[0], str(exc) or type(exc).__name__)
        return None


def skipped_notes(skipped: dict[str, str]) -> list[str]:
    """One readable line per missing peer."""
    return [
        f"{name} is not available ({why}); its rows are skipped" for name, why in skipped.items()
    ]


def child_env(threads: Optional[int] = None) -> dict[str, str]:
    """The environment for a benchmark child process.

    The child runs ``python -m maxsim....``, so the directory that holds this
    ``maxsim`` package goes first on ``PYTHONPATH`` (a source checkout run with
    ``sys.path`` tweaks finds the same package in the child). With ``threads``,
    every thread-pool variable in :data:`THREAD_ENV` is set to it.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    if threads is not None:
        for var in THREAD_ENV:
            env[var] = str(threads)
    return env


def render_table(headers: Sequence[str], lines: Sequence[Sequence[str]], markdown: bool) -> str:
    """A plain-text table (columns padded, a dashed rule) or a markdown table."""
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    body = [fmt.format(*line) for line in lines]
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths)), *body])
