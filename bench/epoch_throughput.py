"""Epoch throughput: the reference article's A2C loop vs this project's packed engine.

What is measured (all on one core: one torch thread, one numba thread, single-threaded BLAS):

- (a) the article's loop, re-implemented faithfully in :func:`article_epoch`: float64, 8
  ``copy.deepcopy`` copies of one gymnasium CartPole-v0 env stepped one by one in Python, one
  torch policy call per time step, transitions in Python lists, rewards-to-go and GAE by
  backwards Python loops, 80 full-batch autograd Adam iterations of the value net and one
  policy Adam step. One epoch = T = 4052 steps x 8 envs = 32,416 transitions.
- (b) ``a2c_core.train_pack`` with a pack of 1 run (same epoch size; the engine's default
  float32 dtype).
- (c) ``train_pack`` with packs of P runs (distinct seeds) trained in lock-step.
- (d) the same packs on CartPoleSwingUp-v0 (the article's swing-up settings: gamma 0.999,
  lam 0.99, policy lr 0.01, value lr 0.1; Gaussian policy), and per pack size the ratio of a
  swing-up run-epoch to a CartPole one (the goal: at most 1.3).

Method: one warm-up epoch per configuration first (the engine's first call also loads or
JIT-compiles its numba kernels; that cost is timed separately and printed as "first-call
compile s", once in this process, where numba's on-disk cache may already be warm, and once in
a subprocess with an empty numba cache dir, i.e. a true cold compile). Then ``--repeats``
repeats, each running every configuration in turn (repeat loop outside, configurations
inside, so slow drifts of the machine hit all configurations alike). In a repeat the engine
trains ``--epochs`` epochs; the first is dropped because it includes the pack's setup, the
others are timed with ``time.perf_counter`` between consecutive epoch batches of records. The
article loop times ``--epochs - 1`` epochs per repeat. A repeat's value is the mean epoch time;
the table shows the median over repeats.

How to read the table:

- "s per run-epoch": seconds of one core per epoch of one run (pack epoch time / P).
- "run-epochs/s per core": its inverse; every configuration uses exactly one core, so this is
  also what each core of a machine delivers when one pack runs per core.
- "ratio to (a)": (a)'s s per run-epoch divided by the configuration's, i.e. the speed-up over
  the article's loop (1.00x for (a) itself, larger is faster).

The engine also fixes the article's defects (bootstrapping at truncation and rollout end,
masked autoreset dummies), so it does the same amount of learning work per epoch but not the
identical arithmetic; the comparison is one of throughput, not of numbers.
"""

from __future__ import annotations

import os

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
os.environ.update(dict.fromkeys(THREAD_ENV_VARS, "1"))  # before numpy / torch / numba load

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import gymnasium as gym  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributions import Categorical  # noqa: E402

from a2c_core import A2CConfig, train_pack  # noqa: E402

ENV_ID = "CartPole-v0"
NUM_ENVS = 8
FULL_STEPS = 4052
QUICK_STEPS = 512
FULL_PACKS = (1, 8, 32)
QUICK_PACKS = (1, 2)
GAMMA = 0.99
LAM = 0.95
POLICY_LR = 0.1
VALUE_LR = 0.01
VALUE_ITERS = 80
HIDDEN = 64
PROBE_STEPS = 16  # epoch size of the tiny pack that triggers the numba compile
ARTICLE_LABEL = "(a) article loop"
TABLE_HEADER = "| config | s per run-epoch | run-epochs/s per core | ratio to (a) |"


# ----------------------------------------------------------------------- (a) the article loop


@dataclass
class ArticleState:
    """Everything the article's loop carries from one epoch to the next."""

    envs: list[gym.Env]
    obs: list[np.ndarray]
    policy: nn.Linear
    value: nn.Sequential
    policy_opt: torch.optim.Optimizer
    value_opt: torch.optim.Optimizer
    steps: int


