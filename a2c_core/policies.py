"""Policies, chosen from the action space, with hand-written forward and backward passes.

Everything is numpy in the config's dtype, so that the rollout's forward pass for a whole
pack is one batched matmul and each run's update touches only its own arrays.

Both policies put an MLP (``widths`` hidden layers, tanh or relu) in front of the output:

- :class:`CategoricalPolicy` (Discrete): logits = MLP(x); the default has no hidden layer
  (logits = x W + b, one linear layer, as the article).
- :class:`GaussianPolicy` (Box): mean = MLP(x) (default one tanh layer of 64:
  tanh(x W1 + b1) W2 + b2), learned state-independent ``log_std`` (initialised to
  ``init_log_std``); std = exp(log_std) (a standard deviation, not a variance). Actions are
  sampled unclipped (the log-prob is that of the sample); the env clips them to its bounds.

The loss of one run is -mean(A log pi(a|s)) - c * entropy (c = ``entropy_coef``); its
gradients are written out by hand (tests/a2c_core/test_policy_grads.py checks every
combination against torch autograd). Parameters are named ``W``/``b`` for a linear
categorical policy, ``W1``, ``b1``, ... ``W{L+1}``, ``b{L+1}`` otherwise.

Parameters of a pack are stacked with a leading run axis [P, ...]; the update of run p reads
and writes ``params[name][p]`` only.
"""

from __future__ import annotations

import math

import numpy as np

LOG_2PI = math.log(2 * math.pi)

try:  # the categorical policy step compiled; the numpy path below runs without numba
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover
    _HAVE_NUMBA = False

if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _categorical_pg(obs, actions, adv, W, b, gW, gb, ent_coef):
        """Loss -mean(A log pi(a|s)), entropy and gradients of a linear softmax policy (plus
        ``ent_coef`` times the entropy's, when it is not 0) in one pass over the samples,
        accumulated in float64 (gW [D, A], gb [A] are outputs)."""
        m, d = obs.shape
        n_act = W.shape[1]
        logits = np.empty(n_act, dtype=np.float64)
        gW[:] = 0.0
        gb[:] = 0.0
        loss = 0.0
        entropy = 0.0
        for i in range(m):
            top = -np.inf
            for a in range(n_act):
                z = np.float64(b[a])
                for k in range(d):
                    z += np.float64(obs[i, k]) * W[k, a]
                logits[a] = z
                top = max(top, z)
            total = 0.0
            for a in range(n_act):
                total += np.exp(logits[a] - top)
            logz = top + np.log(total)
            weight = adv[i] / m
            loss -= adv[i] * (logits[actions[i]] - logz)
            h_i = 0.0
            if ent_coef != 0.0:
                for a in range(n_act):
                    logp = logits[a] - logz
                    h_i -= np.exp(logp) * logp
            for a in range(n_act):
                logp = logits[a] - logz
                prob = np.exp(logp)
                entropy -= prob * logp
                g = prob * weight - (weight if a == actions[i] else 0.0)
                if ent_coef != 0.0:  # d(-c H_i / m)/dz_a = c p_a (log p_a + H_i) / m
                    g += ent_coef / m * prob * (logp + h_i)
                gb[a] += g
                for k in range(d):
                    gW[k, a] += obs[i, k] * g
        return loss / m, entropy / m


if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _outer_act_grad(d, w, x, tanh, out):
        """out = (d @ w.T) * (1 - x * x) (tanh) or * (x > 0) (relu) for d [M, 1], w [H, 1],
        x [M, H], float32: the floats numpy computes (a K = 1 matmul is one rounded product
        added to zero; the rest elementwise, in the same order), in one pass instead of
        four."""
        m, n = x.shape
        one, zero = np.float32(1.0), np.float32(0.0)
        for i in range(m):
            di = d[i, 0]
            for j in range(n):
                g = di * w[j, 0] + zero  # BLAS adds the product to 0: -0.0 -> 0.0
                if tanh:
                    out[i, j] = g * (one - x[i, j] * x[i, j])
                else:
                    out[i, j] = g * (one if x[i, j] > 0 else zero)


def _all_float32(*arrays: np.ndarray) -> bool:
    return all(a.dtype == np.float32 for a in arrays)


def _linear_init(rng: np.random.Generator, fan_in: int, shape: tuple, dtype) -> np.ndarray:
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


