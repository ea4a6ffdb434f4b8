"""The knobs (issue #15): hand-written gradients against torch autograd for every
combination, pack invariance and bitwise resume of runs that differ in them, observation
statistics, the fused rollout's normalisation, and a run that learns with them."""

import dataclasses
import io

import numpy as np
import pytest
import torch
from test_engine import assert_same_records, by_run

from a2c_core import A2CConfig, obsnorm, train, train_pack
from a2c_core import valuefit as vf
from a2c_core.adam import AdamState
from a2c_core.engine import to_torch
from a2c_core.policies import CategoricalPolicy, GaussianPolicy, clip_grad_norm

WIDTHS = [(), (8,), (8, 6)]
ACTS = ["tanh", "relu"]


def torch_mlp(tp, names, x, activation):
    act = torch.tanh if activation == "tanh" else torch.relu
    for w, b in names[:-1]:
        x = act(x @ tp[w] + tp[b])
    w, b = names[-1]
    return x @ tp[w] + tp[b]


def torch_clip(tensors, max_norm):
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(tensors, max_norm)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
@pytest.mark.parametrize("widths", WIDTHS)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("entropy_coef", [0.0, 0.05])
@pytest.mark.parametrize("max_norm", [None, 0.05])
def test_policy_gradients_match_autograd(kind, widths, activation, entropy_coef, max_norm):
    """loss - c * entropy, clipped: the hand-written gradients equal torch's (float64)."""
    rng = np.random.default_rng(len(widths) * 7 + (activation == "relu"))
    if kind == "categorical":
        pol = CategoricalPolicy(4, 3, widths, np.float64, activation)
        acts = rng.integers(0, 3, 64)
    else:
        pol = GaussianPolicy(4, 2, widths, np.float64, activation)
        acts = rng.normal(size=(64, 2))
    params = pol.init_params(rng, init_log_std=-0.3)
    obs, adv = rng.normal(size=(64, 4)), rng.normal(size=64)
    loss, entropy, grads = pol.loss_and_grads(params, obs, acts, adv, entropy_coef)
    norm = clip_grad_norm(grads, max_norm)

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    to, ta, tadv = torch.tensor(obs), torch.tensor(acts), torch.tensor(adv)
    out = torch_mlp(tp, pol.net.names, to, activation)
    if kind == "categorical":
        dist = torch.distributions.Categorical(logits=out)
        logp, t_ent = dist.log_prob(ta), dist.entropy().mean()
    else:
        dist = torch.distributions.Normal(out, tp["log_std"].exp())
        logp, t_ent = dist.log_prob(ta).sum(-1), dist.entropy().sum(-1).mean()
    pg = -(tadv * logp).mean()
    (pg - entropy_coef * t_ent).backward()
    t_norm = torch.nn.utils.clip_grad_norm_(list(tp.values()), max_norm or float("inf"))
    assert loss == pytest.approx(pg.item(), rel=1e-10)
    assert entropy == pytest.approx(t_ent.item(), rel=1e-10)
    if max_norm is not None:
        assert norm == pytest.approx(t_norm.item(), rel=1e-10)
        assert norm > max_norm  # the clip really acted in this case
    assert set(grads) == set(params)
    for k in params:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-8, atol=1e-12)


def test_init_log_std_sets_the_gaussian_std_and_default_is_zero():
    pol = GaussianPolicy(3, 2, (8,), np.float32)
    assert np.all(pol.init_params(np.random.default_rng(0))["log_std"] == 0)
    p = pol.init_params(np.random.default_rng(0), init_log_std=-1.5)
    assert np.all(p["log_std"] == np.float32(-1.5))
    rec = list(train(A2CConfig(env="Pendulum-v1", init_log_std=-1.5, num_envs=2,
                               steps_per_epoch=50, epochs=1, value_iters=2), 0))[-1]  # fmt: skip
    assert rec.entropy == pytest.approx(2 * 0.0 + (-1.5 + 0.5 * (1 + np.log(2 * np.pi))), rel=0.1)


