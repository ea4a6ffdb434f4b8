"""The value net MLP(obs -> hidden -> ReLU -> 1) and its full-batch Adam fit.

The fit is most of an epoch's work (``value_iters`` full-batch iterations over N*T samples).
Two implementations compute the same function:

- a fused numba kernel (one thread, fastmath): samples on the SIMD lanes (inputs transposed
  to [obs_dim, M]), walked in L1-sized blocks, hidden units looped outside the sample loop;
- an eager numpy path, used when numba (or its LLVM toolchain) is unavailable; a warning is
  emitted once.

Parameters are a dict of arrays: ``W1`` [H, D], ``b1`` [H], ``w2`` [H], ``b2`` [1].
Adam follows torch.optim.Adam's update (betas 0.9/0.999, eps 1e-8, bias corrections).
"""

from __future__ import annotations

import warnings

import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
PARAM_NAMES = ("W1", "b1", "w2", "b2")
BLOCK = 256  # samples per block: 64 hidden x 256 x 4 B of pre-activations stays in L2

try:  # numba is a hard dependency, but the kernel must survive a broken toolchain
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - exercised by monkeypatching in tests
    numba = None
    _HAVE_NUMBA = False

_warned = False


def init_value_params(obs_dim: int, hidden: int, rng: np.random.Generator, dtype) -> dict:
    """torch.nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b."""
    b_in, b_h = 1.0 / np.sqrt(obs_dim), 1.0 / np.sqrt(hidden)
    return {
        "W1": rng.uniform(-b_in, b_in, (hidden, obs_dim)).astype(dtype),
        "b1": rng.uniform(-b_in, b_in, hidden).astype(dtype),
        "w2": rng.uniform(-b_h, b_h, hidden).astype(dtype),
        "b2": rng.uniform(-b_h, b_h, 1).astype(dtype),
    }


# --------------------------------------------------------------------------- eager (numpy)


def forward_eager(x: np.ndarray, p: dict) -> np.ndarray:
    """x [M, D] -> V [M]."""
    h = np.maximum(x @ p["W1"].T + p["b1"], 0)
    return h @ p["w2"] + p["b2"][0]


def grad_eager(x: np.ndarray, y: np.ndarray, p: dict) -> tuple[float, dict]:
    """MSE loss mean((V(x) - y)^2) and its gradients. x [M, D], y [M]."""
    z = x @ p["W1"].T + p["b1"]
    h = np.maximum(z, 0)
    pred = h @ p["w2"] + p["b2"][0]
    r = pred - y
    m = x.shape[0]
    g = (2.0 / m) * r
    dz = np.outer(g, p["w2"]) * (z > 0)
    grads = {
        "W1": (dz.T @ x).astype(x.dtype),
        "b1": dz.sum(0).astype(x.dtype),
        "w2": (h.T @ g).astype(x.dtype),
        "b2": np.array([g.sum()], dtype=x.dtype),
    }
    return float(np.mean(r * r)), grads


def _fit_eager(x, y, p, m, v, step, lr, iters):
    loss = float("nan")
    for _ in range(iters):
        loss, grads = grad_eager(x, y, p)
        step += 1
        bc1, bc2 = 1 - BETA1**step, 1 - BETA2**step
        for k in PARAM_NAMES:
            m[k] *= BETA1
            m[k] += (1 - BETA1) * grads[k]
            v[k] *= BETA2
            v[k] += (1 - BETA2) * grads[k] * grads[k]
            denom = np.sqrt(v[k]) / np.sqrt(bc2) + EPS
            p[k] -= (lr / bc1) * m[k] / denom
    return loss, step


# --------------------------------------------------------------------------- numba kernel

