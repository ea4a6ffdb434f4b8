"""Vectorised environments for a pack: P runs x N envs on one flat axis of size P*N.

Row ``p * N + i`` is env ``i`` of run ``p``. Each run owns one ``numpy.random.Generator``
for its resets, so a run's trajectories never depend on its pack-mates.

Autoreset contract (what the engine relies on): ``step`` returns a :class:`Step` where

- ``obs``       [P*N, obs_dim]  the observation the policy sees next;
- ``final_obs`` [P*N, obs_dim]  the true successor of this transition (the terminal /
  truncated observation where an episode ended, equal to ``obs`` elsewhere);
- ``reward``, ``terminated``, ``truncated`` [P*N];
- ``valid``     [P*N] bool: False for gymnasium NEXT_STEP dummy transitions (the step after an
  episode end, whose action is ignored and whose reward is meaningless). Dummy transitions
  must never reach a loss or a statistic and are not counted as env steps.

The project's own envs reset in the same step (``valid`` always True); the generic gymnasium
fallback uses NEXT_STEP autoreset and reports dummies through ``valid``.
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np


class Step(NamedTuple):
    obs: np.ndarray
    final_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray


def reset_pool_of(state: dict, state_dim: int) -> tuple[np.ndarray, int] | None:
    """The reset pool and cursor a checkpoint's env state holds (a fused rollout's states
    drawn ahead from the run's generator: pool[cursor:] are not used yet), or None when it
    holds none. ValueError names a damaged one: one of the two missing, a pool not
    [k, state_dim] or not finite, a cursor that is not one whole number within the pool."""
    if "reset_pool" not in state and "reset_cursor" not in state:
        return None
    if "reset_pool" not in state or "reset_cursor" not in state:
        raise ValueError("checkpoint's reset pool and cursor: one of them is missing")
    pool = np.asarray(state["reset_pool"], dtype=np.float64)
    cursor = np.asarray(state["reset_cursor"]).reshape(-1)
    if pool.ndim != 2 or pool.shape[1] != state_dim:
        raise ValueError(f"checkpoint's reset pool has shape {pool.shape}, expected "
                         f"[k, {state_dim}]")  # fmt: skip
    if (cursor.size != 1 or not np.issubdtype(cursor.dtype, np.number)
            or cursor[0] != np.floor(cursor[0]) or not 0 <= cursor[0] <= len(pool)):  # fmt: skip
        raise ValueError(f"checkpoint's reset cursor {cursor.tolist()} is outside the pool of "
                         f"{len(pool)}")  # fmt: skip
    if not np.isfinite(pool[int(cursor[0]) :]).all():
        raise ValueError("checkpoint's reset pool holds values that are not finite")
    return pool, int(cursor[0])


class PackEnv:
    """Interface of a pack environment (see module docstring)."""

    num_runs: int
    num_envs: int
    observation_space: gym.spaces.Box  # of one env
    action_space: gym.spaces.Space  # of one env

    def reset(self) -> np.ndarray:
        """Reset every env from its run's generator; return obs [P*N, obs_dim] float32."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> Step:
        raise NotImplementedError

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        """Plain arrays that restore run ``run``'s envs exactly (RNG state excluded)."""
        raise NotImplementedError

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def current_obs(self) -> np.ndarray:
        raise NotImplementedError


