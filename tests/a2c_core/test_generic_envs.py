"""The generic gymnasium path (GymnasiumPackEnv): exact env state capture, so that a resumed
run continues bit for bit (MuJoCo through mj_getState, other envs through their attributes, checked by a round trip; nothing pickled)
and a run's numbers do not depend on its pack-mates."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from a2c_core import A2CConfig, engine, spec, train, train_pack
from a2c_core.engine import RETURN_COLUMNS, to_torch
from a2c_core.envs import state_capture
from a2c_core.envs.generic import GymnasiumPackEnv

pytest.importorskip("mujoco")  # a guard only: the test install has the `mujoco` extra
# Box2D's SWIG types warn on import (Python 3.12 style deprecation), whichever test loads it
pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig:DeprecationWarning")

SMALL = dict(num_envs=2, steps_per_epoch=64, epochs=4, value_iters=3)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    # MuJoCo 4 logs a deprecation warning of HalfCheetah's model to ./MUJOCO_LOG.TXT
    monkeypatch.chdir(tmp_path)


def rows(records):
    """Every field of a record except timing, as a float array (NaN-aware bitwise compare)."""
    cols = [c for c in RETURN_COLUMNS if c != "wall_s"]
    return np.array([[getattr(r, c) for c in cols] + [r.diverged] for r in records], float)


def assert_same_records(a, b):
    assert len(a) == len(b) and len(a) > 0
    np.testing.assert_array_equal(rows(a), rows(b))


def assert_same_policy(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def resume_matches_uninterrupted(cfg: A2CConfig, seed: int, at: int, kind: str) -> list:
    """Train ``cfg`` uninterrupted, and again with a checkpoint at epoch ``at`` that goes
    through torch.save / torch.load(weights_only=True) and is resumed: the resumed epochs and
    the final policy must equal the uninterrupted run's bit for bit, and the checkpoint must
    hold the env state captured ``kind``'s way. Returns the uninterrupted run's records."""
    full = list(train(cfg, seed))
    first = list(train(cfg, seed, checkpoint_when=lambda run, epoch: epoch == at))
    ckpt = next(r.checkpoint for r in first if r.epoch == at)
    buf = io.BytesIO()
    torch.save(to_torch(ckpt), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    rest = list(train(cfg, seed, resume=loaded))
    assert [r.epoch for r in rest] == list(range(at + 1, cfg.epochs + 1))
    assert_same_records(full[at:], rest)
    assert_same_policy(full[-1].policy, rest[-1].policy)
    assert bytes(ckpt["env"]["env_capture"]).decode() == kind
    return full


def test_resume_bitwise_halfcheetah_mid_episode():
    """HalfCheetah episodes last 1000 steps: the checkpoint (128 steps in) is mid-episode."""
    cfg = A2CConfig(**SMALL, env="HalfCheetah-v5", gamma=0.99, lam=0.95)
    full = resume_matches_uninterrupted(cfg, seed=3, at=2, kind="mujoco")
    assert all(r.episodes == 0 for r in full)  # no episode ended: all of it mid-episode


def test_resume_bitwise_hopper_with_episode_ends():
    """Hopper terminates early: episodes end and autoreset (from the env's own generator)
    before and after the checkpoint."""
    cfg = A2CConfig(**SMALL, env="Hopper-v5")
    full = resume_matches_uninterrupted(cfg, seed=5, at=2, kind="mujoco")
    assert sum(r.episodes for r in full[:2]) > 0 and sum(r.episodes for r in full[2:]) > 0


def test_pack_invariance_bitwise_halfcheetah():
    """Each run of a pack of 3 (different lrs, gammas, lams, value iterations, seeds) equals
    the run trained alone."""
    base = dict(SMALL, env="HalfCheetah-v5", epochs=3)
    configs = [
        A2CConfig(**base, policy_lr=0.1, value_lr=0.01, gamma=0.99, lam=0.95),
        A2CConfig(**{**base, "value_iters": 5}, policy_lr=0.01, value_lr=0.001, gamma=0.9, lam=0.5),
        A2CConfig(**base, policy_lr=0.05, value_lr=0.1, gamma=0.999, lam=1.0),
    ]
    seeds = [1, 22, 333]
    packed = [[r for r in train_pack(configs, seeds) if r.run == p] for p in range(3)]
    for p in range(3):
        solo = list(train(configs[p], seeds[p]))
        assert_same_records(packed[p], solo)
        assert_same_policy(packed[p][-1].policy, solo[-1].policy)


def test_resume_bitwise_attrs_env_with_its_own_generator(monkeypatch):
    """The attributes capture at engine level, on Pendulum-v1 forced through the generic path.

    No registered id takes this path by itself with a policy this project has: the classic
    control ids (Pendulum, Acrobot, MountainCar[Continuous]) go to the project's own numpy
    envs, the Box2D ones keep their state in Box2D worlds (not captured) and the toy-text ones
    have Discrete
    observations (make_policy needs a Box). Pendulum resets from its own generator
    (``np_random``) and is truncated after 200 steps, after the checkpoint at step 128: the
    restored generator draws the next episode's start."""
    monkeypatch.setattr(engine, "make_pack_env", GymnasiumPackEnv)  # same signature
    cfg = A2CConfig(**SMALL, env="Pendulum-v1")
    full = resume_matches_uninterrupted(cfg, seed=11, at=2, kind="attrs")
    assert [r.episodes for r in full] == [0, 0, 0, 2]  # one truncation per env, after resume


def first_episode_end(env, actions) -> int:
    """The first step at which an episode of pack env ``env`` (reset here) ends."""
    env.reset()
    for t, action in enumerate(actions):
        step = env.step(action)
        if np.any(step.terminated | step.truncated):
            return t
    raise AssertionError("no episode ended")


@pytest.mark.parametrize("env_id, kind", [("Hopper-v5", "mujoco"), ("Pendulum-v1", "attrs")])
def test_state_round_trip_with_an_autoreset_pending(env_id, kind, state_round_trip):
    """Saved right after an episode ended (the next step is the NEXT_STEP dummy that resets
    it), a pack of 2 runs x 2 envs restored into a fresh pack steps on field for field."""

    def make():
        return GymnasiumPackEnv(env_id, 2, 2, [np.random.default_rng(s) for s in (1, 2)])

    space = make().action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(space.low, space.high, (240, 4, *space.shape)).astype(space.dtype)
    split = first_episode_end(make(), actions) + 1
    saved = state_round_trip(make(), make, actions, split)
    assert any(s["autoreset"].any() for s in saved)  # a reset was pending at the save
    assert np.array_equal(np.concatenate([s["dummy_next"] for s in saved]),
                          np.concatenate([s["autoreset"] for s in saved]))  # fmt: skip
    assert all(bytes(s["env_capture"]).decode() == kind for s in saved)


def test_state_capture_reasons():
    pytest.importorskip("Box2D")
    reason = state_capture("LunarLander-v3")
    assert reason is not None and "\n" not in reason and "LunarLander" not in reason
    assert state_capture("HalfCheetah-v5") is None
    assert state_capture("Ant-v5") is None  # reads body positions before it simulates
    assert state_capture("CartPole-v1") is None  # the project's own env


def test_uncaptured_env_resumes_with_fresh_episodes():
    """LunarLander (Box2D): no state saved; a restore starts fresh episodes."""
    pytest.importorskip("Box2D")
    env = GymnasiumPackEnv("LunarLander-v3", 1, 2, [np.random.default_rng(0)])
    before = env.reset().copy()
    env.step(np.zeros(2, dtype=np.int64))
    assert env.get_state(0) == {}
    env.set_state(0, {})
    after = env.current_obs()
    assert after.shape == before.shape and not np.array_equal(after, before)  # new draws
    assert not env._dummy_next.any()


def _sweep(env_id: str) -> dict:
    return {"name": "w", "env": env_id, "num_envs": 2, "epochs": 1, "seeds": [1]}


def test_spec_warns_about_an_env_whose_state_cannot_be_saved():
    pytest.importorskip("Box2D")
    lines = spec.inexact_resume_warnings(spec.load_spec(_sweep("LunarLander-v3")))
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("LunarLander-v3: ")
    assert "fresh resets" in line and "differ from an uninterrupted run" in line


def test_spec_does_not_warn_about_captured_envs():
    assert spec.inexact_resume_warnings(spec.load_spec(_sweep("HalfCheetah-v5"))) == []
    grid = {k: v for k, v in _sweep("").items() if k != "env"}
    both = spec.load_spec({**grid, "grid": {"env": ["CartPole-v1", "Hopper-v5"]}})
    assert spec.inexact_resume_warnings(both) == []


def test_time_limit_counter_restored(state_round_trip):
    """Saved mid-episode (25 steps into 40-step episodes), a restored MuJoCo env is truncated
    at the original episode's step 40, not 40 steps after the restore."""
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

    gym.register("HalfCheetahTimeLimit40-v5", entry_point=HalfCheetahEnv, max_episode_steps=40)

    def make():
        return GymnasiumPackEnv("HalfCheetahTimeLimit40-v5", 1, 2, [np.random.default_rng(4)])

    space = make().action_space
    rng = np.random.default_rng(1)
    actions = rng.uniform(space.low, space.high, (100, 2, *space.shape)).astype(space.dtype)
    assert first_episode_end(make(), actions) == 39
    state_round_trip(make(), make, actions, 25)


def test_run_dry_run_prints_the_resume_warning(tmp_path):
    """The CLI's dry run (and `run`, through runner.api) prints the line; analysis does not
    load envs at all."""
    import subprocess
    import sys

    import yaml

    pytest.importorskip("Box2D")
    path = tmp_path / "ll.yaml"
    path.write_text(yaml.safe_dump(_sweep("LunarLander-v3")))
    out = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(path), "--dry-run",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "warning: LunarLander-v3: its env state cannot be checkpointed" in out.stdout


def test_a_checkpoint_env_state_never_runs_code(tmp_path):
    """A results directory someone hands you: a checkpoint's env state that claims to be a
    pickle (the capture kind an earlier version had) carrying a payload is refused with one
    line, and nothing runs (seen: a tampered checkpoint ran os.system on resume)."""
    import pickle

    marker = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("ran",))

    env = GymnasiumPackEnv("Hopper-v5", 1, 2, [np.random.default_rng(0)])
    env.reset()
    state = env.get_state(0)
    blob = np.frombuffer(pickle.dumps(Payload()), dtype=np.uint8).copy()
    for kind in (b"pickle", b"attrs"):
        bad = {**state, "env_capture": np.frombuffer(kind, dtype=np.uint8).copy(),
               "env_pickles": blob, "env_pickle_sizes": np.array([blob.size, 0])}  # fmt: skip
        with pytest.raises(ValueError):
            env.set_state(0, bad)
    assert not marker.exists()


