"""The engine's one Adam against torch.optim.Adam, and the value-fit kernel's inlined copy."""

import numpy as np
import torch

from a2c_core import valuefit as vf
from a2c_core.adam import AdamState


def test_adam_matches_torch_optim_adam():
    rng = np.random.default_rng(3)
    params = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    grads_seq = [{k: rng.normal(size=a.shape) for k, a in params.items()} for _ in range(7)]
    ours = {k: a.copy() for k, a in params.items()}
    opt = AdamState.zeros_like(ours)
    tparams = {k: torch.tensor(a, requires_grad=True) for k, a in params.items()}
    topt = torch.optim.Adam(tparams.values(), lr=0.05)
    for grads in grads_seq:
        opt.update(ours, grads, 0.05)
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k])
        topt.step()
    assert opt.step == 7
    for k, t in tparams.items():
        np.testing.assert_allclose(ours[k], t.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert not np.allclose(ours["W"], params["W"])  # it moved


def test_value_fit_kernel_adam_equals_adam_state_on_its_gradients():
    """One iteration of the compiled fit = value_grad + AdamState.update (float64)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(700, 4))
    y = rng.normal(size=700)
    p0 = vf.init_value_params(4, 16, rng, np.float64)
    fused = {k: a.copy() for k, a in p0.items()}
    opt_f = AdamState.zeros_like(fused)
    manual = {k: a.copy() for k, a in p0.items()}
    opt_m = AdamState.zeros_like(manual)
    for _ in range(3):
        vf.value_fit(x, y, fused, opt_f, 0.01, 1)
        _, grads = vf.value_grad(x, y, manual)
        opt_m.update(manual, grads, 0.01)
    assert opt_f.step == opt_m.step == 3
    for k in vf.PARAM_NAMES:
        np.testing.assert_allclose(fused[k], manual[k], rtol=1e-9, atol=1e-12)
