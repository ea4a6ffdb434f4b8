"""The fused rollouts against gymnasium's own envs, step by step."""

import gymnasium as gym
import numpy as np
import pytest

from a2c_core.envs.cartpole import CartPolePackEnv
from a2c_core.envs.classic import KIND_CARTPOLE
from a2c_core.fused import FusedRollout


def make_buffers(num_runs, steps, num_envs):
    pn = num_runs * num_envs
    return dict(
        obs=np.zeros((num_runs, steps, num_envs, 4), np.float32),
        act=np.zeros((num_runs, steps, num_envs), np.int64),
        rew=np.zeros((steps, pn), np.float32),
        term=np.zeros((steps, pn), bool),
        end=np.zeros((steps, pn), bool),
        valid=np.zeros((steps, pn), bool),
        ret=np.zeros((steps, pn)),
        len=np.zeros((steps, pn), np.int64),
        final=np.zeros((steps, pn, 4), np.float32),
    )


def rollout(steps=400, elapsed=0, W=None, b=None, seed=0, pool_size=64):
    rng = np.random.default_rng(seed)
    env = CartPolePackEnv("CartPole-v0", 1, 1, [rng])
    obs = env.reset().copy()
    env._elapsed[:] = elapsed
    fused = FusedRollout(env, KIND_CARTPOLE, False, [rng], pool_size=pool_size)
    start = env._state[:, 0].copy()
    pools = [fused.pool[0].copy()]
    orig_refill = fused._refill

    def recording_refill(run):
        orig_refill(run)
        pools.append(fused.pool[run].copy())

    fused._refill = recording_refill
    W = (
        np.random.default_rng(seed + 1).normal(size=(1, 4, 2)).astype(np.float32)
        if W is None
        else W
    )
    b = np.zeros((1, 2), np.float32) if b is None else b
    noise = np.random.default_rng(seed + 2).random((1, steps, 1))
    bufs = make_buffers(1, steps, 1)
    fused.run(obs, {"W": W, "b": b}, noise, bufs, np.zeros(1), np.zeros(1, np.int64))
    return start, pools, bufs


def test_fused_rollout_equals_gymnasium_step_by_step():
    start, pools, bufs = rollout(pool_size=4)  # small pools: resets go through refills
    reset_states = iter(np.concatenate(pools))
    env = gym.make("CartPole-v0").unwrapped
    env.reset(seed=0)
    env.state = start.copy()
    episode_len = 0
    ends = 0
    for t in range(bufs["act"].shape[1]):
        np.testing.assert_array_equal(bufs["obs"][0, t, 0], np.array(env.state, np.float32))
        obs, reward, terminated, _, _ = env.step(int(bufs["act"][0, t, 0]))
        episode_len += 1
        truncated = episode_len >= 200 and not terminated
        assert bufs["term"][t, 0] == terminated and bufs["end"][t, 0] == (terminated or truncated)
        assert bufs["rew"][t, 0] == reward
        if terminated or truncated:
            np.testing.assert_array_equal(bufs["final"][t, 0], obs)
            assert bufs["len"][t, 0] == episode_len and bufs["ret"][t, 0] == episode_len
            env.state = next(reset_states)
            env.steps_beyond_terminated = None  # what reset() would do
            episode_len = 0
            ends += 1
    assert ends >= 5  # random-ish policy: many episodes
    # the resets checked above include states of refilled pools, not only the first pool's
    assert len(pools) >= 2 and ends > len(pools[0])


def test_fused_rollout_pool_refills_are_consumed_in_order():
    start, pools, bufs = rollout(steps=2000, pool_size=2)
    assert len(pools) > 3
    # every reset state the rollout used is the next pool entry, in order
    used = [bufs["obs"][0, t + 1, 0] for t in range(1999) if bufs["end"][t, 0]]
    expected = np.concatenate(pools).astype(np.float32)[: len(used)]
    np.testing.assert_array_equal(np.array(used), expected)


def test_fused_rollout_truncates_at_time_limit():
    _, _, bufs = rollout(steps=3, elapsed=199)
    assert bufs["end"][0, 0] and not bufs["term"][0, 0]


def test_fused_sampling_follows_softmax():
    b = np.log(np.array([[0.3, 0.7]], np.float32))
    _, _, bufs = rollout(steps=20000, W=np.zeros((1, 4, 2), np.float32), b=b)
    assert abs(bufs["act"].mean() - 0.7) < 0.015


FUSED_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
             "Pendulum-v1"]  # fmt: skip


def _reset_obs(env_id: str, env) -> np.ndarray:
    """The observation gymnasium's reset returns for the state just set."""
    if env_id == "Acrobot-v1":
        return env._get_ob()
    if env_id == "Pendulum-v1":
        return env._get_obs()
    return np.array(env.state, dtype=np.float32)


