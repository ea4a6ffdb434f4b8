"""The plain progress line printed when the output is not a terminal."""

from __future__ import annotations

import io
import time

from rich.console import Console

from runner.cli import _PlainProgress
from runner.launch import Progress


def test_plain_progress_is_one_line_even_in_a_narrow_log() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=False)
    prog = Progress(total_runs=180, total_epochs=18000, done=3, running=177, epochs_done=9000,
                    env_steps=291_000_000, started=time.monotonic() - 300)  # fmt: skip
    plain = _PlainProgress("cartpole-v0-grid", every_s=0.0)
    plain.maybe_print(prog, console)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("[05:00] cartpole-v0-grid: epochs 9000/18000"), line
    assert "runs 3 done / 177 running / 0 failed / 0 diverged" in line
    assert line.endswith("ETA 05:00"), line  # half done in 5 min: 5 min to go
    plain.every_s = 3600.0
    plain.maybe_print(prog, console)  # too soon for another line
    assert len(out.getvalue().splitlines()) == 1


def test_plain_progress_interval_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("A2C_SWEEP_PROGRESS_EVERY_S", "2.5")
    assert _PlainProgress("x").every_s == 2.5
    monkeypatch.setenv("A2C_SWEEP_PROGRESS_EVERY_S", "soon")
    assert _PlainProgress("x").every_s == 30.0
