"""Pack environments: P runs x N envs on one flat axis (see :mod:`a2c_core.envs.base`).

Importing this package has no side effects; ``a2c_core`` registers CartPoleSwingUp itself.
"""

from a2c_core.envs.base import PackEnv, Step, make_pack_env

__all__ = ["PackEnv", "Step", "make_pack_env"]
