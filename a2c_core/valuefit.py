"""The value net MLP(obs -> hidden layers -> 1) and its full-batch Adam fit.

The fit is most of an epoch's work (``value_iters`` full-batch iterations over N*T samples).
Two implementations compute the same function:

- for one hidden layer (the default: 64 ReLU units; tanh too), fused numba kernels (one thread, fastmath), generated for the observation size D: samples
  on the SIMD lanes (inputs transposed to [D, M]), walked in blocks that stay in cache, hidden
  units looped outside the sample loop, the D-term dot product unrolled so that forward and
  backward are each one pass over a block. Generated source is written once to a cache
  directory and compiled with numba's on-disk cache, so a worker pays the JIT once, not per
  run (``A2C_SWEEP_KERNEL_DIR``, default ``~/.cache/a2c-sweep/kernels``).
- an eager numpy path (BLAS matmuls): every other depth (no hidden layer, two or more), and
  any shape when numba (or its LLVM toolchain) is unavailable (a warning is emitted once).
  bench/epoch_throughput.py reports the cost of each.

Parameters are a dict of arrays: ``W1`` [H1, D], ``b1`` [H1], ... ``WL`` [HL, H(L-1)],
``bL`` [HL], then the output ``w{L+1}`` [HL], ``b{L+1}`` [1] (one layer: ``W1``, ``b1``,
``w2``, ``b2``). ``max_norm`` clips each iteration's global gradient norm (torch's rule).
Adam is a2c_core.adam's (torch.optim.Adam's update); the kernel inlines the same formula.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from a2c_core.adam import BETA1, BETA2, EPS, AdamState

PARAM_NAMES = ("W1", "b1", "w2", "b2")
BLOCK = 512  # samples per block (measured: 512-1024 best on AVX-512 Zen 4; 64 is 2.5x slower)

try:  # numba is a hard dependency, but the kernel must survive a broken toolchain
    import numba  # noqa: F401

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - exercised by monkeypatching in tests
    _HAVE_NUMBA = False

_warned = False
_modules: dict[tuple[int, str], ModuleType] = {}


def init_value_params(obs_dim: int, hidden: int | tuple[int, ...], rng: np.random.Generator,
                      dtype) -> dict:  # fmt: skip
    """torch.nn.Linear's default init, layer by layer (W then b): U(-1/sqrt(fan_in),
    1/sqrt(fan_in)). ``hidden``: one width, or the widths of the hidden layers."""
    widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    params = {}
    fan_in = obs_dim
    for i, width in enumerate(widths, start=1):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"W{i}"] = rng.uniform(-bound, bound, (width, fan_in)).astype(dtype)
        params[f"b{i}"] = rng.uniform(-bound, bound, width).astype(dtype)
        fan_in = width
    bound = 1.0 / np.sqrt(fan_in)
    out = len(widths) + 1
    params[f"w{out}"] = rng.uniform(-bound, bound, fan_in).astype(dtype)
    params[f"b{out}"] = rng.uniform(-bound, bound, 1).astype(dtype)
    return params


def hidden_layers(p: dict) -> int:
    """Number of hidden layers of value params ``p``."""
    return sum(1 for k in p if k.startswith("W"))


# --------------------------------------------------------------------------- eager (numpy)


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    return np.maximum(z, 0) if activation == "relu" else np.tanh(z)


def forward_eager(x: np.ndarray, p: dict, activation: str = "relu") -> np.ndarray:
    """x [M, D] -> V [M]."""
    h = x
    layers = hidden_layers(p)
    for i in range(1, layers + 1):
        h = _activate(h @ p[f"W{i}"].T + p[f"b{i}"], activation)
    return h @ p[f"w{layers + 1}"] + p[f"b{layers + 1}"][0]


def grad_eager(x: np.ndarray, y: np.ndarray, p: dict,
               activation: str = "relu") -> tuple[float, dict]:  # fmt: skip
    """MSE loss mean((V(x) - y)^2) and its gradients. x [M, D], y [M]."""
    layers = hidden_layers(p)
    zs, hs = [], [x]
    for i in range(1, layers + 1):
        z = hs[-1] @ p[f"W{i}"].T + p[f"b{i}"]
        zs.append(z)
        hs.append(_activate(z, activation))
    out = layers + 1
    pred = hs[-1] @ p[f"w{out}"] + p[f"b{out}"][0]
    r = pred - y
    m = x.shape[0]
    g = (2.0 / m) * r
    grads = {
        f"w{out}": (hs[-1].T @ g).astype(x.dtype),
        f"b{out}": np.array([g.sum()], dtype=x.dtype),
    }
    if layers:
        d_h = np.outer(g, p[f"w{out}"])
        for i in range(layers, 0, -1):
            if activation == "relu":
                dz = d_h * (zs[i - 1] > 0)
            else:
                dz = d_h * (1.0 - hs[i] * hs[i])
            grads[f"W{i}"] = (dz.T @ hs[i - 1]).astype(x.dtype)
            grads[f"b{i}"] = dz.sum(0).astype(x.dtype)
            if i > 1:
                d_h = dz @ p[f"W{i}"]
    return float(np.mean(r * r)), grads


def _fit_eager(x, y, p, opt: AdamState, lr, iters, activation="relu", max_norm=None) -> float:
    from a2c_core.policies import clip_grad_norm

    loss = float("nan")
    for _ in range(iters):
        loss, grads = grad_eager(x, y, p, activation)
        clip_grad_norm(grads, max_norm)
        opt.update(p, grads, lr)
    return loss


# --------------------------------------------------------------------------- numba kernels

# Source of the kernels for one observation size; {rows}, {wload}, {dot}, {acc_init},
# {acc_add}, {acc_store} are filled with D-term unrolled statements by _kernel_source.
_TEMPLATE = '''\
"""Generated by a2c_core.valuefit for obs_dim = {d}. Do not edit."""
import numba
import numpy as np

BLOCK = {block}
BETA1, BETA2, EPS = {beta1!r}, {beta2!r}, {eps!r}
JIT = dict(fastmath=True, cache=True, nogil=True, error_model="numpy")


@numba.njit(**JIT)
def forward(xT, W1, b1, w2, b2, out, zero):
    m = xT.shape[1]
    for s in range(0, m, BLOCK):
        nb = min(BLOCK, m - s)
{rows}
        ob = out[s : s + nb]
        for n in range(nb):
            ob[n] = b2[0]
        for j in range(W1.shape[0]):
            bj = b1[j]
            wj = w2[j]
{wload}
            for n in range(nb):
                z = bj + {dot}
                ob[n] += wj * (z if z > zero else zero)


@numba.njit(**JIT)
def grad(xT, y, W1, b1, w2, b2, gW1, gb1, gw2, gb2, zbuf, acc, g, zero):
    # ``zero`` carries the dtype: float64 literals would widen every float32 lane.
    m = xT.shape[1]
    gW1[:] = zero
    gb1[:] = zero
    gw2[:] = zero
    gb2[:] = zero
    two_over_m = (zero + 2) / m
    loss = zero
    for s in range(0, m, BLOCK):
        nb = min(BLOCK, m - s)
{rows}
        for n in range(nb):
            acc[n] = b2[0]
        for j in range(W1.shape[0]):
            zj = zbuf[j]
            bj = b1[j]
            wj = w2[j]
{wload}
            for n in range(nb):
                z = bj + {dot}
                zj[n] = z
                acc[n] += wj * (z if z > zero else zero)
        yb = y[s : s + nb]
        block_loss = zero
        gsum = zero
        for n in range(nb):
            r = acc[n] - yb[n]
            block_loss += r * r
            g[n] = two_over_m * r
            gsum += g[n]
        loss += block_loss
        gb2[0] += gsum
        for j in range(W1.shape[0]):
            zj = zbuf[j]
            wj = w2[j]
            sw = zero
            sb = zero
{acc_init}
            for n in range(nb):
                z = zj[n]
                gn = g[n]
                active = z > zero
                sw += gn * z if active else zero
                dz = gn * wj if active else zero
                sb += dz
{acc_add}
            gw2[j] += sw
            gb1[j] += sb
{acc_store}
    return loss / m


@numba.njit(**JIT)
def adam(p, g, m, v, lr, bc1, bc2):
    pf, gf, mf, vf = p.ravel(), g.ravel(), m.ravel(), v.ravel()
    step_size = lr / bc1
    sqrt_bc2 = np.sqrt(bc2)
    for i in range(pf.size):
        mf[i] = BETA1 * mf[i] + (1 - BETA1) * gf[i]
        vf[i] = BETA2 * vf[i] + (1 - BETA2) * gf[i] * gf[i]
        pf[i] -= step_size * mf[i] / (np.sqrt(vf[i]) / sqrt_bc2 + EPS)


@numba.njit(**JIT)
def fit(xT, y, W1, b1, w2, b2, mW1, mb1, mw2, mb2, vW1, vb1, vw2, vb2, step, lr, iters):
    dt = xT.dtype
    gW1, gb1 = np.empty_like(W1), np.empty_like(b1)
    gw2, gb2 = np.empty_like(w2), np.empty_like(b2)
    zbuf = np.empty((W1.shape[0], BLOCK), dtype=dt)
    acc, g = np.empty(BLOCK, dtype=dt), np.empty(BLOCK, dtype=dt)
    zero = W1[0, 0] - W1[0, 0]
    loss = zero
    for _ in range(iters):
        loss = grad(xT, y, W1, b1, w2, b2, gW1, gb1, gw2, gb2, zbuf, acc, g, zero)
        step += 1
        bc1 = 1.0 - BETA1**step
        bc2 = 1.0 - BETA2**step
        adam(W1, gW1, mW1, vW1, lr, bc1, bc2)
        adam(b1, gb1, mb1, vb1, lr, bc1, bc2)
        adam(w2, gw2, mw2, vw2, lr, bc1, bc2)
        adam(b2, gb2, mb2, vb2, lr, bc1, bc2)
    return loss, step


@numba.njit(**JIT)
def sqsum(g):
    total = 0.0
    gf = g.ravel()
    for i in range(gf.size):
        total += np.float64(gf[i]) * np.float64(gf[i])
    return total


@numba.njit(**JIT)
def scale(g, factor):
    gf = g.ravel()
    for i in range(gf.size):
        gf[i] = gf[i] * factor


@numba.njit(**JIT)
def fit_clipped(xT, y, W1, b1, w2, b2, mW1, mb1, mw2, mb2, vW1, vb1, vw2, vb2, step, lr, iters,
                max_norm):
    # fit, with each iteration's global gradient norm clipped to max_norm (torch's rule)
    dt = xT.dtype
    gW1, gb1 = np.empty_like(W1), np.empty_like(b1)
    gw2, gb2 = np.empty_like(w2), np.empty_like(b2)
    zbuf = np.empty((W1.shape[0], BLOCK), dtype=dt)
    acc, g = np.empty(BLOCK, dtype=dt), np.empty(BLOCK, dtype=dt)
    zero = W1[0, 0] - W1[0, 0]
    loss = zero
    for _ in range(iters):
        loss = grad(xT, y, W1, b1, w2, b2, gW1, gb1, gw2, gb2, zbuf, acc, g, zero)
        norm = np.sqrt(sqsum(gW1) + sqsum(gb1) + sqsum(gw2) + sqsum(gb2))
        factor = max_norm / (norm + 1e-6)
        if factor < 1.0:
            f = zero + factor
            scale(gW1, f)
            scale(gb1, f)
            scale(gw2, f)
            scale(gb2, f)
        step += 1
        bc1 = 1.0 - BETA1**step
        bc2 = 1.0 - BETA2**step
        adam(W1, gW1, mW1, vW1, lr, bc1, bc2)
        adam(b1, gb1, mb1, vb1, lr, bc1, bc2)
        adam(w2, gw2, mw2, vw2, lr, bc1, bc2)
        adam(b2, gb2, mb2, vb2, lr, bc1, bc2)
    return loss, step
'''

# the tanh hidden layer: (text in the ReLU template, its replacement)
_TANH = (
    ("ob[n] += wj * (z if z > zero else zero)", "ob[n] += wj * np.tanh(z)"),
    (
        """                zj[n] = z
                acc[n] += wj * (z if z > zero else zero)""",
        """                h = np.tanh(z)
                zj[n] = h
                acc[n] += wj * h""",
    ),
    (
        """                z = zj[n]
                gn = g[n]
                active = z > zero
                sw += gn * z if active else zero
                dz = gn * wj if active else zero""",
        """                h = zj[n]
                gn = g[n]
                sw += gn * h
                dz = gn * wj * (one - h * h)""",
    ),
    (
        """    two_over_m = (zero + 2) / m""",
        """    two_over_m = (zero + 2) / m
    one = np.ones(1, dtype=xT.dtype)[0]""",
    ),
    ("for obs_dim = {d}. Do not edit.", "for obs_dim = {d}, tanh. Do not edit."),
)


def _kernel_source(d: int, activation: str = "relu") -> str:
    ind2, ind3 = " " * 8, " " * 12
    ks = range(d)
    template = _TEMPLATE
    if activation == "tanh":
        for old, new in _TANH:
            assert template.count(old) >= 1, old
            template = template.replace(old, new)
    return template.format(
        d=d, block=BLOCK, beta1=BETA1, beta2=BETA2, eps=EPS,
        rows="\n".join(f"{ind2}x{k} = xT[{k}, s : s + nb]" for k in ks),
        wload="\n".join(f"{ind3}a{k} = W1[j, {k}]" for k in ks),
        dot=" + ".join(f"a{k} * x{k}[n]" for k in ks),
        acc_init="\n".join(f"{ind3}s{k} = zero" for k in ks),
        acc_add="\n".join(f"{ind3}    s{k} += dz * x{k}[n]" for k in ks),
        acc_store="\n".join(f"{ind3}gW1[j, {k}] += s{k}" for k in ks),
    )  # fmt: skip


def kernel_dir() -> Path:
    default = Path.home() / ".cache" / "a2c-sweep" / "kernels"
    return Path(os.environ.get("A2C_SWEEP_KERNEL_DIR", default))


_WARMING = "A2C_SWEEP_KERNEL_WARMING"


def _warm_in_subprocess(d: int, activation: str, marker: Path) -> None:
    """Compile the kernels of observation size d into numba's on-disk cache in a child
    process, so that every process, this one included, runs the kernels loaded from that
    cache. A kernel compiled in the process that uses it rounds differently from the same
    kernel loaded from the cache (measured: the first run on a cold cache differed from
    every later one from epoch 1), which would make a run's numbers depend on whether it
    was the first on its machine."""
    env = {**os.environ, _WARMING: "1"}
    code = f"from a2c_core.valuefit import _warm; _warm({d}, {activation!r})"
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              timeout=600, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        warnings.warn(f"value-fit kernel: cannot warm numba's cache ({exc})", RuntimeWarning,
                      stacklevel=3)  # fmt: skip
        return
    if done.returncode == 0:
        marker.touch()
    else:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        warnings.warn(f"value-fit kernel: cannot warm numba's cache ({last[0]})",
                      RuntimeWarning, stacklevel=3)  # fmt: skip


def _warm(d: int, activation: str = "relu") -> None:
    """Call every kernel of observation size d once per dtype (compiles and caches them)."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        p = init_value_params(d, 8, rng, dtype)
        x = rng.standard_normal((5, d)).astype(dtype)
        y = rng.standard_normal(5).astype(dtype)
        value_forward(x, p, activation)
        value_grad(x, y, p, activation)
        value_fit(x, y, p, AdamState.zeros_like(p), 1e-3, 1, activation)
        value_fit(x, y, p, AdamState.zeros_like(p), 1e-3, 1, activation, max_norm=1.0)


