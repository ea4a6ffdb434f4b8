"""CartPole-v0/-v1 as one numpy pack env over P runs x N envs (see :mod:`a2c_core.envs.base`).

The dynamics repeat gymnasium's ``CartPoleEnv`` operation for operation (same constants, same
expression order, float64 state, euler integrator), so observations agree bit for bit with
gymnasium's after the float32 cast. The whole pack advances with a handful of array ops;
Python only loops over the runs that had an episode end in this step, to draw their resets.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from a2c_core.envs.base import PackEnv, Step

CARTPOLE_IDS = ("CartPole-v0", "CartPole-v1")
_TIME_LIMITS = {"CartPole-v0": 200, "CartPole-v1": 500}

# gymnasium's constants, derived the way gymnasium derives them so the floats are identical.
GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_LOW, RESET_HIGH = -0.05, 0.05


def cartpole_spaces() -> tuple[spaces.Box, spaces.Discrete]:
    """Observation space Box(4,) float32 and action space Discrete(2) of one env, built exactly
    like gymnasium's CartPoleEnv builds them."""
    high = np.array(
        [X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf],
        dtype=np.float32,
    )
    return spaces.Box(-high, high, dtype=np.float32), spaces.Discrete(2)


class CartPolePackEnv(PackEnv):
    """P runs x N CartPole envs on a flat axis of P*N rows (row ``p*N + i`` = env i of run p).

    State is stored component-major, shape [4, P*N] float64, so every physics quantity
    (x, x_dot, theta, theta_dot) is a contiguous row. Same-step autoreset: ``step`` returns the
    reset observation in ``obs`` and the terminal/truncated one in ``final_obs``.
    """

    def __init__(
        self, env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]
    ) -> None:
        if env_id not in CARTPOLE_IDS:
            raise ValueError(f"unknown CartPole id {env_id!r}; expected one of {CARTPOLE_IDS}")
        if len(rngs) != num_runs:
            raise ValueError(f"need one generator per run: {len(rngs)} != {num_runs}")
        self.env_id = env_id
        self.num_runs, self.num_envs, self.rngs = num_runs, num_envs, rngs
        self.max_episode_steps = _TIME_LIMITS[env_id]
        self.observation_space, self.action_space = cartpole_spaces()
        m = num_runs * num_envs
        self._state = np.zeros((4, m), dtype=np.float64)
        self._elapsed = np.zeros(m, dtype=np.int64)
        self._obs = np.zeros((m, 4), dtype=np.float32)
        self._reset_called = False

    # ------------------------------------------------------------------ helpers
    def _rows(self, run: int) -> slice:
        return slice(run * self.num_envs, (run + 1) * self.num_envs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        """k fresh initial states [k, 4] from run ``run``'s generator, in ONE call so the
        stream consumed depends only on how many of this run's envs ended."""
        return self.rngs[run].uniform(RESET_LOW, RESET_HIGH, size=(k, 4))

    # ------------------------------------------------------------------ PackEnv API
    def reset(self) -> np.ndarray:
        """Reset every env from its run's generator; return obs [P*N, 4] float32."""
        for p in range(self.num_runs):
            self._state[:, self._rows(p)] = self._draw(p, self.num_envs).T
        self._elapsed[:] = 0
        self._obs = self._state.T.astype(np.float32)
        self._reset_called = True
        return self._obs

    def current_obs(self) -> np.ndarray:
        """The observation the policy sees next, [P*N, 4] float32."""
        return self._obs

    def step(self, actions: np.ndarray) -> Step:
        """Advance every env by one step.

        ``actions``: int array [P*N] of 0 (push left) / 1 (push right).
        Returns a :class:`Step` with obs/final_obs [P*N, 4] float32, reward [P*N] float64
        (1.0 everywhere, including terminating steps), terminated/truncated/valid [P*N] bool.
        """
        assert self._reset_called, "call reset() before step()"
        actions = np.asarray(actions).reshape(-1)
        x, x_dot, theta, theta_dot = self._state
        force = np.where(actions == 1, FORCE_MAG, -FORCE_MAG)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        # Same expression trees as gymnasium's CartPoleEnv.step, so rounding is identical.
        temp = (force + POLEMASS_LENGTH * np.square(theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (4.0 / 3.0 - MASSPOLE * np.square(costheta) / TOTAL_MASS)
        )
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        # Euler: positions move with the old velocities. Build the new state in a fresh array
        # because x, x_dot, ... are views of the old one.
        new = np.empty_like(self._state)
        np.add(x, TAU * x_dot, out=new[0])
        np.add(x_dot, TAU * xacc, out=new[1])
        np.add(theta, TAU * theta_dot, out=new[2])
        np.add(theta_dot, TAU * thetaacc, out=new[3])
        self._state = new

        terminated = (np.abs(new[0]) > X_THRESHOLD) | (np.abs(new[2]) > THETA_THRESHOLD)
        self._elapsed += 1
        # gymnasium's TimeLimit would flag both; the engine wants "terminated wins".
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        final_obs = new.T.astype(np.float32)
        reward = np.ones(actions.shape[0], dtype=np.float64)
        done = terminated | truncated
        obs = final_obs
        if np.count_nonzero(done):  # cheaper than done.any() on small arrays
            obs = final_obs.copy()
            self._autoreset(np.flatnonzero(done), obs)
        self._obs = obs
        valid = np.ones(actions.shape[0], dtype=bool)
        return Step(obs, final_obs, reward, terminated, truncated, valid)

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
        obs[idx] = fresh.astype(np.float32)
        self._elapsed[idx] = 0

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s envs: {"state": float64 [N, 4] (x, x_dot, theta, theta_dot),
        "elapsed": int64 [N] steps since the last reset}. Copies, RNG excluded."""
        rows = self._rows(run)
        return {
            "state": self._state[:, rows].T.copy(),
            "elapsed": self._elapsed[rows].copy(),
        }

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        """Restore run ``run``'s envs from :meth:`get_state` output (also refreshes their obs)."""
        rows = self._rows(run)
        st = np.asarray(state["state"], dtype=np.float64).reshape(self.num_envs, 4)
        self._state[:, rows] = st.T
        self._elapsed[rows] = np.asarray(state["elapsed"], dtype=np.int64).reshape(-1)
        # _obs may be aliased by a Step the caller still holds: replace, don't mutate.
        obs = self._obs.copy()
        obs[rows] = st.astype(np.float32)
        self._obs = obs
        self._reset_called = True
