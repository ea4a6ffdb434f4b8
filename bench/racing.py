"""Racing's payoff: a grid with and without racing (same seeds), side by side in one run.

Runs the raced sweep (default sweeps/cartpole_v0_grid_race.yaml) and the same sweep with its
``racing:`` block removed, one after the other, each under its own fresh results root (their
runs share run ids: under one root the second would copy the first's finished runs), on the
embedded local Ray, and prints:

- run-epochs trained, wall time of the command and time in training, for both;
- the ranking's top configurations of both (IQM of final scores, `a2c-sweep analyze`'s rule);
- whether the best configuration is the same, and whether the configurations whose median
  final score reaches --solved (195 on CartPole-v0) are the same set;
- that the raced sweep's decisions are the ones runner.racing.simulate replays from the
  unraced rows (racing never changes what a run computes, so they must be).

``--replay DIR`` instead replays racing over a finished sweep trained without racing (no
training; exact, by the same argument): what it would stop, at which rung, and the run-epochs
it would spare (``--racing`` options override the sweep's own block, or the defaults);
``--winner "k=v,..."`` says whether that configuration survives (e.g. the swing-up grid's
refined winner). ``--quick`` cuts the sweep to a smoke test (CI).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2c_core.results import read_returns  # noqa: E402
from a2c_core.spec import _parse_racing, load_spec  # noqa: E402
from runner.racing import RunRows, config_key, config_label, simulate  # noqa: E402


def run_rows(results_dir: Path) -> tuple[object, dict[str, RunRows]]:
    """The sweep on disk and what racing reads of each of its runs."""
    import json

    sweep = load_spec(results_dir / "sweep.yaml")
    out = {}
    for r in sweep.runs():
        d = results_dir / "runs" / r.run_id
        st = json.loads((d / "status.json").read_text())
        rows = read_returns(d / "returns.csv").rows
        out[r.run_id] = RunRows(config_key(r.swept), [float(x["return_mean"]) for x in rows],
                                st["state"], st.get("rung"))  # fmt: skip
    return sweep, out


def ranking(results_dir: Path):
    from analysis import aggregate
    from analysis.load import load

    scores = aggregate.final_scores(load(results_dir), "return_mean")
    return scores, aggregate.ranking(scores, n_resamples=2000)


def solved_set(scores, threshold: float) -> set[str]:
    done = scores[scores["state"] == "done"]
    medians = done.groupby("config")["final_score"].median()
    return {c for c, m in medians.items() if m >= threshold}


def launch(spec: dict, root: Path) -> tuple[float, float, int]:
    """(wall s of the launch, s in training, run-epochs trained) of one sweep."""
    from runner import run_sweep

    t0 = time.monotonic()
    res = run_sweep(spec, root, log=None)
    wall = time.monotonic() - t0
    if not res.ok:
        raise SystemExit(f"sweep {spec['name']} did not finish: {res.counts}")
    epochs = sum(len(rr.returns) for rr in run_rows(root / spec["name"])[1].values())
    return wall, res.train_s, epochs


def quick(spec: dict) -> dict:
    """A smoke-sized copy: 2 x 2 configurations, 3 seeds, tiny epochs."""
    spec = {**spec, "num_envs": 2, "steps_per_epoch": 256, "value_iters": 5, "epochs": 12}
    spec["grid"] = {"policy_lr": [0.1, 0.001], "value_lr": [0.1, 0.01]}
    spec["seeds"] = [1, 2, 3]
    spec["racing"] = {**spec.get("racing", {}), "rungs": [4], "keep_top": 1}
    return spec


def compare(args) -> int:
    raced_spec = yaml.safe_load(Path(args.sweep).read_text())
    if "racing" not in raced_spec:
        raise SystemExit(f"{args.sweep}: no racing block")
    if args.quick:
        raced_spec = quick(raced_spec)
    plain_spec = {k: v for k, v in raced_spec.items() if k != "racing"}
    plain_spec["name"] = raced_spec["name"] + "-plain"
    tmp = Path(tempfile.mkdtemp(prefix="bench-racing-"))
    try:
        print(f"raced sweep {raced_spec['name']} ...", flush=True)
        r_wall, r_train, r_epochs = launch(raced_spec, tmp / "raced")
        print(f"unraced sweep {plain_spec['name']} ...", flush=True)
        p_wall, p_train, p_epochs = launch(plain_spec, tmp / "plain")
        raced_dir, plain_dir = (
            tmp / "raced" / raced_spec["name"],
            tmp / "plain" / plain_spec["name"],
        )
        r_scores, r_rank = ranking(raced_dir)
        p_scores, p_rank = ranking(plain_dir)
        sweep, raced_rows = run_rows(raced_dir)
        _, plain_rows = run_rows(plain_dir)
        sim = simulate(plain_rows, sweep.racing)
        actual = {r.config: r.stopped_at for r in raced_rows.values() if r.state == "stopped"}
        stopped_configs = len(actual)
        print()
        print("| sweep | configurations trained to the end | run-epochs | wall s | "
              "training s |")  # fmt: skip
        print("|---|---|---|---|---|")
        n_cfg = len({r.config for r in plain_rows.values()})
        print(f"| unraced | {n_cfg} | {p_epochs} | {p_wall:.0f} | {p_train:.0f} |")
        print(f"| raced | {n_cfg - stopped_configs} | {r_epochs} ({r_epochs / p_epochs:.0%}) | "
              f"{r_wall:.0f} ({r_wall / p_wall:.0%}) | {r_train:.0f} ({r_train / p_train:.0%}) |")  # fmt: skip
        print()
        for name, rank in (("unraced", p_rank), ("raced", r_rank)):
            print(f"top {args.top} {name}:")
            for _, row in rank.head(args.top).iterrows():
                print(f"  {int(row['rank'])}. {row['config']}: IQM {row['iqm']:.1f} "
                      f"[{row['ci_low']:.1f}, {row['ci_high']:.1f}]")  # fmt: skip
        same_best = p_rank.iloc[0]["config"] == r_rank.iloc[0]["config"]
        p_solved, r_solved = solved_set(p_scores, args.solved), solved_set(r_scores, args.solved)
        print(f"same best configuration: {'yes' if same_best else 'NO'}")
        print(f"configurations whose median final score reaches {args.solved:g}: "
              f"unraced {len(p_solved)}, raced {len(r_solved)}, "
              f"{'the same set' if p_solved == r_solved else 'DIFFERENT sets'}")  # fmt: skip
        replay_ok = sim.stopped_at == actual and sim.run_epochs == r_epochs
        print(f"decisions equal the replay over the unraced rows: {'yes' if replay_ok else 'NO'}")
        if args.keep:
            dest = Path(args.keep) / raced_spec["name"]
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(raced_dir, dest, ignore=shutil.ignore_patterns(".lock", "*.pt"))
            print(f"raced results kept in {dest} (without checkpoints and policies)")
        ok = same_best and p_solved == r_solved and replay_ok
        return 0 if ok or args.quick else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replay(args) -> int:
    results = Path(args.replay)
    sweep, rows = run_rows(results)
    raced = sum(1 for r in rows.values() if r.state == "stopped")
    unfinished = sum(1 for r in rows.values() if r.state not in ("done", "diverged", "failed"))
    if raced or unfinished:
        what = f"{raced} of its runs were stopped by racing" if raced else (
            f"{unfinished} of its runs are not finished")  # fmt: skip
        raise SystemExit(f"--replay {results}: {what}; a replay needs every run's rows to the "
                         "end (a sweep trained without racing)")  # fmt: skip
    epochs = sweep.fixed.get("epochs") or 100
    block = sweep.raw.get("racing") or {}  # the sweep's own racing, if any ...
    block = {} if block is True else dict(block)
    if args.racing:  # ... with these options over it
        extra = yaml.safe_load(args.racing)
        if not isinstance(extra, dict):
            raise SystemExit(f"--racing: expected a mapping of racing options, got {extra!r}")
        block.update(extra)

    def err(key: str, problem: str):
        raise SystemExit(f"--racing: {key}: {problem}")

    spec = _parse_racing(block, epochs, err)
    sim = simulate(rows, spec)
    labels = {config_key(r.swept): config_label(r.swept) for r in sweep.runs()}
    print(f"replay of racing at epochs {', '.join(map(str, spec.rungs))} over {results}:")
    print(f"  {len(sim.stopped_at)} of {len(labels)} configurations stopped; run-epochs "
          f"{sim.run_epochs} of {sim.full_run_epochs} ({sim.run_epochs / sim.full_run_epochs:.0%})")  # fmt: skip
    for key, label in labels.items():
        at = sim.stopped_at.get(key)
        last = sim.verdicts[at][key] if at else sim.verdicts[spec.rungs[-1]].get(key)
        where = f"stopped at epoch {at}" if at else "kept"
        detail = f"IQM {last.estimate:.1f} [{last.low:.1f}, {last.high:.1f}]" if last and not \
            math.isnan(last.estimate) else ""  # fmt: skip
        print(f"  {label}: {where} {detail}")
    if args.winner:
        want = dict(kv.split("=", 1) for kv in args.winner.split(","))
        hits = [k for k, label in labels.items()
                if all(f"{a}={b}" in label.split(", ") for a, b in want.items())]  # fmt: skip
        if not hits:
            raise SystemExit(f"--winner {args.winner}: no such configuration in {results}")
        kept = all(k not in sim.stopped_at for k in hits)
        print(f"winner {args.winner}: {'kept' if kept else 'STOPPED'}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sweep", default=str(ROOT / "sweeps" / "cartpole_v0_grid_race.yaml"))
    p.add_argument(
        "--solved", type=float, default=195.0, help="median final score that counts as solved"
    )
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--keep", help="copy the raced results (minus .pt files) under this root")
    p.add_argument("--quick", action="store_true", help="smoke-sized sweep (CI)")
    p.add_argument("--replay", help="replay racing over this finished results dir instead")
    p.add_argument("--racing", help="with --replay: racing options as YAML, over the sweep's own "
                   "racing block (or the defaults when it has none), e.g. '{keep_top: 1}'")  # fmt: skip
    p.add_argument("--winner", help='with --replay: "key=value,..." of a configuration to look for')
    args = p.parse_args()
    return replay(args) if args.replay else compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
