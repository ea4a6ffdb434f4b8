"""An independent A2C + GAE in plain torch, to check a swing-up finding of the sweep tool.

Written from the algorithm's description, not from a2c_core: torch autograd and
``torch.distributions`` instead of hand-written gradients, ``torch.optim.Adam``, one
gymnasium env object per parallel env stepped in a Python loop (reset on termination or
truncation, the final observation kept to bootstrap a truncated episode), torch's own RNG.
Each epoch, as the article: T steps of N envs; discounted returns bootstrapped with V at
truncations and at the rollout end as the value targets; ``value_iters`` full-batch Adam
steps of the value net; GAE(gamma, lambda) with the fitted net, normalised; one Adam step
of the policy on -mean(A log pi) - c * entropy; gradients clipped with
``torch.nn.utils.clip_grad_norm_``; observations normalised with running statistics updated
after each epoch (``obs_norm``).

The configuration comes from a sweep file's fixed keys (no grid), e.g.

    python bench/torch_a2c.py sweeps/swingup_best.yaml --seeds 8 --start 500

It prints each seed's final score (mean return over the last 10 % of epochs, the sweep
tool's definition) and the share of seeds stuck below 0 and above 200. Its numbers are not
comparable seed by seed with a2c_core's (other generators), only as a distribution.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh() if activation == "tanh" else nn.ReLU())
    return nn.Sequential(*layers)


class RunningStats:
    def __init__(self, dim: int):
        self.count, self.mean, self.var = 0.0, np.zeros(dim), np.ones(dim)

    def update(self, batch: np.ndarray) -> None:
        n = batch.shape[0]
        b_mean, b_var = batch.mean(0), batch.var(0)
        total = self.count + n
        delta = b_mean - self.mean
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / total) / total
        self.mean = self.mean + delta * n / total
        self.count = total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.count == 0:
            return x
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10, 10)


def train_one(cfg: dict, seed: int) -> list[float]:
    """Mean episode return of every epoch of one run."""
    import a2c_core.envs.swingup as swingup

    swingup.register_envs()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    envs = [gym.make(cfg["env"]) for _ in range(cfg["num_envs"])]
    obs = np.stack([e.reset(seed=seed * 1000 + i)[0] for i, e in enumerate(envs)])
    obs_dim = obs.shape[1]
    box = isinstance(envs[0].action_space, gym.spaces.Box)
    act_dim = envs[0].action_space.shape[0] if box else int(envs[0].action_space.n)
    hidden = cfg.get("policy_hidden")
    if hidden is None:
        hidden = [cfg.get("hidden", 64)] if box else []
    policy = mlp([obs_dim, *hidden, act_dim], cfg.get("activation", "tanh"))
    value_hidden = cfg.get("value_hidden") or [cfg.get("hidden", 64)]
    value = mlp([obs_dim, *value_hidden, 1], cfg.get("value_activation", "relu"))
    log_std = nn.Parameter(torch.full((act_dim,), float(cfg.get("init_log_std", 0.0))))
    pol_params = list(policy.parameters()) + ([log_std] if box else [])
    pol_opt = torch.optim.Adam(pol_params, lr=cfg["policy_lr"])
    val_opt = torch.optim.Adam(value.parameters(), lr=cfg["value_lr"])
    stats = RunningStats(obs_dim) if cfg.get("obs_norm") else None
    norm = stats if stats is not None else (lambda x: x)
    clip = cfg.get("max_grad_norm")
    gamma, lam, T, N = cfg["gamma"], cfg["lam"], cfg["steps_per_epoch"], cfg["num_envs"]
    ep_ret = np.zeros(N)
    curve = []

    def dist(x: torch.Tensor):
        out = policy(x)
        if box:
            return torch.distributions.Normal(out, log_std.exp())
        return torch.distributions.Categorical(logits=out)

    for _epoch in range(cfg["epochs"]):
        raw_obs = np.zeros((T, N, obs_dim), np.float32)
        acts = np.zeros((T, N, act_dim) if box else (T, N), np.float32 if box else np.int64)
        rews, terms, ends = np.zeros((T, N)), np.zeros((T, N), bool), np.zeros((T, N), bool)
        finals: list[tuple[int, int, np.ndarray]] = []
        returns = []
        for t in range(T):
            raw_obs[t] = obs
            with torch.no_grad():
                a = dist(torch.as_tensor(norm(obs), dtype=torch.float32)).sample().numpy()
            acts[t] = a
            for i, env in enumerate(envs):
                action = np.clip(a[i], env.action_space.low, env.action_space.high) if box \
                    else int(a[i])  # fmt: skip
                o, r, term, trunc, _ = env.step(action)
                rews[t, i], terms[t, i], ends[t, i] = r, term, term or trunc
                ep_ret[i] += r
                if term or trunc:
                    returns.append(ep_ret[i])
                    ep_ret[i] = 0.0
                    if trunc and not term:
                        finals.append((t, i, o))
                    o, _ = env.reset()
                obs[i] = o
        curve.append(float(np.mean(returns)) if returns else math.nan)

        x = torch.as_tensor(norm(raw_obs.reshape(-1, obs_dim)), dtype=torch.float32)

        nxt, _ = successors(value, norm, raw_obs, obs, finals)
        target = np.zeros((T, N))
        running = nxt[-1].copy()
        for t in range(T - 1, -1, -1):
            boot = np.where(ends[t], np.where(terms[t], 0.0, nxt[t]), running)
            running = rews[t] + gamma * boot
            target[t] = running
        y = torch.as_tensor(target.reshape(-1), dtype=torch.float32)
        for _ in range(cfg["value_iters"]):
            val_opt.zero_grad()
            loss = ((value(x)[:, 0] - y) ** 2).mean()
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(value.parameters(), clip)
            val_opt.step()
        nxt, v = successors(value, norm, raw_obs, obs, finals)
        adv = np.zeros((T, N))
        carry = np.zeros(N)
        for t in range(T - 1, -1, -1):
            delta = rews[t] + gamma * np.where(terms[t], 0.0, nxt[t]) - v[t]
            carry = delta + gamma * lam * np.where(ends[t], 0.0, carry)
            adv[t] = carry
        a_t = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
        if cfg.get("normalize_advantages", True):
            a_t = (a_t - a_t.mean()) / (a_t.std(unbiased=False) + 1e-8)
        d = dist(x)
        logp = d.log_prob(torch.as_tensor(acts.reshape((T * N, -1) if box else (-1,))))
        if box:
            logp = logp.sum(-1)
        entropy = d.entropy().sum(-1).mean() if box else d.entropy().mean()
        pol_opt.zero_grad()
        (-(a_t * logp).mean() - cfg.get("entropy_coef", 0.0) * entropy).backward()
        if clip:
            nn.utils.clip_grad_norm_(pol_params, clip)
        pol_opt.step()
        if stats is not None:
            stats.update(raw_obs.reshape(-1, obs_dim).astype(np.float64))
    return curve


def successors(value: nn.Module, norm, raw_obs: np.ndarray, obs: np.ndarray,
               finals: list) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(V of each step's true successor [T, N], V(s_t) [T, N]) with the current value net."""
    steps, envs, obs_dim = raw_obs.shape

    def values_of(arr: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return value(torch.as_tensor(norm(arr), dtype=torch.float32))[..., 0].numpy()

    v = values_of(raw_obs.reshape(-1, obs_dim)).reshape(steps, envs)
    nxt = np.zeros((steps, envs))
    nxt[:-1] = v[1:]
    nxt[-1] = values_of(obs)
    for t, i, o in finals:
        nxt[t, i] = values_of(o[None])[0]
    return nxt, v


def final_score(curve: list[float]) -> float:
    k = max(1, math.ceil(0.1 * len(curve)))
    tail = [c for c in curve[-k:] if not math.isnan(c)]
    return statistics.fmean(tail) if tail else math.nan


def _job(args: tuple[dict, int]) -> tuple[int, float, float]:
    cfg, seed = args
    t0 = time.perf_counter()
    score = final_score(train_one(cfg, seed))
    return seed, score, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sweep", help="sweep YAML whose fixed keys give the configuration")
    parser.add_argument("--seeds", type=int, default=8, help="number of seeds (8)")
    parser.add_argument("--start", type=int, default=0, help="first seed (0)")
    parser.add_argument("--epochs", type=int, default=None, help="override epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="override T")
    parser.add_argument("--procs", type=int, default=os.cpu_count(), help="processes (all CPUs)")
    args = parser.parse_args(argv)
    from a2c_core.spec import load_spec

    sweep = load_spec(args.sweep)
    if sweep.grid:
        parser.error(f"{args.sweep}: has a grid; give a file with one configuration")
    cfg = next(sweep.iter_configs())[1].to_dict()
    cfg.update({k: v for k, v in (("epochs", args.epochs),
                                  ("steps_per_epoch", args.steps_per_epoch)) if v})  # fmt: skip
    knobs = {k: v for k, v in cfg.items() if k not in ("dtype",)}
    print(f"torch A2C (independent of a2c_core), {args.seeds} seeds from {args.start}: {knobs}")
    jobs = [(cfg, args.start + i) for i in range(args.seeds)]
    results = []
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        for seed, score, wall in pool.imap_unordered(_job, jobs):
            results.append((seed, score, wall))
            done = len(results)
            eta = (time.perf_counter() - start) / done * (len(jobs) - done)
            print(f"  [{done}/{len(jobs)}] seed {seed}: final score {score:.1f} ({wall:.0f} s); "
                  f"ETA {eta:.0f} s",
                  flush=True)  # fmt: skip
    results.sort()
    scores = [s for _, s, _ in results]
    for seed, score, wall in results:
        print(f"  seed {seed}: final score {score:8.1f}   ({wall:.0f} s)")
    print(f"stuck below 0: {sum(s < 0 for s in scores)} of {len(scores)}; above 200: "
          f"{sum(s > 200 for s in scores)} of {len(scores)}; median {statistics.median(scores):.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
