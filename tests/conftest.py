"""Shared fixtures: numpy reference MaxSim and random normalised embeddings;
the run's kernel paths, and the ``MAXSIM_REQUIRE_ISA`` check."""

from __future__ import annotations

import os

import maxsim
import numpy as np
import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once when ``MAXSIM_REQUIRE_ISA`` names a kernel or CPU feature
    this machine lacks: tests parametrised over the supported kernels would
    otherwise pass without ever running it."""
    missing = maxsim._native.missing_required_isas()
    if missing:
        pytest.exit(
            f"MAXSIM_REQUIRE_ISA={os.environ.get('MAXSIM_REQUIRE_ISA')!r} names {missing}, "
            f"which this machine lacks (features: {maxsim._native.cpu_features()})",
            returncode=1,
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says which kernel paths this run exercised: tests run every kernel
    this CPU supports, and the default one where no kernel is named."""
    write = terminalreporter.write_line
    write(f"maxsim kernel paths (cpu features: {', '.join(maxsim._native.cpu_features())}; "
          f"amx: {maxsim._native.amx_status()})")  # fmt: skip
    default = maxsim._native.kernel()
    for kernel in maxsim._native.supported_kernels():
        mark = " (default)" if kernel == default else ""
        paths = "; ".join(f"{work}: {path}" for work, path in maxsim._native.kernel_paths(kernel))
        write(f"  {kernel}{mark}: {paths}")


def reference_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """sum_i max_j <q_i, d_j> in float64, straight from the definition."""
    sims = query.astype(np.float64) @ doc.astype(np.float64).T
    return float(sims.max(axis=1).sum())


def normalised(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
