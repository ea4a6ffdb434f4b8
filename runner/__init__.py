"""Sweeps of A2C runs on Ray: ``run_sweep`` (Python API), the results store, the CLI."""

from runner.api import MAX_RUNS, SweepError, SweepResult, run_sweep

__all__ = ["MAX_RUNS", "SweepError", "SweepResult", "run_sweep"]