if _HAVE_NUMBA:

    @numba.njit(fastmath=True, cache=True, nogil=True, error_model="numpy")
    def _grad_kernel(xT, y, W1, b1, w2, b2, gW1, gb1, gw2, gb2, zbuf, acc, g, dz, zero):
        # ``zero`` carries the dtype: float64 literals would widen every float32 lane.
        d, m = xT.shape
        hidden = W1.shape[0]
        gW1[:] = zero
        gb1[:] = zero
        gw2[:] = zero
        gb2[:] = zero
        two_over_m = (zero + 2) / m
        loss = zero
        for s in range(0, m, BLOCK):
            nb = min(BLOCK, m - s)
            for n in range(nb):
                acc[n] = b2[0]
            # forward: pre-activations of the block, hidden unit by hidden unit
            for j in range(hidden):
                zj = zbuf[j]
                bj = b1[j]
                for n in range(nb):
                    zj[n] = bj
                for k in range(d):
                    wjk = W1[j, k]
                    xk = xT[k, s : s + nb]  # a slice: indices from range() skip wraparound
                    for n in range(nb):
                        zj[n] += wjk * xk[n]
                wj = w2[j]
                for n in range(nb):
                    zn = zj[n]
                    acc[n] += wj * (zn if zn > zero else zero)
            block_loss = zero
            gsum = zero
            yb = y[s : s + nb]
            for n in range(nb):
                r = acc[n] - yb[n]
                block_loss += r * r
                g[n] = two_over_m * r
                gsum += g[n]
            loss += block_loss
            gb2[0] += gsum
            # backward: per hidden unit, reductions over the block's samples
            for j in range(hidden):
                zj = zbuf[j]
                wj = w2[j]
                sw = zero
                sb = zero
                for n in range(nb):
                    zn = zj[n]
                    gn = g[n]
                    sw += gn * (zn if zn > zero else zero)
                    dzn = gn * wj if zn > zero else zero
                    dz[n] = dzn
                    sb += dzn
                gw2[j] += sw
                gb1[j] += sb
                for k in range(d):
                    xk = xT[k, s : s + nb]
                    sx = zero
                    for n in range(nb):
                        sx += dz[n] * xk[n]
                    gW1[j, k] += sx
        return loss / m

    @numba.njit(fastmath=True, cache=True, nogil=True, error_model="numpy")
    def _forward_kernel(xT, W1, b1, w2, b2, out, zrow, zero):
        d, m = xT.shape
        hidden = W1.shape[0]
        for s in range(0, m, BLOCK):
            nb = min(BLOCK, m - s)
            out[s : s + nb] = b2[0]
            for j in range(hidden):
                bj = b1[j]
                for n in range(nb):
                    zrow[n] = bj
                for k in range(d):
                    wjk = W1[j, k]
                    xk = xT[k, s : s + nb]
                    for n in range(nb):
                        zrow[n] += wjk * xk[n]
                wj = w2[j]
                ob = out[s : s + nb]
                for n in range(nb):
                    zn = zrow[n]
                    ob[n] += wj * (zn if zn > zero else zero)

    @numba.njit(fastmath=True, cache=True, nogil=True, error_model="numpy")
    def _adam(p, g, m, v, lr, bc1, bc2):
        pf, gf, mf, vf = p.ravel(), g.ravel(), m.ravel(), v.ravel()
        step_size = lr / bc1
        sqrt_bc2 = np.sqrt(bc2)
        for i in range(pf.size):
            mf[i] = BETA1 * mf[i] + (1 - BETA1) * gf[i]
            vf[i] = BETA2 * vf[i] + (1 - BETA2) * gf[i] * gf[i]
            pf[i] -= step_size * mf[i] / (np.sqrt(vf[i]) / sqrt_bc2 + EPS)

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def _fit_kernel(xT, y, W1, b1, w2, b2, mW1, mb1, mw2, mb2, vW1, vb1, vw2, vb2, step, lr, iters):
        dt = xT.dtype
        gW1, gb1 = np.empty_like(W1), np.empty_like(b1)
        gw2, gb2 = np.empty_like(w2), np.empty_like(b2)
        zbuf = np.empty((W1.shape[0], BLOCK), dtype=dt)
        acc, g = np.empty(BLOCK, dtype=dt), np.empty(BLOCK, dtype=dt)
        dz = np.empty(BLOCK, dtype=dt)
        zero = W1[0, 0] - W1[0, 0]
        loss = zero
        for _ in range(iters):
            loss = _grad_kernel(xT, y, W1, b1, w2, b2, gW1, gb1, gw2, gb2, zbuf, acc, g, dz, zero)
            step += 1
            bc1 = 1.0 - BETA1**step
            bc2 = 1.0 - BETA2**step
            _adam(W1, gW1, mW1, vW1, lr, bc1, bc2)
            _adam(b1, gb1, mb1, vb1, lr, bc1, bc2)
            _adam(w2, gw2, mw2, vw2, lr, bc1, bc2)
            _adam(b2, gb2, mb2, vb2, lr, bc1, bc2)
        return loss, step


def _use_kernel() -> bool:
    global _warned
    if _HAVE_NUMBA:
        return True
    if not _warned:
        warnings.warn(
            "numba is unavailable: the value fit falls back to the eager numpy path "
            "(same results within float rounding, about 10x slower)",
            RuntimeWarning,
            stacklevel=3,
        )
        _warned = True
    return False


def value_forward(x: np.ndarray, p: dict) -> np.ndarray:
    """V(x) for x [M, D]; returns [M] in x's dtype."""
    if x.shape[0] == 0:
        return np.zeros(0, dtype=x.dtype)
    if not _use_kernel():
        return forward_eager(x, p).astype(x.dtype)
    xT = np.ascontiguousarray(x.T)
    out = np.empty(x.shape[0], dtype=x.dtype)
    zero = x.dtype.type(0)
    _forward_kernel(xT, p["W1"], p["b1"], p["w2"], p["b2"], out, np.empty(BLOCK, x.dtype), zero)
    return out


def value_grad(x: np.ndarray, y: np.ndarray, p: dict) -> tuple[float, dict]:
    """Loss and gradients through the active implementation (kernel if available)."""
    if not _use_kernel():
        return grad_eager(x, y, p)
    xT = np.ascontiguousarray(x.T)
    grads = {k: np.empty_like(p[k]) for k in PARAM_NAMES}
    hidden = p["W1"].shape[0]
    loss = _grad_kernel(
        xT, np.ascontiguousarray(y), p["W1"], p["b1"], p["w2"], p["b2"],
        grads["W1"], grads["b1"], grads["w2"], grads["b2"],
        np.empty((hidden, BLOCK), x.dtype), np.empty(BLOCK, x.dtype), np.empty(BLOCK, x.dtype),
        np.empty(BLOCK, x.dtype), x.dtype.type(0),
    )  # fmt: skip
    return float(loss), grads


def value_fit(
    x: np.ndarray, y: np.ndarray, p: dict, m: dict, v: dict, step: int, lr: float, iters: int
) -> tuple[float, int]:
    """``iters`` full-batch Adam steps on mean((V(x) - y)^2), in place on p, m, v.

    x [M, D], y [M]. Returns (loss at the last iteration, before its update; new Adam step).
    """
    if iters == 0 or x.shape[0] == 0:
        return float("nan"), step
    if not _use_kernel():
        return _fit_eager(x, y, p, m, v, step, lr, iters)
    xT = np.ascontiguousarray(x.T)
    loss, step = _fit_kernel(
        xT, np.ascontiguousarray(y), p["W1"], p["b1"], p["w2"], p["b2"],
        m["W1"], m["b1"], m["w2"], m["b2"], v["W1"], v["b1"], v["w2"], v["b2"],
        step, x.dtype.type(lr), iters,
    )  # fmt: skip
    return float(loss), int(step)
