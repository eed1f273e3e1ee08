"""Test vectors: unit vectors around 20 random centres, so that nearest neighbours are meaningful."""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    points = centres[rng.integers(0, 20, n)] + rng.normal(scale=0.3, size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
