"""CartPoleSwingUp port: reference fixture, pack env == single env, time limit, rendering."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import a2c_core.envs.swingup as swingup
from a2c_core.envs import make_pack_env
from a2c_core.envs.swingup import SWINGUP_IDS, SwingUpPackEnv, register_envs

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning")

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "cartpole_swingup_reference.npz"
VERSIONS = {"CartPoleSwingUp-v0": "v0", "CartPoleSwingUp-v1": "v1"}


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    # No skip: a missing or unreadable fixture must fail the suite.
    assert FIXTURE.is_file(), f"reference fixture missing: {FIXTURE}"
    with np.load(FIXTURE) as data:
        out = {k: data[k] for k in data.files}
    assert out["init_states"].shape == (48, 4)
    assert out["actions"].shape == (48, 120, 1)
    return out


def _horizon(terminated: np.ndarray) -> int:
    """Steps to compare: up to and including the first terminated step."""
    hits = np.flatnonzero(terminated)
    return int(hits[0]) + 1 if hits.size else terminated.shape[0]


def _pack(env_id: str, seeds: list[int], num_envs: int) -> SwingUpPackEnv:
    return SwingUpPackEnv(env_id, len(seeds), num_envs, [np.random.default_rng(s) for s in seeds])


def test_register_envs_is_idempotent() -> None:
    register_envs()
    register_envs()
    for env_id in SWINGUP_IDS:
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == 500
        assert spec.kwargs == {"version": VERSIONS[env_id]}


def test_spaces() -> None:
    register_envs()
    env = gym.make("CartPoleSwingUp-v1")
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert env.observation_space.shape == (5,)
    assert env.observation_space.dtype == np.float32
    assert np.all(np.isinf(env.observation_space.high))
    pack = _pack("CartPoleSwingUp-v1", [0], 2)
    assert pack.action_space == env.action_space
    assert pack.observation_space == env.observation_space
    assert isinstance(
        make_pack_env("CartPoleSwingUp-v0", 1, 2, [np.random.default_rng(0)]), SwingUpPackEnv
    )


@pytest.mark.parametrize("env_id", SWINGUP_IDS)
def test_single_env_matches_reference_fixture(env_id: str, ref: dict[str, np.ndarray]) -> None:
    register_envs()
    v = VERSIONS[env_id]
    env = gym.make(env_id)
    n_terminated = 0
    for i in range(ref["init_states"].shape[0]):
        env.reset(seed=0)
        env.unwrapped.state = ref["init_states"][i]
        for t in range(_horizon(ref[f"{v}_terminated"][i])):
            obs, reward, terminated, truncated, _ = env.step(ref["actions"][i, t])
            where = f"trajectory {i} step {t}"
            assert obs.dtype == np.float32 and obs.shape == (5,)
            np.testing.assert_allclose(obs, ref[f"{v}_obs"][i, t], rtol=0, atol=1e-4, err_msg=where)
            assert reward == pytest.approx(ref[f"{v}_rewards"][i, t], rel=0, abs=1e-4), where
            assert terminated == bool(ref[f"{v}_terminated"][i, t]), where
            assert not truncated
            n_terminated += terminated
    assert n_terminated == int(ref[f"{v}_terminated"].any(axis=1).sum()) > 0


@pytest.mark.parametrize("env_id", SWINGUP_IDS)
def test_pack_env_equals_single_env(env_id: str, ref: dict[str, np.ndarray]) -> None:
    """Same initial states (through set_state) and actions: the pack's transitions are
    bit-identical to the single env's, and so also match the fixture."""
    register_envs()
    v = VERSIONS[env_id]
    init, actions = ref["init_states"], ref["actions"]
    n = init.shape[0]
    pack = _pack(env_id, [0], n)
    pack.reset()
    pack.set_state(0, {"state": init, "elapsed": np.zeros(n, dtype=np.int64)})
    steps = [pack.step(actions[:, t]) for t in range(actions.shape[1])]

    env = gym.make(env_id)
    for i in range(n):
        env.reset(seed=0)
        env.unwrapped.state = init[i]
        for t in range(_horizon(ref[f"{v}_terminated"][i])):
            obs, reward, terminated, _, _ = env.step(actions[i, t])
            s = steps[t]
            np.testing.assert_array_equal(s.final_obs[i], obs)
            assert s.reward[i] == reward
            assert bool(s.terminated[i]) == terminated
            np.testing.assert_allclose(s.final_obs[i], ref[f"{v}_obs"][i, t], rtol=0, atol=1e-4)
            if terminated:
                # Same-step autoreset: the next obs comes from the reset distribution.
                assert not np.array_equal(s.obs[i], s.final_obs[i])
                assert abs(s.obs[i, 0]) < 2.0
            else:
                np.testing.assert_array_equal(s.obs[i], s.final_obs[i])


