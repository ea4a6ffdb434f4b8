"""The fused numba value-fit kernel against torch autograd and the eager fallback."""

import numpy as np
import pytest
import torch

from a2c_core import valuefit as vf
from a2c_core.adam import AdamState


def torch_loss_and_grads(x, y, p):
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    tx, ty = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    pred = torch.relu(tx @ tp["W1"].T + tp["b1"]) @ tp["w2"] + tp["b2"][0]
    loss = ((pred - ty) ** 2).mean()
    loss.backward()
    return loss.item(), pred.detach().numpy(), {k: t.grad.numpy() for k, t in tp.items()}


@pytest.mark.parametrize("samples", [1, 7, 255, 256, 257, 1000, 4099])
@pytest.mark.parametrize("obs_dim,hidden", [(4, 64), (5, 13)])
def test_kernel_matches_torch_autograd(samples, obs_dim, hidden):
    rng = np.random.default_rng(samples + obs_dim)
    x = rng.normal(size=(samples, obs_dim)).astype(np.float32)
    y = rng.normal(size=samples).astype(np.float32) * 5
    p = vf.init_value_params(obs_dim, hidden, rng, np.float32)
    loss, grads = vf.value_grad(x, y, p)
    t_loss, t_pred, t_grads = torch_loss_and_grads(x, y, p)
    assert loss == pytest.approx(t_loss, rel=1e-5)
    np.testing.assert_allclose(vf.value_forward(x, p), t_pred, rtol=1e-5, atol=1e-5)
    for k in vf.PARAM_NAMES:
        scale = np.abs(t_grads[k]).max() + 1e-12
        np.testing.assert_allclose(grads[k], t_grads[k], atol=2e-5 * scale, rtol=1e-4)


def test_fit_kernel_matches_eager_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1003, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32)) + 1
    p0 = vf.init_value_params(4, 64, rng, np.float32)

    def fit(kernel: bool):
        p = {k: a.copy() for k, a in p0.items()}
        opt = AdamState.zeros_like(p)
        fn = vf.value_fit if kernel else vf._fit_eager
        loss = fn(x, y, p, opt, 0.01, 50)
        return loss, opt.step, p

    k_loss, k_step, k_p = fit(True)
    e_loss, e_step, e_p = fit(False)
    assert k_step == e_step == 50
    assert k_loss == pytest.approx(e_loss, rel=1e-3)
    for k in vf.PARAM_NAMES:
        np.testing.assert_allclose(k_p[k], e_p[k], atol=1e-4, rtol=1e-3)
    # and it actually fits: the loss went down a lot from the first iteration
    first, _ = vf.value_grad(x, y, p0)
    assert k_loss < 0.2 * first


def test_fallback_to_eager_warns_once_and_agrees(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = rng.normal(size=300).astype(np.float32)
    p = vf.init_value_params(4, 64, rng, np.float32)
    fast_loss, fast_grads = vf.value_grad(x, y, p)
    monkeypatch.setattr(vf, "_HAVE_NUMBA", False)
    monkeypatch.setattr(vf, "_warned", False)
    with pytest.warns(RuntimeWarning, match="numba is unavailable"):
        slow_loss, slow_grads = vf.value_grad(x, y, p)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vf.value_forward(x, p)  # second use: no second warning
    assert slow_loss == pytest.approx(fast_loss, rel=1e-5)
    for k in vf.PARAM_NAMES:
        np.testing.assert_allclose(slow_grads[k], fast_grads[k], rtol=1e-4, atol=1e-6)


def test_engine_runs_on_the_fallback_path(monkeypatch):
    """Without numba: eager value fit and the generic (numpy) rollout, same results shape."""
    from a2c_core import A2CConfig, engine, fused, train

    calls = []
    generic = engine._step_generic
    monkeypatch.setattr(engine, "_step_generic", lambda *a: calls.append(1) or generic(*a))
    monkeypatch.setattr(vf, "_HAVE_NUMBA", False)
    monkeypatch.setattr(vf, "_warned", True)
    monkeypatch.setattr(fused, "_HAVE_NUMBA", False)
    recs = list(train(A2CConfig(num_envs=2, steps_per_epoch=100, epochs=2, value_iters=5), 0))
    assert len(recs) == 2 and np.isfinite(recs[-1].value_loss)
    assert recs[-1].env_steps == 2 * 2 * 100 and calls == [1, 1]


def test_tampered_kernel_cache_is_never_imported(tmp_path):
    """The generated kernel file is compared with its source before it is imported: a file
    cut or edited in the cache (here: code that would write a marker file) is rewritten."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "A2C_SWEEP_KERNEL_DIR": str(tmp_path / "kernels")}
    code = ("import numpy as np; from a2c_core import valuefit as vf; "
            "m = vf._kernels(3); print(m.__file__)")  # fmt: skip
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr
    path = tmp_path / "kernels" / os.path.basename(first.stdout.strip())
    source = path.read_text()
    marker = tmp_path / "pwned"
    path.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + source)
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not marker.exists()
    assert path.read_text() == source


def test_first_run_on_a_cold_kernel_cache_equals_later_runs(tmp_path):
    """A numba kernel compiled in the process that runs it rounds differently from the same
    kernel loaded from numba's cache; the kernels are therefore compiled into the cache by a
    child process and always loaded from it: the first run on a machine (cold cache) gives
    bitwise the numbers of every later run."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "A2C_SWEEP_KERNEL_DIR": str(tmp_path / "kernels")}
    code = (
        "import hashlib; from a2c_core import A2CConfig, train_pack; "
        "cfgs = [A2CConfig(num_envs=4, steps_per_epoch=1000, value_iters=80, epochs=3, "
        "policy_lr=lr) for lr in (0.1, 0.01)]; "
        "rows = [repr({k: v for k, v in r.row().items() if k != 'wall_s'}) "
        "for r in train_pack(cfgs, [1, 2])]; "
        "print(hashlib.sha256(''.join(rows).encode()).hexdigest())"
    )
    digests = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]