def torch_value(tp, x, widths, activation):
    act = torch.tanh if activation == "tanh" else torch.relu
    for i in range(1, len(widths) + 1):
        x = act(x @ tp[f"W{i}"].T + tp[f"b{i}"])
    out = len(widths) + 1
    return x @ tp[f"w{out}"] + tp[f"b{out}"][0]


@pytest.mark.parametrize("widths", [(), (8,), (8, 6)])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("max_norm", [None, 0.1])
@pytest.mark.parametrize("kernel", [True, False])
def test_value_fit_matches_torch_adam(widths, activation, max_norm, kernel):
    """Three full-batch iterations (loss, gradients, clip, Adam) against torch (float64):
    the compiled kernel (one hidden layer) and the eager path (every depth)."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(700, 4)), rng.normal(size=700)
    p = vf.init_value_params(4, widths, rng, np.float64)
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in p.items()}
    opt = torch.optim.Adam(list(tp.values()), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        t_loss = (torch_value(tp, torch.tensor(x), widths, activation) - torch.tensor(y)) ** 2
        t_loss.mean().backward()
        torch_clip(list(tp.values()), max_norm)
        opt.step()
    state = AdamState.zeros_like(p)
    if kernel:
        vf.value_fit(x, y, p, state, 0.01, 3, activation, max_norm)
    else:
        vf._fit_eager(x, y, p, state, 0.01, 3, activation, max_norm)
    assert state.step == 3
    for k in p:
        np.testing.assert_allclose(p[k], tp[k].detach().numpy(), rtol=1e-7, atol=1e-10)


def test_value_grads_of_every_depth_match_autograd():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=300)
    for widths in WIDTHS:
        for activation in ACTS:
            p = vf.init_value_params(5, widths, rng, np.float64)
            loss, grads = vf.value_grad(x, y, p, activation)
            tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
            t_loss = ((torch_value(tp, torch.tensor(x), widths, activation) - torch.tensor(y))
                      ** 2).mean()  # fmt: skip
            t_loss.backward()
            assert loss == pytest.approx(t_loss.item(), rel=1e-10)
            for k in p:
                np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- packs, resume

SMALL = dict(num_envs=4, steps_per_epoch=200, epochs=4, value_iters=6)


def knob_configs(env_id, **shape):
    """Runs of one pack that differ in every per-run knob."""
    base = A2CConfig(**SMALL, env=env_id, **shape)
    return [
        dataclasses.replace(
            base, entropy_coef=0.02, max_grad_norm=0.3, obs_norm=True, init_log_std=-0.7
        ),  # fmt: skip
        base,
        dataclasses.replace(
            base, value_hidden=(12, 12), value_activation="tanh", obs_norm=True, policy_lr=0.03
        ),  # fmt: skip
        dataclasses.replace(base, value_hidden=(), max_grad_norm=1.0, init_log_std=0.5),
    ]


PACK_CASES = [
    ("CartPole-v0", {}),  # fused categorical rollout
    ("CartPole-v1", {"policy_hidden": (16, 16), "activation": "relu"}),  # generic rollout
    ("Pendulum-v1", {}),  # fused Gaussian rollout
    ("CartPoleSwingUp-v0", {"policy_hidden": (16,), "activation": "relu"}),
]


@pytest.mark.parametrize(("env_id", "shape"), PACK_CASES)
def test_pack_invariance_with_knobs(env_id, shape):
    configs = knob_configs(env_id, **shape)
    seeds = [5, 6, 7, 8]
    packed = by_run(list(train_pack(configs, seeds)), len(configs))
    for p, (cfg, seed) in enumerate(zip(configs, seeds, strict=True)):
        solo = list(train(cfg, seed))
        assert_same_records(packed[p], solo)
        for k in solo[-1].policy:
            np.testing.assert_array_equal(packed[p][-1].policy[k], solo[-1].policy[k])
    # the knobs do change the numbers (each run differs from the default one)
    finals = {round(packed[p][-1].value_loss, 9) for p in range(len(configs))}
    assert len(finals) == len(configs)


@pytest.mark.parametrize(("env_id", "shape"), PACK_CASES)
def test_resume_with_knobs_bitwise(env_id, shape):
    """A pack of knob runs checkpointed at epoch 2 (through torch.save, weights_only) and
    resumed equals the uninterrupted pack, obs statistics included."""
    configs = knob_configs(env_id, **shape)
    seeds = [5, 6, 7, 8]
    full = by_run(list(train_pack(configs, seeds)), len(configs))
    first = list(train_pack(configs, seeds, checkpoint_when=lambda run, epoch: epoch == 2))
    ckpts = []
    for p in range(len(configs)):
        ckpt = next(r.checkpoint for r in first if r.run == p and r.epoch == 2)
        assert ("obs_rms" in ckpt) == configs[p].obs_norm
        buf = io.BytesIO()
        torch.save(to_torch(ckpt), buf)
        buf.seek(0)
        ckpts.append(torch.load(buf, weights_only=True))
    rest = by_run(list(train_pack(configs, seeds, resume=ckpts)), len(configs))
    for p in range(len(configs)):
        assert [r.epoch for r in rest[p]] == [3, 4]
        assert_same_records(full[p][2:], rest[p])


def test_obs_statistics_are_those_of_every_observation_seen(monkeypatch):
    """After E epochs an obs_norm run's statistics are the mean and variance of the E*N*T
    raw observations its rollouts recorded (fused CartPole: every transition is valid)."""
    import a2c_core.engine as engine

    seen = []
    collect = engine.collect_rollout

    def recording(state, policy, buf):
        ro = collect(state, policy, buf)
        seen.append(ro.obs[0].reshape(-1, ro.obs.shape[-1]).astype(np.float64))
        return ro

    monkeypatch.setattr(engine, "collect_rollout", recording)
    cfg = A2CConfig(**dict(SMALL, epochs=3), obs_norm=True)
    recs = list(train(cfg, 3, checkpoint_when=lambda run, epoch: True))
    stats = recs[-1].obs_rms
    assert len(seen) == 3 and stats["count"][0] == 3 * 4 * 200
    np.testing.assert_array_equal(recs[-1].checkpoint["obs_rms"]["mean"], stats["mean"])
    everything = np.concatenate(seen)
    np.testing.assert_allclose(stats["mean"], everything.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats["var"], everything.var(0), rtol=1e-9)
    assert np.all(np.abs(everything[:, 0]) < 2.5)  # raw cart positions, not normalised ones


def test_obs_norm_normalises_what_the_networks_see():
    """Epoch 1 sees raw observations (no statistics yet); from epoch 2 the inputs are
    clip((x - mean) / std, -10, 10) with the statistics frozen for the whole epoch."""
    stats = obsnorm.empty_stats(3)
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    assert obsnorm.normalize_with(stats, x) is x
    obsnorm.update(stats, np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
    out = obsnorm.normalize_with(stats, x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], [0.0, 2.0], atol=1e-6)
    assert np.all(out[:, 1:] == 10.0)  # zero variance: clipped, never inf


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_fused_rollout_acts_on_normalised_observations(env_id):
    """The fused kernel normalises each run's observation before its policy: its actions
    equal the policy's on the normalised recorded observations (same noise)."""
    from a2c_core.engine import Rollout, collect_rollout, init_pack

    cfgs = [A2CConfig(**SMALL, env=env_id, obs_norm=True), A2CConfig(**SMALL, env=env_id)]
    state, policy = init_pack(cfgs, [1, 2])
    assert state.fused is not None
    obsnorm.update(state.obs_rms[0], np.random.default_rng(0).normal(0.3, 2.0, (50, 4 if
                   env_id == "CartPole-v1" else 3)))  # fmt: skip
    state.refresh_norm()
    buf = Rollout.buffers(2, 200, 4, state.obs.shape[1], policy, np.float32)
    noise_rngs = [np.random.Generator(np.random.PCG64(g.bit_generator.state["state"]["state"]))
                  for g in state.rng_action]  # fmt: skip
    for g, copy in zip(state.rng_action, noise_rngs, strict=True):
        copy.bit_generator.state = g.bit_generator.state
    ro = collect_rollout(state, policy, buf)
    noise = np.stack([policy.noise(g, 200, 4) for g in noise_rngs])
    for t in range(0, 200, 7):
        obs3 = ro.obs[:, t]
        normed = np.stack([state.normalize(p, obs3[p]) for p in range(2)])
        want = policy.act(state.policy, normed, noise[:, t])
        if policy.discrete:
            assert np.mean(want == ro.actions[:, t]) >= 0.99
        else:
            np.testing.assert_allclose(ro.actions[:, t], want, rtol=1e-4, atol=1e-5)
    # the normalised run's inputs really differ from its raw observations
    assert not np.allclose(state.normalize(0, ro.obs[0, 0]), ro.obs[0, 0])


