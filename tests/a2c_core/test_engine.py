"""The packed trainer: determinism, pack invariance, resume, divergence, learning."""

import io
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from a2c_core import A2CConfig, train, train_pack
from a2c_core.engine import RETURN_COLUMNS, to_torch

ARTICLE_SEEDS = [9827391, 8534101, 4305430, 12654329, 3483055]
SMALL = dict(num_envs=4, steps_per_epoch=300, epochs=4, value_iters=10)


def rows(records):
    """Every field of a record except timing, as a float array (NaN-aware bitwise compare)."""
    cols = [c for c in RETURN_COLUMNS if c != "wall_s"]
    return np.array([[getattr(r, c) for c in cols] + [r.diverged] for r in records], float)


def assert_same_records(a, b):
    assert len(a) == len(b) and len(a) > 0
    np.testing.assert_array_equal(rows(a), rows(b))


def by_run(records, num_runs):
    out = [[] for _ in range(num_runs)]
    for r in records:
        out[r.run].append(r)
    return out


def test_records_have_design_fields_and_epochs_from_one():
    recs = list(train(A2CConfig(**SMALL), 3))
    assert [r.epoch for r in recs] == [1, 2, 3, 4]
    assert set(recs[0].row()) == set(RETURN_COLUMNS)
    steps = [r.env_steps for r in recs]
    assert steps == [4 * 300 * k for k in (1, 2, 3, 4)]
    assert recs[-1].finished and recs[-1].policy is not None
    assert all(r.episodes > 0 and r.return_min <= r.return_mean <= r.return_max for r in recs)


def test_determinism_same_seed_bitwise():
    cfg = A2CConfig(**SMALL)
    a, b = list(train(cfg, 11)), list(train(cfg, 11))
    assert_same_records(a, b)
    for k in a[-1].policy:
        np.testing.assert_array_equal(a[-1].policy[k], b[-1].policy[k])
    c = list(train(cfg, 12))
    assert not np.array_equal(rows(a), rows(c))


def test_determinism_across_processes():
    code = (
        "from a2c_core import A2CConfig, train\n"
        "r = list(train(A2CConfig(num_envs=2, steps_per_epoch=100, epochs=2, value_iters=3), 5))\n"
        "print(repr([(x.return_mean, x.value_loss, x.policy_loss) for x in r]))\n"
    )
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}  # fmt: skip
    assert len(outs) == 1


OWN_ENVS = ["CartPole-v0", "CartPoleSwingUp-v0", "Acrobot-v1", "MountainCar-v0",
            "MountainCarContinuous-v0", "Pendulum-v1"]  # fmt: skip


@pytest.mark.parametrize("env_id", OWN_ENVS)
def test_pack_invariance_bitwise(env_id):
    """Each run of a pack of 3 (different lrs, gammas, lams, seeds) equals the run alone."""
    base = dict(SMALL, env=env_id, epochs=3)
    configs = [
        A2CConfig(**base, policy_lr=0.1, value_lr=0.01, gamma=0.99, lam=0.95),
        A2CConfig(**{**base, "value_iters": 7}, policy_lr=0.01, value_lr=0.001, gamma=0.9, lam=0.5),
        A2CConfig(**base, policy_lr=0.05, value_lr=0.1, gamma=0.999, lam=1.0),
    ]
    seeds = [1, 22, 333]
    packed = by_run(list(train_pack(configs, seeds)), 3)
    for p in range(3):
        solo = list(train(configs[p], seeds[p]))
        assert_same_records(packed[p], solo)
        for k in solo[-1].policy:
            np.testing.assert_array_equal(packed[p][-1].policy[k], solo[-1].policy[k])


