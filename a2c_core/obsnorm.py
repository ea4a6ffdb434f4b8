"""Observation normalisation of one run (``obs_norm: true``): running mean and variance of
the observations it has seen, frozen while an epoch runs.

The statistics (float64 count, mean, var per observation dim) start empty; a run with no
statistics yet sees its raw observations. After each epoch they absorb the epoch's valid
observations (Chan et al.'s parallel update); the next epoch's rollout, value fit and policy
step all see ``clip((obs - mean) / sqrt(var + 1e-8), -10, 10)`` (the constants of
Stable-Baselines3's VecNormalize). They are part of a run's checkpoint and of its policy.pt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLIP, EPS = 10.0, 1e-8


def empty_stats(obs_dim: int) -> dict[str, np.ndarray]:
    return {"count": np.zeros(1), "mean": np.zeros(obs_dim), "var": np.ones(obs_dim)}


def stats_problem(stats: Any, dim: int | None = None) -> str | None:
    """What is wrong with saved statistics (a checkpoint's or policy.pt's), or None: count
    [1] >= 0, mean and var [dim] (dim: the observation size, when known), finite, var >= 0."""
    if not isinstance(stats, dict) or set(stats) != {"count", "mean", "var"}:
        return "observation statistics: expected count, mean and var"
    try:
        arrays = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float64)
                  for k, v in stats.items()}  # fmt: skip
    except (TypeError, ValueError):
        return "observation statistics: not numeric arrays"
    size = arrays["mean"].shape
    want = (dim,) if dim is not None else size
    if arrays["count"].shape != (1,) or size != want or arrays["var"].shape != want \
            or len(want) != 1:  # fmt: skip
        return (
            f"observation statistics have shapes count {arrays['count'].shape}, mean "
            f"{size}, var {arrays['var'].shape}; expected (1,), {want}, {want}"
        )
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        return "observation statistics are not finite"
    if arrays["count"][0] < 0 or np.any(arrays["var"] < 0):
        return "observation statistics have a negative count or variance"
    return None


def update(stats: dict[str, np.ndarray], batch: np.ndarray) -> None:
    """Fold a batch [M, D] of raw observations into ``stats`` (in place)."""
    n = batch.shape[0]
    if n == 0:
        return
    b_mean = batch.mean(0, dtype=np.float64)
    b_var = batch.var(0, dtype=np.float64)
    count = float(stats["count"][0])
    total = count + n
    delta = b_mean - stats["mean"]
    m2 = stats["var"] * count + b_var * n + delta * delta * count * n / total
    stats["mean"] += delta * n / total
    stats["var"][:] = m2 / total
    stats["count"][0] = total


def frozen(stats: dict[str, np.ndarray] | None, dtype) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, 1/std, clip) in ``dtype`` for the next epoch; the identity (0, 1, inf) before
    any statistics (or for a run without obs_norm)."""
    dim = None if stats is None else stats["mean"].shape[0]
    if stats is None or stats["count"][0] == 0:
        shape = (0,) if dim is None else (dim,)
        return np.zeros(shape, dtype), np.ones(shape, dtype), np.inf
    mean = stats["mean"].astype(dtype)
    istd = (1.0 / np.sqrt(stats["var"] + EPS)).astype(dtype)
    return mean, istd, CLIP


def apply(x: np.ndarray, mean: np.ndarray, istd: np.ndarray, clip: float) -> np.ndarray:
    """clip((x - mean) * istd, -clip, clip) in x's dtype (the fused rollout computes the same
    expression element by element)."""
    out = (x - mean) * istd
    if clip != np.inf:
        np.clip(out, -clip, clip, out=out)
    return out


def normalize_with(stats: dict | None, x: np.ndarray) -> np.ndarray:
    """x as a run with these (policy.pt's) statistics sees it."""
    if stats is None:
        return x
    mean, istd, clip = frozen(stats, x.dtype)
    return apply(x, mean, istd, clip) if clip != np.inf else x
