"""Time to solve: a2c-sweep against Stable-Baselines3's A2C, as each is used.

Per task, on one core (every child process single-threaded: BLAS, numba and torch threads 1;
the children run one after the other, never side by side):

- (a) **a2c-sweep**: the task's published configuration (``CONFIGS``, the winner of a sweep made
  with the tool and ranked by ``--pick``: ``sweeps/cartpole_v1_fast.yaml``,
  ``sweeps/acrobot_fast.yaml``), all N seeds as ONE
  pack in ONE process (``a2c_core.train_pack``), as a sweep runs them;
- (b) **Stable-Baselines3 2.9.2 A2C** with rl-baselines3-zoo's hyperparameters for the task
  (``SB3_ZOO``; source: DLR-RM/rl-baselines3-zoo, ``hyperparams/a2c.yml``), ONE process per
  seed, as users launch it (``make_vec_env`` + ``A2C('MlpPolicy', ...).learn``).

Solved: the mean return of the seed's last 100 finished episodes reaches the threshold
(CartPole-v1 475, Acrobot-v1 -100: gymnasium's reward thresholds). SB3: over exactly its
last 100 episodes (Monitor). a2c-sweep reports per epoch, so it is judged on its most recent
whole epochs holding at least 100 episodes, episode-weighted (at least as strict: the window
is never shorter). Each run stops when solved or at the env-step budget (the zoo's
``n_timesteps``, 500 k for both tasks).

Reported per system: seeds solved out of N within the budget; median env steps to the
threshold; median training seconds to the threshold per solved seed (a2c-sweep: the pack's
training time until its last seed solved, divided by the seeds it solved, since the pack
trains them together on one core); end to end per solved seed (process launches, imports and
set-up included: the a2c-sweep process from launch until its last seed solved, divided by
the seeds solved; SB3's processes summed likewise); env steps/s during training. Ratios are
SB3 / a2c-sweep. Timings move by 10-20 % on this shared machine: compare the ratios.
"""

from __future__ import annotations

import os

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")  # fmt: skip
os.environ.update(dict.fromkeys(THREAD_ENV_VARS, "1"))

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
BUDGET_STEPS = {"CartPole-v1": 500_000, "Acrobot-v1": 500_000}  # the zoo's n_timesteps
WINDOW = 100  # episodes

# (a): the best configuration of each task's published sweep (docs/results.md)
CONFIGS = {
    "CartPole-v1": dict(env="CartPole-v1", num_envs=8, steps_per_epoch=128, value_iters=10,
                        policy_lr=0.1, value_lr=0.03, gamma=0.99, lam=0.95),
    "Acrobot-v1": dict(env="Acrobot-v1", num_envs=8, steps_per_epoch=128, value_iters=20,
                       policy_lr=0.1, value_lr=0.03, gamma=0.99, lam=0.95),
}  # fmt: skip
# (b): rl-baselines3-zoo hyperparams/a2c.yml (every other A2C argument at SB3's default:
# learning_rate 7e-4 RMSprop, n_steps 5, gamma 0.99, gae_lambda 1.0, vf_coef 0.5,
# max_grad_norm 0.5, MlpPolicy 64x64 tanh). normalize: VecNormalize with its defaults, as the
# zoo's `normalize: true` applies in training.
SB3_ZOO = {
    "CartPole-v1": dict(n_envs=8, ent_coef=0.0, normalize=False),
    "Acrobot-v1": dict(n_envs=16, ent_coef=0.0, normalize=True),
}


def _solved(window_returns: list[tuple[int, float]], threshold: float) -> bool:
    """(episodes, mean return) of recent epochs, newest last: the newest whole epochs holding
    at least WINDOW episodes, episode-weighted, reach ``threshold``."""
    total, weighted = 0, 0.0
    for count, mean in reversed(window_returns):
        if count == 0:
            continue
        total += count
        weighted += count * mean
        if total >= WINDOW:
            return weighted / total >= threshold
    return False


