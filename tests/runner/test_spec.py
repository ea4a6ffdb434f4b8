"""Sweep YAML validation matrix, grid expansion and run ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from a2c_core.config import A2CConfig
from runner.spec import (
    Execution,
    SpecError,
    Sweep,
    check_compatible,
    experiment_key,
    load_spec,
    run_id,
)
from runner.store import Store

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)

BASE = """\
name: test-sweep
env: CartPole-v0
num_envs: 8
epochs: 100
steps_per_epoch: 4052
value_iters: 80
grid:
  policy_lr: [0.1, 0.01, 0.001]
  value_lr: [0.1, 0.01, 0.001]
  gamma: [0.99, 0.999]
  lam: [0.9, 0.99]
seeds: [9827391, 8534101, 4305430, 12654329, 3483055]
execution:
  checkpoint_every_s: 60
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / "sweeps" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def launch(path: Path, results: Path) -> Sweep:
    """What `a2c-sweep run` does before any run starts: load, then init the store."""
    sweep = load_spec(path)
    Store(results, sweep.name).init_sweep(sweep)
    return sweep


def assert_rejected(tmp_path: Path, text: str, *needles: str) -> str:
    path = write(tmp_path, text)
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(SpecError) as info:
        launch(path, results)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message, message
    assert list(results.iterdir()) == []  # nothing written
    return message


# --------------------------------------------------------------------------- the matrix

