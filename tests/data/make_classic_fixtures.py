"""Record step-for-step reference trajectories of gymnasium's classic-control envs.

Writes ``tests/data/classic_control_reference.npz`` (see tests/data/README.md for the layout),
the reference that ``tests/a2c_core/test_classic_envs.py`` holds the project's own numpy pack
envs to. Run once from the repository root::

    .venv/bin/python tests/data/make_classic_fixtures.py

Every trajectory comes from gymnasium's OWN env, ``gymnasium.make(env_id)`` (with its TimeLimit
wrapper): ``reset(seed=...)``, then the start state is written to ``env.unwrapped.state`` and the
start step count to the TimeLimit wrapper's ``_elapsed_steps``, then the env is stepped with
actions drawn from a fixed-seed generator, up to and including its first episode end (after
that gymnasium needs a reset, while the pack env resets by itself from its own generator) or
``HORIZON`` steps.

A start state gets the dtype gymnasium's own state has at that point of an episode: the dtype
after ``reset()`` for a start with 0 elapsed steps, the dtype after a ``step()`` otherwise (it
matters: Acrobot's reset state is float32, MountainCarContinuous's state is float32 after a step
and its next step then computes in float32). The values are stored as float64 either way.

Actions are passed the way the engine passes them: a numpy int for Discrete, a float32 array of
shape (1,) for Box, not clipped (the env clips).

The script checks that the recording covers what it is meant to cover (episode ends, walls,
speed and torque clips, angle wraps, time limits) and prints a coverage table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import pendulum
from gymnasium.wrappers import TimeLimit

from a2c_core.envs import CLASSIC_CONTROL_IDS

OUT = Path(__file__).resolve().parent / "classic_control_reference.npz"
IDS = CLASSIC_CONTROL_IDS  # CartPole-v0/v1, Acrobot, MountainCar[Continuous], Pendulum
SEED = 20_240_611
HORIZON = 64  # steps recorded at most per trajectory
GROUP_SIZE = 8  # trajectories per group; 6 groups per id
RESET_SAMPLES = 256  # gymnasium resets recorded per id, for the reset-distribution test

# Default reset bounds per state component, as written in gymnasium 1.4.0's reset() methods
# (cartpole.py: uniform(-0.05, 0.05, size=4); acrobot.py: uniform(-0.1, 0.1, size=4) cast to
# float32; mountain_car.py / continuous_mountain_car.py: [uniform(-0.6, -0.4), 0];
# pendulum.py: uniform(-[DEFAULT_X, DEFAULT_Y], [DEFAULT_X, DEFAULT_Y])). Checked below
# against RESET_SAMPLES actual resets.
RESET_BOUNDS: dict[str, tuple[list[float], list[float]]] = {
    "CartPole-v0": ([-0.05] * 4, [0.05] * 4),
    "CartPole-v1": ([-0.05] * 4, [0.05] * 4),
    "Acrobot-v1": ([-0.1] * 4, [0.1] * 4),
    "MountainCar-v0": ([-0.6, 0.0], [-0.4, 0.0]),
    "MountainCarContinuous-v0": ([-0.6, 0.0], [-0.4, 0.0]),
    "Pendulum-v1": (
        [-pendulum.DEFAULT_X, -pendulum.DEFAULT_Y],
        [pendulum.DEFAULT_X, pendulum.DEFAULT_Y],
    ),
}


def make(env_id: str) -> gym.Env:
    with warnings.catch_warnings():  # CartPole-v0 is deprecated; it is still what we port
        warnings.simplefilter("ignore")
        return gym.make(env_id)


def time_limit(env: gym.Env) -> TimeLimit:
    wrapper = env
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, TimeLimit):
            return wrapper
        wrapper = wrapper.env
    raise RuntimeError(f"{env} has no TimeLimit wrapper")


def observe(env: gym.Env) -> np.ndarray:
    """gymnasium's own observation of the current state (what reset() would return for it)."""
    u = env.unwrapped
    for name in ("_get_ob", "_get_obs"):  # Acrobot, Pendulum
        if hasattr(u, name):
            return np.asarray(getattr(u, name)(), dtype=np.float32)
    return np.array(u.state, dtype=np.float32)  # CartPole, MountainCar(Continuous)