def test_resume_restores_a_mujoco_envs_own_counter():
    """A MuJoCo env that counts its own steps (here: it ends its episodes after 150) resumes
    bit for bit: the env's plain attributes are captured with the simulator (seen: such a
    counter restarted at 0, and resume was exact only by luck of where it was cut)."""
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

    class CounterCheetah(HalfCheetahEnv):
        def reset(self, **kwargs):
            self._t = 0
            return super().reset(**kwargs)

        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            self._t += 1
            return obs, reward, terminated, truncated or self._t >= 150, info

    if "CounterCheetah-v0" not in gym.registry:
        gym.register("CounterCheetah-v0", entry_point=CounterCheetah)
    cfg = A2CConfig(num_envs=1, steps_per_epoch=64, epochs=4, value_iters=3,
                    env="CounterCheetah-v0")  # fmt: skip
    for at in (1, 2):  # 64 and 128 steps in: the counter is not 0 at either
        full = resume_matches_uninterrupted(cfg, seed=5, at=at, kind="mujoco")
    assert sum(r.episodes for r in full) >= 1  # the counter ended an episode


def test_resumed_uncaptured_run_starts_from_its_fresh_episodes():
    """An env whose state cannot be saved restarts its episodes on resume; the run then sees
    the fresh observation and counts a fresh episode (seen: it kept the checkpoint's old
    observation and episode length, merging two episodes into one record)."""
    pytest.importorskip("Box2D")
    from a2c_core.engine import init_pack

    cfg = A2CConfig(env="LunarLander-v3", num_envs=2, steps_per_epoch=30, epochs=2,
                    value_iters=2)  # fmt: skip
    ckpt = next(r.checkpoint for r in train(cfg, 1, checkpoint_when=lambda run, e: e == 1))
    assert ckpt["env"] == {} and ckpt["ep_length"].max() > 0  # mid-episode, nothing saved
    state, _ = init_pack([cfg], [1])
    state.from_checkpoint(0, ckpt)
    np.testing.assert_array_equal(state.obs, state.envs.current_obs())
    assert not state.ep_length.any() and not state.ep_return.any()