MINIMAL = "name: t\nseeds: [0]\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        # unknown keys, with a close match when there is one
        (MINIMAL + "gama: 0.9\n", ["gama", "gamma"]),
        (MINIMAL + "whatever: 1\n", ["whatever", "unknown key"]),
        (MINIMAL + "grid:\n  polcy_lr: [0.1]\n", ["grid.polcy_lr", "policy_lr"]),
        (MINIMAL + "grid:\n  name: [a, b]\n", ["grid.name"]),
        (MINIMAL + "grid:\n  epochs: [50, 100]\n", ["grid.epochs", "cannot be swept", "prefix"]),
        (MINIMAL + "execution:\n  num_cpu: 2\n", ["execution.num_cpu", "num_cpus"]),
        (MINIMAL + "execution:\n  checkpoint_every_s: 0\n", ["execution.checkpoint_every_s"]),
        (MINIMAL + "execution:\n  pack_size: 1.5\n", ["execution.pack_size"]),
        (MINIMAL + "execution:\n  num_cpus: 0\n", ["execution.num_cpus"]),
        (MINIMAL + "execution: [1]\n", ["execution"]),
        # fixed and swept at once
        (MINIMAL + "gamma: 0.9\ngrid:\n  gamma: [0.9, 0.99]\n", ["grid.gamma", "both"]),
        # wrong types
        (MINIMAL + "num_envs: 8.5\n", ["num_envs", "integer"]),
        (MINIMAL + "num_envs: true\n", ["num_envs"]),
        (MINIMAL + "policy_lr: '0.1'\n", ["policy_lr", "number"]),
        (MINIMAL + "policy_lr: true\n", ["policy_lr", "number"]),
        (MINIMAL + "normalize_advantages: 1\n", ["normalize_advantages"]),
        (MINIMAL + "env: 3\n", ["env", "string"]),
        (MINIMAL + "grid:\n  num_envs: [4, 8.5]\n", ["grid.num_envs[1]"]),
        (MINIMAL + "grid:\n  policy_lr: [0.1, '0.01']\n", ["grid.policy_lr[1]"]),
        (MINIMAL + "grid:\n  policy_lr: 0.1\n", ["grid.policy_lr", "list"]),
        (MINIMAL + "grid: [policy_lr]\n", ["grid"]),
        # empty grid list, duplicate grid values (also across spellings)
        (MINIMAL + "grid:\n  policy_lr: []\n", ["grid.policy_lr", "empty"]),
        (MINIMAL + "grid:\n  policy_lr: [0.1, 0.01, 0.1]\n", ["grid.policy_lr", "duplicate"]),
        (MINIMAL + "grid:\n  policy_lr: [0.1, 1e-1]\n", ["grid.policy_lr", "duplicate"]),
        (MINIMAL + "grid:\n  policy_lr: [1, 1.0]\n", ["grid.policy_lr", "duplicate"]),
        # value ranges (A2CConfig's own checks, prefixed with the key path)
        (MINIMAL + "policy_lr: 0\n", ["policy_lr", "> 0"]),
        (MINIMAL + "value_lr: -1e-3\n", ["value_lr", "> 0"]),
        (MINIMAL + "grid:\n  policy_lr: [0.1, -0.1]\n", ["grid.policy_lr: must be > 0, got -0.1"]),
        (MINIMAL + "grid:\n  value_lr: [0.0]\n", ["grid.value_lr"]),
        (MINIMAL + "gamma: 1.01\n", ["gamma", "[0, 1]"]),
        (MINIMAL + "lam: -0.1\n", ["lam", "[0, 1]"]),
        (MINIMAL + "grid:\n  gamma: [0.99, 1.5]\n", ["grid.gamma"]),
        (MINIMAL + "grid:\n  lam: [-0.5, 0.9]\n", ["grid.lam"]),
        (MINIMAL + "num_envs: 0\n", ["num_envs", "positive"]),
        (MINIMAL + "gamma: .nan\n", ["gamma", "finite"]),
        (MINIMAL + "dtype: float16\n", ["dtype"]),
        (MINIMAL + "value_target: gae\n", ["value_target"]),
        # the knobs (issue #15)
        (MINIMAL + "policy_hidden: 64\n", ["policy_hidden", "list of layer widths"]),
        (MINIMAL + "policy_hidden: [64, 0]\n", ["policy_hidden", "[1, 4096]", "0"]),
        (MINIMAL + "value_hidden: [64, 2.5]\n", ["value_hidden", "2.5"]),
        (MINIMAL + "value_hidden: [true]\n", ["value_hidden", "True"]),
        (MINIMAL + "value_hidden: [1, 1, 1, 1, 1, 1, 1, 1, 1]\n", ["value_hidden", "at most 8"]),
        (MINIMAL + "grid:\n  policy_hidden: [64, 64]\n", ["grid.policy_hidden[0]", "list"]),
        (MINIMAL + "grid:\n  policy_hidden: [[64], [64]]\n", ["grid.policy_hidden", "duplicate"]),
        (MINIMAL + "activation: gelu\n", ["activation", "tanh", "relu"]),
        (MINIMAL + "grid:\n  value_activation: [relu, sigmoid]\n", ["grid.value_activation"]),
        (MINIMAL + "entropy_coef: -0.01\n", ["entropy_coef", ">= 0"]),
        (MINIMAL + "entropy_coef: .inf\n", ["entropy_coef", "finite"]),
        (MINIMAL + "max_grad_norm: 0\n", ["max_grad_norm", "> 0", "null"]),
        (MINIMAL + "max_grad_norm: off\n", ["max_grad_norm", "number"]),
        (MINIMAL + "init_log_std: 20\n", ["init_log_std", "[-10, 5]"]),
        (MINIMAL + "init_log_std: null\n", ["init_log_std", "number"]),
        (MINIMAL + "obs_norm: yes please\n", ["obs_norm", "true or false"]),
        # environments
        (MINIMAL + "env: CartPol-v1\n", ["env", "CartPol-v1", "CartPole-v1"]),
        (MINIMAL + "grid:\n  env: [CartPole-v1, NoSuchEnv-v0]\n", ["grid.env[1]", "NoSuchEnv"]),
        # seeds
        ("name: t\nseeds: [1, 2, 1]\n", ["seeds[2]", "duplicate"]),
        ("name: t\nseeds: [1.5]\n", ["seeds[0]"]),
        ("name: t\nseeds: ['3']\n", ["seeds[0]"]),
        ("name: t\nseeds: [true]\n", ["seeds[0]"]),
        ("name: t\nseeds: [-1]\n", ["seeds[0]", ">= 0"]),
        ("name: t\nseeds: [9223372036854775808]\n", ["seeds[0]", "<= 9223372036854775807"]),
        ("name: t\nseeds: {count: 2, start: 9223372036854775807}\n", ["seeds", "<= "]),
        ("name: t\nseeds: []\n", ["seeds", "empty"]),
        ("name: t\nseeds: 3\n", ["seeds"]),
        ("name: t\nseeds: {count: 0}\n", ["seeds.count", ">= 1"]),
        ("name: t\nseeds: {count: 2, start: -1}\n", ["seeds.start"]),
        ("name: t\nseeds: {count: 2.0}\n", ["seeds.count"]),
        ("name: t\nseeds: {count: 2, first: 1}\n", ["seeds.first", "start"]),
        ("name: t\n", ["seeds", "required"]),
        # names
        ("name: ../x\nseeds: [0]\n", ["name", "/"]),
        ("name: a/b\nseeds: [0]\n", ["name", "/"]),
        ("name: ''\nseeds: [0]\n", ["name", "empty"]),
        ("name: .hidden\nseeds: [0]\n", ["name", "'.'"]),
        ("name: a b\nseeds: [0]\n", ["name"]),
        ("name: 12\nseeds: [0]\n", ["name", "string"]),
        ("seeds: [0]\n", ["name", "required"]),
        (MINIMAL + "description: [1]\n", ["description"]),
        # the file itself
        ("name: t\nseeds: [0\ngrid: {\n", ["YAML syntax error", "line"]),
        ('!!python/object/apply:os.system ["echo hi"]\n', ["python/object"]),
        ('name: !!python/object/apply:os.system ["echo hi"]\nseeds: [0]\n', ["python/object"]),
        ("", ["empty"]),
        ("# only a comment\n", ["empty"]),
        ("- name: t\n", ["top level", "mapping"]),
        ("just a string\n", ["top level"]),
        ("name: t\nseeds: [0]\ngamma: 0.9\ngamma: 0.99\n", ["duplicate key", "gamma"]),
    ],
)
def test_rejected(tmp_path: Path, text: str, needles: list[str]) -> None:
    assert_rejected(tmp_path, text, *needles)