def worker_a2c(task: str, seeds: list[int], budget: int) -> dict:
    t_start = time.time()
    from a2c_core import A2CConfig, train_pack

    cfg = A2CConfig(**CONFIGS[task], epochs=budget // (CONFIGS[task]["num_envs"]
                                                         * CONFIGS[task]["steps_per_epoch"]))  # fmt: skip
    threshold = THRESHOLDS[task]
    history: list[list[tuple[int, float]]] = [[] for _ in seeds]
    solved: dict[int, dict] = {}
    t_train = time.perf_counter()
    t_imports = time.time()
    steps = 0
    for rec in train_pack([cfg] * len(seeds), seeds):
        history[rec.run].append((rec.episodes, rec.return_mean))
        steps = max(steps, rec.env_steps)
        if rec.run not in solved and _solved(history[rec.run], threshold):
            solved[rec.run] = {"env_steps": rec.env_steps, "epoch": rec.epoch,
                               "train_s": time.perf_counter() - t_train, "wall": time.time()}  # fmt: skip
        if len(solved) == len(seeds):
            break
    train_s = time.perf_counter() - t_train
    return {"t_start": t_start, "t_imports": t_imports, "train_s": train_s,
            "env_steps_total": steps * len(seeds),
            "solved": {str(seeds[r]): v for r, v in solved.items()}}  # fmt: skip