@pytest.mark.parametrize("env_id", FUSED_IDS)
def test_fused_rollout_of_every_env_equals_gymnasium(env_id):
    """The fused kernel of each env, with its policy (random parameters) and small reset
    pools, replayed on gymnasium's own env from the same start and reset states: every
    observation, reward, end flag, final observation and episode statistic agrees exactly."""
    from a2c_core.envs import make_pack_env
    from a2c_core.envs.classic import KIND_CARTPOLE
    from a2c_core.fused import make_fused_rollout
    from a2c_core.policies import make_policy

    rng = np.random.default_rng(3)
    env = make_pack_env(env_id, 1, 1, [rng])
    steps = 6 * env.max_episode_steps + 100  # over 4 episodes: the pool of 4 is refilled
    obs = env.reset().copy()
    policy = make_policy(env.observation_space, env.action_space, 8, np.float32)
    params = {k: v[None] for k, v in policy.init_params(np.random.default_rng(4)).items()}
    if not policy.discrete:
        params["log_std"][:] = 0.7  # wide actions: clipping and the goal get exercised
    fused = make_fused_rollout(env, policy, [rng])
    assert fused is not None and (fused.kind == KIND_CARTPOLE) == env_id.startswith("CartPole")
    fused.pool_size = 4
    fused.pool = np.empty((1, 4, env.state_dim))
    fused.pool_obs = np.empty((1, 4, env.observation_space.shape[0]), np.float32)
    fused._refill(0)
    start = env._state[:, 0].copy()
    pools = [fused.pool[0].copy()]
    orig_refill = fused._refill

    def recording_refill(run):
        orig_refill(run)
        pools.append(fused.pool[run].copy())

    fused._refill = recording_refill
    noise = policy.noise(np.random.default_rng(5), steps, 1)[None]
    d = env.observation_space.shape[0]
    act_tail = () if policy.discrete else (1,)
    bufs = dict(
        obs=np.zeros((1, steps, 1, d), np.float32),
        act=np.zeros((1, steps, 1) + act_tail, np.int64 if policy.discrete else np.float32),
        rew=np.zeros((steps, 1), np.float32), term=np.zeros((steps, 1), bool),
        end=np.zeros((steps, 1), bool), valid=np.zeros((steps, 1), bool),
        ret=np.zeros((steps, 1)), len=np.zeros((steps, 1), np.int64),
        final=np.zeros((steps, 1, d), np.float32),
    )  # fmt: skip
    fused.run(obs, params, noise, bufs, np.zeros(1), np.zeros(1, np.int64))

    reset_states = iter(np.concatenate(pools))
    limit = env.max_episode_steps
    ref = gym.make(env_id).unwrapped
    ref.reset(seed=0)
    ref.state = start[:2] if env_id == "MountainCarContinuous-v0" else start.copy()
    expected_obs = _reset_obs(env_id, ref)
    episode_len, episode_ret, ends = 0, 0.0, 0
    for t in range(steps):
        np.testing.assert_array_equal(bufs["obs"][0, t, 0], expected_obs, err_msg=f"step {t}")
        action = int(bufs["act"][0, t, 0]) if policy.discrete else bufs["act"][0, t, 0]
        expected_obs, reward, terminated, _, _ = ref.step(action)
        episode_len += 1
        episode_ret += reward
        truncated = episode_len >= limit and not terminated
        assert bufs["term"][t, 0] == terminated, t
        assert bufs["end"][t, 0] == (terminated or truncated), t
        assert bufs["rew"][t, 0] == np.float32(reward), t
        if terminated or truncated:
            np.testing.assert_array_equal(bufs["final"][t, 0], expected_obs)
            assert bufs["len"][t, 0] == episode_len and bufs["ret"][t, 0] == episode_ret
            state = next(reset_states)
            # gymnasium's reset state: float32 for Acrobot, float64 [2] for the cars
            ref.state = {"Acrobot-v1": state.astype(np.float32),
                         "MountainCarContinuous-v0": state[:2]}.get(env_id, state.copy())  # fmt: skip
            if env_id.startswith("CartPole"):
                ref.steps_beyond_terminated = None
            expected_obs = _reset_obs(env_id, ref)
            episode_len, episode_ret = 0, 0.0
            ends += 1
    assert ends >= 3, ends  # several episodes, resets from refilled pools
    assert len(pools) >= 2


@pytest.mark.parametrize("env_id", FUSED_IDS)
def test_fused_float64_runs_see_float32_observations(env_id):
    """A float64 run sees the observations gymnasium emits (float32 numbers) on the fused
    path as on the generic one (seen: the kernels wrote unrounded float64 cos/sin)."""
    from a2c_core import A2CConfig, train
    from a2c_core.engine import init_pack

    cfg = A2CConfig(env=env_id, num_envs=2, steps_per_epoch=300, epochs=1, value_iters=2,
                    dtype="float64")  # fmt: skip
    state, policy = init_pack([cfg], [1])
    assert state.fused is not None
    from a2c_core.engine import Rollout, collect_rollout

    buf = Rollout.buffers(1, 300, 2, state.obs.shape[1], policy, np.float64)
    ro = collect_rollout(state, policy, buf)
    assert ro.obs.size and (env_id == "MountainCarContinuous-v0" or ro.final_obs.size)
    for arr in (ro.obs, ro.final_obs, state.obs):
        assert arr.dtype == np.float64
        np.testing.assert_array_equal(arr, arr.astype(np.float32).astype(np.float64))
    assert list(train(cfg, 1))  # and it trains


def test_fused_set_state_refuses_a_foreign_pool_or_cursor():
    """A damaged checkpoint's reset pool or cursor raises one line, never an out-of-bounds
    read in compiled code (seen: cursor -10**7 crashed the process)."""
    from a2c_core.envs import make_pack_env
    from a2c_core.fused import make_fused_rollout
    from a2c_core.policies import make_policy

    rng = np.random.default_rng(0)
    env = make_pack_env("Acrobot-v1", 1, 2, [rng])
    env.reset()
    policy = make_policy(env.observation_space, env.action_space, 8, np.float32)
    fused = make_fused_rollout(env, policy, [rng])
    good = fused.get_state(0)
    for bad in ({**good, "reset_cursor": np.array([-10**7])},
                {**good, "reset_cursor": np.array([fused.pool_size + 1])},
                {**good, "reset_pool": good["reset_pool"][:4]}):  # fmt: skip
        with pytest.raises(ValueError, match="checkpoint's reset"):
            fused.set_state(0, bad)
    fused.set_state(0, good)