def test_python_tag_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert_rejected(
        tmp_path,
        f'name: t\nseeds: [0]\nx: !!python/object/apply:os.system ["touch {marker}"]\n',
        "python/object",
    )
    assert not marker.exists()


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_base_example_loads(tmp_path: Path) -> None:
    sweep = load_spec(write(tmp_path, BASE))
    assert sweep.name == "test-sweep"
    assert list(sweep.grid) == ["policy_lr", "value_lr", "gamma", "lam"]
    assert sweep.fixed == {
        "env": "CartPole-v0",
        "num_envs": 8,
        "epochs": 100,
        "steps_per_epoch": 4052,
        "value_iters": 80,
    }
    assert sweep.execution == Execution(checkpoint_every_s=60.0, num_cpus=None, pack_size=None)
    assert sweep.raw["grid"]["gamma"] == [0.99, 0.999]


def test_exponent_floats(tmp_path: Path) -> None:
    text = MINIMAL + "grid:\n  policy_lr: [1e-3, 1E5, .5e-2, 1.0e+2, +2e-1, 3.5E-07]\n"
    values = load_spec(write(tmp_path, text)).grid["policy_lr"]
    assert values == [1e-3, 1e5, 0.005, 100.0, 0.2, 3.5e-7]
    assert all(type(v) is float for v in values)
    # parsed as a number (a string would be "expected a number"), then range-checked
    assert_rejected(tmp_path / "neg", MINIMAL + "value_lr: -2e-1\n", "value_lr: must be > 0")


def test_exponent_literals_load_as_floats(tmp_path: Path) -> None:
    text = MINIMAL + "policy_lr: 1e-3\nvalue_lr: 1E-2\ngrid:\n  lam: [.5e-1, 9e-1]\n"
    sweep = load_spec(write(tmp_path, text))
    assert sweep.fixed["policy_lr"] == 0.001 and type(sweep.fixed["policy_lr"]) is float
    assert sweep.fixed["value_lr"] == 0.01
    assert sweep.grid["lam"] == [0.05, 0.9]
    # a large exponent value is a float, so it is not accepted for an int field
    assert_rejected(tmp_path / "b", MINIMAL + "epochs: 1e5\n", "epochs", "integer")


def test_ints_widened_for_float_fields(tmp_path: Path) -> None:
    sweep = load_spec(write(tmp_path, MINIMAL + "gamma: 1\ngrid:\n  lam: [0, 1]\n"))
    assert sweep.fixed["gamma"] == 1.0 and type(sweep.fixed["gamma"]) is float
    assert [type(v) for v in sweep.grid["lam"]] == [float, float]


