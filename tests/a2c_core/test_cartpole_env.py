"""CartPolePackEnv against gymnasium's CartPoleEnv, plus the pack-specific contracts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from a2c_core.envs import make_pack_env
from a2c_core.envs.cartpole import CARTPOLE_IDS, CartPolePackEnv

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning")

LIMITS = {"CartPole-v0": 200, "CartPole-v1": 500}


def _pack(env_id: str, seeds: list[int], num_envs: int) -> CartPolePackEnv:
    return CartPolePackEnv(env_id, len(seeds), num_envs, [np.random.default_rng(s) for s in seeds])


def _controller(obs: np.ndarray) -> np.ndarray:
    """A linear policy that balances CartPole well past 500 steps from reset states."""
    return (obs[:, 2] + 0.5 * obs[:, 3] + 0.01 * obs[:, 0] + 0.1 * obs[:, 1] > 0).astype(np.int64)


def test_spaces_match_gymnasium() -> None:
    env = _pack("CartPole-v1", [0], 2)
    ref = CartPoleEnv()
    assert env.observation_space == ref.observation_space
    assert env.action_space == ref.action_space


def test_make_pack_env_dispatches_to_numpy_env() -> None:
    for env_id in CARTPOLE_IDS:
        env = make_pack_env(env_id, 2, 3, [np.random.default_rng(0), np.random.default_rng(1)])
        assert isinstance(env, CartPolePackEnv)


def test_steps_match_gymnasium_exactly() -> None:
    """Random states (many near a termination boundary), random actions: float32 obs must be
    bit-identical to gymnasium's and reward/terminated equal, up to each env's termination."""
    num_envs, horizon = 64, 60
    rng = np.random.default_rng(123)
    states = np.column_stack(
        [
            rng.uniform(-2.35, 2.35, num_envs),
            rng.uniform(-2.0, 2.0, num_envs),
            rng.uniform(-0.2, 0.2, num_envs),
            rng.uniform(-2.0, 2.0, num_envs),
        ]
    )
    actions = rng.integers(0, 2, size=(horizon, num_envs))
    pack = _pack("CartPole-v1", [0], num_envs)
    pack.reset()
    pack.set_state(0, {"state": states, "elapsed": np.zeros(num_envs, dtype=np.int64)})
    np.testing.assert_array_equal(pack.current_obs(), states.astype(np.float32))
    steps = [pack.step(actions[t]) for t in range(horizon)]

    refs = [CartPoleEnv() for _ in range(num_envs)]
    n_terminated = 0
    for i, ref in enumerate(refs):
        ref.reset(seed=0)
        ref.state = states[i].copy()
        for t in range(horizon):
            obs, reward, terminated, _, _ = ref.step(int(actions[t, i]))
            s = steps[t]
            assert s.final_obs.dtype == np.float32
            np.testing.assert_array_equal(s.final_obs[i], obs, err_msg=f"env {i} step {t}")
            assert s.reward[i] == reward == 1.0
            assert bool(s.terminated[i]) == terminated
            assert not s.truncated[i]
            assert s.valid[i]
            if terminated:
                n_terminated += 1
                # Same-step autoreset: obs is a fresh reset state, not the terminal one.
                assert np.all(np.abs(s.obs[i]) <= 0.05)
                break
            np.testing.assert_array_equal(s.obs[i], s.final_obs[i])
    assert n_terminated >= num_envs // 2  # the test must exercise terminations


@pytest.mark.parametrize("env_id", CARTPOLE_IDS)
def test_time_limit_matches_gymnasium(env_id: str) -> None:
    """Balanced episodes from gymnasium's own resets: identical obs all the way and a
    truncation (not termination) exactly at step 200 (v0) / 500 (v1)."""
    limit = LIMITS[env_id]
    num_envs = 4
    refs = [gym.make(env_id) for _ in range(num_envs)]
    init = np.stack([r.reset(seed=10 + i)[0] for i, r in enumerate(refs)])
    init64 = np.stack([r.unwrapped.state for r in refs])
    pack = _pack(env_id, [0], num_envs)
    pack.reset()
    pack.set_state(0, {"state": init64, "elapsed": np.zeros(num_envs, dtype=np.int64)})
    np.testing.assert_array_equal(pack.current_obs(), init)

    obs = pack.current_obs()
    for t in range(1, limit + 1):
        a = _controller(obs)
        s = pack.step(a)
        for i, ref in enumerate(refs):
            r_obs, _, r_term, r_trunc, _ = ref.step(int(a[i]))
            np.testing.assert_array_equal(s.final_obs[i], r_obs)
            assert bool(s.terminated[i]) == r_term
            assert bool(s.truncated[i]) == r_trunc
        assert not s.terminated.any()
        assert s.truncated.all() == (t == limit)
        assert s.truncated.any() == (t == limit)
        obs = s.obs
    # After truncation every env restarted from a reset draw.
    assert np.all(np.abs(obs) <= 0.05)
    assert not np.array_equal(obs, s.final_obs)


@pytest.mark.parametrize("env_id", CARTPOLE_IDS)
def test_terminated_wins_over_truncated(env_id: str) -> None:
    limit = LIMITS[env_id]
    pack = _pack(env_id, [0], 2)
    pack.reset()
    # env 0 leaves the track on its last allowed step, env 1 just times out.
    state = np.array([[2.399, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pack.set_state(0, {"state": state, "elapsed": np.array([limit - 1, limit - 1])})
    s = pack.step(np.array([1, 1]))
    np.testing.assert_array_equal(s.terminated, [True, False])
    np.testing.assert_array_equal(s.truncated, [False, True])


def test_reset_draw_protocol() -> None:
    """reset() draws (N, 4) per run; on each step a run's ended envs get ONE draw of (k, 4)
    in increasing env order."""
    num_envs, seed = 6, 7
    pack = _pack("CartPole-v1", [seed], num_envs)
    mirror = np.random.default_rng(seed)
    obs = pack.reset()
    np.testing.assert_array_equal(
        obs, mirror.uniform(-0.05, 0.05, size=(num_envs, 4)).astype(np.float32)
    )
    rng = np.random.default_rng(0)
    multi_end_steps = 0
    for _ in range(400):
        s = pack.step(rng.integers(0, 2, num_envs))
        done = np.flatnonzero(s.terminated | s.truncated)
        if done.size:
            expected = mirror.uniform(-0.05, 0.05, size=(done.size, 4)).astype(np.float32)
            np.testing.assert_array_equal(s.obs[done], expected)
            multi_end_steps += done.size > 1
    assert multi_end_steps > 0


def test_runs_have_independent_reset_streams() -> None:
    """Run 1 of a 3-run pack (seeds a, b, c) behaves exactly like a 1-run pack seeded b."""
    num_envs, horizon = 5, 400
    seeds = [11, 22, 33]
    big = _pack("CartPole-v0", seeds, num_envs)
    solo = _pack("CartPole-v0", [seeds[1]], num_envs)
    actions = np.random.default_rng(99).integers(0, 2, size=(horizon, 3 * num_envs))
    rows = slice(num_envs, 2 * num_envs)
    np.testing.assert_array_equal(big.reset()[rows], solo.reset())
    ends_elsewhere = 0
    for t in range(horizon):
        b = big.step(actions[t])
        s = solo.step(actions[t, rows])
        for field in ("obs", "final_obs", "reward", "terminated", "truncated", "valid"):
            np.testing.assert_array_equal(getattr(b, field)[rows], getattr(s, field))
        other = np.r_[b.terminated[:num_envs], b.terminated[2 * num_envs :]]
        ends_elsewhere += int(other.any())
    assert ends_elsewhere > 10  # the other runs did reset from their own generators


def test_get_state_set_state_round_trip(state_round_trip) -> None:
    num_envs, seeds = 4, [1, 2]
    rng = np.random.default_rng(5)
    actions = rng.integers(0, 2, size=(300, 2 * num_envs))
    a = _pack("CartPole-v1", seeds, num_envs)
    saved = state_round_trip(a, lambda: _pack("CartPole-v1", [100, 200], num_envs), actions, 37)
    assert saved[0]["state"].shape == (num_envs, 4) and saved[0]["state"].dtype == np.float64
    assert saved[0]["elapsed"].shape == (num_envs,) and saved[0]["elapsed"].dtype == np.int64
    # get_state returns copies: stepping on must not have changed what was saved
    assert not np.array_equal(a.get_state(0)["state"], saved[0]["state"])
