"""The one frozen configuration object of a run.

Every field changes a run's numbers (and so its run id in the runner). Defaults are the
reference article's CartPole-v0 settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

VALUE_TARGETS = ("returns", "lambda_returns")
RETURN_COLUMNS = (
    "epoch", "env_steps", "episodes", "return_mean", "return_median", "return_min",
    "return_max", "length_mean", "value_loss", "policy_loss", "entropy",
    "explained_variance", "wall_s",
)  # fmt: skip
"""Columns of a run's returns.csv, one row per epoch (docs/design.md "The results contract")."""
INT_RETURN_COLUMNS = ("epoch", "env_steps", "episodes")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class A2CConfig:
    env: str = "CartPole-v0"
    """gymnasium environment id (CartPoleSwingUp-v0/-v1 are registered by a2c_core)."""
    num_envs: int = 8
    """parallel environments per run."""
    steps_per_epoch: int = 4052
    """T: vector steps per env per epoch (an epoch has num_envs * T transitions)."""
    epochs: int = 100
    """number of epochs (rollout + value fit + policy step)."""
    value_iters: int = 80
    """full-batch Adam iterations of the value net per epoch."""
    policy_iters: int = 1
    """full-batch Adam steps of the policy per epoch."""
    policy_lr: float = 0.1
    """Adam learning rate of the policy."""
    value_lr: float = 0.01
    """Adam learning rate of the value net."""
    gamma: float = 0.99
    """discount factor, in [0, 1]."""
    lam: float = 0.95
    """GAE lambda, in [0, 1]."""
    hidden: int = 64
    """width of the one hidden layer of the value net and of the Gaussian policy's mean."""
    normalize_advantages: bool = True
    """normalise advantages to zero mean, unit std over each run's epoch batch."""
    value_target: str = "returns"
    """'returns': discounted returns bootstrapped at truncation and rollout end (article);
    'lambda_returns': GAE advantages + V."""
    dtype: str = "float32"
    """float32 (default) or float64 for every network and buffer."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = FIELD_TYPES[f.name]
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{f.name}: expected a positive integer, got {value!r}")
            if kind is int and value <= 0:
                raise ValueError(f"{f.name}: must be a positive integer, got {value}")
            if kind is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{f.name}: expected a number, got {value!r}")
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError(f"{f.name}: must be finite, got {value}")
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{f.name}: expected true or false, got {value!r}")
            if kind is str and not isinstance(value, str):
                raise ValueError(f"{f.name}: expected a string, got {value!r}")
        for name in ("policy_lr", "value_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(
                f"value_target: must be one of {VALUE_TARGETS}, got {self.value_target!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: must be one of {DTYPES}, got {self.dtype!r}")
        if not self.env:
            raise ValueError("env: must be a non-empty gymnasium id")

    @property
    def shape_key(self) -> tuple:
        """Runs with equal shape keys can share a pack (same buffers, same env)."""
        return (self.env, self.num_envs, self.steps_per_epoch, self.hidden, self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> A2CConfig:
        unknown = set(data) - set(FIELD_TYPES)
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown A2CConfig field")
        return cls(**data)


FIELD_TYPES: dict[str, type] = {
    "env": str,
    "num_envs": int,
    "steps_per_epoch": int,
    "epochs": int,
    "value_iters": int,
    "policy_iters": int,
    "policy_lr": float,
    "value_lr": float,
    "gamma": float,
    "lam": float,
    "hidden": int,
    "normalize_advantages": bool,
    "value_target": str,
    "dtype": str,
}
