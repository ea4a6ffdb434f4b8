"""Env throughput: the project's own classic-control pack envs vs gymnasium's sync vector env.

What is measured, per env id, all in this one process on one core (single-threaded BLAS and
numba; the configurations of an id run interleaved inside every repeat, so slow spells of the
machine hit them alike):

- (a) ``gymnasium.make_vec(id, num_envs=M, vectorization_mode="sync")`` (its default
  NEXT_STEP autoreset) stepping random valid actions;
- (b) the own pack env ``a2c_core.envs.make_pack_env(id, P, N, rngs)`` with P * N = M stepping
  the same actions through its Python ``step`` (not the engine's fused rollout);
  for M = 8 (P = 1, N = 8) and M = 64 (P = 8, N = 8). Actions are drawn before the timed loop
  (a bank of ``ACTION_BANK`` steps, cycled); env-steps/s = vector steps x M / seconds, each
  measurement running for ``--seconds``. gymnasium's NEXT_STEP dummy steps (one per episode
  end) are counted like the others;
- (c) seconds per run-epoch of ``a2c_core.train_pack`` (one run, 2 epochs of a small config;
  the second epoch is timed, between the arrivals of the two epochs' records) with the own env
  (the engine then uses its fused rollout) and forced onto the generic gymnasium path
  (``a2c_core.engine.make_pack_env`` patched to return ``GymnasiumPackEnv``).

Ratios are speed-ups of the own env: (b) / (a) in env-steps/s, and gymnasium path / own env in
seconds per run-epoch. Every figure is the median over ``--repeats`` repeats.
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
os.environ.update(dict.fromkeys(THREAD_ENV_VARS, "1"))  # before numpy / numba load

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import gymnasium as gym  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import a2c_core.engine as engine  # noqa: E402
from a2c_core import A2CConfig, train_pack  # noqa: E402
from a2c_core.envs import CLASSIC_CONTROL_IDS, make_pack_env  # noqa: E402
from a2c_core.envs.generic import GymnasiumPackEnv  # noqa: E402

IDS = CLASSIC_CONTROL_IDS  # CartPole-v0/v1, Acrobot, MountainCar[Continuous], Pendulum
PACKINGS = ((1, 8), (8, 8))  # (P, N): M = 8 and M = 64 envs
ACTION_BANK = 1024  # vector steps of pre-drawn actions, cycled
CHUNK = 64  # vector steps between two looks at the clock
FULL = dict(seconds=1.0, repeats=3, steps_per_epoch=1024, value_iters=20)
QUICK = dict(seconds=0.05, repeats=1, steps_per_epoch=64, value_iters=2)
NUM_ENVS = 8  # per run in (c)


# ----------------------------------------------------------------------------- (a), (b)
def draw_actions(space: gym.spaces.Space, m: int, seed: int) -> np.ndarray:
    """[ACTION_BANK, M] ints (Discrete) or [ACTION_BANK, M, 1] float32 (Box), valid actions."""
    rng = np.random.default_rng(seed)
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=(ACTION_BANK, m))
    shape = (ACTION_BANK, m, *space.shape)
    return rng.uniform(space.low, space.high, size=shape).astype(space.dtype)


def steps_per_second(step: Callable[[np.ndarray], object], actions: np.ndarray,
                     seconds: float) -> float:  # fmt: skip
    """Vector steps per second of ``step`` over at least ``seconds`` (whole chunks)."""
    n = len(actions)
    done = 0
    t0 = time.perf_counter()
    while True:
        for i in range(done, done + CHUNK):
            step(actions[i % n])
        done += CHUNK
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def quiet_make_vec(env_id: str, m: int) -> gym.vector.VectorEnv:
    with warnings.catch_warnings():  # CartPole-v0 is deprecated; it is what the article uses
        warnings.simplefilter("ignore")
        return gym.make_vec(env_id, num_envs=m, vectorization_mode="sync")


def env_rates(env_id: str, runs: int, n: int, seconds: float, seed: int) -> tuple[float, float]:
    """(a) and (b): env-steps/s of gymnasium's sync vector env and of the own pack env."""
    m = runs * n
    vec = quiet_make_vec(env_id, m)
    vec.reset(seed=seed)
    actions = draw_actions(vec.single_action_space, m, seed)
    gym_rate = steps_per_second(vec.step, actions, seconds) * m
    vec.close()
    pack = make_pack_env(env_id, runs, n, [np.random.default_rng([seed, p]) for p in range(runs)])
    pack.reset()
    own_rate = steps_per_second(pack.step, actions, seconds) * m
    return gym_rate, own_rate


# ----------------------------------------------------------------------------------- (c)
@contextlib.contextmanager
def generic_env_path() -> Iterator[None]:
    """Make the engine build gymnasium's sync vector env (no fused rollout) for every id."""
    original = engine.make_pack_env
    engine.make_pack_env = lambda env_id, runs, n, rngs: GymnasiumPackEnv(env_id, runs, n, rngs)
    try:
        yield
    finally:
        engine.make_pack_env = original


