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

__all__ = ["PackEnv", "Step", "make_pack_env", "state_capture"]


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