def worker_sb3(task: str, seed: int, budget: int) -> dict:
    t_start = time.time()
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    hp = SB3_ZOO[task]
    threshold = THRESHOLDS[task]
    env = make_vec_env(task, n_envs=hp["n_envs"], seed=seed)
    if hp["normalize"]:
        env = VecNormalize(env)
    model = A2C("MlpPolicy", env, ent_coef=hp["ent_coef"], seed=seed, device="cpu", verbose=0)
    result: dict = {}

    class Stop(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
            recent = self.returns[-WINDOW:]
            if len(recent) == WINDOW and float(np.mean(recent)) >= threshold:
                result.update(env_steps=self.num_timesteps, train_s=time.perf_counter() - t0,
                              wall=time.time())  # fmt: skip
                return False
            return True

    t_imports = time.time()
    t0 = time.perf_counter()
    model.learn(total_timesteps=budget, callback=Stop())
    train_s = time.perf_counter() - t0
    return {"t_start": t_start, "t_imports": t_imports, "train_s": train_s,
            "env_steps_total": int(model.num_timesteps), "solved": result or None}  # fmt: skip


def pick(results: str, task: str, calib_epochs: int = 4) -> int:
    """Rank a published sweep's configurations by training seconds to the threshold: per run,
    the first epoch at which the solved rule holds (``_solved``, on its returns.csv rows);
    per configuration, one run timed here for ``calib_epochs`` epochs (one core) gives its
    seconds per epoch; objective = median over seeds of (epochs to solve x s per epoch),
    only for configurations that solve every seed. Prints the table, best first."""
    from a2c_core import A2CConfig, train
    from analysis.load import load

    frame = load(results)
    threshold = THRESHOLDS[task]
    rows = []
    for _config_id, runs in frame.groupby("config_id", sort=False):
        epochs_to_solve = []
        for _run_id, run in runs.groupby("run_id", sort=False):
            run = run.sort_values("epoch")
            history: list[tuple[int, float]] = []
            hit = None
            for ep, count, mean in zip(run["epoch"], run["episodes"], run["return_mean"],
                                       strict=True):  # fmt: skip
                history.append((int(count), float(mean)))
                if _solved(history, threshold):
                    hit = int(ep)
                    break
            epochs_to_solve.append(hit)
        meta = Path(results, "runs", runs["run_id"].iloc[0], "config.json").read_text()
        config = json.loads(meta)["config"]
        rows.append((config, epochs_to_solve))
    timed = []
    for config, hits in rows:
        if any(h is None for h in hits):
            timed.append((float("inf"), config, hits, float("nan")))
            continue
        cfg = A2CConfig.from_dict({**config, "epochs": calib_epochs + 1})
        stamps = [time.perf_counter() for _ in train(cfg, 0)]
        per_epoch = (stamps[-1] - stamps[0]) / calib_epochs  # epoch 1 (warm-up) excluded
        timed.append((statistics.median(hits) * per_epoch, config, hits, per_epoch))
    timed.sort(key=lambda r: r[0])
    keys = sorted(
        {k for _, c, _, _ in timed for k in c if len({str(t[1].get(k)) for t in timed}) > 1}
    )
    print(f"{results}: configurations by training s to the threshold (one core)")
    print("| " + " | ".join(keys) + " | epochs to solve (seeds) | s per epoch | est. s to solve |")
    print("|" + " --- |" * (len(keys) + 3))
    for est, config, hits, per_epoch in timed:
        vals = " | ".join(str(config[k]) for k in keys)
        print(f"| {vals} | {hits} | {per_epoch:.4f} | {est:.2f} |")
    return 0


def _child(args: list[str]) -> tuple[dict, float, float]:
    """Run a worker in a fresh process; returns (its report, launch time, exit time)."""
    launched = time.time()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False, cwd=ROOT)  # fmt: skip
    ended = time.time()
    if out.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), launched, ended


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_task(task: str, seeds: list[int], budget: int) -> dict:
    rows = {}
    rep, launched, _ = _child(["--worker", "a2c", "--task", task, "--budget", str(budget),
                               "--seeds", ",".join(map(str, seeds))])  # fmt: skip
    solved = list(rep["solved"].values())
    n = len(solved)
    last = max(solved, key=lambda s: s["train_s"]) if solved else None
    rows["a2c-sweep"] = {
        "solved": n,
        "steps": _median([s["env_steps"] for s in solved]),
        "train_per_seed": last["train_s"] / n if last else float("nan"),
        "e2e_per_seed": (last["wall"] - launched) / n if last else float("nan"),
        "steps_per_s": rep["env_steps_total"] / rep["train_s"],
        "start_s": rep["t_imports"] - launched,
    }
    sb3 = []
    for seed in seeds:
        rep, launched, ended = _child(["--worker", "sb3", "--task", task, "--budget",
                                       str(budget), "--seeds", str(seed)])  # fmt: skip
        sb3.append((rep, launched, ended))
    done = [(r, la) for r, la, _ in sb3 if r["solved"]]
    e2e_total = sum((r["solved"]["wall"] - la) for r, la in done)
    rows["SB3 A2C (zoo)"] = {
        "solved": len(done),
        "steps": _median([r["solved"]["env_steps"] for r, _ in done]),
        "train_per_seed": _median([r["solved"]["train_s"] for r, _ in done]),
        "e2e_per_seed": e2e_total / len(done) if done else float("nan"),
        "steps_per_s": sum(r["env_steps_total"] for r, _, _ in sb3)
        / sum(r["train_s"] for r, _, _ in sb3),
        "start_s": _median([r["t_imports"] - la for r, la, _ in sb3]),
    }
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="CartPole-v1,Acrobot-v1")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (N >= 5)")
    ap.add_argument("--budget", type=int, default=None, help="env steps per seed (the zoo's)")
    ap.add_argument("--smoke", action="store_true", help="CI: tiny budget, 2 seeds, one task")
    ap.add_argument(
        "--pick",
        metavar="RESULTS/NAME",
        help="rank a sweep's configurations by "
        "training seconds to the threshold of --tasks (one task) and exit",
    )
    ap.add_argument("--worker", choices=["a2c", "sb3"], help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.worker:
        fn = worker_a2c if args.worker == "a2c" else worker_sb3
        report = fn(args.task, seeds if args.worker == "a2c" else seeds[0], args.budget)
        print(json.dumps(report))
        return 0
    tasks = args.tasks.split(",")
    if args.pick:
        return pick(args.pick, tasks[0])
    if args.smoke:
        tasks, seeds = tasks[:1], seeds[:2]
    unknown = [t for t in tasks if t not in THRESHOLDS]
    if unknown:
        ap.error(f"--tasks: unknown task {unknown[0]!r}; expected one of {sorted(THRESHOLDS)}")
    import importlib.metadata as md

    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
          f"a2c-sweep vs stable-baselines3 {md.version('stable-baselines3')}, torch "
          f"{md.version('torch')}; one core, threads 1; seeds {seeds}")  # fmt: skip
    for task in tasks:
        budget = 20_000 if args.smoke else (args.budget or BUDGET_STEPS[task])
        rows = bench_task(task, seeds, budget)
        print(f"\n{task}: threshold {THRESHOLDS[task]:g} (mean of the last {WINDOW} "
              f"episodes), budget {budget:,} env steps per seed, N = {len(seeds)}")  # fmt: skip
        print(
            "| system | solved | median env steps to threshold | training s per solved "
            "seed | end-to-end s per solved seed | env steps/s (training) | process start s |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in rows.items():
            print(f"| {name} | {r['solved']}/{len(seeds)} | {r['steps']:,.0f} | "
                  f"{r['train_per_seed']:.3f} | {r['e2e_per_seed']:.2f} | "
                  f"{r['steps_per_s']:,.0f} | {r['start_s']:.2f} |")  # fmt: skip
        a, b = rows["a2c-sweep"], rows["SB3 A2C (zoo)"]
        print(f"ratios SB3 / a2c-sweep: training per solved seed "
              f"{b['train_per_seed'] / a['train_per_seed']:.1f}x, end to end "
              f"{b['e2e_per_seed'] / a['e2e_per_seed']:.1f}x, env steps to threshold "
              f"{b['steps'] / a['steps']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