def test_policy_pt_of_an_obs_norm_run_holds_its_statistics_and_gif_uses_them():
    """Deterministic play from policy.pt with statistics equals play with the statistics
    folded into the first layer (the same function of the raw observation)."""
    from a2c_core.results import policy_state
    from analysis.gif import run_episodes

    cfg = A2CConfig(**dict(SMALL, epochs=2), env="CartPole-v1", obs_norm=True,
                    policy_hidden=(8,))  # fmt: skip
    rec = list(train(cfg, 4))[-1]
    data = policy_state(cfg, 4, rec.policy, rec.obs_rms)
    assert set(data["obs_rms"]) == {"count", "mean", "var"}
    mean, istd, _ = obsnorm.frozen(data["obs_rms"], np.float64)
    folded = {k: v.astype(np.float64) for k, v in rec.policy.items()}
    folded["b1"] = folded["b1"] - (mean * istd) @ folded["W1"]
    folded["W1"] = folded["W1"] * istd[:, None]
    plain = policy_state(dataclasses.replace(cfg, obs_norm=False, dtype="float64"), 4, folded)
    a = run_episodes(data, deterministic=True, seed=3, max_steps=60)[0]
    b = run_episodes(plain, deterministic=True, seed=3, max_steps=60)[0]
    assert len(a.rewards) == len(b.rewards) > 5
    unnormalised = policy_state(dataclasses.replace(cfg, obs_norm=False), 4, rec.policy)
    c = run_episodes(unnormalised, deterministic=True, seed=3, max_steps=60)[0]
    assert (len(c.rewards), c.frames[-1].tobytes()) != (len(a.rewards), a.frames[-1].tobytes())