def test_null_grid_and_execution_are_defaults(tmp_path: Path) -> None:
    sweep = load_spec(write(tmp_path, MINIMAL + "grid:\nexecution:\ndescription: hi\n"))
    assert sweep.grid == {} and sweep.execution == Execution() and sweep.description == "hi"
    assert len(sweep.runs()) == 1


def test_swingup_env_accepted(tmp_path: Path) -> None:
    sweep = load_spec(
        write(tmp_path, MINIMAL + "grid:\n  env: [CartPoleSwingUp-v0, CartPoleSwingUp-v1]\n")
    )
    assert sweep.grid["env"] == ["CartPoleSwingUp-v0", "CartPoleSwingUp-v1"]


def test_execution_options(tmp_path: Path) -> None:
    text = MINIMAL + "execution:\n  checkpoint_every_s: 2.5\n  num_cpus: 4\n  pack_size: null\n"
    assert load_spec(write(tmp_path, text)).execution == Execution(2.5, 4, None)


# --------------------------------------------------------------------------- expansion


def test_expansion_count_and_order(tmp_path: Path) -> None:
    sweep = load_spec(write(tmp_path, BASE))
    runs = sweep.runs()
    assert len(runs) == 3 * 3 * 2 * 2 * 5 == 180 == sweep.num_runs
    assert len({r.run_id for r in runs}) == 180
    # seed innermost, then the last grid key, ... first grid key outermost
    assert [r.seed for r in runs[:6]] == sweep.seeds + [sweep.seeds[0]]
    assert runs[0].swept == {"policy_lr": 0.1, "value_lr": 0.1, "gamma": 0.99, "lam": 0.9}
    assert runs[5].swept == {"policy_lr": 0.1, "value_lr": 0.1, "gamma": 0.99, "lam": 0.99}
    assert runs[-1].swept == {"policy_lr": 0.001, "value_lr": 0.001, "gamma": 0.999, "lam": 0.99}
    first = runs[0].config
    assert first.num_envs == 8 and first.epochs == 100 and first.policy_lr == 0.1
    assert all(r.run_id == run_id(r.config, r.seed) for r in runs)


def test_seed_count_start(tmp_path: Path) -> None:
    sweep = load_spec(write(tmp_path, "name: t\nseeds: {count: 3, start: 10}\n"))
    assert list(sweep.seeds) == [10, 11, 12]
    assert load_spec(write(tmp_path, "name: t\nseeds: {count: 2}\n")).seeds == range(0, 2)


RUN_ID_SNIPPET = (
    "from a2c_core.config import A2CConfig; from runner.spec import run_id; "
    "print(run_id(A2CConfig(policy_lr=0.01, gamma=0.999, env='CartPole-v1'), 12345))"
)


def test_run_id_stable_across_processes() -> None:
    here = run_id(A2CConfig(policy_lr=0.01, gamma=0.999, env="CartPole-v1"), 12345)
    ids = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", RUN_ID_SNIPPET],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        ids.add(out.stdout.strip())
    assert ids == {here}
    assert len(here) == 12 and int(here, 16) >= 0


def test_run_id_depends_on_seed_and_config() -> None:
    config = A2CConfig()
    assert run_id(config, 1) != run_id(config, 2)
    assert run_id(config, 1) != run_id(A2CConfig(gamma=0.98), 1)
    assert run_id(config, 1) == run_id(A2CConfig(), 1)


def test_run_id_float_formatting() -> None:
    assert run_id(A2CConfig(policy_lr=0.1), 0) == run_id(A2CConfig(policy_lr=1e-1), 0)
    assert run_id(A2CConfig(gamma=1), 0) == run_id(A2CConfig(gamma=1.0), 0)


def test_run_id_from_yaml_float_spellings(tmp_path: Path) -> None:
    a = load_spec(write(tmp_path, MINIMAL + "policy_lr: 0.1\n", "a.yaml")).runs()
    b = load_spec(write(tmp_path, MINIMAL + "policy_lr: 1.0e-1\n", "b.yaml")).runs()
    c = load_spec(write(tmp_path, MINIMAL + "policy_lr: 1e-1\n", "c.yaml")).runs()
    assert a[0].run_id == b[0].run_id == c[0].run_id