def _cached_text(path: Path) -> str | None:
    """The cached kernel file's text (None when missing or unreadable). It is compared with
    the generated source, whose digest names the file, before it is ever imported."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _kernels(d: int, activation: str = "relu") -> ModuleType:
    """The compiled kernel module for observation size d and the hidden layer's activation
    (generated and cached on disk)."""
    if (d, activation) in _modules:
        return _modules[(d, activation)]
    source = _kernel_source(d, activation)
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    folder = kernel_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tag = "" if activation == "relu" else f"_{activation}"
    path = folder / f"valuefit_d{d}{tag}_{digest}.py"
    marker = folder / f"{path.stem}.warm"
    if _cached_text(path) != source:  # missing, cut or tampered with: (re)write it before
        # importing (atomic: concurrent workers write identical content); numba's cache of
        # the old file is stale now, so warm it again
        marker.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".py")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    if not marker.exists() and not os.environ.get(_WARMING):
        _warm_in_subprocess(d, activation, marker)
    spec = importlib.util.spec_from_file_location(f"_a2c_valuefit_d{d}{tag}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    # numba's on-disk cache re-imports the defining module by name: make it importable
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    _modules[(d, activation)] = module
    return module


def _use_kernel(p: dict | None = None) -> bool:
    """The compiled kernels run one hidden layer; other depths take the eager path."""
    global _warned
    if p is not None and hidden_layers(p) != 1:
        return False
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


def value_forward(x: np.ndarray, p: dict, activation: str = "relu") -> np.ndarray:
    """V(x) for x [M, D]; returns [M] in x's dtype."""
    if x.shape[0] == 0:
        return np.zeros(0, dtype=x.dtype)
    if not _use_kernel(p):
        return forward_eager(x, p, activation).astype(x.dtype)
    out = np.empty(x.shape[0], dtype=x.dtype)
    k = _kernels(x.shape[1], activation)
    k.forward(np.ascontiguousarray(x.T), p["W1"], p["b1"], p["w2"], p["b2"], out, x.dtype.type(0))
    return out


