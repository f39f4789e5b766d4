"""Shared fixtures: numpy reference MaxSim and random normalised embeddings."""

from __future__ import annotations

import numpy as np
import pytest


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
