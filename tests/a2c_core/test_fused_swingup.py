"""The fused swing-up rollout computes exactly what the generic (numpy) rollout computed.

The published swing-up results come from the generic rollout; the fused one must reproduce
them bit for bit: same reset states in the same order, numpy's own sgemm/sgemv/tanh for the
policy, the same policy update (which starts from the rollout's hidden activations)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import a2c_core.engine as engine
from a2c_core import A2CConfig, npkernels
from a2c_core.engine import train_pack
from a2c_core.fused import SwingUpRollout, make_fused_rollout
from a2c_core.policies import GaussianPolicy

BASE = dict(env="CartPoleSwingUp-v0", steps_per_epoch=300, epochs=6, value_iters=10,
            gamma=0.999, lam=0.99, policy_lr=0.01, value_lr=0.1)  # fmt: skip


def _configs(num_envs: int, env: str = "CartPoleSwingUp-v0") -> list[A2CConfig]:
    base = {**BASE, "num_envs": num_envs, "env": env}
    return [
        A2CConfig(**base),
        A2CConfig(**{**base, "obs_norm": True, "init_log_std": 0.75, "entropy_coef": 0.003}),
        A2CConfig(**{**base, "policy_lr": 0.05, "max_grad_norm": 0.5, "policy_iters": 2}),
    ]


def _rows(configs, seeds, **kw) -> list[str]:
    """Every record of the pack but wall_s, as text (nan == nan), in order."""
    rows = []
    for rec in train_pack(configs, seeds, **kw):
        row = rec.row()
        row.pop("wall_s")
        rows.append(json.dumps(row))
    return rows


def _checkpoints_at(configs, seeds, epoch, resume=None) -> list[dict]:
    ckpts = {}
    for rec in train_pack(configs, seeds, resume=resume,
                          checkpoint_when=lambda run, e: e == epoch):  # fmt: skip
        if rec.epoch == epoch:
            ckpts[rec.run] = rec.checkpoint
    return [ckpts[p] for p in range(len(configs))]


@pytest.fixture
def generic(monkeypatch):
    """Force the generic rollout (what made the published swing-up results)."""
    monkeypatch.setattr(engine, "make_fused_rollout", lambda *a, **k: None)


def test_numpy_kernels_are_usable_here():
    """On the supported install (PyPI numpy with its OpenBLAS) the fast path is on: if this
    fails, swing-up silently runs the slower generic rollout."""
    assert npkernels.problem() is None
    state, _ = engine.init_pack(_configs(8), [0, 1, 2])
    assert isinstance(state.fused, SwingUpRollout)


@pytest.mark.parametrize("num_envs", [2, 3, 8])  # 3: OpenBLAS's sgemv remainder rows
@pytest.mark.parametrize("env", ["CartPoleSwingUp-v0", "CartPoleSwingUp-v1"])
def test_fused_training_equals_the_generic_rollout_bitwise(num_envs, env, monkeypatch):
    configs, seeds = _configs(num_envs, env), [11, 12, 13]
    fused_rows = _rows(configs, seeds)
    monkeypatch.setattr(engine, "make_fused_rollout", lambda *a, **k: None)
    assert fused_rows == _rows(configs, seeds)


def test_generic_checkpoint_resumes_fused_as_if_never_stopped(generic, monkeypatch):
    """A checkpoint written by the generic rollout (no reset pool: every published or
    half-finished swing-up run) continues under the fused one exactly as the generic would."""
    configs, seeds = _configs(3), [5, 6, 7]
    whole = _rows(configs, seeds)
    ckpts = _checkpoints_at(configs, seeds, 2)
    assert all("reset_pool" not in c["env"] for c in ckpts)
    monkeypatch.undo()  # the fused rollout from here on
    rest = _rows(configs, seeds, resume=ckpts)
    assert rest == [r for r in whole if json.loads(r)["epoch"] > 2]


def test_fused_checkpoint_resumes_under_the_numpy_rollout_and_back(monkeypatch):
    """A checkpoint of the fused rollout holds reset states drawn ahead from the run's
    generator: the numpy rollout (a machine where the kernels cannot be used, an older
    checkout) must use them first, and its own checkpoints must carry the rest on. Fused to
    epoch 2, numpy to 4, fused to the end = fused throughout (it differed: attacker review)."""
    configs, seeds = _configs(3), [31, 32, 33]
    whole = _rows(configs, seeds)
    at2 = _checkpoints_at(configs, seeds, 2)
    assert all("reset_pool" in c["env"] for c in at2)
    monkeypatch.setattr(engine, "make_fused_rollout", lambda *a, **k: None)
    assert _rows(configs, seeds, resume=at2) == [r for r in whole if json.loads(r)["epoch"] > 2]
    at4 = _checkpoints_at(configs, seeds, 4, resume=at2)
    monkeypatch.undo()
    assert _rows(configs, seeds, resume=at4) == [r for r in whole if json.loads(r)["epoch"] > 4]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda env: env.pop("reset_cursor"), "one of them is missing"),
        (lambda env: env.__setitem__("reset_cursor", np.array([3.5])), "outside the pool"),
        (lambda env: env.__setitem__("reset_cursor", np.array([10**6])), "outside the pool"),
        (lambda env: env["reset_pool"].__setitem__((-1, 0), np.nan), "not finite"),
        (lambda env: env.__setitem__("reset_pool", env["reset_pool"][:, :3]), "shape"),
    ],
)
@pytest.mark.parametrize("fused", [True, False])
def test_a_damaged_reset_pool_is_refused_by_name(damage, message, fused, monkeypatch):
    configs, seeds = _configs(3)[:1], [41]
    (ckpt,) = _checkpoints_at(configs, seeds, 2)
    damage(ckpt["env"])
    if not fused:
        monkeypatch.setattr(engine, "make_fused_rollout", lambda *a, **k: None)
    with pytest.raises(ValueError, match=message):
        _rows(configs, seeds, resume=[ckpt])


def test_fused_checkpoint_resumes_bitwise():
    configs, seeds = _configs(3), [5, 6, 7]
    whole = _rows(configs, seeds)
    ckpts = _checkpoints_at(configs, seeds, 3)
    assert all("reset_pool" in c["env"] for c in ckpts)
    rest = _rows(configs, seeds, resume=ckpts)
    assert rest == [r for r in whole if json.loads(r)["epoch"] > 3]


def test_small_pools_keep_the_draw_order():
    """Many refills (a pool barely larger than the envs) change nothing."""
    configs, seeds = _configs(4), [3, 4, 5]
    want = _rows(configs, seeds)
    original = SwingUpRollout.__init__

    def tiny(self, env, rngs, pool_size=0):
        original(self, env, rngs, pool_size=0)  # -> 2 * num_envs

    SwingUpRollout.__init__ = tiny
    try:
        assert _rows(configs, seeds) == want
    finally:
        SwingUpRollout.__init__ = original


@pytest.mark.parametrize("case", ["one env", "float64", "two layers", "relu"])
def test_shapes_the_kernel_does_not_compute_take_the_generic_rollout(case):
    base = {**BASE, "num_envs": 4}
    base.update({"one env": {"num_envs": 1}, "float64": {"dtype": "float64"},
                 "two layers": {"policy_hidden": (16, 16)},
                 "relu": {"activation": "relu"}}[case])  # fmt: skip
    state, _ = engine.init_pack([A2CConfig(**base)], [0])
    assert state.fused is None
    rows = _rows([A2CConfig(**base)], [0])
    assert len(rows) == BASE["epochs"] and np.isfinite(json.loads(rows[-1])["value_loss"])


def test_a_failed_exactness_check_falls_back_to_numpy_and_says_so(monkeypatch, tmp_path):
    """If numpy's kernels do not reproduce numpy here (another BLAS, another numpy), the
    engine must not use them, and the user is told: a warning from the engine (once per
    process) and a line from `a2c-sweep run` / its dry run."""
    import a2c_core.fused as fused
    from a2c_core.spec import inexact_resume_warnings, load_spec

    monkeypatch.setattr(fused, "_EXACT_CHECKED", {})
    monkeypatch.setattr(fused, "_WARNED", set())
    monkeypatch.setattr(npkernels, "check_forward", lambda *a, **k: False)
    with pytest.warns(RuntimeWarning, match="fused rollout not available"):
        state, _ = engine.init_pack(_configs(8), [0, 1, 2])
    assert state.fused is None
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nenv: CartPoleSwingUp-v0\nnum_envs: 4\nsteps_per_epoch: 64\n"
                     "epochs: 2\nseeds: [0]\ngrid: {policy_lr: [0.01, 0.1]}\n")  # fmt: skip
    lines = [ln for ln in inexact_resume_warnings(load_spec(sweep)) if "fused" in ln]
    assert len(lines) == 1 and "numpy rollout" in lines[0], lines
    monkeypatch.setattr(npkernels, "problem", lambda: "no OpenBLAS")
    env, policy = state.envs, GaussianPolicy(5, 1, (64,))
    with pytest.warns(RuntimeWarning, match="no OpenBLAS"):
        assert make_fused_rollout(env, policy, state.rng_env, 300) is None
    cartpole = tmp_path / "c.yaml"
    cartpole.write_text("name: c\nenv: CartPole-v0\nseeds: [0]\n")
    assert not [ln for ln in inexact_resume_warnings(load_spec(cartpole)) if "fused" in ln]


def test_the_exactness_checks_can_fail():
    """The read-back of numpy's tanh loop rejects another loop, and check_forward rejects a
    policy whose forward pass is not numpy's float32 one (float64 parameters)."""
    sin_loop = npkernels._ufunc_loop(np.sin, "f->f")
    assert sin_loop and not npkernels._tanh_reads_back(sin_loop)
    assert npkernels._tanh_reads_back(npkernels._ufunc_loop(np.tanh, "f->f"))
    policy = GaussianPolicy(5, 1, (64,))
    assert npkernels.check_forward(policy, 800, 8)
    shifted = GaussianPolicy(5, 1, (64,))
    shifted.net.forward = lambda p, x: (lambda m, i: (m + np.float32(1e-3), i))(
        *GaussianPolicy(5, 1, (64,)).net.forward(p, x))  # fmt: skip
    assert not npkernels.check_forward(shifted, 800, 8)


