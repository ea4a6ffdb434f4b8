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
ACTIVATIONS = ("tanh", "relu")
MAX_LAYERS, MAX_WIDTH = 8, 4096
WIDTHS = "widths"
"""FIELD_TYPES kind of a list of hidden-layer widths (a tuple once in a config)."""
OPTIONAL_FLOAT = "float|null"
"""FIELD_TYPES kind of a number that may be null (off)."""


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
    policy_hidden: tuple[int, ...] | None = None
    """hidden-layer widths of the policy (``[]``: linear). null: the article's default for
    the action space: linear logits for a Discrete space, ``[hidden]`` for a Box mean."""
    value_hidden: tuple[int, ...] | None = None
    """hidden-layer widths of the value net. null: ``[hidden]``."""
    activation: str = "tanh"
    """activation of the policy's hidden layers: tanh or relu."""
    value_activation: str = "relu"
    """activation of the value net's hidden layers: relu or tanh."""
    init_log_std: float = 0.0
    """initial log standard deviation of a Gaussian policy (ignored by categorical ones)."""
    entropy_coef: float = 0.0
    """weight of the entropy bonus in the policy loss: -mean(A log pi) - c * entropy."""
    max_grad_norm: float | None = None
    """clip the global gradient norm of every policy step and value-fit iteration to this
    (null: no clipping)."""
    obs_norm: bool = False
    """normalise observations with the run's running mean and variance (updated after each
    epoch, frozen inside it, clipped to +-10; part of the checkpoint and of policy.pt)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = FIELD_TYPES[f.name]
            if kind == WIDTHS and value is not None:
                problem = widths_problem(value)
                if problem:
                    raise ValueError(f"{f.name}: {problem}")
                object.__setattr__(self, f.name, tuple(value))  # lists from YAML/JSON
                continue
            if kind == OPTIONAL_FLOAT:
                if value is None:
                    continue
                kind = float
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
        for name in ("activation", "value_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(
                    f"{name}: must be one of {ACTIVATIONS}, got {getattr(self, name)!r}"
                )
        if not -10.0 <= self.init_log_std <= 5.0:
            raise ValueError(f"init_log_std: must be in [-10, 5], got {self.init_log_std}")
        if self.entropy_coef < 0:
            raise ValueError(f"entropy_coef: must be >= 0, got {self.entropy_coef}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(
                f"max_grad_norm: must be > 0 (or null for no clipping), got {self.max_grad_norm}"
            )

    def value_widths(self) -> tuple[int, ...]:
        """The value net's hidden-layer widths (``value_hidden``, else ``[hidden]``)."""
        return self.value_hidden if self.value_hidden is not None else (self.hidden,)

    def policy_widths(self, discrete: bool) -> tuple[int, ...]:
        """The policy's hidden-layer widths for a Discrete (or Box) action space."""
        if self.policy_hidden is not None:
            return self.policy_hidden
        return () if discrete else (self.hidden,)

    @property
    def shape_key(self) -> tuple:
        """Runs with equal shape keys can share a pack (same buffers, same env)."""
        return tuple(getattr(self, name) for name in SHAPE_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (widths as lists)."""
        data = dataclasses.asdict(self)
        for name, kind in FIELD_TYPES.items():
            if kind == WIDTHS and data[name] is not None:
                data[name] = list(data[name])
        return data

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
    "policy_hidden": WIDTHS,
    "value_hidden": WIDTHS,
    "activation": str,
    "value_activation": str,
    "init_log_std": float,
    "entropy_coef": float,
    "max_grad_norm": OPTIONAL_FLOAT,
    "obs_norm": bool,
}

SHAPE_FIELDS = ("env", "num_envs", "steps_per_epoch", "hidden", "dtype", "policy_hidden",
                "activation")  # fmt: skip
"""Fields a pack's runs share: the env and its buffers, and the stacked policy's shape and
activation (value nets, learning rates, entropy, clipping, obs_norm are per run)."""

LATER_FIELDS = ("policy_hidden", "value_hidden", "activation", "value_activation",
                "init_log_std", "entropy_coef", "max_grad_norm", "obs_norm")  # fmt: skip
"""Fields added after the first release: they enter a run's id only when they differ from
their defaults, so that the ids (and results) of runs from before stay valid."""


def value_text(value: Any) -> str:
    """A field's value as text (runs.csv, tables): widths as ``[64, 64]``, null as ``null``,
    bools as ``true``/``false``, floats by repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def widths_problem(value: Any) -> str | None:
    """What is wrong with a list of hidden-layer widths, or None."""
    if not isinstance(value, list | tuple):
        return f"expected a list of layer widths like [64, 64] ([] for none), got {value!r}"
    if len(value) > MAX_LAYERS:
        return f"at most {MAX_LAYERS} hidden layers, got {len(value)}"
    for w in value:
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WIDTH:
            return f"each width must be an integer in [1, {MAX_WIDTH}], got {w!r}"
    return None
