"""Pack environments: P runs x N envs on one flat axis (see :mod:`a2c_core.envs.base`).

Importing this package registers nothing with gymnasium (``import a2c_core`` registers
CartPoleSwingUp through :func:`a2c_core.envs.swingup.register_envs`).
"""

from __future__ import annotations

import functools

import numpy as np

from a2c_core.envs.base import PackEnv, Step
from a2c_core.envs.cartpole import CARTPOLE_IDS, CartPolePackEnv
from a2c_core.envs.classic import CLASSIC_ENVS
from a2c_core.envs.envstate import error_line
from a2c_core.envs.generic import GymnasiumPackEnv, capture_kind
from a2c_core.envs.swingup import SWINGUP_IDS, SwingUpPackEnv

__all__ = ["CLASSIC_CONTROL_IDS", "PackEnv", "Step", "env_problem", "make_pack_env",
           "state_capture"]  # fmt: skip

CLASSIC_CONTROL_IDS = (*CARTPOLE_IDS, *CLASSIC_ENVS)
"""Every gymnasium classic-control id, all of them own pack envs."""


def make_pack_env(
    env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]
) -> PackEnv:
    """The fastest pack env for ``env_id``: the project's own vector envs for every
    classic-control id (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum) and
    CartPoleSwingUp, gymnasium's sync vector env (NEXT_STEP autoreset) otherwise."""
    if env_id in CARTPOLE_IDS:
        return CartPolePackEnv(env_id, num_runs, num_envs, rngs)
    if env_id in SWINGUP_IDS:
        return SwingUpPackEnv(env_id, num_runs, num_envs, rngs)
    if env_id in CLASSIC_ENVS:
        return CLASSIC_ENVS[env_id](num_runs, num_envs, rngs)
    return GymnasiumPackEnv(env_id, num_runs, num_envs, rngs)


@functools.cache
def state_capture(env_id: str) -> str | None:
    """None when a resumed run of ``env_id`` continues bit for bit: the project's own envs
    (plain arrays), and generic ids whose envs :mod:`a2c_core.envs.envstate` captures exactly.
    Otherwise a one-line reason why their state cannot be saved: such runs restart their
    episodes from fresh resets when resumed. Cached per id (a generic id: about 0.1 s once)."""
    if env_id in CARTPOLE_IDS or env_id in SWINGUP_IDS or env_id in CLASSIC_ENVS:
        return None
    try:
        pack = make_pack_env(env_id, 1, 1, [np.random.default_rng(0)])
    except Exception as exc:
        return f"it cannot be made ({error_line(exc)})"
    if not isinstance(pack, GymnasiumPackEnv):
        return None
    pack.close()
    return capture_kind(env_id)[1]


@functools.cache
def env_problem(env_id: str) -> str | None:
    """None when the engine can train on ``env_id``; otherwise one line saying why not: it
    cannot be made (a missing optional dependency, say), or its spaces are not a Box
    observation with Discrete or Box actions. Own ids are fine by construction; others are
    made once (cached per id; a MuJoCo env about 0.1 s)."""
    if env_id in CARTPOLE_IDS or env_id in SWINGUP_IDS or env_id in CLASSIC_ENVS:
        return None
    import gymnasium as gym

    try:
        env = gym.make(env_id)
    except Exception as exc:
        return f"cannot be made: {error_line(exc)}"
    try:
        obs, act = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(obs, gym.spaces.Box):
        return f"observation space {obs} is not supported (the policies need a Box)"
    if not isinstance(act, gym.spaces.Discrete | gym.spaces.Box):
        return f"action space {act} is not supported (Discrete or Box)"
    if isinstance(act, gym.spaces.Box) and len(act.shape) != 1:
        return f"action space {act} is not supported (a Box action must be a vector)"
    return None
