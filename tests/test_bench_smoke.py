"""Smoke test of bench/epoch_throughput.py: a --quick run finishes and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "epoch_throughput.py"
TIMEOUT_S = 300

pytestmark = pytest.mark.timeout(TIMEOUT_S + 30)


def test_quick_run_prints_table() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
    )
    report = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert out.returncode == 0, report
    lines = out.stdout.splitlines()
    assert "| config | s per run-epoch | run-epochs/s per core | ratio to (a) |" in lines
    article = [line for line in lines if line.startswith("| (a) article loop |")]
    assert len(article) == 1, out.stdout
    assert article[0].rstrip().endswith("| 1.00x |")
    assert any(line.startswith("| (b) engine, pack 1 |") for line in lines), out.stdout
