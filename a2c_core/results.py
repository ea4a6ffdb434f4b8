"""The results contract shared by the writer (runner.store) and the readers (analysis,
`status`, `gif`): file names, run states, the returns.csv columns, and the rules a run's
rows must satisfy. Imports only the standard library and a2c_core.config (and torch inside
:func:`to_torch`). See docs/design.md, "The results contract"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from a2c_core.config import INT_RETURN_COLUMNS, RETURN_COLUMNS

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "FINISHED_STATES",
    "INT_RETURN_COLUMNS",
    "PENDING",
    "POLICY",
    "RETURNS",
    "RETURN_COLUMNS",
    "RUNS_CSV",
    "STATES",
    "STATUS",
    "SWEEP_YAML",
    "contiguous_epochs",
    "to_torch",
]

SWEEP_YAML, RUNS_CSV = "sweep.yaml", "runs.csv"
CONFIG, RETURNS, STATUS = "config.json", "returns.csv", "status.json"
CHECKPOINT, POLICY = "checkpoint.pt", "policy.pt"

STATES = ("running", "done", "failed", "diverged")
"""states a status.json holds."""
FINISHED_STATES = frozenset({"done", "failed", "diverged"})
PENDING = "pending"
"""the state runs.csv and the readers give a run with no (readable) status.json."""


def contiguous_epochs(rows: Sequence[Mapping[str, Any]]) -> int:
    """k such that rows[:k] hold epochs 1..k in order (the rows a resume can trust)."""
    k = 0
    for row in rows:
        if row["epoch"] != k + 1:
            break
        k += 1
    return k


def to_torch(obj: Any) -> Any:
    """A checkpoint or policy state with every numpy array replaced by a torch tensor (what
    checkpoint.pt and policy.pt hold: ``torch.load(..., weights_only=True)`` reads them)."""
    import numpy as np
    import torch

    if isinstance(obj, np.ndarray):
        ok = obj.flags.c_contiguous and obj.flags.writeable  # Ray hands out read-only arrays
        return torch.from_numpy(obj if ok else obj.copy())  # copy() keeps 0-d arrays 0-d
    if isinstance(obj, dict):
        return {k: to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_torch(v) for v in obj)
    return obj
