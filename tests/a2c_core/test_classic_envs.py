"""The own classic-control pack envs against gymnasium 1.4.0's envs, step for step.

The reference is ``tests/data/classic_control_reference.npz``, recorded from gymnasium's own
``gymnasium.make(env_id)`` by ``tests/data/make_classic_fixtures.py`` (see tests/data/README.md):
start states and elapsed step counts, random actions, and per step gymnasium's observation,
reward, terminated, truncated and true next state, each trajectory up to and including its first
episode end. Besides the fixture, the tests check the spaces, the reset distribution, the
get_state / set_state round trip and that a run's trajectory ignores its pack-mates.

Conventions where the pack env deliberately differs from a gymnasium TimeLimit env:
``truncated`` is False when the same step terminates (gymnasium reports both), and after an
episode end the pack env resets in the same step (``final_obs`` holds gymnasium's observation).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

from a2c_core.envs import CLASSIC_CONTROL_IDS, make_pack_env
from a2c_core.envs.base import NumpyPackEnv, PackEnv, Step

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning")

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "classic_control_reference.npz"
IDS = CLASSIC_CONTROL_IDS  # CartPole-v0/v1, Acrobot, MountainCar[Continuous], Pendulum
# Tolerance reached against gymnasium, per id: observations (float32), rewards and states
# (float64) are bit-identical for every id (atol 0 means np.testing.assert_array_equal).
ATOL = dict.fromkeys(IDS, 0.0)
# Two-sample Kolmogorov-Smirnov test of the pack's reset draws against gymnasium's resets
# (fixed seeds on both sides, so the outcome is deterministic): fail below this p-value.
KS_MIN_P = 1e-3


@pytest.fixture(scope="module")
def ref() -> dict[str, dict[str, np.ndarray]]:
    # No skip: a missing or unreadable fixture must fail the suite.
    assert FIXTURE.is_file(), f"reference fixture missing: {FIXTURE}"
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURE) as data:
        assert tuple(data["ids"]) == IDS
        for key in data.files:
            if "/" in key:
                env_id, name = key.split("/", 1)
                out.setdefault(env_id, {})[name] = data[key]
    return out


def _make_gym(env_id: str) -> gym.Env:
    with warnings.catch_warnings():  # CartPole-v0 is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return gym.make(env_id)


def _pack(env_id: str, seeds: list[int], num_envs: int) -> PackEnv:
    return make_pack_env(env_id, len(seeds), num_envs, [np.random.default_rng(s) for s in seeds])


def _random_actions(env: PackEnv, rng: np.random.Generator, steps: int) -> np.ndarray:
    """[steps, P*N] ints for Discrete; [steps, P*N, 1] float32 for Box, spilling 50 % past
    the bounds on both sides (the env must clip)."""
    m = env.num_runs * env.num_envs
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=(steps, m))
    low, high = float(space.low[0]), float(space.high[0])
    pad = 0.5 * (high - low)
    return rng.uniform(low - pad, high + pad, size=(steps, m, 1)).astype(np.float32)


def _gym_obs_of(env_id: str, states: np.ndarray, dtype: str) -> np.ndarray:
    """gymnasium's observation of each state (held in its env as ``dtype``), i.e. what its
    reset returns for such a state."""
    env = _make_gym(env_id)
    env.reset(seed=0)
    u = env.unwrapped
    out = []
    for st in states:
        u.state = np.asarray(st, dtype=dtype)
        if hasattr(u, "_get_ob"):
            out.append(u._get_ob())  # Acrobot
        elif hasattr(u, "_get_obs"):
            out.append(u._get_obs())  # Pendulum
        else:
            out.append(np.array(u.state, dtype=np.float32))
    return np.asarray(out, dtype=np.float32)


def _expect_equal(env_id: str, what: str, got, want, where: list[str]) -> None:
    """Compare per row (exactly, or to ATOL[env_id] for floats) and name the first mismatch:
    id, step, field, trajectory, expected vs got."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{env_id} {what}: shape {got.shape} != {want.shape}"
    tol = ATOL[env_id]
    if tol and np.issubdtype(want.dtype, np.floating):
        ok = np.isclose(got, want, rtol=0, atol=tol)
    else:
        ok = got == want
    ok = ok.all(axis=tuple(range(1, ok.ndim)))  # per row
    if not ok.all():
        bad = np.flatnonzero(~ok)
        i = bad[0]
        diff = ""
        if np.issubdtype(want.dtype, np.floating):
            diff = f", max |diff| {np.max(np.abs(got[bad].astype(float) - want[bad])):.3g}"
        pytest.fail(
            f"{env_id}: {what} differs in {bad.size} rows, first {where[i]}: "
            f"expected {want[i]!r}, got {got[i]!r}{diff}",
            pytrace=False,
        )