def make_article_state(seed: int, steps: int) -> ArticleState:
    """The article's setup: 8 deep copies of one env, a linear policy, a 64-unit value net."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # gymnasium deprecates CartPole-v0; the article uses it
        warnings.simplefilter("ignore")
        base = gym.make(ENV_ID)
    envs = [copy.deepcopy(base) for _ in range(NUM_ENVS)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    f64 = torch.float64
    policy = nn.Linear(4, 2, dtype=f64)
    value = nn.Sequential(
        nn.Linear(4, HIDDEN, dtype=f64), nn.ReLU(), nn.Linear(HIDDEN, 1, dtype=f64)
    )
    return ArticleState(
        envs=envs,
        obs=obs,
        policy=policy,
        value=value,
        policy_opt=torch.optim.Adam(policy.parameters(), lr=POLICY_LR),
        value_opt=torch.optim.Adam(value.parameters(), lr=VALUE_LR),
        steps=steps,
    )


def article_epoch(state: ArticleState) -> int:
    """One epoch of the article's A2C + GAE loop, float64 throughout.

    Returns the number of episodes that ended (a sanity figure, not used in the timing).
    """
    f64 = torch.float64
    obs_l: list[torch.Tensor] = []
    act_l: list[torch.Tensor] = []
    rew_l: list[list[float]] = []
    done_l: list[list[float]] = []
    episodes = 0
    # rollout: one policy call per time step, the envs stepped one by one
    for _ in range(state.steps):
        obs_t = torch.as_tensor(np.stack(state.obs), dtype=f64)
        with torch.no_grad():
            actions = Categorical(logits=state.policy(obs_t)).sample()
        rewards, dones = [], []
        for i, action in enumerate(actions.tolist()):
            next_obs, reward, terminated, truncated, _ = state.envs[i].step(action)
            done = terminated or truncated
            if done:
                next_obs, _ = state.envs[i].reset()
                episodes += 1
            state.obs[i] = next_obs
            rewards.append(float(reward))
            dones.append(float(done))
        obs_l.append(obs_t)
        act_l.append(actions)
        rew_l.append(rewards)
        done_l.append(dones)
    obs = torch.stack(obs_l)  # [T, N, 4]
    acts = torch.stack(act_l)  # [T, N]
    rews = torch.tensor(rew_l, dtype=f64)  # [T, N]
    dones = torch.tensor(done_l, dtype=f64)
    last_obs = torch.as_tensor(np.stack(state.obs), dtype=f64)
    steps = rews.shape[0]

    # rewards-to-go, backwards over t, cut at episode ends
    rtg = torch.zeros_like(rews)
    running = torch.zeros(NUM_ENVS, dtype=f64)
    for t in range(steps - 1, -1, -1):
        running = rews[t] + GAMMA * running * (1.0 - dones[t])
        rtg[t] = running

    # value fit: full-batch MSE, autograd, Adam
    x = obs.reshape(-1, 4)
    y = rtg.reshape(-1)
    for _ in range(VALUE_ITERS):
        state.value_opt.zero_grad()
        loss = ((state.value(x).squeeze(-1) - y) ** 2).mean()
        loss.backward()
        state.value_opt.step()

    # GAE(gamma, lambda), backwards over t
    with torch.no_grad():
        values = state.value(obs).squeeze(-1)  # [T, N]
        last_value = state.value(last_obs).squeeze(-1)
    adv = torch.zeros_like(rews)
    carry = torch.zeros(NUM_ENVS, dtype=f64)
    for t in range(steps - 1, -1, -1):
        next_value = last_value if t == steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rews[t] + GAMMA * next_value * not_done - values[t]
        carry = delta + GAMMA * LAM * not_done * carry
        adv[t] = carry
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)

    # one full-batch policy step
    logp = Categorical(logits=state.policy(x)).log_prob(acts.reshape(-1))
    policy_loss = -(logp * adv.reshape(-1)).mean()
    state.policy_opt.zero_grad()
    policy_loss.backward()
    state.policy_opt.step()
    return episodes


def time_article(seed: int, steps: int, epochs: int) -> list[float]:
    """Wall seconds of each of ``epochs`` article epochs (setup not timed)."""
    state = make_article_state(seed, steps)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        article_epoch(state)
        times.append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------------------------- (b), (c) the engine


@dataclass
class PackTiming:
    """Per-epoch timings of one ``train_pack`` call (epoch 1, which includes setup, dropped)."""

    gaps: list[float] = field(default_factory=list)
    """perf_counter seconds between the arrival of consecutive epoch batches of records."""
    wall_s: list[float] = field(default_factory=list)
    """the engine's own ``rec.wall_s`` of the same epochs (excludes generator overhead)."""
    short_batches: int = 0
    """epochs where fewer than P records arrived (runs that diverged and left the pack)."""