def test_same_run_in_two_sweeps_same_id(tmp_path: Path) -> None:
    one = write(
        tmp_path,
        "name: one\nseeds: [3, 4]\nepochs: 50\ngrid:\n  gamma: [0.9, 0.99]\n"
        "execution:\n  checkpoint_every_s: 5\n",
        "one.yaml",
    )
    two = write(
        tmp_path,
        "name: two\nseeds: [4]\ngamma: 0.99\nepochs: 50\ngrid:\n  lam: [0.95, 0.8]\n"
        "execution:\n  num_cpus: 2\n  pack_size: 3\n",
        "two.yaml",
    )
    ids_one = {(r.config.gamma, r.seed): r.run_id for r in load_spec(one).runs()}
    ids_two = {(r.config.lam, r.seed): r.run_id for r in load_spec(two).runs()}
    # one: gamma 0.99, lam default 0.95, seed 4  ==  two: gamma 0.99 fixed, lam 0.95, seed 4
    assert ids_one[(0.99, 4)] == ids_two[(0.95, 4)]
    assert ids_two[(0.8, 4)] not in ids_one.values()


# --------------------------------------------------------------------------- experiment key


def test_experiment_key_and_compatibility(tmp_path: Path) -> None:
    base = load_spec(write(tmp_path, BASE, "a.yaml"))
    # more grid values and other seeds / execution: same experiment
    edited = load_spec(
        write(
            tmp_path,
            BASE.replace("[0.99, 0.999]", "[0.99, 0.995, 0.999]")
            .replace("seeds: [9827391, 8534101, 4305430, 12654329, 3483055]", "seeds: {count: 9}")
            .replace("checkpoint_every_s: 60", "checkpoint_every_s: 5"),
            "b.yaml",
        )
    )
    assert experiment_key(base) == experiment_key(edited)
    check_compatible(base, edited)
    # writing a default explicitly is the same experiment
    explicit = load_spec(write(tmp_path, BASE + "hidden: 64\n", "c.yaml"))
    check_compatible(base, explicit)
    # epochs raised or lowered: the same experiment, its runs extended or kept (same ids)
    longer = load_spec(write(tmp_path, BASE.replace("epochs: 100", "epochs: 200"), "d.yaml"))
    check_compatible(base, longer)
    assert [r.run_id for r in longer.runs()] == [r.run_id for r in base.runs()]
    # a fixed field changed
    other = load_spec(write(tmp_path, BASE.replace("gamma: [0.99, 0.999]", "gamma: [0.99]")
                            .replace("value_iters: 80", "value_iters: 40"), "e.yaml"))  # fmt: skip
    with pytest.raises(SpecError, match="value_iters"):
        check_compatible(base, other)
    # a grid key added
    added = load_spec(
        write(tmp_path, BASE.replace("grid:\n", "grid:\n  hidden: [32, 64]\n"), "f.yaml")
    )
    with pytest.raises(SpecError, match=r"grid\.hidden"):
        check_compatible(base, added)
    key = experiment_key(base)
    assert key["grid_keys"] == ["gamma", "lam", "policy_lr", "value_lr"]
    assert "gamma" not in key["fixed"] and key["fixed"]["hidden"] == 64
    json.dumps(key)  # plain data


