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
    "code_version",
    "contiguous_epochs",
    "to_numpy",
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


def to_numpy(obj: Any) -> Any:
    """The inverse of :func:`to_torch`: every tensor of a loaded checkpoint as a numpy array,
    so that the Ray worker resuming it never imports torch (about 2 s and 230 MB each)."""
    if hasattr(obj, "numpy") and hasattr(obj, "detach"):  # a torch tensor
        return obj.detach().cpu().numpy()
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy(v) for v in obj)
    return obj


def code_version() -> str:
    """The package version, plus the git commit of the checkout it runs from when there is
    one (``0.1.0+g1a2b3c4``, ``-dirty`` when the work tree has uncommitted changes)."""
    return _code_version()


def _git(*args: str) -> str | None:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read_code_version() -> str:
    from importlib import metadata

    try:
        version = metadata.version("a2c-sweep")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return version
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{version}+g{commit}" + ("-dirty" if dirty else "")


_CACHE: list[str] = []


def _code_version() -> str:
    if not _CACHE:
        _CACHE.append(_read_code_version())
    return _CACHE[0]