SWINGUP = dict(env="CartPoleSwingUp-v0", gamma=0.999, lam=0.99, policy_lr=0.01, value_lr=0.1)


KNOB_SHAPES = {
    "default (linear policy; value 64 ReLU, kernel)": {},
    "obs_norm + entropy_coef 0.01 + max_grad_norm 0.5": dict(obs_norm=True, entropy_coef=0.01,
                                                             max_grad_norm=0.5),
    "policy [64] tanh (generic rollout)": dict(policy_hidden=(64,)),
    "policy [64, 64] relu (generic rollout)": dict(policy_hidden=(64, 64), activation="relu"),
    "value [64] tanh (kernel)": dict(value_activation="tanh"),
    "value [64, 64] relu (eager numpy)": dict(value_hidden=(64, 64)),
    "value [64, 64] tanh (eager numpy)": dict(value_hidden=(64, 64), value_activation="tanh"),
    "value [] linear (eager numpy)": dict(value_hidden=()),
    "swing-up default": dict(SWINGUP),
    "swing-up obs_norm + init_log_std 0.5 + entropy 0.01": dict(SWINGUP, obs_norm=True,
                                                                init_log_std=0.5,
                                                                entropy_coef=0.01),
    "swing-up policy [64, 64] relu": dict(SWINGUP, policy_hidden=(64, 64), activation="relu"),
}  # fmt: skip
"""(e) the knobs' shapes (network widths, activations, per-run knobs), CartPole-v0 unless named: cost of a run-epoch against
the default configuration's."""


def time_pack(pack: int, steps: int, epochs: int, seed0: int, swingup: bool = False,
              extra: dict | None = None) -> PackTiming:  # fmt: skip
    """Train a pack of ``pack`` runs for ``epochs`` epochs and time every epoch after the first."""
    fields = extra if extra is not None else SWINGUP if swingup else {}
    config = A2CConfig(epochs=epochs, steps_per_epoch=steps, **fields)
    seeds = [seed0 + i for i in range(pack)]
    timing = PackTiming()
    arrivals: dict[int, float] = {}
    counts: dict[int, int] = {}
    wall: dict[int, float] = {}
    start = time.perf_counter()
    for rec in train_pack([config] * pack, seeds):
        if rec.epoch not in arrivals:  # first record of an epoch batch: the epoch just ended
            arrivals[rec.epoch] = time.perf_counter()
            wall[rec.epoch] = rec.wall_s
        counts[rec.epoch] = counts.get(rec.epoch, 0) + 1
    previous = arrivals.get(1, start)
    for epoch in sorted(arrivals):
        if epoch > 1:
            timing.gaps.append(arrivals[epoch] - previous)
            timing.wall_s.append(wall[epoch])
        previous = arrivals[epoch]
        timing.short_batches += counts[epoch] < pack
    return timing


def probe_first_call() -> tuple[float, float]:
    """Seconds of the first and of the second call of a tiny pack (first = numba load/compile)."""
    config = A2CConfig(epochs=1, steps_per_epoch=PROBE_STEPS)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        for _rec in train_pack([config], [0]):
            pass
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def numba_cache_stats() -> tuple[int, int]:
    """(cache hits, cache misses) summed over the numba kernels a2c_core has loaded."""
    from numba.core.registry import CPUDispatcher

    hits = misses = 0
    for module in [m for name, m in sys.modules.items() if name.startswith("a2c_core")]:
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
    return hits, misses