def test_ufunc_table_reader_checks_the_struct_layout(monkeypatch):
    """A ufunc struct whose ntypes field does not sit where the reader expects (another numpy)
    is refused (0) instead of being read."""
    assert npkernels._ufunc_loop(np.tanh, "f->f") != 0
    monkeypatch.setattr(npkernels, "_UFUNC_NTYPES_OFFSET", npkernels._UFUNC_NTYPES_OFFSET + 4)
    assert npkernels._ufunc_loop(np.tanh, "f->f") == 0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.filterwarnings("ignore:invalid value")
def test_one_pass_backward_through_the_hidden_layer_is_numpys_arithmetic(activation):
    """MLP.backward's compiled pass for a one-output layer gives numpy's floats: (d @ w.T) *
    (1 - x * x) or * (x > 0), with tiny, huge, zero and infinite entries."""
    from a2c_core.policies import _outer_act_grad

    rng = np.random.default_rng(7)
    m, h = 3001, 64
    d = (rng.standard_normal((m, 1)) * 10.0 ** rng.uniform(-30, 30, (m, 1))).astype(np.float32)
    d[:4, 0] = [0.0, -0.0, np.inf, np.nan]
    w = rng.standard_normal((h, 1)).astype(np.float32)
    x = np.tanh(rng.standard_normal((m, h)) * 3).astype(np.float32)
    if activation == "relu":
        x = np.maximum(rng.standard_normal((m, h)), 0).astype(np.float32)
    want = d @ w.T
    want = want * (1.0 - x * x) if activation == "tanh" else want * (x > 0)
    got = np.empty_like(x)
    _outer_act_grad(d, w, x, activation == "tanh", got)
    nan = np.isnan(want)  # NaN's sign bit is not arithmetic: a NaN gradient is a NaN
    assert nan.any() and np.array_equal(nan, np.isnan(got))
    np.testing.assert_array_equal(got[~nan].view(np.int32), want[~nan].view(np.int32))


def test_over_the_memory_budget_the_update_recomputes_the_hidden_layer(monkeypatch):
    """A pack whose hidden activations exceed HIDDEN_BUDGET_BYTES keeps one step's only and
    the update recomputes them: same numbers either way."""
    import a2c_core.fused as fused

    given = []
    original = GaussianPolicy.loss_and_grads

    def spy(self, *args, hidden=None, **kwargs):
        given.append(hidden is not None)
        return original(self, *args, hidden=hidden, **kwargs)

    monkeypatch.setattr(GaussianPolicy, "loss_and_grads", spy)
    configs, seeds = _configs(3), [21, 22, 23]
    want = _rows(configs, seeds)
    assert any(given)  # within the budget the update starts from the rollout's activations
    given.clear()
    monkeypatch.setattr(fused, "HIDDEN_BUDGET_BYTES", 1024)
    assert _rows(configs, seeds) == want
    assert given and not any(given)
