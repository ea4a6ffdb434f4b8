"""Adam, the one optimiser of the engine: torch.optim.Adam's update (betas 0.9 / 0.999,
eps 1e-8, bias corrections), on one run's dict of numpy arrays, in place.

The value fit's numba kernel (a2c_core/valuefit.py) inlines the same formula in its
compiled loop, with these constants; tests/a2c_core/test_valuefit.py checks that both agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


@dataclass
class AdamState:
    """First and second moments of one run's parameters and the number of steps taken."""

    m: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    step: int = 0

    @classmethod
    def zeros_like(cls, params: dict[str, np.ndarray]) -> AdamState:
        return cls({k: np.zeros_like(a) for k, a in params.items()},
                   {k: np.zeros_like(a) for k, a in params.items()})  # fmt: skip

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
               lr: float) -> None:  # fmt: skip
        """One Adam step of ``params`` (arrays or views, updated in place) along ``grads``."""
        self.step += 1
        bc1, bc2 = 1 - BETA1**self.step, 1 - BETA2**self.step
        for k, g in grads.items():
            g = g.astype(params[k].dtype, copy=False)
            m, v = self.m[k], self.v[k]
            m *= BETA1
            m += (1 - BETA1) * g
            v *= BETA2
            v += (1 - BETA2) * g * g
            params[k] -= (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + EPS)
