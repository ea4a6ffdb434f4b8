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


class GymnasiumPackEnv(PackEnv):
    """Fallback for any gymnasium id: one SyncVectorEnv per run, NEXT_STEP autoreset.

    Env states of arbitrary gymnasium envs cannot be saved as plain arrays, so a resumed run
    restarts its episodes from fresh resets drawn from its own generator (documented in README).
    """

    def __init__(self, env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]):
        from gymnasium.vector import AutoresetMode

        self.num_runs, self.num_envs, self.rngs = num_runs, num_envs, rngs
        self.envs = [
            gym.make_vec(
                env_id,
                num_envs=num_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
            )
            for _ in range(num_runs)
        ]
        self.observation_space = self.envs[0].single_observation_space
        self.action_space = self.envs[0].single_action_space
        self._obs: np.ndarray | None = None
        self._dummy_next = np.zeros(num_runs * num_envs, dtype=bool)

    def _reset_run(self, run: int) -> np.ndarray:
        seed = int(self.rngs[run].integers(2**31 - 1))
        obs, _ = self.envs[run].reset(seed=seed)
        return np.asarray(obs, dtype=np.float32).reshape(self.num_envs, -1)

    def reset(self) -> np.ndarray:
        self._obs = np.concatenate([self._reset_run(p) for p in range(self.num_runs)])
        self._dummy_next[:] = False
        return self._obs

    def current_obs(self) -> np.ndarray:
        assert self._obs is not None
        return self._obs

    def step(self, actions: np.ndarray) -> Step:
        n = self.num_envs
        outs = [self.envs[p].step(actions[p * n : (p + 1) * n]) for p in range(self.num_runs)]
        obs = np.concatenate([np.asarray(o[0], dtype=np.float32).reshape(n, -1) for o in outs])
        reward = np.concatenate([np.asarray(o[1], dtype=np.float64) for o in outs])
        terminated = np.concatenate([np.asarray(o[2], dtype=bool) for o in outs])
        truncated = np.concatenate([np.asarray(o[3], dtype=bool) for o in outs])
        valid = ~self._dummy_next
        reward = np.where(valid, reward, 0.0)
        terminated &= valid
        truncated &= valid
        self._dummy_next = terminated | truncated
        self._obs = obs
        return Step(obs, obs, reward, terminated, truncated, valid)

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        # Generic envs cannot be restored: start fresh episodes for this run.
        n = self.num_envs
        assert self._obs is not None
        self._obs[run * n : (run + 1) * n] = self._reset_run(run)
        self._dummy_next[run * n : (run + 1) * n] = False


def make_pack_env(
    env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]
) -> PackEnv:
    """The fastest pack env for ``env_id``: the project's own numpy vector envs for CartPole
    and CartPoleSwingUp, gymnasium's sync vector env (NEXT_STEP autoreset) otherwise."""
    from a2c_core.envs.cartpole import CARTPOLE_IDS, CartPolePackEnv
    from a2c_core.envs.swingup import SWINGUP_IDS, SwingUpPackEnv

    if env_id in CARTPOLE_IDS:
        return CartPolePackEnv(env_id, num_runs, num_envs, rngs)
    if env_id in SWINGUP_IDS:
        return SwingUpPackEnv(env_id, num_runs, num_envs, rngs)
    return GymnasiumPackEnv(env_id, num_runs, num_envs, rngs)