class NumpyPackEnv(PackEnv):
    """Shared machinery of the project's own numpy pack envs (CartPole, CartPoleSwingUp, ...).

    State is stored component-major, [state_dim, P*N] float64 (for CartPole: x, x_dot, theta,
    theta_dot as contiguous rows), with a step counter per env for the time limit. Same-step autoreset:
    ``step`` returns the reset observation in ``obs`` and the terminal / truncated one in
    ``final_obs``; resets of run p are drawn from ``rngs[p]`` with ONE call per step for all
    of that run's envs that ended (so a run's draws depend only on its own episodes).

    Subclasses define ``_draw(run, k) -> [k, state_dim]``, ``_make_obs([state_dim, M]) ->
    [M, obs_dim]``, ``_advance(actions) -> (new state [state_dim, P*N], reward [P*N],
    terminated [P*N])`` (or all of :meth:`_transition`), the spaces, ``state_dim`` and
    ``max_episode_steps``.
    """

    max_episode_steps: int
    state_dim: int = 4

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        if len(rngs) != num_runs:
            raise ValueError(f"need one generator per run: {len(rngs)} != {num_runs}")
        self.num_runs, self.num_envs, self.rngs = num_runs, num_envs, rngs
        m = num_runs * num_envs
        self._state = np.zeros((self.state_dim, m), dtype=np.float64)
        self._elapsed = np.zeros(m, dtype=np.int64)
        self._obs = np.zeros((m, self.observation_space.shape[0]), dtype=np.float32)
        self._reset_called = False
        self._all_valid = np.ones(m, dtype=bool)  # same-step autoreset: no dummy transitions
        self._all_valid.flags.writeable = False

    # ------------------------------------------------------------------ subclass hooks
    def _draw(self, run: int, k: int) -> np.ndarray:
        raise NotImplementedError

    def _make_obs(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _reset_obs(self, state: np.ndarray) -> np.ndarray:
        """Observation of freshly drawn states (``_make_obs`` unless the env's reset computes
        it differently, as Acrobot's float32 reset does)."""
        return self._make_obs(state)

    # ------------------------------------------------------------------ PackEnv API
    def _rows(self, run: int) -> slice:
        return slice(run * self.num_envs, (run + 1) * self.num_envs)

    def reset(self) -> np.ndarray:
        """Reset every env from its run's generator; return obs [P*N, obs_dim] float32."""
        for p in range(self.num_runs):
            self._state[:, self._rows(p)] = self._draw(p, self.num_envs).T
        self._elapsed[:] = 0
        self._obs = self._reset_obs(self._state)
        self._reset_called = True
        return self._obs

    def current_obs(self) -> np.ndarray:
        """The observation the policy sees next, [P*N, obs_dim] float32."""
        return self._obs

    def step(self, actions: np.ndarray) -> Step:
        """Advance every env by one step; see the subclass for the action format.

        Returns a :class:`Step` with obs/final_obs [P*N, obs_dim] float32, reward [P*N]
        float64, terminated/truncated/valid [P*N] bool (terminated wins over the time limit).
        """
        assert self._reset_called, "call reset() before step()"
        reward, terminated, truncated, final_obs = self._transition(actions)
        done = terminated | truncated
        obs = final_obs
        if np.count_nonzero(done):  # cheaper than done.any() on small arrays
            obs = final_obs.copy()
            self._autoreset(np.flatnonzero(done), obs)
        self._obs = obs
        return Step(obs, final_obs, reward, terminated, truncated, self._all_valid)

    def _transition(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Dynamics, step counters and time limit of one step (no resets): returns (reward,
        terminated, truncated, final_obs). Compiled envs replace it with one kernel call."""
        new, reward, terminated = self._advance(actions)
        self._state = new
        self._elapsed += 1
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        return reward, terminated, truncated, self._make_obs(new)

    def _restored_obs(self, state: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """The observation of restored states (see :meth:`set_state`)."""
        return self._make_obs(state)

    def _autoreset(self, idx: np.ndarray, obs: np.ndarray) -> None:
        """Reset rows ``idx`` (sorted) in place, one generator call per affected run."""
        # idx is sorted, so concatenating each run's draws in run order lines them up with idx.
        counts = np.bincount(idx // self.num_envs, minlength=self.num_runs)
        runs = np.flatnonzero(counts).tolist()
        if len(runs) == 1:
            fresh = self._draw(runs[0], idx.size)
        else:
            fresh = np.concatenate([self._draw(p, int(counts[p])) for p in runs])
        self._state[:, idx] = fresh.T
        obs[idx] = self._reset_obs(fresh.T)
        self._elapsed[idx] = 0

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s envs: {"state": float64 [N, state_dim] (CartPole: x, x_dot, theta,
        theta_dot), "elapsed": int64 [N] steps since the last reset}. Copies, RNG excluded."""
        rows = self._rows(run)
        return {"state": self._state[:, rows].T.copy(), "elapsed": self._elapsed[rows].copy()}

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        """Restore run ``run``'s envs from :meth:`get_state` output (also refreshes their obs)."""
        rows = self._rows(run)
        st = np.asarray(state["state"], dtype=np.float64).reshape(self.num_envs, self.state_dim).T
        self._state[:, rows] = st
        self._elapsed[rows] = np.asarray(state["elapsed"], dtype=np.int64).reshape(-1)
        obs = self._obs.copy()  # a Step held by the caller may alias _obs: replace, don't mutate
        obs[rows] = self._restored_obs(st, self._elapsed[rows])
        self._obs = obs
        self._reset_called = True