# ----------------------------------------------------------------------- start states per id
# Each builder returns {group name: (states [k, d] float64, elapsed [k] int64)}; the "reset"
# group (gymnasium's own resets) and the time limit groups are added by ``build_starts``.
Starts = dict[str, tuple[np.ndarray, np.ndarray]]


def _sym(rng: np.random.Generator, lo: float, hi: float, k: int) -> np.ndarray:
    """Magnitudes uniform in [lo, hi] with random signs."""
    return rng.uniform(lo, hi, k) * rng.choice([-1.0, 1.0], k)


def cartpole_starts(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    thr = 12 * 2 * math.pi / 360
    s = rng.choice([-1.0, 1.0], k)
    s2 = rng.choice([-1.0, 1.0], k)
    return {
        "ordinary": np.column_stack(
            [
                rng.uniform(-2, 2, k),
                rng.uniform(-2, 2, k),
                rng.uniform(-0.15, 0.15, k),
                rng.uniform(-1.5, 1.5, k),
            ]
        ),
        "position edge": np.column_stack(
            [
                s * rng.uniform(2.35, 2.4, k),
                s * rng.uniform(0.0, 4.0, k),
                rng.uniform(-0.05, 0.05, k),
                rng.uniform(-0.5, 0.5, k),
            ]
        ),
        "fast": np.column_stack(
            [
                rng.uniform(-1, 1, k),
                rng.uniform(-3, 3, k),
                rng.uniform(-0.1, 0.1, k),
                rng.uniform(-3, 3, k),
            ]
        ),
        "angle edge": np.column_stack(
            [
                rng.uniform(-1, 1, k),
                rng.uniform(-1, 1, k),
                s2 * rng.uniform(thr - 0.03, thr, k),
                s2 * rng.uniform(-0.2, 1.5, k),
            ]
        ),
    }


def acrobot_starts(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    v1, v2 = 4 * math.pi, 9 * math.pi  # AcrobotEnv.MAX_VEL_1, MAX_VEL_2
    s = rng.choice([-1.0, 1.0], k)
    w = rng.choice([-1.0, 1.0], k)
    return {
        "ordinary": np.column_stack(
            [
                rng.uniform(-1, 1, k),
                rng.uniform(-1, 1, k),
                rng.uniform(-2, 2, k),
                rng.uniform(-2, 2, k),
            ]
        ),
        # at and near the velocity bounds (bound() clips after the RK4 step)
        "velocity bounds": np.column_stack(
            [
                rng.uniform(-math.pi, math.pi, k),
                rng.uniform(-math.pi, math.pi, k),
                _sym(rng, v1 - 1.0, v1, k),
                _sym(rng, v2 - 2.0, v2, k),
            ]
        ),
        # -cos(t1) - cos(t1 + t2) close to the threshold 1, swinging up
        "height threshold": np.column_stack(
            [
                s * rng.uniform(1.6, 2.05, k),
                rng.uniform(-0.4, 0.4, k),
                s * rng.uniform(0, 2.5, k),
                rng.uniform(-2, 2, k),
            ]
        ),
        # theta1 ~ +-pi and theta2 ~ -+pi (tip low: not terminal), both crossing +-pi
        "angle wrap": np.column_stack(
            [
                w * rng.uniform(2.9, math.pi, k),
                -w * rng.uniform(2.9, math.pi, k),
                w * rng.uniform(1.0, 4.0, k),
                -w * rng.uniform(1.0, 4.0, k),
            ]
        ),
    }


def mountain_car_starts(goal: float) -> Callable[[np.random.Generator, int], dict]:
    def starts(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
        near_goal = np.column_stack([rng.uniform(goal - 0.1, goal - 0.001, k),
                                     rng.uniform(0.005, 0.07, k)])  # fmt: skip
        near_goal[-2:, 0] = rng.uniform(0.55, 0.6, 2)  # right wall: position clipped to 0.6
        left = np.column_stack([rng.uniform(-1.2, -1.15, k), rng.uniform(-0.07, -0.02, k)])
        left[0] = [-1.2, 0.0]
        return {
            "ordinary": np.column_stack([rng.uniform(-1.1, 0.3, k), rng.uniform(-0.05, 0.05, k)]),
            "goal": near_goal,
            "left wall": left,
            # fast near the valley walls, where gravity pushes the speed past 0.07
            "speed clip": np.column_stack(
                [rng.uniform(-1.0, -0.75, k), rng.uniform(0.064, 0.07, k)]
            ),
        }

    return starts


def pendulum_starts(rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    return {
        "ordinary": np.column_stack([rng.uniform(-math.pi, math.pi, k), rng.uniform(-8, 8, k)]),
        "speed clip": np.column_stack([rng.uniform(-math.pi, math.pi, k), _sym(rng, 7.5, 8, k)]),
        "upright": np.column_stack([rng.uniform(-0.3, 0.3, k), rng.uniform(-1, 1, k)]),
        # the angle is never wrapped by the env: far-off angles after many turns
        "large angle": np.column_stack([_sym(rng, math.pi, 6 * math.pi, k), rng.uniform(-4, 4, k)]),
    }


STARTS = {
    "CartPole-v0": cartpole_starts,
    "CartPole-v1": cartpole_starts,
    "Acrobot-v1": acrobot_starts,
    "MountainCar-v0": mountain_car_starts(0.5),
    "MountainCarContinuous-v0": mountain_car_starts(0.45),
    "Pendulum-v1": pendulum_starts,
}
# the group whose states also start 1 step before the time limit (terminated and truncated
# at once where the state also terminates: gymnasium reports both)
EDGE_GROUP = {
    "CartPole-v0": "position edge",
    "CartPole-v1": "position edge",
    "Acrobot-v1": "height threshold",
    "MountainCar-v0": "goal",
    "MountainCarContinuous-v0": "goal",
    "Pendulum-v1": "speed clip",
}
# actions per id: Discrete as int64 [K, H]; Box as float32 [K, H, 1], wider than the bounds
ACTIONS: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    "CartPole-v0": lambda rng, shape: rng.integers(0, 2, shape),
    "CartPole-v1": lambda rng, shape: rng.integers(0, 2, shape),
    "Acrobot-v1": lambda rng, shape: rng.integers(0, 3, shape),
    "MountainCar-v0": lambda rng, shape: rng.integers(0, 3, shape),
    "MountainCarContinuous-v0": lambda rng, shape: rng.uniform(-1.6, 1.6, (*shape, 1)).astype(
        np.float32
    ),
    "Pendulum-v1": lambda rng, shape: rng.uniform(-3.5, 3.5, (*shape, 1)).astype(np.float32),
}


# ------------------------------------------------------------------------------- recording
def state_dtypes(env_id: str) -> tuple[np.dtype, np.dtype]:
    """dtype of gymnasium's state after reset() and after one step()."""
    env = make(env_id)
    env.reset(seed=0)
    after_reset = np.asarray(env.unwrapped.state).dtype
    env.step(env.action_space.sample())
    return after_reset, np.asarray(env.unwrapped.state).dtype


def build_starts(env_id: str, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Group names [K], start states [K, d] float64 and start elapsed [K] int64."""
    limit = gym.spec(env_id).max_episode_steps
    k = GROUP_SIZE
    special = STARTS[env_id](rng, k)
    env = make(env_id)
    resets = []
    for seed in rng.integers(2**31 - 1, size=k):
        env.reset(seed=int(seed))
        resets.append(np.asarray(env.unwrapped.state, dtype=np.float64))
    groups: Starts = {"reset": (np.stack(resets), np.zeros(k, np.int64))}
    for name, states in special.items():
        groups[name] = (states, rng.integers(1, limit - HORIZON, k))
    # time limit: half ordinary states 3 steps before the limit, half edge states 1 step before
    half = k // 2
    edge = STARTS[env_id](rng, k)[EDGE_GROUP[env_id]][:half]
    ordinary = STARTS[env_id](rng, k)["ordinary"][: k - half]
    groups["time limit"] = (
        np.concatenate([ordinary, edge]),
        np.array([limit - 3] * (k - half) + [limit - 1] * half, np.int64),
    )
    names = [name for name, (st, _) in groups.items() for _ in range(len(st))]
    states = np.concatenate([st for st, _ in groups.values()])
    elapsed = np.concatenate([el for _, el in groups.values()])
    return names, states, elapsed


def record(env_id: str, index: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([SEED, index])
    names, starts, elapsed = build_starts(env_id, rng)
    dtype_reset, dtype_step = state_dtypes(env_id)
    # a start gets the dtype gymnasium's state has at that point of an episode (and its values)
    for i in range(len(starts)):
        starts[i] = starts[i].astype(dtype_reset if elapsed[i] == 0 else dtype_step)
    n = len(starts)
    actions = ACTIONS[env_id](rng, (n, HORIZON))
    env = make(env_id)
    obs_dim = env.observation_space.shape[0]
    out = {
        "group": np.array(names),
        "start_state": starts,
        "start_elapsed": elapsed,
        "start_obs": np.zeros((n, obs_dim), np.float32),
        "actions": actions,
        "length": np.zeros(n, np.int64),
        "obs": np.zeros((n, HORIZON, obs_dim), np.float32),
        "reward": np.zeros((n, HORIZON), np.float64),
        "terminated": np.zeros((n, HORIZON), bool),
        "truncated": np.zeros((n, HORIZON), bool),
        "next_state": np.zeros((n, HORIZON, starts.shape[1]), np.float64),
    }
    reset_seeds = rng.integers(2**31 - 1, size=n)
    for i in range(n):
        env.reset(seed=int(reset_seeds[i]))
        env.unwrapped.state = starts[i].astype(dtype_reset if elapsed[i] == 0 else dtype_step)
        time_limit(env)._elapsed_steps = int(elapsed[i])
        out["start_obs"][i] = observe(env)
        for t in range(HORIZON):
            a = actions[i, t]
            action = a.astype(np.float32) if a.ndim else int(a)  # as the engine passes it
            obs, reward, terminated, truncated, _ = env.step(action)
            out["obs"][i, t] = obs
            out["reward"][i, t] = float(reward)
            out["terminated"][i, t] = terminated
            out["truncated"][i, t] = truncated
            out["next_state"][i, t] = np.asarray(env.unwrapped.state, dtype=np.float64)
            out["length"][i] = t + 1
            if terminated or truncated:
                break
    out["max_episode_steps"] = np.int64(gym.spec(env_id).max_episode_steps)
    out["state_dtype_after_reset"] = np.array(str(dtype_reset))
    out["state_dtype_after_step"] = np.array(str(dtype_step))
    low, high = RESET_BOUNDS[env_id]
    out["reset_low"], out["reset_high"] = np.array(low), np.array(high)
    samples = []
    for s in rng.integers(2**31 - 1, size=RESET_SAMPLES):
        env.reset(seed=int(s))
        samples.append(np.asarray(env.unwrapped.state, dtype=np.float64))
    out["reset_states"] = np.stack(samples)
    return out


# ------------------------------------------------------------------------------- coverage
def coverage(env_id: str, rec: dict) -> dict[str, int]:
    """Counts of the events the recording must contain (checked > 0 in main)."""
    mask = np.arange(HORIZON)[None, :] < rec["length"][:, None]
    nxt = rec["next_state"]
    term, trunc = rec["terminated"] & mask, rec["truncated"] & mask
    cov = {
        "trajectories": len(rec["length"]),
        "steps": int(mask.sum()),
        "longest": int(rec["length"].max()),
        "truncated": int((trunc & ~term).sum()),
    }
    if env_id != "Pendulum-v1":  # the only one without a terminal state
        cov["terminated"] = int(term.sum())
        cov["terminated+truncated"] = int((term & trunc).sum())
    if env_id.startswith("CartPole"):
        thr = 12 * 2 * math.pi / 360
        cov["abs(x) > 2.4"] = int((term & (np.abs(nxt[..., 0]) > 2.4)).sum())
        cov["abs(theta) > 12 deg"] = int((term & (np.abs(nxt[..., 2]) > thr)).sum())
    if env_id == "Acrobot-v1":
        prev = np.concatenate([rec["start_state"][:, None], nxt[:, :-1]], axis=1)
        cov["abs(dtheta1) = 4 pi"] = int((mask & (np.abs(nxt[..., 2]) == 4 * math.pi)).sum())
        cov["abs(dtheta2) = 9 pi"] = int((mask & (np.abs(nxt[..., 3]) == 9 * math.pi)).sum())
        jumps = np.abs(nxt[..., :2] - prev[..., :2]) > math.pi
        cov["angle wrapped"] = int((mask[..., None] & jumps).sum())
    if env_id.startswith("MountainCar"):
        goal = 0.5 if env_id == "MountainCar-v0" else 0.45
        pos, vel = nxt[..., 0], nxt[..., 1]
        cov["goal reached"] = int((term & (pos >= goal)).sum())
        # values as stored in gymnasium's state (float32 for MountainCarContinuous)
        as_state = np.dtype(str(rec["state_dtype_after_step"])).type
        cov["left wall (v := 0)"] = int((mask & (pos == as_state(-1.2)) & (vel == 0)).sum())
        cov["right wall (x = 0.6)"] = int((mask & (pos == as_state(0.6))).sum())
        cov["abs(v) = 0.07"] = int((mask & (np.abs(vel) == as_state(0.07))).sum())
    if env_id == "MountainCarContinuous-v0":
        cov["reward > 90 at goal"] = int((term & (rec["reward"] > 90)).sum())
        cov["abs(action) > 1"] = int((mask & (np.abs(rec["actions"][..., 0]) > 1)).sum())
    if env_id == "Pendulum-v1":
        cov["abs(thetadot) = 8"] = int((mask & (np.abs(nxt[..., 1]) == 8)).sum())
        cov["abs(torque) > 2"] = int((mask & (np.abs(rec["actions"][..., 0]) > 2)).sum())
    return cov


def check_reset_bounds(env_id: str, rec: dict) -> None:
    """The hand-copied reset bounds hold and are tight (gymnasium's resets nearly span them)."""
    samples, low, high = rec["reset_states"], rec["reset_low"], rec["reset_high"]
    assert np.all(samples >= low) and np.all(samples <= high), env_id
    slack = 0.05 * (high - low)
    assert np.all(samples.min(0) <= low + slack) and np.all(samples.max(0) >= high - slack), env_id


def main() -> None:
    arrays: dict[str, np.ndarray] = {
        "gymnasium_version": np.array(gym.__version__),
        "numpy_version": np.array(np.__version__),
        "ids": np.array(IDS),
    }
    print("| id | coverage |")
    print("| --- | --- |")
    for index, env_id in enumerate(IDS):
        rec = record(env_id, index)
        check_reset_bounds(env_id, rec)
        cov = coverage(env_id, rec)
        missing = [name for name, count in cov.items() if count == 0]
        if missing:
            raise SystemExit(f"{env_id}: the recording does not cover {missing}")
        print(f"| {env_id} | " + ", ".join(f"{name} {count}" for name, count in cov.items()) + " |")
        arrays.update({f"{env_id}/{key}": value for key, value in rec.items()})
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
