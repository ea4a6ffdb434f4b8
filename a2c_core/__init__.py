"""a2c_core: A2C + GAE for packs of runs trained in lock-step.

``import a2c_core`` registers CartPoleSwingUp-v0/-v1 with gymnasium and is cheap: the
trainer (and torch, numba) load on first use of ``train``/``train_pack``.
"""

from __future__ import annotations

from typing import Any

from a2c_core.config import A2CConfig
from a2c_core.envs.swingup import register_envs as _register_envs

_register_envs()

_LAZY = {
    "train": "a2c_core.engine",
    "train_pack": "a2c_core.engine",
    "EpochRecord": "a2c_core.engine",
    "RETURN_COLUMNS": "a2c_core.engine",
    "policy_state": "a2c_core.results",
    "to_torch": "a2c_core.engine",
    "compute_gae": "a2c_core.gae",
    "discounted_returns": "a2c_core.gae",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'a2c_core' has no attribute {name!r}")


__all__ = ["A2CConfig", *_LAZY]