def test_spec_module_loads_no_torch_or_ray() -> None:
    code = (
        "import sys; import runner.spec; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_seed_bounds_are_usable_end_to_end(tmp_path: Path) -> None:
    """The largest seed the spec accepts (2**63 - 1) and 0 train, checkpoint (an int64
    tensor in checkpoint.pt) and resume; one past it is refused (above)."""
    import itertools

    from a2c_core import A2CConfig, train
    from runner.spec import MAX_SEED
    from runner.store import Store

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nseeds: [0, {MAX_SEED}]\n")
    assert load_spec(path).seeds == [0, MAX_SEED]
    cfg = A2CConfig(num_envs=2, steps_per_epoch=32, value_iters=1, epochs=2)
    for seed in (0, MAX_SEED):
        recs = list(itertools.islice(train(cfg, seed, checkpoint_when=lambda r, e: True), 1))
        store = Store(tmp_path / "results", "t")
        rid = "0123456789ab"
        store.write_checkpoint(rid, recs[0].checkpoint)
        back = store.read_checkpoint(rid)
        assert int(back["seed"]) == seed
        again = next(iter(train(cfg, seed, resume=back)))
        assert again.epoch == 2


def test_knob_defaults_leave_run_ids_of_earlier_runs_unchanged(tmp_path: Path) -> None:
    """Fields added by the knobs enter a run id only when set: at their defaults the id is
    the one computed from the first release's fields alone (published results keep theirs)."""
    import hashlib
    import json

    from a2c_core.config import LATER_FIELDS
    from a2c_core.spec import run_id

    config = A2CConfig(env="CartPoleSwingUp-v0", policy_lr=0.01, gamma=0.999)
    first = {k: v for k, v in config.to_dict().items() if k not in LATER_FIELDS + ("epochs",)}
    for k in ("policy_lr", "value_lr", "gamma", "lam"):
        first[k] = float(first[k])
    text = json.dumps({"config": first, "seed": 7}, sort_keys=True, separators=(",", ":"))
    assert run_id(config, 7) == hashlib.sha256(text.encode()).hexdigest()[:12]
    # and the published reference runs are found under their ids
    for folder in (REPO / "results" / "reference" / "swingup" / "runs").iterdir():
        data = json.loads((folder / "config.json").read_text())
        assert run_id(A2CConfig.from_dict(data["config"]), data["seed"]) == folder.name
    # a knob that is set changes the id; spellings of one value do not
    ids = {
        run_id(A2CConfig(**kw), 7)
        for kw in (
            {},
            {"entropy_coef": 0.01},
            {"max_grad_norm": 0.5},
            {"obs_norm": True},
            {"policy_hidden": [64]},
            {"policy_hidden": []},
            {"value_hidden": [64, 64]},
            {"activation": "relu"},
            {"value_activation": "tanh"},
            {"init_log_std": -0.5},
        )
    }
    assert len(ids) == 10
    assert run_id(A2CConfig(max_grad_norm=1), 7) == run_id(A2CConfig(max_grad_norm=1.0), 7)
    assert run_id(A2CConfig(policy_hidden=[8, 8]), 7) == run_id(A2CConfig(policy_hidden=(8, 8)), 7)


def test_knobs_in_a_grid(tmp_path: Path) -> None:
    text = (MINIMAL + "env: CartPole-v1\ngrid:\n  policy_hidden: [[], [64], [64, 64]]\n"
            "  max_grad_norm: [null, 0.5]\n  obs_norm: [false, true]\n")  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(text)
    sweep = load_spec(path)
    runs = sweep.runs()
    assert len(runs) == 12 and len({r.run_id for r in runs}) == 12
    assert {r.config.policy_hidden for r in runs} == {(), (64,), (64, 64)}
    assert {r.config.max_grad_norm for r in runs} == {None, 0.5}
    # a value reaches config.json as a list and comes back as the same config
    cfg = runs[-1].config
    assert A2CConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_spellings_of_one_network_are_distinct_runs_and_idle_knobs_are_warned(
    tmp_path: Path,
) -> None:
    """null and [64] (the same value net) are two grid values, so two run ids: never one id
    for two grid points (a relaunch would find one run's folder holding two runs)."""
    from a2c_core.spec import inexact_resume_warnings, run_id

    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL + "grid:\n  value_hidden: [null, [64]]\n")
    runs = load_spec(path).runs()
    assert len({r.run_id for r in runs}) == 2
    assert run_id(A2CConfig(value_hidden=[64]), 3) != run_id(A2CConfig(), 3)
    path.write_text(MINIMAL + "hidden: 32\npolicy_hidden: [8]\ngrid:\n  value_hidden: [[8]]\n")
    assert inexact_resume_warnings(load_spec(path))[0].startswith("hidden: has no effect")
    path.write_text(MINIMAL + "policy_hidden: []\ngrid:\n  activation: [tanh, relu]\n")
    lines = inexact_resume_warnings(load_spec(path))
    assert lines == ["activation: has no effect: policy_hidden is [] (no hidden layer)"]
    path.write_text(MINIMAL + "grid:\n  policy_hidden: [[], [8]]\n  activation: [tanh, relu]\n")
    assert inexact_resume_warnings(load_spec(path)) == []
