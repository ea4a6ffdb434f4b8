"""`a2c-sweep train`: one run with progress, --csv output, bad values -> exit 2."""

import csv
import subprocess
import sys

import pytest

from a2c_core.engine import RETURN_COLUMNS

CLI = [sys.executable, "-m", "runner.cli"]


@pytest.mark.timeout(120)
def test_train_swingup_writes_csv_rows(tmp_path):
    out = tmp_path / "out.csv"
    args = ["train", "--env", "CartPoleSwingUp-v0", "--gamma", "0.999", "--lam", "0.99",
            "--policy-lr", "0.01", "--value-lr", "0.1", "--epochs", "3", "--csv", str(out)]  # fmt: skip
    proc = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert tuple(rows[0]) == RETURN_COLUMNS
    assert int(rows[-1]["env_steps"]) == 3 * 8 * 4052
    assert "final mean return" in proc.stdout


@pytest.mark.parametrize(
    "args,key",
    [
        (["--gamma", "1.5"], "gamma"),
        (["--lam", "-0.1"], "lam"),
        (["--policy-lr", "0"], "policy_lr"),
        (["--epochs", "0"], "epochs"),
        (["--num-envs", "-3"], "num_envs"),
        (["--env", "NoSuchEnv-v0"], "env"),
        (["--env", "Pendulm-v1"], "did you mean 'Pendulum-v1'"),
        (["--env", "FrozenLake-v1"], "env: FrozenLake-v1: observation space Discrete(16)"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_train_bad_values_exit_2_with_one_line(args, key, tmp_path):
    out = tmp_path / "out.csv"
    proc = subprocess.run(CLI + ["train", *args, "--csv", str(out)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0]
    assert not out.exists()


def test_version_names_the_package_and_the_commit() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "runner.cli", "--version"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("a2c-sweep 0.") and "+g" in out.stdout, out.stdout