def run_epoch_seconds(env_id: str, steps: int, value_iters: int, seed: int) -> float:
    """Seconds of the second epoch of a one-run pack (the first includes the setup)."""
    config = A2CConfig(env=env_id, num_envs=NUM_ENVS, steps_per_epoch=steps,
                       value_iters=value_iters, epochs=2)  # fmt: skip
    arrivals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _rec in train_pack([config], [seed]):
            arrivals.append(time.perf_counter())
    if len(arrivals) != 2:
        raise SystemExit(f"{env_id}: expected 2 epoch records, got {len(arrivals)} (diverged?)")
    return arrivals[1] - arrivals[0]


def epoch_pair(env_id: str, steps: int, value_iters: int, seed: int) -> tuple[float, float]:
    """(c): seconds per run-epoch with the own env and on the generic gymnasium path."""
    own = run_epoch_seconds(env_id, steps, value_iters, seed)
    with generic_env_path():
        generic = run_epoch_seconds(env_id, steps, value_iters, seed)
    return own, generic


# ---------------------------------------------------------------------------------- report
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_header(argv: Sequence[str], args: argparse.Namespace) -> None:
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"date: {now}; cpu: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba "
          f"{numba.__version__}, gymnasium {gym.__version__}; numba threads "
          f"{numba.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")  # fmt: skip
    print(f"command: {shlex.join([sys.executable, *argv])}")
    print(f"{args.repeats} repeats (medians shown), {args.seconds:g} s per env measurement; "
          f"(c): A2CConfig(num_envs={NUM_ENVS}, steps_per_epoch={args.steps_per_epoch}, "
          f"value_iters={args.value_iters}, epochs=2), second epoch timed")  # fmt: skip


def parse_ids(text: str) -> list[str]:
    ids = [i.strip() for i in text.split(",") if i.strip()]
    unknown = [i for i in ids if i not in IDS]
    if not ids or unknown:
        raise argparse.ArgumentTypeError(f"expected ids among {', '.join(IDS)}; got {text!r}")
    return ids


def positive(kind: type) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    return parse


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ids", type=parse_ids, default=list(IDS),
                        help="comma-separated env ids (default: all six)")  # fmt: skip
    parser.add_argument("--seconds", type=positive(float), default=None,
                        help=f"seconds per env measurement (default {FULL['seconds']:g})")  # fmt: skip
    parser.add_argument("--repeats", type=positive(int), default=None,
                        help=f"repeats, medians shown (default {FULL['repeats']})")  # fmt: skip
    parser.add_argument("--steps-per-epoch", type=positive(int), default=None,
                        help=f"(c) steps per epoch (default {FULL['steps_per_epoch']})")  # fmt: skip
    parser.add_argument("--value-iters", type=positive(int), default=None,
                        help=f"(c) value iterations (default {FULL['value_iters']})")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()))  # fmt: skip
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    numba.set_num_threads(1)
    started = time.perf_counter()
    print_header([sys.argv[0], *argv], args)

    # warm-up (numba kernels load or compile, gymnasium registers, first-call costs)
    for env_id in args.ids:
        env_rates(env_id, 1, 8, 0.0, seed=0)
        run_epoch_seconds(env_id, 16, 1, seed=0)
    print(f"warm-up s: {time.perf_counter() - started:.1f}")

    rates: dict[tuple[str, int], list[tuple[float, float]]] = {}
    epochs: dict[str, list[tuple[float, float]]] = {}
    for rep in range(args.repeats):
        for env_id in args.ids:
            for runs, n in PACKINGS:
                pair = env_rates(env_id, runs, n, args.seconds, seed=1000 + rep)
                rates.setdefault((env_id, runs), []).append(pair)
            pair = epoch_pair(env_id, args.steps_per_epoch, args.value_iters, seed=1000 + rep)
            epochs.setdefault(env_id, []).append(pair)
    med = statistics.median

    print()
    print("| id | M (P x N) | (a) gymnasium sync env-steps/s | (b) own pack env-steps/s | b/a |")
    print("| --- | --- | ---: | ---: | ---: |")
    for env_id in args.ids:
        for runs, n in PACKINGS:
            samples = rates[(env_id, runs)]
            a, b = med(s[0] for s in samples), med(s[1] for s in samples)
            print(f"| {env_id} | {runs * n} ({runs} x {n}) | {a:,.0f} | {b:,.0f} | {b / a:.1f}x |")
    print()
    print("| id | (c) own env s per run-epoch | (c) gymnasium path s per run-epoch | "
          "gymnasium / own |")  # fmt: skip
    print("| --- | ---: | ---: | ---: |")
    for env_id in args.ids:
        own, generic = med(s[0] for s in epochs[env_id]), med(s[1] for s in epochs[env_id])
        print(f"| {env_id} | {own:.4f} | {generic:.4f} | {generic / own:.1f}x |")
    print(f"\ntotal wall s: {time.perf_counter() - started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