def cold_compile_seconds() -> float | None:
    """First-call overhead in a fresh interpreter with an empty numba cache dir (true compile)."""
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--jit-probe"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    if out.returncode != 0:
        print(f"cold-compile probe failed (exit {out.returncode}):\n{out.stderr}", file=sys.stderr)
        return None
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return probe["first"] - probe["second"]


# ---------------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.strip().lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_header(argv: Sequence[str]) -> None:
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"numba {numba.__version__}, gymnasium {gym.__version__}"
    )
    print(
        f"threads: torch {torch.get_num_threads()}, numba {numba.config.NUMBA_NUM_THREADS}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(f"command: {shlex.join([sys.executable, *argv])}")


def print_table(labels: Sequence[str], per_run_epoch: dict[str, float]) -> None:
    base = per_run_epoch[ARTICLE_LABEL]
    print(TABLE_HEADER)
    print("| --- | ---: | ---: | ---: |")
    for label in labels:
        s = per_run_epoch[label]
        print(f"| {label} | {s:.4f} | {1.0 / s:.2f} | {base / s:.2f}x |")


# --------------------------------------------------------------------------------------- main


def parse_packs(text: str) -> list[int]:
    try:
        packs = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,8,32, got {text!r}") from exc
    if not packs or any(p <= 0 for p in packs):
        raise argparse.ArgumentTypeError(f"need positive pack sizes, got {text!r}")
    return packs


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument(
        "--packs", type=parse_packs, default=None, help="engine pack sizes (default 1,8,32)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="engine epochs per repeat, the first untimed (default 3); "
        "the article loop times epochs - 1 per repeat",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: steps_per_epoch {QUICK_STEPS}, packs 1,2, no cold-compile probe",
    )
    parser.add_argument(
        "--skip-cold-compile",
        action="store_true",
        help="skip the subprocess that times numba's compile with an empty cache",
    )
    parser.add_argument("--knob-pack", type=int, default=8,
                        help="pack size of the knob-shape table (e); 0 skips it (default 8)")  # fmt: skip
    parser.add_argument("--only-knobs", action="store_true",
                        help="print only the knob-shape table (e)")  # fmt: skip
    parser.add_argument("--jit-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch of a pack is not timed)")
    if args.packs is None:
        args.packs = list(QUICK_PACKS if args.quick else FULL_PACKS)
    return args


def configure_threads() -> None:
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    numba.set_num_threads(1)


def pack_label(pack: int) -> str:
    return f"({'b' if pack == 1 else 'c'}) engine, pack {pack}"


def run_benchmark(args: argparse.Namespace) -> None:
    steps = QUICK_STEPS if args.quick else FULL_STEPS
    packs = list(dict.fromkeys(args.packs))
    labels = [ARTICLE_LABEL, *(pack_label(p) for p in packs)]
    print(
        f"epoch: {NUM_ENVS} envs x T={steps} steps = {NUM_ENVS * steps} transitions per run; "
        f"{args.repeats} repeats, engine {args.epochs} epochs per call (first untimed), "
        f"article {args.epochs - 1} timed epochs per repeat"
    )

    # first call of the engine: numba kernels load from cache or compile
    first, second = probe_first_call()
    hits, misses = numba_cache_stats()
    cache = "warm" if hits and not misses else "cold" if misses and not hits else "mixed"
    print(
        f"first-call compile s (this process, numba cache {cache}: {hits} hits, "
        f"{misses} misses): {first - second:.2f}"
    )
    if args.quick or args.skip_cold_compile:
        print("first-call compile s (empty numba cache, subprocess): skipped")
    else:
        cold = cold_compile_seconds()
        shown = "failed" if cold is None else f"{cold:.2f}"
        print(f"first-call compile s (empty numba cache, subprocess): {shown}")

    # warm-up: one epoch of every configuration
    t0 = time.perf_counter()
    time_article(seed=10_000, steps=steps, epochs=1)
    for p in packs:
        for extra in ({}, SWINGUP):
            for _rec in train_pack([A2CConfig(epochs=1, steps_per_epoch=steps, **extra)] * p,
                                   range(p)):  # fmt: skip
                pass
    print(f"warm-up s: {time.perf_counter() - t0:.1f}")

    swing = {p: f"(d) swing-up {pack_label(p)[4:]}" for p in packs}
    per_repeat: dict[str, list[float]] = {label: [] for label in labels}  # s per pack-epoch
    per_repeat.update({label: [] for label in swing.values()})
    engine_wall: dict[str, list[float]] = {label: [] for label in labels[1:]}
    short = 0
    for rep in range(args.repeats):
        seed0 = 1000 * (rep + 1)
        per_repeat[ARTICLE_LABEL].append(
            statistics.fmean(time_article(seed0, steps, args.epochs - 1))
        )
        for p in packs:
            timing = time_pack(p, steps, args.epochs, seed0)
            per_repeat[pack_label(p)].append(statistics.fmean(timing.gaps))
            engine_wall[pack_label(p)].extend(timing.wall_s)
            short += timing.short_batches
            timing = time_pack(p, steps, args.epochs, seed0, swingup=True)
            per_repeat[swing[p]].append(statistics.fmean(timing.gaps))
            short += timing.short_batches

    sizes = {ARTICLE_LABEL: 1, **{pack_label(p): p for p in packs}}
    per_run_epoch = {label: statistics.median(per_repeat[label]) / sizes[label] for label in labels}
    print()
    print_table(labels, per_run_epoch)
    print()
    print("(d) CartPoleSwingUp-v0, same sizes: s per run-epoch, and swing-up / CartPole"
          + (" (--quick: short epochs, not comparable to the full-size figures)"
             if args.quick else ""))  # fmt: skip
    for p in packs:
        up = statistics.median(per_repeat[swing[p]]) / p
        print(f"  pack {p}: {up:.4f} s per run-epoch, {up / per_run_epoch[pack_label(p)]:.2f}x "
              "a CartPole run-epoch")  # fmt: skip
    print()
    print("details (s per pack-epoch, per repeat; engine: median of its own rec.wall_s):")
    for label in [*labels, *swing.values()]:
        reps = ", ".join(f"{v:.3f}" for v in per_repeat[label])
        extra = ""
        if label in engine_wall:
            extra = f"; rec.wall_s median {statistics.median(engine_wall[label]):.3f}"
        print(f"  {label}: [{reps}]{extra}")
    if short:
        print(f"warning: {short} epoch batches had fewer records than the pack (diverged runs)")
    if args.knob_pack:
        print()
        knob_table(args, steps)


def knob_table(args: argparse.Namespace, steps: int) -> None:
    """(e): every KNOB_SHAPES configuration, pack of --knob-pack runs, same repeats."""
    pack = 2 if args.quick else args.knob_pack
    for extra in KNOB_SHAPES.values():  # warm-up (kernels of new shapes compile here)
        for _rec in train_pack([A2CConfig(epochs=1, steps_per_epoch=steps, **extra)] * pack,
                               range(pack)):  # fmt: skip
            pass
    times: dict[str, list[float]] = {name: [] for name in KNOB_SHAPES}
    for rep in range(args.repeats):
        for name, extra in KNOB_SHAPES.items():
            timing = time_pack(pack, steps, args.epochs, 1000 * (rep + 1), extra=extra)
            times[name].append(statistics.fmean(timing.gaps) / pack)
    base = statistics.median(next(iter(times.values())))
    print(f"(e) knob shapes (the per-run knobs), pack {pack}, CartPole-v0 unless named: s per run-epoch "
          "and ratio to the default configuration")  # fmt: skip
    width = max(len(n) for n in KNOB_SHAPES)
    for name, values in times.items():
        t = statistics.median(values)
        print(f"  {name:<{width}}  {t:8.4f}  {t / base:6.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    configure_threads()
    if args.jit_probe:
        first, second = probe_first_call()
        print(json.dumps({"first": first, "second": second}))
        return 0
    t0 = time.perf_counter()
    print_header([sys.argv[0], *argv])
    if args.only_knobs:
        knob_table(args, QUICK_STEPS if args.quick else FULL_STEPS)
    else:
        run_benchmark(args)
    print(f"total wall s: {time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