@pytest.mark.parametrize("env_id", OWN_ENVS)
def test_checkpoint_resume_bitwise_and_weights_only(env_id):
    cfg = A2CConfig(**dict(SMALL, epochs=5, env=env_id))
    full = list(train(cfg, 7))
    first = list(train(cfg, 7, checkpoint_when=lambda run, epoch: epoch == 2))
    ckpt = next(r.checkpoint for r in first if r.epoch == 2)
    assert all("torch" not in repr(type(a)) for a in ckpt["policy"].values())  # numpy in memory
    buf = io.BytesIO()
    torch.save(to_torch(ckpt), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    rest = list(train(cfg, 7, resume=loaded))
    assert [r.epoch for r in rest] == [3, 4, 5]
    assert_same_records(full[2:], rest)
    for k in full[-1].policy:
        np.testing.assert_array_equal(full[-1].policy[k], rest[-1].policy[k])


def test_resume_regrouped_into_a_new_pack():
    """A run resumed inside a different pack (mates at other epochs) still equals its solo run."""
    cfg_a = A2CConfig(**dict(SMALL, epochs=4))
    cfg_b = A2CConfig(**dict(SMALL, epochs=4, policy_lr=0.02))
    solo_a, solo_b = list(train(cfg_a, 1)), list(train(cfg_b, 2))
    ckpt = next(r.checkpoint for r in train(cfg_a, 1, checkpoint_when=lambda r, e: e == 3)
                if r.epoch == 3)  # fmt: skip
    recs = by_run(list(train_pack([cfg_b, cfg_a], [2, 1], resume=[None, ckpt])), 2)
    assert_same_records(recs[0], solo_b)
    assert_same_records(recs[1], solo_a[3:])


def test_divergence_isolated_to_one_run():
    good = A2CConfig(**SMALL)
    bad = A2CConfig(**dict(SMALL, value_lr=1e30, policy_lr=1e30))
    packed = by_run(list(train_pack([good, bad, good], [1, 2, 3])), 3)
    assert packed[1][-1].diverged and packed[1][-1].finished
    assert len(packed[1]) < SMALL["epochs"]
    assert all(np.isfinite(v).all() for v in packed[1][-1].policy.values())
    assert_same_records(packed[0], list(train(good, 1)))
    assert_same_records(packed[2], list(train(good, 3)))


def test_learning_cartpole_article_config():
    """The article's CartPole-v0 settings, 5 article seeds as one pack: every seed reaches a
    mean episode return >= 195 within 100 epochs (stops as soon as all have)."""
    reached = {}
    for rec in train_pack([A2CConfig()] * 5, ARTICLE_SEEDS):
        if rec.return_mean >= 195:
            reached.setdefault(rec.run, rec.epoch)
        if len(reached) == 5:
            break
    assert len(reached) == 5, f"seeds that reached 195: {reached}"
    assert max(reached.values()) <= 100


def test_swingup_article_config_trains_a_few_epochs():
    cfg = A2CConfig(env="CartPoleSwingUp-v0", gamma=0.999, lam=0.99, policy_lr=0.01,
                    value_lr=0.1, epochs=2)  # fmt: skip
    recs = list(train(cfg, 0))
    assert len(recs) == 2
    for r in recs:
        assert r.env_steps > 0 and math.isfinite(r.value_loss) and math.isfinite(r.entropy)
        assert -1.0 * 500 <= r.return_mean <= 500
    assert set(recs[-1].policy) == {"W1", "b1", "W2", "b2", "log_std"}


class ThreeStepEnv(gym.Env):
    """Every episode lasts exactly 3 steps with reward 1 (tests NEXT_STEP handling)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, self.t / 3, np.float32), 1.0, self.t >= 3, False, {}


def test_next_step_dummy_transitions_never_counted():
    gym.register("ThreeStep-v0", entry_point=ThreeStepEnv)
    from a2c_core.envs import make_pack_env
    from a2c_core.envs.generic import GymnasiumPackEnv

    env = make_pack_env("ThreeStep-v0", 1, 2, [np.random.default_rng(0)])
    assert isinstance(env, GymnasiumPackEnv)
    cfg = A2CConfig(env="ThreeStep-v0", num_envs=2, steps_per_epoch=40, epochs=2, value_iters=5)
    recs = list(train(cfg, 0))
    # each env: 10 cycles of 3 real steps + 1 dummy per 40 vector steps
    assert recs[0].env_steps == 2 * 30 and recs[1].env_steps == 2 * 60
    assert recs[0].episodes == 20
    assert recs[0].length_mean == 3 and recs[0].return_min == recs[0].return_max == 3
    assert math.isfinite(recs[0].value_loss)


def test_gaussian_policy_std_and_log_prob():
    from a2c_core.policies import GaussianPolicy

    pol = GaussianPolicy(obs_dim=5, action_dim=3, widths=(8,), dtype=np.float64)
    params = pol.init_params(np.random.default_rng(0))
    params["log_std"] = np.array([-0.5, 0.0, 0.7])
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(50, 5))
    acts = rng.normal(size=(50, 3))
    mean = torch.tensor(pol.mean(params, obs))
    dist = torch.distributions.Normal(mean, torch.exp(torch.tensor(params["log_std"])))
    np.testing.assert_allclose(dist.stddev[0].numpy(), np.exp(params["log_std"]))
    expected = dist.log_prob(torch.tensor(acts)).sum(-1).numpy()
    np.testing.assert_allclose(pol.log_prob(params, obs, acts), expected, rtol=1e-12)
    # sampled actions have std exp(log_std) (not its square root, not its square)
    stacked = {k: v[None] for k, v in params.items()}
    noise = rng.standard_normal((1, 20000, 3))
    samples = pol.act(stacked, np.zeros((1, 20000, 5)), noise)[0]
    np.testing.assert_allclose(samples.std(0), np.exp(params["log_std"]), rtol=0.03)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_policy_gradients_match_torch_autograd(kind):
    from a2c_core.policies import CategoricalPolicy, GaussianPolicy

    rng = np.random.default_rng(2)
    if kind == "categorical":
        pol = CategoricalPolicy(4, 3, (), np.float64)
        acts = rng.integers(0, 3, 64)
    else:
        pol = GaussianPolicy(4, 2, (8,), np.float64)
        acts = rng.normal(size=(64, 2))
    params = pol.init_params(rng)
    obs, adv = rng.normal(size=(64, 4)), rng.normal(size=64)
    loss, _, grads = pol.loss_and_grads(params, obs, acts, adv)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    to, ta, tadv = torch.tensor(obs), torch.tensor(acts), torch.tensor(adv)
    if kind == "categorical":
        logp = torch.log_softmax(to @ tp["W"] + tp["b"], -1).gather(1, ta[:, None])[:, 0]
    else:
        mean = torch.tanh(to @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
        logp = torch.distributions.Normal(mean, tp["log_std"].exp()).log_prob(ta).sum(-1)
    tloss = -(tadv * logp).mean()
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-10)
    for k in params:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-8, atol=1e-12)


def test_import_a2c_core_does_not_import_ray_pandas_seaborn():
    code = (
        "import sys, a2c_core\n"
        "from a2c_core import train\n"
        "bad = [m for m in ('ray', 'pandas', 'seaborn') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_categorical_policy_step_compiled_equals_numpy(monkeypatch):
    import a2c_core.policies as policies

    rng = np.random.default_rng(3)
    pol = policies.CategoricalPolicy(4, 3, (), np.float32)
    params = pol.init_params(rng)
    obs = rng.normal(size=(5003, 4)).astype(np.float32)
    acts, adv = rng.integers(0, 3, 5003), rng.normal(size=5003).astype(np.float32)
    fast = pol.loss_and_grads(params, obs, acts, adv)
    monkeypatch.setattr(policies, "_HAVE_NUMBA", False)
    slow = pol.loss_and_grads(params, obs, acts, adv)
    assert fast[0] == pytest.approx(slow[0], rel=1e-5, abs=1e-6)
    assert fast[1] == pytest.approx(slow[1], rel=1e-5)
    for k in ("W", "b"):
        np.testing.assert_allclose(fast[2][k], slow[2][k], rtol=1e-4, atol=1e-6)
