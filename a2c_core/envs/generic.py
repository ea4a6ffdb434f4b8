"""The generic pack env: any registered gymnasium id through gymnasium's sync vector env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from a2c_core.envs.base import PackEnv, Step


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