def value_grad(x: np.ndarray, y: np.ndarray, p: dict,
               activation: str = "relu") -> tuple[float, dict]:  # fmt: skip
    """Loss and gradients through the active implementation (kernel if available)."""
    if not _use_kernel(p):
        return grad_eager(x, y, p, activation)
    grads = {k: np.empty_like(p[k]) for k in PARAM_NAMES}
    hidden = p["W1"].shape[0]
    loss = _kernels(x.shape[1], activation).grad(
        np.ascontiguousarray(x.T), np.ascontiguousarray(y), p["W1"], p["b1"], p["w2"], p["b2"],
        grads["W1"], grads["b1"], grads["w2"], grads["b2"],
        np.empty((hidden, BLOCK), x.dtype), np.empty(BLOCK, x.dtype), np.empty(BLOCK, x.dtype),
        x.dtype.type(0),
    )  # fmt: skip
    return float(loss), grads


def value_fit(x: np.ndarray, y: np.ndarray, p: dict, opt: AdamState, lr: float, iters: int,
              activation: str = "relu", max_norm: float | None = None) -> float:  # fmt: skip
    """``iters`` full-batch Adam steps on mean((V(x) - y)^2), in place on ``p`` and ``opt``;
    each step's global gradient norm clipped to ``max_norm`` (None: not clipped).

    x [M, D], y [M]. Returns the loss at the last iteration, before its update.
    """
    if iters == 0 or x.shape[0] == 0:
        return float("nan")
    if not _use_kernel(p):
        return _fit_eager(x, y, p, opt, lr, iters, activation, max_norm)
    m, v = opt.m, opt.v
    k = _kernels(x.shape[1], activation)
    args = (
        np.ascontiguousarray(x.T), np.ascontiguousarray(y), p["W1"], p["b1"], p["w2"], p["b2"],
        m["W1"], m["b1"], m["w2"], m["b2"], v["W1"], v["b1"], v["w2"], v["b2"],
        opt.step, x.dtype.type(lr), iters,
    )  # fmt: skip
    if max_norm is None:
        loss, opt.step = k.fit(*args)
    else:
        loss, opt.step = k.fit_clipped(*args, float(max_norm))
    opt.step = int(opt.step)
    return float(loss)
