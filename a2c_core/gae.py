"""Generalised Advantage Estimation and bootstrapped discounted returns.

Both functions are pure and vectorised over the N columns (N = runs x envs of a pack); the
only loop is the backward sweep over the T time steps. ``gamma`` and ``lam`` may be scalars
or one value per column (each run of a pack has its own).

Episode-boundary rules (docs/design.md, "Correctness" 1-3):

- ``terminated[t]``: s_{t+1} is terminal, its value is 0: no bootstrap.
- ``episode_end[t]``: the episode ended at t (terminated OR truncated OR, in the NEXT_STEP
  dummy case, any step that must not be linked to t+1). Nothing flows back across it.
- A truncated step bootstraps from ``next_values[t]`` = V(final observation).
- The last row (t = T-1) bootstraps from ``next_values[T-1]`` once, inside the TD error, and
  is not added a second time (the article's defect 2).
"""

from __future__ import annotations

import numpy as np

try:  # the same loops compiled; without numba the numpy loops below run
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover
    _HAVE_NUMBA = False

if _HAVE_NUMBA:
    # No fastmath: the compiled loops evaluate the numpy expressions in the same order, so
    # both paths give bitwise-equal results (tested).

    @numba.njit(cache=True, nogil=True)
    def _gae_kernel(rewards, values, next_values, not_term, carry, gamma, decay, out):
        steps, cols = rewards.shape
        last = np.zeros(cols, dtype=values.dtype)
        for t in range(steps - 1, -1, -1):
            for n in range(cols):
                delta = rewards[t, n] + gamma[n] * not_term[t, n] * next_values[t, n] - values[t, n]
                last[n] = delta + decay[n] * carry[t, n] * last[n]
                out[t, n] = last[n]

    @numba.njit(cache=True, nogil=True)
    def _returns_kernel(rewards, next_values, not_term, ends, gamma, out):
        steps, cols = rewards.shape
        following = next_values[steps - 1].copy()
        for t in range(steps - 1, -1, -1):
            for n in range(cols):
                succ = next_values[t, n] if (t < steps - 1 and ends[t, n]) else following[n]
                following[n] = rewards[t, n] + gamma[n] * not_term[t, n] * succ
                out[t, n] = following[n]


def _columns(x, cols: int, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dtype), (cols,)))


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float | np.ndarray,
    lam: float | np.ndarray,
) -> np.ndarray:
    """GAE(gamma, lambda) advantages.

    Args:
        rewards, values, next_values: [T, N]. ``values[t]`` = V(s_t); ``next_values[t]`` =
            V(true successor of s_t) (the final observation where an episode ended, the
            rollout's next observation at t = T-1).
        terminated, episode_end: [T, N] bool (see module docstring).
        gamma, lam: scalars or [N].

    Returns:
        advantages [T, N] (dtype of ``values``):
        delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
        A_t = delta_t + gamma * lam * (1 - episode_end_t) * A_{t+1},  A_T = 0.
        lam = 0 gives the one-step TD errors; lam = 1 gives the bootstrapped discounted
        return minus V.
    """
    dtype = values.dtype
    T = rewards.shape[0]
    gamma = np.asarray(gamma, dtype=dtype)
    decay = gamma * np.asarray(lam, dtype=dtype)
    not_term = (~terminated.astype(bool)).astype(dtype)
    carry_mask = (~episode_end.astype(bool)).astype(dtype)
    if _HAVE_NUMBA and values.ndim == 2:
        adv = np.empty(values.shape, dtype=dtype)
        cols = values.shape[1]
        _gae_kernel(
            np.ascontiguousarray(rewards, dtype=dtype), np.ascontiguousarray(values),
            np.ascontiguousarray(next_values, dtype=dtype), np.ascontiguousarray(not_term),
            np.ascontiguousarray(carry_mask), _columns(gamma, cols, dtype),
            _columns(decay, cols, dtype), adv,
        )  # fmt: skip
        return adv
    deltas = rewards.astype(dtype) + gamma * not_term * next_values - values
    adv = np.empty_like(deltas)
    last = np.zeros(deltas.shape[1:], dtype=dtype)
    for t in range(T - 1, -1, -1):
        last = deltas[t] + decay * carry_mask[t] * last
        adv[t] = last
    return adv


def discounted_returns(
    rewards: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float | np.ndarray,
) -> np.ndarray:
    """Rewards-to-go bootstrapped at truncation and at the rollout end (the article's value
    targets, with its defects fixed).

    Args:
        rewards, next_values: [T, N]; ``next_values`` is read only where an episode ended
            (non-terminal end = truncation) and on the last row.
        terminated, episode_end: [T, N] bool. gamma: scalar or [N].

    Returns:
        R [T, N]: R_t = r_t + gamma * (0 if terminated_t else
        (V(final obs) if episode_end_t or t = T-1 else R_{t+1})).
    """
    dtype = next_values.dtype
    T = rewards.shape[0]
    gamma = np.asarray(gamma, dtype=dtype)
    not_term = (~terminated.astype(bool)).astype(dtype)
    ends = episode_end.astype(bool)
    out = np.empty(rewards.shape, dtype=dtype)
    if _HAVE_NUMBA and rewards.ndim == 2:
        _returns_kernel(
            np.ascontiguousarray(rewards, dtype=dtype), np.ascontiguousarray(next_values),
            np.ascontiguousarray(not_term), np.ascontiguousarray(ends),
            _columns(gamma, rewards.shape[1], dtype), out,
        )  # fmt: skip
        return out
    following = next_values[T - 1]
    for t in range(T - 1, -1, -1):
        succ = np.where(ends[t], next_values[t], following) if t < T - 1 else following
        following = rewards[t].astype(dtype) + gamma * not_term[t] * succ
        out[t] = following
    return out
