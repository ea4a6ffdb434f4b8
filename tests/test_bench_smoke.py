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
    knobs = lines.index(next(line for line in lines if line.startswith("(e) knob shapes")))
    rows = lines[knobs + 1 : knobs + 12]
    assert rows[0].split()[-1] == "1.00x" and all(row.rstrip().endswith("x") for row in rows)
    assert any("value [64, 64] relu (eager numpy)" in row for row in rows), out.stdout


RACING = ROOT / "bench" / "racing.py"


def test_racing_bench_quick_compares_both_sweeps() -> None:
    out = subprocess.run([sys.executable, str(RACING), "--quick"], capture_output=True,
                         text=True, timeout=TIMEOUT_S, cwd=ROOT)  # fmt: skip
    report = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert out.returncode == 0, report
    lines = out.stdout.splitlines()
    assert any(line.startswith("| unraced | 4 | 144 |") for line in lines), report
    assert any(line.startswith("| raced | ") for line in lines), report
    assert "decisions equal the replay over the unraced rows: yes" in lines, report


def test_racing_replay_over_the_published_swingup_grid() -> None:
    out = subprocess.run(
        [sys.executable, str(RACING), "--replay", "results/reference/swingup-grid", "--racing",
         "{}", "--winner", "policy_lr=0.003,value_lr=0.1,lam=0.99"],
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "0 of 18 configurations stopped" in out.stdout, out.stdout
    assert "winner policy_lr=0.003,value_lr=0.1,lam=0.99: kept" in out.stdout
    # the published CartPole grid, replayed with the raced sweep's options, stops 24 of 36
    out = subprocess.run(
        [sys.executable, str(RACING), "--replay", "results/reference/cartpole-v0-grid", "--racing",
         "{keep_top: 3}"], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT,
    )  # fmt: skip
    assert "24 of 36 configurations stopped; run-epochs 7200 of 18000 (40%)" in out.stdout, (
        out.stdout
    )


ENVS = ROOT / "bench" / "envs.py"


def test_envs_bench_quick_prints_both_tables() -> None:
    out = subprocess.run([sys.executable, str(ENVS), "--quick", "--ids", "CartPole-v1,Pendulum-v1"],
                         capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)  # fmt: skip
    report = f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert out.returncode == 0, report
    lines = out.stdout.splitlines()
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        for packing in ("8 (1 x 8)", "64 (8 x 8)"):
            rows = [line for line in lines if line.startswith(f"| {env_id} | {packing} |")]
            assert len(rows) == 1, report
            assert rows[0].rstrip().endswith("x |"), report
        epoch_rows = [line for line in lines if line.startswith(f"| {env_id} | 0.")]
        assert len(epoch_rows) == 1, report
    assert not any("Acrobot" in line for line in lines), report


PEERS = ROOT / "bench" / "peers.py"


def test_peers_bench_smoke_runs_both_systems() -> None:
    """bench/peers.py --smoke: a2c-sweep and Stable-Baselines3 (the `bench` extra, in the
    test install) each train CartPole-v1 for 20k steps per seed and the table prints."""
    pytest.importorskip("stable_baselines3", reason="the bench extra: pip install -e '.[bench]'")
    out = subprocess.run([sys.executable, str(PEERS), "--smoke"], capture_output=True,
                         text=True, timeout=TIMEOUT_S, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    systems = [r.split("|")[1].strip() for r in rows[2:]]
    assert systems == ["a2c-sweep", "SB3 A2C (zoo)"], out.stdout
    for r in rows[2:]:
        solved = r.split("|")[2].strip()
        assert solved.endswith("/2"), r
    assert "ratios SB3 / a2c-sweep" in out.stdout


TORCH_A2C = ROOT / "bench" / "torch_a2c.py"


def test_independent_torch_a2c_learns_cartpole_with_the_knobs(tmp_path: Path) -> None:
    """bench/torch_a2c.py (the independent check of the swing-up study) runs a sweep file's
    configuration and learns: CartPole-v1 from ~20 to above 300 in 30 short epochs."""
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        "name: tiny\nenv: CartPole-v1\nnum_envs: 8\nsteps_per_epoch: 256\nepochs: 30\n"
        "value_iters: 20\npolicy_lr: 0.01\nvalue_lr: 0.03\npolicy_hidden: [32]\n"
        "obs_norm: true\nentropy_coef: 0.001\nmax_grad_norm: 1.0\nseeds: [0]\n"
    )
    out = subprocess.run([sys.executable, str(TORCH_A2C), str(sweep), "--seeds", "1",
                          "--procs", "1"], capture_output=True, text=True, timeout=TIMEOUT_S,
                         cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    score = float(out.stdout.split("final score")[1].split()[0])
    assert score > 300, out.stdout
    assert "stuck below 0: 0 of 1; above 200: 1 of 1" in out.stdout
    grid = tmp_path / "grid.yaml"
    grid.write_text("name: g\nseeds: [0]\ngrid:\n  policy_lr: [0.1, 0.01]\n")
    out = subprocess.run([sys.executable, str(TORCH_A2C), str(grid)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2 and "has a grid" in out.stderr