@pytest.mark.timeout(300)
def test_learning_with_knobs_cartpole():
    """A two-layer ReLU policy with obs_norm, entropy bonus and clipping learns CartPole-v1:
    3 seeds from ~20 to a mean return above 300 within 40 epochs of 8 x 512 steps."""
    cfg = A2CConfig(env="CartPole-v1", num_envs=8, steps_per_epoch=512, epochs=40,
                    value_iters=20, policy_lr=0.01, value_lr=0.03, policy_hidden=(32, 32),
                    activation="relu", obs_norm=True, entropy_coef=0.001, max_grad_norm=1.0)  # fmt: skip
    for seed in (11, 12, 13):
        recs = list(train(cfg, seed))
        first, best = recs[0].return_mean, max(r.return_mean for r in recs[-5:])
        assert first < 60 and best > 300, (seed, first, best)


def test_knob_runs_are_deterministic_across_processes(tmp_path):
    """Same config + seed -> the same numbers in two fresh processes, for the knobs' compiled
    (tanh value kernel, clipped fit) and eager (two-layer value net) paths."""
    import subprocess
    import sys

    code = (
        "from a2c_core import A2CConfig, train\n"
        "for kw in (dict(value_activation='tanh', max_grad_norm=0.5, obs_norm=True),\n"
        "           dict(value_hidden=(16, 16), policy_hidden=(8,), entropy_coef=0.01)):\n"
        "    c = A2CConfig(num_envs=2, steps_per_epoch=100, epochs=2, value_iters=3, **kw)\n"
        "    print(repr([(x.return_mean, x.value_loss, x.policy_loss) for x in train(c, 5)]))\n"
    )
    env = {**__import__("os").environ, "A2C_SWEEP_KERNEL_DIR": str(tmp_path / "kernels")}
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=env).stdout for _ in range(2)}  # fmt: skip
    assert len(outs) == 1 and outs.pop().count("[(") == 2