class MLP:
    """x [..., D] -> hidden layers (``widths``, ``activation``) -> linear output [..., out],
    with its hand-written backward pass. torch.nn.Linear's default init, layer by layer
    (W then b), from the run's own generator."""

    def __init__(self, in_dim: int, widths: tuple[int, ...], out_dim: int, activation: str,
                 dtype, names: tuple[str, str] | None = None):  # fmt: skip
        self.sizes = (in_dim, *widths, out_dim)
        self.activation = activation
        self.dtype = np.dtype(dtype)
        layers = len(self.sizes) - 1
        if names is not None and layers == 1:
            self.names = [names]
        else:
            self.names = [(f"W{i}", f"b{i}") for i in range(1, layers + 1)]

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        params = {}
        for (w, b), fan_in, fan_out in zip(self.names, self.sizes[:-1], self.sizes[1:],
                                           strict=True):  # fmt: skip
            params[w] = _linear_init(rng, fan_in, (fan_in, fan_out), self.dtype)
            params[b] = _linear_init(rng, fan_in, (fan_out,), self.dtype)
        return params

    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z) if self.activation == "tanh" else np.maximum(z, 0)

    def forward(self, p: dict, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """One run's params: x [M, D] -> (out [M, out], inputs of each layer)."""
        inputs = [x]
        for w, b in self.names[:-1]:
            x = self._act(x @ p[w] + p[b])
            inputs.append(x)
        w, b = self.names[-1]
        return x @ p[w] + p[b], inputs

    def forward_stacked(self, params: dict, x: np.ndarray) -> np.ndarray:
        """Stacked params [P, ...]: x [P, N, D] -> [P, N, out] (one batched matmul a layer)."""
        for w, b in self.names[:-1]:
            x = self._act(np.matmul(x, params[w]) + params[b][:, None, :])
        w, b = self.names[-1]
        return np.matmul(x, params[w]) + params[b][:, None, :]

    def backward(self, p: dict, inputs: list[np.ndarray], d_out: np.ndarray) -> dict:
        """Gradients of the params given d loss / d out [M, out] and forward's inputs."""
        grads = {}
        d = d_out
        for layer in range(len(self.names) - 1, -1, -1):
            w, b = self.names[layer]
            x = inputs[layer]
            if layer > 0:  # d loss / d (this layer's input), through the activation
                if _HAVE_NUMBA and d.shape[1] == 1 and _all_float32(d, p[w], x):
                    d_in = np.empty_like(x)  # one output (a 1-D Gaussian mean): one pass
                    _outer_act_grad(d, p[w], x, self.activation == "tanh", d_in)
                else:
                    d_in = d @ p[w].T
                    d_in = d_in * (1.0 - x * x) if self.activation == "tanh" else d_in * (x > 0)
            grads[w] = x.T @ d
            grads[b] = d.sum(0)
            if layer > 0:
                d = d_in
        return grads


class CategoricalPolicy:
    discrete = True

    def __init__(self, obs_dim: int, num_actions: int, widths: tuple[int, ...] = (),
                 dtype=np.float32, activation: str = "tanh"):  # fmt: skip
        self.obs_dim, self.num_actions, self.dtype = obs_dim, num_actions, np.dtype(dtype)
        self.widths = tuple(widths)
        self.net = MLP(obs_dim, self.widths, num_actions, activation, dtype, names=("W", "b"))
        self.linear = not self.widths

    def init_params(self, rng: np.random.Generator, init_log_std: float = 0.0) -> dict:
        return self.net.init_params(rng)

    def noise(self, rng: np.random.Generator, steps: int, num_envs: int) -> np.ndarray:
        """Per-epoch sampling noise of one run: uniforms [T, N] (inverse-CDF sampling)."""
        return rng.random((steps, num_envs))

    def act(self, params: dict, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """obs [P, N, D], stacked params, noise [P, N] -> actions [P, N] int64."""
        logits = self.net.forward_stacked(params, obs)
        logits -= logits.max(-1, keepdims=True)
        probs = np.exp(logits)
        cdf = np.cumsum(probs, -1)
        threshold = noise * cdf[..., -1]
        return (threshold[..., None] >= cdf[..., :-1]).sum(-1)

    def loss_and_grads(self, p: dict, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray,
                       entropy_coef: float = 0.0):  # fmt: skip
        """Policy-gradient loss -mean(A * log pi(a|s)) of one run and the gradients of it
        minus ``entropy_coef`` * mean entropy.

        obs [M, D], actions [M], adv [M] (already normalised). Returns (loss, entropy, grads):
        the loss without the entropy term, the mean entropy, the gradients with it.
        """
        if self.linear and _HAVE_NUMBA and obs.shape[0] > 0:
            gW = np.empty(p["W"].shape)
            gb = np.empty(p["b"].shape)
            loss, entropy = _categorical_pg(
                np.ascontiguousarray(obs), np.ascontiguousarray(actions),
                np.ascontiguousarray(adv, dtype=np.float64), p["W"], p["b"], gW, gb,
                float(entropy_coef),
            )  # fmt: skip
            return float(loss), float(entropy), {"W": gW, "b": gb}
        m = obs.shape[0]
        logits, inputs = self.net.forward(p, obs)
        logits = logits - logits.max(-1, keepdims=True)
        logz = np.log(np.exp(logits).sum(-1, keepdims=True))
        logp_all = logits - logz
        probs = np.exp(logp_all)
        logp = np.take_along_axis(logp_all, actions[:, None], 1)[:, 0]
        loss = -np.mean(adv * logp)
        ent_i = -(probs * logp_all).sum(-1)
        entropy = np.mean(ent_i)
        # d loss / d logits = -(A / M) (onehot(a) - softmax)
        g = probs * (adv / m)[:, None]
        g[np.arange(m), actions] -= adv / m
        if entropy_coef:  # d(-c mean H)/dz = c p (log p + H) / M
            g += (entropy_coef / m) * probs * (logp_all + ent_i[:, None])
        grads = self.net.backward(p, inputs, g)
        return float(loss), float(entropy), grads

    def log_prob(self, p: dict, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = self.net.forward(p, obs)[0]
        logits = logits - logits.max(-1, keepdims=True)
        logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return np.take_along_axis(logp_all, actions[:, None], 1)[:, 0]

    def mode(self, p: dict, obs: np.ndarray) -> np.ndarray:
        return self.net.forward(p, obs)[0].argmax(-1)


class GaussianPolicy:
    discrete = False

    def __init__(self, obs_dim: int, action_dim: int, widths: tuple[int, ...] = (64,),
                 dtype=np.float32, activation: str = "tanh"):  # fmt: skip
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.widths = tuple(widths)
        self.dtype = np.dtype(dtype)
        self.net = MLP(obs_dim, self.widths, action_dim, activation, dtype)

    def init_params(self, rng: np.random.Generator, init_log_std: float = 0.0) -> dict:
        params = self.net.init_params(rng)
        params["log_std"] = np.full(self.action_dim, init_log_std, dtype=self.dtype)
        return params

    def noise(self, rng: np.random.Generator, steps: int, num_envs: int) -> np.ndarray:
        """Per-epoch standard normal noise of one run: [T, N, A]."""
        return rng.standard_normal((steps, num_envs, self.action_dim), dtype=self.dtype)

    def mean(self, p: dict, obs: np.ndarray) -> np.ndarray:
        """obs [M, D] (one run) -> mean [M, A]."""
        return self.net.forward(p, obs)[0]

    def act(self, params: dict, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """obs [P, N, D], stacked params, noise [P, N, A] -> actions [P, N, A]."""
        mean = self.net.forward_stacked(params, obs)
        return mean + np.exp(params["log_std"])[:, None, :] * noise

    def log_prob(self, p: dict, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Sum over action dims of Normal(mean, exp(log_std)) log-densities. [M]."""
        z = (actions - self.mean(p, obs)) * np.exp(-p["log_std"])
        return (-0.5 * z * z - p["log_std"] - 0.5 * LOG_2PI).sum(-1)

    def loss_and_grads(self, p: dict, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray,
                       entropy_coef: float = 0.0, hidden: np.ndarray | None = None):  # fmt: skip
        """As :meth:`CategoricalPolicy.loss_and_grads`; the entropy of a diagonal Gaussian
        is sum(log_std) + const, so the bonus only moves ``log_std``. ``hidden`` [M, H]: the
        one hidden layer's activations of ``obs`` under ``p``, when the caller has them
        exactly (the fused swing-up rollout); the forward pass then starts from them."""
        m = obs.shape[0]
        if hidden is not None:
            ((w, b),) = self.net.names[1:]
            inputs = [obs, hidden]
            mean = hidden @ p[w] + p[b]
        else:
            mean, inputs = self.net.forward(p, obs)
        inv_std = np.exp(-p["log_std"])
        z = (actions - mean) * inv_std
        logp = (-0.5 * z * z - p["log_std"] - 0.5 * LOG_2PI).sum(-1)
        loss = -np.mean(adv * logp)
        entropy = float((p["log_std"] + 0.5 * (1.0 + LOG_2PI)).sum())
        w = (adv / m)[:, None]
        d_mean = -w * z * inv_std  # d loss / d mean
        d_log_std = (w * (1.0 - z * z)).sum(0)  # d/d log_std of -A logp = A (1 - z^2) / M
        if entropy_coef:
            d_log_std = d_log_std - entropy_coef
        grads = self.net.backward(p, inputs, d_mean)
        grads["log_std"] = d_log_std
        return float(loss), entropy, grads

    def mode(self, p: dict, obs: np.ndarray) -> np.ndarray:
        return self.mean(p, obs)


def make_policy(observation_space, action_space, hidden: int, dtype, *,
                policy_hidden: tuple[int, ...] | None = None, activation: str = "tanh"):  # fmt: skip
    """The policy for these spaces: ``policy_hidden`` widths (None: the article's default,
    linear categorical logits or a Gaussian mean with one layer of ``hidden``)."""
    import gymnasium as gym

    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"env: unsupported observation space {observation_space} (need a Box)")
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        widths = () if policy_hidden is None else policy_hidden
        return CategoricalPolicy(obs_dim, int(action_space.n), widths, dtype, activation)
    if isinstance(action_space, gym.spaces.Box):
        widths = (hidden,) if policy_hidden is None else policy_hidden
        return GaussianPolicy(obs_dim, int(np.prod(action_space.shape)), widths, dtype,
                              activation)  # fmt: skip
    raise ValueError(f"env: unsupported action space {action_space}")


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``
    (torch.nn.utils.clip_grad_norm_'s rule: factor max_norm / (norm + 1e-6) when below 1).
    Returns the norm before clipping (None: nothing is done, nan returned)."""
    if max_norm is None:
        return float("nan")
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    factor = max_norm / (norm + 1e-6)
    if factor < 1.0:
        for g in grads.values():
            g *= g.dtype.type(factor)
    return norm
