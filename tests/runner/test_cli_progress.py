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


def test_live_table_renders_plainly_under_a_log_line_and_counts_racing() -> None:
    """A log line printed while the live table shows renders the table with that print's
    markup=False: no markup may leak into it ("[bold]name" was seen). Racing's counts show."""
    from rich.live import Live

    from runner.cli import _progress_table

    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True)
    prog = Progress(total_runs=12, total_epochs=300, done=2, stopped=6, waiting=4, running=4,
                    saved_epochs=210, epochs_done=120, started=time.monotonic() - 10)  # fmt: skip
    with Live(_progress_table(prog, "race"), console=console, auto_refresh=False):
        console.print("racing at epoch 5: ...", markup=False, highlight=False)
    text = out.getvalue()
    assert "[bold]" not in text and "race" in text
    assert "6 stopped by racing (210 run-epochs spared)" in text
    assert "4 waiting at a rung" in text
    line = io.StringIO()
    _PlainProgress("race", every_s=0.0).maybe_print(prog, Console(file=line, width=300))
    assert "/ 6 stopped by racing (210 run-epochs spared) / 4 waiting at a rung," in line.getvalue()
