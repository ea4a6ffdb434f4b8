"""The generic pack env: any registered gymnasium id through gymnasium's sync vector env."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from a2c_core.envs.base import PackEnv, Step
from a2c_core.envs.envstate import capture_envs, error_line, kind_of, restore_envs, round_trip


def make_vec(env_id: str, num_envs: int) -> gym.vector.SyncVectorEnv:
    """One run's envs: ``num_envs`` sub-envs (``gymnasium.make``'s wrapper stack each) in a
    sync vector env with NEXT_STEP autoreset."""
    from gymnasium.vector import AutoresetMode

    return gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
    )


@functools.cache
def capture_kind(env_id: str) -> tuple[str | None, str | None]:
    """How env_id's sub-envs are saved exactly: ``("mujoco" | "attrs", None)``, or ``(None,
    one-line reason)`` when they cannot be. Decided by :func:`a2c_core.envs.envstate.round_trip`
    on two sub-envs from :func:`make_vec`, once per id and process (about 0.1 s)."""
    try:
        vec = make_vec(env_id, 2)
    except Exception as exc:
        return None, f"it cannot be made ({error_line(exc)})"
    try:
        kind = kind_of(vec.envs[0])
        reason = round_trip(*vec.envs, kind)
    except Exception as exc:
        reason = f"its state round trip failed ({error_line(exc)})"
    finally:
        vec.close()
    return (kind, None) if reason is None else (None, reason)


class GymnasiumPackEnv(PackEnv):
    """Fallback for any gymnasium id: one SyncVectorEnv per run, NEXT_STEP autoreset.

    :meth:`get_state` saves a run's envs exactly when :mod:`a2c_core.envs.envstate` can
    capture this id (MuJoCo envs through ``mj_getState``, others through their attributes, which a round
    trip proved sound), together with the vector env's autoreset flags (an env whose episode
    ended at the last step resets, as a dummy transition, at the next) and this pack's
    observation and dummy rows: a resumed run then continues bit for bit. For an id that
    cannot be captured (:func:`a2c_core.envs.state_capture` says why) the state is empty and
    :meth:`set_state` starts fresh episodes from the run's own generator.
    """

    def __init__(self, env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]):
        self.env_id = env_id
        self.num_runs, self.num_envs, self.rngs = num_runs, num_envs, rngs
        self.envs = [make_vec(env_id, num_envs) for _ in range(num_runs)]
        self.observation_space = self.envs[0].single_observation_space
        self.action_space = self.envs[0].single_action_space
        self._obs: np.ndarray | None = None
        self._dummy_next = np.zeros(num_runs * num_envs, dtype=bool)

    def close(self) -> None:
        for vec in self.envs:
            vec.close()

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

    def _rows(self, run: int) -> slice:
        return slice(run * self.num_envs, (run + 1) * self.num_envs)

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s envs as plain arrays (see the class docstring); ``{}`` when this id
        cannot be captured. The run's reset generator is the engine's to save."""
        kind, _ = capture_kind(self.env_id)
        if kind is None:
            return {}
        assert self._obs is not None
        rows = self._rows(run)
        vec = self.envs[run]
        state = capture_envs(vec.envs, kind)
        state["autoreset"] = np.array(vec._autoreset_envs, dtype=bool)
        state["dummy_next"] = self._dummy_next[rows].copy()
        state["obs"] = self._obs[rows].copy()
        return state

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        """Restore run ``run``'s envs from :meth:`get_state`'s arrays; an empty state (an id
        that cannot be captured, or a checkpoint written before states were saved) starts
        fresh episodes for this run instead."""
        rows = self._rows(run)
        assert self._obs is not None
        obs = self._obs.copy()  # a Step held by the caller may alias _obs: replace, don't mutate
        if not state:
            obs[rows] = self._reset_run(run)
            self._dummy_next[rows] = False
            self._obs = obs
            return
        vec = self.envs[run]
        restored = restore_envs(list(vec.envs), state)
        for i, env in enumerate(restored):
            if env is not vec.envs[i]:
                vec.envs[i].close()
                vec.envs[i] = env
        vec._autoreset_envs = np.array(state["autoreset"], dtype=bool).reshape(self.num_envs)
        self._dummy_next[rows] = np.asarray(state["dummy_next"], dtype=bool).reshape(-1)
        obs[rows] = np.asarray(state["obs"], dtype=np.float32).reshape(self.num_envs, -1)
        self._obs = obs