# ------------------------------------------------------------------------- the fixture itself


@pytest.mark.parametrize("env_id", IDS)
def test_fixture_replays_in_installed_gymnasium(env_id: str, ref) -> None:
    """The fixture is what the installed gymnasium does (guards against a gymnasium upgrade
    silently changing the reference), and it covers episode ends and time limits."""
    r = ref[env_id]
    env = _make_gym(env_id)
    dtype_reset, dtype_step = str(r["state_dtype_after_reset"]), str(r["state_dtype_after_step"])
    for i in range(len(r["length"])):
        env.reset(seed=0)
        elapsed = int(r["start_elapsed"][i])
        env.unwrapped.state = r["start_state"][i].astype(
            dtype_reset if elapsed == 0 else dtype_step
        )
        env._elapsed_steps = elapsed  # gymnasium.make's outermost wrapper is its TimeLimit
        for t in range(int(r["length"][i])):
            a = r["actions"][i, t]
            obs, reward, terminated, truncated, _ = env.step(a if a.ndim else int(a))
            where = f"trajectory {i} step {t}"
            np.testing.assert_array_equal(obs, r["obs"][i, t], err_msg=where)
            assert float(reward) == r["reward"][i, t], where
            assert (terminated, truncated) == (r["terminated"][i, t], r["truncated"][i, t]), where
            np.testing.assert_array_equal(
                np.asarray(env.unwrapped.state, np.float64), r["next_state"][i, t], err_msg=where
            )
    steps = np.arange(r["obs"].shape[1]) < r["length"][:, None]
    ended = (r["terminated"] | r["truncated"]) & steps
    assert np.array_equal(ended.any(axis=1), ended[np.arange(len(ended)), r["length"] - 1])
    assert (r["truncated"] & ~r["terminated"] & steps).any()
    if env_id != "Pendulum-v1":
        assert (r["terminated"] & steps).any()


# ------------------------------------------------------------------------------ step for step