def test_pack_actions_are_clipped() -> None:
    a = _pack("CartPoleSwingUp-v0", [0], 3)
    b = _pack("CartPoleSwingUp-v0", [0], 3)
    a.reset(), b.reset()
    sa = a.step(np.array([[5.0], [-7.0], [0.3]], dtype=np.float32))
    sb = b.step(np.array([[1.0], [-1.0], [0.3]], dtype=np.float32))
    np.testing.assert_array_equal(sa.obs, sb.obs)


@pytest.mark.parametrize("env_id", SWINGUP_IDS)
def test_truncation_at_500_steps(env_id: str) -> None:
    # Hanging at rest with zero force stays on the track, so only the time limit can end it.
    rest = np.array([0.0, 0.0, np.pi, 0.0])
    register_envs()
    env = gym.make(env_id)
    env.reset(seed=0)
    env.unwrapped.state = rest
    for t in range(1, 501):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        assert not terminated
        assert truncated == (t == 500)

    pack = _pack(env_id, [3, 4], 2)
    pack.reset()
    for p in range(2):
        pack.set_state(p, {"state": np.stack([rest, rest]), "elapsed": np.zeros(2, np.int64)})
    for t in range(1, 501):
        s = pack.step(np.zeros((4, 1), dtype=np.float32))
        assert not s.terminated.any()
        assert s.truncated.all() == (t == 500) and s.truncated.any() == (t == 500)
    np.testing.assert_allclose(s.final_obs[:, 2], -1.0, atol=1e-6)  # still hanging
    assert not np.array_equal(s.obs, s.final_obs)  # autoreset drew fresh states


def test_terminated_wins_over_truncated() -> None:
    pack = _pack("CartPoleSwingUp-v1", [0], 2)
    pack.reset()
    state = np.array([[2.399, 5.0, np.pi, 0.0], [0.0, 0.0, np.pi, 0.0]])
    pack.set_state(0, {"state": state, "elapsed": np.array([499, 499])})
    s = pack.step(np.zeros((2, 1), dtype=np.float32))
    np.testing.assert_array_equal(s.terminated, [True, False])
    np.testing.assert_array_equal(s.truncated, [False, True])


