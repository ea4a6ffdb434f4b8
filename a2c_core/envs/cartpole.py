"""CartPole-v0/-v1 as one numpy pack env over P runs x N envs (see :mod:`a2c_core.envs.base`).

The dynamics repeat gymnasium's ``CartPoleEnv`` operation for operation (same constants, same
expression order, float64 state, euler integrator), so observations agree bit for bit with
gymnasium's after the float32 cast. The whole pack advances in one compiled call
(:func:`cartpole_row` per row, shared with the fused rollout); Python only loops over the runs
that had an episode end in this step, to draw their resets.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from gymnasium import spaces

from a2c_core.envs.base import NumpyPackEnv

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


class CartPolePackEnv(NumpyPackEnv):
    """P runs x N CartPole envs on a flat axis of P*N rows (row ``p*N + i`` = env i of run p).

    Actions: int array [P*N] of 0 (push left) / 1 (push right). Reward 1.0 on every step,
    including the terminating one (gymnasium's default). See :class:`NumpyPackEnv`.
    """

    def __init__(
        self, env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]
    ) -> None:
        if env_id not in CARTPOLE_IDS:
            raise ValueError(f"unknown CartPole id {env_id!r}; expected one of {CARTPOLE_IDS}")
        self.env_id = env_id
        self.max_episode_steps = _TIME_LIMITS[env_id]
        self.observation_space, self.action_space = cartpole_spaces()
        super().__init__(num_runs, num_envs, rngs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        """k fresh initial states [k, 4] from run ``run``'s generator, in ONE call."""
        return self.rngs[run].uniform(RESET_LOW, RESET_HIGH, size=(k, 4))

    def _make_obs(self, state: np.ndarray) -> np.ndarray:
        return state.T.astype(np.float32)

    def _transition(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """One compiled call (:func:`cartpole_row` per row, as the fused rollout steps)."""
        actions = np.ascontiguousarray(np.asarray(actions).reshape(-1), dtype=np.int64)
        return _transition_rows(self._state, self._elapsed, self.max_episode_steps, actions)


@numba.njit(cache=True, nogil=True)
def cartpole_row(s, i, action, two):
    """gymnasium's ``CartPoleEnv.step`` for row i of state [4, M], in place, as compiled
    scalar code (same expression trees, so the same floats); returns (reward, terminated)."""
    x, x_dot, theta, theta_dot = s[0, i], s[1, i], s[2, i], s[3, i]
    force = FORCE_MAG if action == 1 else -FORCE_MAG
    costheta = np.cos(theta)
    sintheta = np.sin(theta)
    temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    s[0, i] = x + TAU * x_dot
    s[1, i] = x_dot + TAU * xacc
    s[2, i] = theta + TAU * theta_dot
    s[3, i] = theta_dot + TAU * thetaacc
    terminated = (
        s[0, i] < -X_THRESHOLD or s[0, i] > X_THRESHOLD
        or s[2, i] < -THETA_THRESHOLD or s[2, i] > THETA_THRESHOLD
    )  # fmt: skip
    return 1.0, terminated


@numba.njit(cache=True, nogil=True)
def cartpole_obs_row(s, i, obs, j):
    # float32 numbers whatever obs's dtype (float64 runs too), as gymnasium's observations
    obs[j, 0], obs[j, 1] = np.float32(s[0, i]), np.float32(s[1, i])
    obs[j, 2], obs[j, 3] = np.float32(s[2, i]), np.float32(s[3, i])


@numba.njit(cache=True, nogil=True)
def _transition_rows(state, elapsed, limit, actions):
    """:meth:`NumpyPackEnv._transition` of a CartPole pack in one call (state and elapsed in
    place): (reward, terminated, truncated, final_obs)."""
    m = state.shape[1]
    reward = np.empty(m)
    terminated = np.empty(m, dtype=np.bool_)
    truncated = np.empty(m, dtype=np.bool_)
    final_obs = np.empty((m, 4), dtype=np.float32)
    for i in range(m):
        reward[i], terminated[i] = cartpole_row(state, i, actions[i], 2.0)
        elapsed[i] += 1
        truncated[i] = elapsed[i] >= limit and not terminated[i]
        cartpole_obs_row(state, i, final_obs, i)
    return reward, terminated, truncated, final_obs
