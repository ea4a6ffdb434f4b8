"""What a pack's Ray task streams back to the driver, one small dataclass per kind.

A pack yields, per lock-step epoch: one :class:`Rows` (every run's row of that epoch, in run
order), then for the same epoch a :class:`Checkpoint` or :class:`RunEnded` per run that has
one. A pack stopped on the driver's request ends with :class:`Released`; one that raised with
:class:`Failed`; one that ran to its end with :class:`WorkerStats`. The driver's reader
threads add :class:`StreamClosed` and :class:`StreamLost` (the stream ended, or broke
because the worker or node died). Arrays travel as numpy; the driver writes the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Rows:
    rows: list[tuple[str, dict[str, Any]]]
    """(run id, returns.csv row) of every run that trained this epoch, in run order."""

    @property
    def epoch_s(self) -> float:
        """The pack's wall time for this epoch (every row carries it)."""
        return float(self.rows[0][1]["wall_s"])


@dataclass
class Checkpoint:
    run_id: str
    state: dict[str, Any]
    """a2c_core.engine.PackState.to_checkpoint of the run, after the epoch of its last row."""


@dataclass
class RunEnded:
    run_id: str
    state: str
    """"done" or "diverged"."""
    policy: dict[str, Any]
    """what policy.pt holds (a2c_core.results.policy_state)."""
    reason: str | None = None
    """for a diverged run: what went non-finite, and at which epoch."""
    checkpoint: dict[str, Any] | None = None
    """the state after the last epoch (done runs), from which raising ``epochs`` continues."""


@dataclass
class Paused:
    """A run reached the rung epoch it was asked to stop at (racing): it waits there, with
    its state after that epoch, until the driver has judged every configuration at the rung."""

    run_id: str
    epoch: int
    checkpoint: dict[str, Any]


@dataclass
class Released:
    run_ids: list[str]
    """the pack's unfinished runs, each checkpointed at the epoch just ended."""


@dataclass
class Failed:
    traceback: str


@dataclass
class WorkerStats:
    pid: int
    maxrss_mb: float
    nice: int = 0
    """the worker's niceness (execution.worker_niceness above the driver's)."""


@dataclass
class StreamClosed:
    """The pack's stream ended (normally after WorkerStats, Released or Failed)."""


@dataclass
class StreamLost:
    why: str
    """repr of the Ray error: the worker or its node died, or the task was cancelled."""


Message = (
    Rows
    | Checkpoint
    | RunEnded
    | Paused
    | Released
    | Failed
    | WorkerStats
    | StreamClosed
    | StreamLost
)