def _packings(k: int) -> list[tuple[int, int, str]]:
    """(runs, envs per run, order of the fixture's trajectories over the rows)."""
    return [(1, k, "identity"), (2, k // 2, "reversed"), (k // 4, 4, "shuffled")]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("packing", [0, 1, 2], ids=["1xK", "2xK/2", "K/4x4"])
def test_steps_match_gymnasium(env_id: str, packing: int, ref) -> None:
    """From the fixture's start states and step counts, with its actions: observations,
    rewards, terminated, truncated, the true state and step count after every step, and
    final_obs at each episode end, for every trajectory up to its end; whatever the runs x envs
    packing and wherever a trajectory sits in the pack."""
    r = ref[env_id]
    k, horizon = r["obs"].shape[:2]
    runs, n, order = _packings(k)[packing]
    assert runs * n == k
    perm = {
        "identity": np.arange(k),
        "reversed": np.arange(k)[::-1],
        "shuffled": np.random.default_rng(7).permutation(k),
    }[order]  # row j holds fixture trajectory perm[j]
    env = _pack(env_id, [100 + p for p in range(runs)], n)
    assert isinstance(env, NumpyPackEnv), f"{env_id}: {type(env).__name__} is not an own env"
    env.reset()
    for p in range(runs):
        rows = perm[p * n : (p + 1) * n]
        env.set_state(p, {"state": r["start_state"][rows], "elapsed": r["start_elapsed"][rows]})
    dim = r["start_state"].shape[1]
    groups = r["group"][perm]

    def where(t: int | None, rows: np.ndarray) -> list[str]:
        step = "start" if t is None else f"step {t}"
        return [
            f"{step}, trajectory {perm[j]} ({groups[j]}, start elapsed "
            f"{r['start_elapsed'][perm[j]]}, row {j})"
            for j in rows
        ]

    all_rows = np.arange(k)
    _expect_equal(env_id, "obs after set_state", env.current_obs(), r["start_obs"][perm],
                  where(None, all_rows))  # fmt: skip
    length = r["length"][perm]
    ends = 0
    for t in range(horizon):
        live = np.flatnonzero(t < length)
        if live.size == 0:
            break
        s: Step = env.step(r["actions"][perm, t])
        assert s.obs.dtype == s.final_obs.dtype == np.float32 and s.reward.dtype == np.float64
        ks, w = perm[live], where(t, live)
        _expect_equal(env_id, "final_obs", s.final_obs[live], r["obs"][ks, t], w)
        _expect_equal(env_id, "reward", s.reward[live], r["reward"][ks, t], w)
        _expect_equal(env_id, "terminated", s.terminated[live], r["terminated"][ks, t], w)
        want_trunc = r["truncated"][ks, t] & ~r["terminated"][ks, t]  # terminated wins
        _expect_equal(env_id, "truncated", s.truncated[live], want_trunc, w)
        assert s.valid.all()
        state = np.concatenate([env.get_state(p)["state"] for p in range(runs)])
        elapsed = np.concatenate([env.get_state(p)["elapsed"] for p in range(runs)])
        done = r["terminated"][ks, t] | r["truncated"][ks, t]
        going, ended = live[~done], live[done]
        wg = where(t, going)
        _expect_equal(env_id, "obs", s.obs[going], r["obs"][perm[going], t], wg)
        # gymnasium's state layout first (MountainCarContinuous keeps one more column)
        _expect_equal(env_id, "state", state[going, :dim], r["next_state"][perm[going], t], wg)
        _expect_equal(env_id, "elapsed", elapsed[going],
                      r["start_elapsed"][perm[going]] + t + 1, wg)  # fmt: skip
        if ended.size:  # same-step autoreset from the run's own generator
            ends += ended.size
            fresh = state[ended, :dim]
            assert np.all(fresh >= r["reset_low"]) and np.all(fresh <= r["reset_high"])
            assert np.all(elapsed[ended] == 0)
            want_obs = _gym_obs_of(env_id, fresh, str(r["state_dtype_after_reset"]))
            _expect_equal(env_id, "obs after autoreset", s.obs[ended], want_obs, where(t, ended))
    assert ends == int((r["terminated"] | r["truncated"]).any(axis=1).sum()) > 0


# ------------------------------------------------------------------------ spaces and resets


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_match_gymnasium(env_id: str) -> None:
    env = _pack(env_id, [0, 1], 3)
    assert isinstance(env, NumpyPackEnv), f"{env_id}: {type(env).__name__} is not an own env"
    ref = _make_gym(env_id)
    assert env.observation_space == ref.observation_space
    assert env.action_space == ref.action_space
    assert env.observation_space.dtype == ref.observation_space.dtype
    assert env.max_episode_steps == ref.spec.max_episode_steps


@pytest.mark.parametrize("env_id", IDS)
def test_reset_distribution_matches_gymnasium(env_id: str, ref) -> None:
    """Fresh resets lie inside gymnasium's reset bounds, spread like gymnasium's own resets
    (KS test per component against the fixture's gymnasium resets), carry gymnasium's precision
    (Acrobot's reset state is float32) and observe like gymnasium's reset observation."""
    r = ref[env_id]
    runs, n = 4, 128
    env = _pack(env_id, [31 + p for p in range(runs)], n)
    obs = env.reset()
    dim = r["reset_states"].shape[1]
    state = np.concatenate([env.get_state(p)["state"] for p in range(runs)])[:, :dim]
    assert np.all(np.concatenate([env.get_state(p)["elapsed"] for p in range(runs)]) == 0)
    low, high = r["reset_low"], r["reset_high"]
    assert np.all(state >= low) and np.all(state <= high), (state.min(0), state.max(0))
    for c in range(dim):
        if high[c] > low[c]:
            p_value = stats.ks_2samp(state[:, c], r["reset_states"][:, c]).pvalue
            assert p_value > KS_MIN_P, f"{env_id} component {c}: KS p = {p_value:.2g}"
            # and spans the interval, like gymnasium's draws
            width = high[c] - low[c]
            assert state[:, c].min() < low[c] + 0.05 * width
            assert state[:, c].max() > high[c] - 0.05 * width
    dtype = str(r["state_dtype_after_reset"])
    np.testing.assert_array_equal(state, state.astype(dtype).astype(np.float64))
    rows = [f"reset row {j}" for j in range(len(state))]
    _expect_equal(env_id, "obs after reset", obs, _gym_obs_of(env_id, state, dtype), rows)
    # each run draws its own resets: runs with different seeds start differently
    assert not np.array_equal(state[:n], state[n : 2 * n])


# ---------------------------------------------------------------------- pack-level contracts


def _first_end(env_id: str, seeds: list[int], n: int, actions: np.ndarray) -> int:
    """First step index after which some env of a fresh pack has just been reset."""
    env = _pack(env_id, seeds, n)
    env.reset()
    for t, a in enumerate(actions):
        s = env.step(a)
        if (s.terminated | s.truncated).any():
            return t + 1
    raise AssertionError(f"{env_id}: no episode ended in {len(actions)} steps")


@pytest.mark.parametrize("env_id", IDS)
def test_get_state_set_state_round_trip(env_id: str, state_round_trip) -> None:
    """Saved mid-episode, and saved right after an autoreset (a row at elapsed 0): a fresh
    pack restored from get_state and the generators reproduces every later step exactly."""
    n, seeds = 4, [1, 2]
    probe = _pack(env_id, seeds, n)
    limit = probe.max_episode_steps
    actions = _random_actions(probe, np.random.default_rng(5), limit + 40)
    after_reset = _first_end(env_id, seeds, n, actions)
    for split in sorted({37, after_reset}):
        a = _pack(env_id, seeds, n)
        saved = state_round_trip(a, lambda: _pack(env_id, [100, 200], n), actions, split)
        st = saved[0]["state"]
        assert st.dtype == np.float64 and st.shape[0] == n
        assert saved[0]["elapsed"].dtype == np.int64 and saved[0]["elapsed"].shape == (n,)
        if split == after_reset:
            assert any((sv["elapsed"] == 0).any() for sv in saved)


@pytest.mark.parametrize("env_id", IDS)
def test_set_state_of_fresh_resets_keeps_their_obs(env_id: str) -> None:
    """A pack restored right after reset() (every row at elapsed 0) observes exactly what the
    saved pack observed: set_state must compute a fresh state's observation the way reset()
    did (Acrobot's reset observation is gymnasium's float32 cos/sin of a float32 state). Many
    rows, because a difference in the last bit shows up in only a few of them."""
    runs, n = 2, 2048
    a = _pack(env_id, [3, 4], n)
    obs = a.reset().copy()
    b = _pack(env_id, [5, 6], n)
    b.reset()
    for p in range(runs):
        b.set_state(p, a.get_state(p))
    rows = [f"reset row {j}" for j in range(runs * n)]
    _expect_equal(env_id, "obs after set_state(get_state()) of fresh resets", b.current_obs(),
                  obs, rows)  # fmt: skip


@pytest.mark.parametrize("env_id", IDS)
def test_run_ignores_its_pack_mates(env_id: str) -> None:
    """Run 1 of a 3-run pack (seeds a, s, c) == run 0 of a 1-run pack seeded s, driven by the
    same actions, for a whole time limit of steps including autoresets in every run; the
    episodes are staggered (random step counts) so that ends fall on different steps."""
    n, seeds = 5, [11, 22, 33]
    big, solo = _pack(env_id, seeds, n), _pack(env_id, [seeds[1]], n)
    limit = big.max_episode_steps
    rng = np.random.default_rng(99)
    actions = _random_actions(big, rng, limit + 30)
    rows = slice(n, 2 * n)
    np.testing.assert_array_equal(big.reset()[rows], solo.reset())
    mine = solo.get_state(0)
    for field, value in big.get_state(1).items():
        np.testing.assert_array_equal(value, mine[field])
    staggered = {**mine, "elapsed": rng.integers(0, limit, n)}
    solo.set_state(0, staggered)
    big.set_state(1, staggered)
    for p in (0, 2):
        big.set_state(p, {**big.get_state(p), "elapsed": rng.integers(0, limit, n)})
    np.testing.assert_array_equal(big.current_obs()[rows], solo.current_obs())
    own_ends = other_ends = 0
    for t in range(len(actions)):
        b = big.step(actions[t])
        s = solo.step(actions[t, rows])
        for field in Step._fields:
            np.testing.assert_array_equal(
                getattr(b, field)[rows], getattr(s, field), err_msg=f"{env_id} step {t} {field}"
            )
        done = b.terminated | b.truncated
        own_ends += int(done[rows].sum())
        other_ends += int(done.sum() - done[rows].sum())
    for field, value in big.get_state(1).items():
        np.testing.assert_array_equal(value, solo.get_state(0)[field])
    assert own_ends >= n and other_ends >= 2 * n  # every env ended at least once
