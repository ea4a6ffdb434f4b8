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
        (["--policy-hidden", "64,x"], "--policy-hidden"),
        (["--value-hidden", "0"], "value_hidden"),
        (["--activation", "gelu"], "--activation"),
        (["--entropy-coef", "-0.1"], "entropy_coef"),
        (["--max-grad-norm", "0"], "max_grad_norm"),
        (["--init-log-std", "50"], "init_log_std"),
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


@pytest.mark.timeout(120)
def test_train_takes_every_config_field_and_matches_the_engine(tmp_path):
    """Every A2CConfig field is a flag; the CSV equals a2c_core.train with the same config
    (wall_s aside), and a run where no episode ends says so instead of 'nan'."""
    import math

    from a2c_core import A2CConfig, train

    out = tmp_path / "out.csv"
    flags = dict(env="Pendulum-v1", num_envs=2, steps_per_epoch=50, epochs=2, value_iters=3,
                 policy_iters=2, hidden=64, value_target="lambda_returns", dtype="float64",
                 policy_lr=0.01, value_lr=0.03, gamma=0.9, lam=0.8, activation="relu",
                 value_activation="tanh", init_log_std=-0.5, entropy_coef=0.01,
                 max_grad_norm=0.5)  # fmt: skip
    args = [x for k, v in flags.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    args += ["--policy-hidden", "8,8", "--value-hidden", "[12]", "--obs-norm"]
    proc = subprocess.run(CLI + ["train", *args, "--no-normalize-advantages", "--seed", "4",
                                 "--csv", str(out)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    config = A2CConfig(**flags, normalize_advantages=False, policy_hidden=(8, 8),
                       value_hidden=(12,), obs_norm=True)  # fmt: skip
    flagged = {f[2:].replace("-", "_") for f in args if f.startswith("--")}
    assert flagged | {"normalize_advantages"} == set(config.to_dict())  # a flag per field
    want = list(train(config, 4))
    assert len(rows) == len(want) == 2
    for row, rec in zip(rows, want, strict=True):
        for col, value in rec.row().items():
            if col != "wall_s":
                got = float(row[col])
                assert got == value or (math.isnan(got) and math.isnan(value)), col
    assert "no episode ended in the last epoch; 2 epochs" in proc.stdout  # 200-step episodes