def test_pack_reset_draw_protocol() -> None:
    """reset() draws normal([0,0,pi,0], 0.2, (N,4)) per run; ended envs of a run get ONE
    (k, 4) draw per step in env order, so a run's stream ignores its pack-mates."""
    num_envs, seeds = 4, [5, 6, 7]
    pack = _pack("CartPoleSwingUp-v0", seeds, num_envs)
    mirrors = [np.random.default_rng(s) for s in seeds]

    def draw(p: int, k: int) -> np.ndarray:
        st = mirrors[p].normal(loc=[0.0, 0.0, np.pi, 0.0], scale=0.2, size=(k, 4))
        return np.column_stack(
            [st[:, 0], st[:, 1], np.cos(st[:, 2]), np.sin(st[:, 2]), st[:, 3]]
        ).astype(np.float32)

    obs = pack.reset()
    for p in range(3):
        np.testing.assert_array_equal(obs[p * num_envs : (p + 1) * num_envs], draw(p, num_envs))
    # Push each run's carts hard to one side so episodes end often, several at once.
    rng = np.random.default_rng(1)
    sign = np.repeat([1.0, -1.0, 1.0], num_envs)[:, None]
    multi = 0
    for _ in range(600):
        acts = sign * rng.uniform(0.9, 1.0, (3 * num_envs, 1))
        s = pack.step(acts.astype(np.float32))
        done = np.flatnonzero(s.terminated | s.truncated)
        for p in np.unique(done // num_envs):
            rows = done[done // num_envs == p]
            np.testing.assert_array_equal(s.obs[rows], draw(int(p), rows.size))
            multi += rows.size > 1
    assert multi > 0


def test_pack_get_state_set_state_round_trip(state_round_trip) -> None:
    num_envs = 3
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1.5, 1.5, size=(400, 2 * num_envs, 1)).astype(np.float32)
    a = _pack("CartPoleSwingUp-v1", [1, 2], num_envs)
    saved = state_round_trip(a, lambda: _pack("CartPoleSwingUp-v1", [8, 9], num_envs), actions, 50)
    assert saved[1]["state"].shape == (num_envs, 4) and saved[1]["state"].dtype == np.float64


@pytest.mark.parametrize(
    "state", [None, np.array([2.3, 0.0, 0.3, 0.0]), np.array([-2.4, 0.0, -2.0, 0.0])]
)
def test_render_rgb_array(state: np.ndarray | None) -> None:
    register_envs()
    env = gym.make("CartPoleSwingUp-v0", render_mode="rgb_array")
    assert env.metadata["render_fps"] == 50
    env.reset(seed=0)
    if state is not None:
        env.unwrapped.state = state
    img = env.render()
    assert isinstance(img, np.ndarray)
    assert img.dtype == np.uint8
    assert img.shape == (400, 600, 3)
    assert np.unique(img.reshape(-1, 3), axis=0).shape[0] > 1


def test_swingup_module_does_not_import_pillow_eagerly() -> None:
    import ast

    tree = ast.parse(Path(swingup.__file__).read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [
        (n.module or "") if isinstance(n, ast.ImportFrom) else n.names[0].name for n in top_level
    ]
    assert not any(name.startswith("PIL") for name in names)


@pytest.mark.parametrize("env_id", ["CartPoleSwingUp-v0", "CartPoleSwingUp-v1"])
def test_compiled_pack_step_equals_the_reference_dynamics_bitwise(env_id):
    """The pack env's compiled step (one call per step) against swingup_dynamics on arrays,
    the arithmetic the published swing-up numbers came from: state, reward, terminated and
    final observation bit for bit, from wide random states and actions beyond the clip."""
    from a2c_core.envs.swingup import (
        FORCE_MAG,
        X_THRESHOLD,
        SwingUpPackEnv,
        _reward,
        swingup_dynamics,
    )

    rng = np.random.default_rng(0)
    m = 2048
    env = SwingUpPackEnv(env_id, 1, m, [np.random.default_rng(1)])
    env.reset()
    state = np.column_stack([rng.uniform(-2.4, 2.4, m), rng.normal(0, 3, m),
                             rng.uniform(-20, 20, m), rng.normal(0, 10, m)])  # fmt: skip
    env.set_state(0, {"state": state, "elapsed": np.zeros(m, dtype=np.int64)})
    for _ in range(30):
        actions = rng.normal(0, 2, (m, 1)).astype(np.float32)
        before = env._state.copy()
        clipped = np.clip(actions.astype(np.float64).reshape(-1), -1.0, 1.0)
        want = np.stack(swingup_dynamics(*before, clipped * FORCE_MAG))
        reward, terminated, _, final_obs = env._transition(actions)
        np.testing.assert_array_equal(env._state, want)
        np.testing.assert_array_equal(reward, _reward(want[2], env.version))
        np.testing.assert_array_equal(terminated, np.abs(want[0]) > X_THRESHOLD)
        np.testing.assert_array_equal(final_obs, env._make_obs(want))
