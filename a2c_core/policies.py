"""Policies, chosen from the action space, with hand-written forward and backward passes.

Everything is numpy in the config's dtype, so that the rollout's forward pass for a whole
pack is one batched matmul and each run's update touches only its own arrays.

- :class:`CategoricalPolicy` (Discrete): logits = x W + b (one linear layer, as the article).
- :class:`GaussianPolicy` (Box): mean = tanh(x W1 + b1) W2 + b2, learned state-independent
  ``log_std``; std = exp(log_std) (a standard deviation, not a variance). Actions are sampled
  unclipped (the log-prob is that of the sample); the env clips them to its bounds.

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
    def _categorical_pg(obs, actions, adv, W, b, gW, gb):
        """Loss -mean(A log pi(a|s)), entropy and gradients of a linear softmax policy in
        one pass over the samples, accumulated in float64 (gW [D, A], gb [A] are outputs)."""
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
            for a in range(n_act):
                logp = logits[a] - logz
                prob = np.exp(logp)
                entropy -= prob * logp
                g = prob * weight - (weight if a == actions[i] else 0.0)
                gb[a] += g
                for k in range(d):
                    gW[k, a] += obs[i, k] * g
        return loss / m, entropy / m


def _linear_init(rng: np.random.Generator, fan_in: int, shape: tuple, dtype) -> np.ndarray:
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


class CategoricalPolicy:
    discrete = True

    def __init__(self, obs_dim: int, num_actions: int, hidden: int, dtype):
        self.obs_dim, self.num_actions, self.dtype = obs_dim, num_actions, np.dtype(dtype)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d, a = self.obs_dim, self.num_actions
        return {
            "W": _linear_init(rng, d, (d, a), self.dtype),
            "b": _linear_init(rng, d, (a,), self.dtype),
        }

    def noise(self, rng: np.random.Generator, steps: int, num_envs: int) -> np.ndarray:
        """Per-epoch sampling noise of one run: uniforms [T, N] (inverse-CDF sampling)."""
        return rng.random((steps, num_envs))

    def act(self, params: dict, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """obs [P, N, D], stacked params, noise [P, N] -> actions [P, N] int64."""
        logits = np.matmul(obs, params["W"]) + params["b"][:, None, :]
        logits -= logits.max(-1, keepdims=True)
        probs = np.exp(logits)
        cdf = np.cumsum(probs, -1)
        threshold = noise * cdf[..., -1]
        return (threshold[..., None] >= cdf[..., :-1]).sum(-1)

    def loss_and_grads(self, p: dict, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray):
        """Policy-gradient loss -mean(A * log pi(a|s)) of one run and its gradients.

        obs [M, D], actions [M], adv [M] (already normalised). Returns (loss, entropy, grads).
        """
        if _HAVE_NUMBA and obs.shape[0] > 0:
            gW = np.empty(p["W"].shape)
            gb = np.empty(p["b"].shape)
            loss, entropy = _categorical_pg(
                np.ascontiguousarray(obs), np.ascontiguousarray(actions),
                np.ascontiguousarray(adv, dtype=np.float64), p["W"], p["b"], gW, gb,
            )  # fmt: skip
            return float(loss), float(entropy), {"W": gW, "b": gb}
        m = obs.shape[0]
        logits = obs @ p["W"] + p["b"]
        logits = logits - logits.max(-1, keepdims=True)
        logz = np.log(np.exp(logits).sum(-1, keepdims=True))
        logp_all = logits - logz
        probs = np.exp(logp_all)
        logp = np.take_along_axis(logp_all, actions[:, None], 1)[:, 0]
        loss = -np.mean(adv * logp)
        entropy = -np.mean((probs * logp_all).sum(-1))
        # d loss / d logits = -(A / M) (onehot(a) - softmax)
        g = probs * (adv / m)[:, None]
        g[np.arange(m), actions] -= adv / m
        grads = {"W": obs.T @ g, "b": g.sum(0)}
        return float(loss), float(entropy), grads

    def log_prob(self, p: dict, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        logits = obs @ p["W"] + p["b"]
        logits = logits - logits.max(-1, keepdims=True)
        logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return np.take_along_axis(logp_all, actions[:, None], 1)[:, 0]

    def mode(self, p: dict, obs: np.ndarray) -> np.ndarray:
        return (obs @ p["W"] + p["b"]).argmax(-1)


class GaussianPolicy:
    discrete = False

    def __init__(self, obs_dim: int, action_dim: int, hidden: int, dtype):
        self.obs_dim, self.action_dim, self.hidden = obs_dim, action_dim, hidden
        self.dtype = np.dtype(dtype)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d, h, a = self.obs_dim, self.hidden, self.action_dim
        return {
            "W1": _linear_init(rng, d, (d, h), self.dtype),
            "b1": _linear_init(rng, d, (h,), self.dtype),
            "W2": _linear_init(rng, h, (h, a), self.dtype),
            "b2": _linear_init(rng, h, (a,), self.dtype),
            "log_std": np.zeros(a, dtype=self.dtype),
        }

    def noise(self, rng: np.random.Generator, steps: int, num_envs: int) -> np.ndarray:
        """Per-epoch standard normal noise of one run: [T, N, A]."""
        return rng.standard_normal((steps, num_envs, self.action_dim), dtype=self.dtype)

    def mean(self, p: dict, obs: np.ndarray) -> np.ndarray:
        """obs [..., D] (one run) -> mean [..., A]."""
        return np.tanh(obs @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def act(self, params: dict, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """obs [P, N, D], stacked params, noise [P, N, A] -> actions [P, N, A]."""
        hid = np.tanh(np.matmul(obs, params["W1"]) + params["b1"][:, None, :])
        mean = np.matmul(hid, params["W2"]) + params["b2"][:, None, :]
        return mean + np.exp(params["log_std"])[:, None, :] * noise

    def log_prob(self, p: dict, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Sum over action dims of Normal(mean, exp(log_std)) log-densities. [M]."""
        z = (actions - self.mean(p, obs)) * np.exp(-p["log_std"])
        return (-0.5 * z * z - p["log_std"] - 0.5 * LOG_2PI).sum(-1)

    def loss_and_grads(self, p: dict, obs: np.ndarray, actions: np.ndarray, adv: np.ndarray):
        m = obs.shape[0]
        hid = np.tanh(obs @ p["W1"] + p["b1"])
        mean = hid @ p["W2"] + p["b2"]
        inv_std = np.exp(-p["log_std"])
        z = (actions - mean) * inv_std
        logp = (-0.5 * z * z - p["log_std"] - 0.5 * LOG_2PI).sum(-1)
        loss = -np.mean(adv * logp)
        entropy = float((p["log_std"] + 0.5 * (1.0 + LOG_2PI)).sum())
        w = (adv / m)[:, None]
        d_mean = -w * z * inv_std  # d loss / d mean
        d_log_std = (w * (1.0 - z * z)).sum(0)  # d/d log_std of -A logp = A (1 - z^2) / M
        d_hid = (d_mean @ p["W2"].T) * (1.0 - hid * hid)
        grads = {
            "W1": obs.T @ d_hid,
            "b1": d_hid.sum(0),
            "W2": hid.T @ d_mean,
            "b2": d_mean.sum(0),
            "log_std": d_log_std,
        }
        return float(loss), entropy, grads

    def mode(self, p: dict, obs: np.ndarray) -> np.ndarray:
        return self.mean(p, obs)


def make_policy(observation_space, action_space, hidden: int, dtype):
    import gymnasium as gym

    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"env: unsupported observation space {observation_space} (need a Box)")
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(action_space.n), hidden, dtype)
    if isinstance(action_space, gym.spaces.Box):
        return GaussianPolicy(obs_dim, int(np.prod(action_space.shape)), hidden, dtype)
    raise ValueError(f"env: unsupported action space {action_space}")
