"""A whole epoch's rollout of a classic-control pack env and its policy in one numba loop.

The generic rollout (engine) costs about 40 numpy calls per vector step; for the CartPole
grid that is most of an epoch once the value fit is fast. These kernels walk T steps x P*N
envs in compiled code: the policy (linear categorical logits with inverse-CDF sampling from
the run's pre-drawn uniforms, or the Gaussian policy's tanh layer, mean and noise), the env's
own row step from :mod:`a2c_core.envs.classic` (gymnasium's dynamics, same arithmetic as the
pack env's), same-step autoreset, and every buffer write.

Envs: CartPole-v0/v1, Acrobot-v1, MountainCar-v0 (linear categorical policy); Pendulum-v1
and MountainCarContinuous-v0 (Gaussian policy, one action dimension, one tanh hidden layer).
Other policy shapes take the generic rollout. ``obs_norm`` runs' observations are normalised
in the kernel before the policy reads them (the buffers keep the raw observations).

CartPoleSwingUp (float32, the default policy shape, at least 2 envs per run) has a kernel of
its own, :func:`_swingup_rollout`, bound by a stricter rule: its published reference numbers
come from the generic (numpy) rollout, so it must compute exactly those floats. It calls
numpy's own sgemm/sgemv/tanh machine code (:mod:`a2c_core.npkernels`, checked bit for bit
once per process; the engine falls back to the generic rollout if the check fails) and its
reset pools keep the generic env's draw order (:class:`SwingUpRollout`).

Resets come from a per-run *pool* of initial states drawn from the run's env generator
(``pool_size`` states per draw, with their first observations computed as the pack env's
reset computes them). A pool is refilled, between steps, when fewer than N states are left,
so its refill points depend only on the run's own episodes: a run's numbers stay independent
of its pack-mates. Pool contents and cursors are part of the checkpoint.
"""

from __future__ import annotations

import warnings

import numpy as np

from a2c_core import npkernels
from a2c_core.envs import cartpole as cp
from a2c_core.envs import classic, swingup
from a2c_core.envs.base import reset_pool_of

try:
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - the engine then uses the generic rollout
    _HAVE_NUMBA = False

POOL_SIZE = 512
# the swing-up rollout keeps the epoch's hidden activations for the policy update (it then
# skips its first layer and tanh) up to this size per pack; beyond it the update recomputes
HIDDEN_BUDGET_BYTES = 512 * 2**20

if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _env_step(kind, two, limit, t, i, p, n, action, state, elapsed, obs, pool, pool_obs,
                  cursor, rew, term, end, ret_buf, len_buf, final_buf, ep_ret, ep_len):  # fmt: skip
        """Row i (env n of run p) takes ``action`` at step t: dynamics, buffers, autoreset."""
        reward, terminated = classic.step_row(kind, state, i, action, two)
        if _record(limit, t, i, reward, terminated, elapsed, rew, term, end, ret_buf, len_buf,
                   ep_ret, ep_len):  # fmt: skip
            classic.obs_row(kind, state, i, final_buf[t], i)
            _reset_row(i, p, state, obs, pool, pool_obs, cursor)
        else:
            classic.obs_row(kind, state, i, obs, i)

    @numba.njit(cache=True, nogil=True, inline="always")  # a call per env step otherwise
    def _record(limit, t, i, reward, terminated, elapsed, rew, term, end, ret_buf, len_buf,
                ep_ret, ep_len):  # fmt: skip
        """Row i's step t into the buffers and episode counters (time limit, episode end);
        True when the episode ended (the caller then resets the row)."""
        elapsed[i] += 1
        truncated = (elapsed[i] >= limit) and not terminated
        rew[t, i] = reward
        term[t, i] = terminated
        end[t, i] = terminated or truncated
        ep_ret[i] += reward
        ep_len[i] += 1
        if terminated or truncated:
            ret_buf[t, i] = ep_ret[i]
            len_buf[t, i] = ep_len[i]
            ep_ret[i] = 0.0
            ep_len[i] = 0
            elapsed[i] = 0
            return True
        return False

    @numba.njit(cache=True, nogil=True, inline="always")
    def _reset_row(i, p, state, obs, pool, pool_obs, cursor):
        """Row i (of run p) starts an episode from the next state of the run's pool."""
        c = cursor[p]
        for k in range(state.shape[0]):
            state[k, i] = pool[p, c, k]
        for k in range(obs.shape[1]):
            obs[i, k] = pool_obs[p, c, k]
        cursor[p] = c + 1

    @numba.njit(cache=True, nogil=True)
    def _pools_low(t, cursor, pool_size, num_envs):
        for p in range(cursor.shape[0]):
            if pool_size - cursor[p] < num_envs:
                return True
        return False

    @numba.njit(cache=True, nogil=True)
    def _policy_input(obs, i, p, use_norm, mu, istd, clip, x):
        """Row i's observation as run p's policy sees it (a2c_core.obsnorm.apply's
        expression when the pack normalises) into x [D]."""
        for k in range(x.shape[0]):
            v = obs[i, k]
            if use_norm:
                v = min(max((v - mu[p, k]) * istd[p, k], -clip[p]), clip[p])
            x[k] = v

    @numba.njit(cache=True, nogil=True)
    def _categorical_rollout(kind, two, t0, limit, state, elapsed, obs, W, b, noise, pool,
                             pool_obs, cursor, obs_buf, act_buf, rew, term, end, ret_buf,
                             len_buf, final_buf, ep_ret, ep_len, use_norm, mu, istd,
                             clip):  # fmt: skip
        """Steps t0..T-1; returns T when done, or the step at which a pool must be refilled.

        state [S, PN] f64, elapsed [PN], obs [PN, D], W [P, D, A], b [P, A], noise [P, T, N],
        pool [P, K, S] f64, pool_obs [P, K, D], cursor [P]; buffers as in the engine
        (obs_buf [P, T, N, D], act_buf [P, T, N], rew/term/end/ret_buf/len_buf [T, PN],
        final_buf [T, PN, D]); ``use_norm``, mu/istd [P, D], clip [P]: the pack's frozen
        observation normalisation.
        """
        num_runs, steps, num_envs = noise.shape
        d, n_act = W.shape[1], W.shape[2]
        weights = np.empty(n_act, dtype=np.float64)
        logits = np.empty(n_act, dtype=obs.dtype)
        x = np.empty(d, dtype=obs.dtype)
        for t in range(t0, steps):
            if _pools_low(t, cursor, pool.shape[1], num_envs):
                return t
            for i in range(num_runs * num_envs):
                p = i // num_envs
                n = i - p * num_envs
                # --- policy: logits = obs W + b (float32), softmax, inverse CDF
                _policy_input(obs, i, p, use_norm, mu, istd, clip, x)
                for a in range(n_act):
                    acc = b[p, a]
                    for k in range(d):
                        acc += x[k] * W[p, k, a]
                    logits[a] = acc
                top = logits[0]
                for a in range(1, n_act):
                    top = max(top, logits[a])
                total = 0.0
                for a in range(n_act):
                    weights[a] = np.exp(logits[a] - top)
                    total += weights[a]
                threshold = noise[p, t, n] * total
                action = 0
                cdf = 0.0
                for a in range(n_act - 1):
                    cdf += weights[a]
                    if threshold >= cdf:
                        action = a + 1
                for k in range(d):
                    obs_buf[p, t, n, k] = obs[i, k]
                act_buf[p, t, n] = action
                _env_step(kind, two, limit, t, i, p, n, action, state, elapsed, obs, pool,
                          pool_obs, cursor, rew, term, end, ret_buf, len_buf, final_buf,
                          ep_ret, ep_len)  # fmt: skip
        return steps

    @numba.njit(cache=True, nogil=True)
    def _gaussian_rollout(kind, two, t0, limit, state, elapsed, obs, W1, b1, W2, b2, std, noise,
                          pool, pool_obs, cursor, obs_buf, act_buf, rew, term, end, ret_buf,
                          len_buf, final_buf, ep_ret, ep_len, use_norm, mu, istd,
                          clip):  # fmt: skip
        """As :func:`_categorical_rollout` for the Gaussian policy with one action dimension:
        action = tanh(obs W1 + b1) W2 + b2 + std * noise (float32), noise [P, T, N, 1],
        std [P, 1] = exp(log_std), act_buf [P, T, N, 1]."""
        num_runs, steps, num_envs = noise.shape[0], noise.shape[1], noise.shape[2]
        d, h = W1.shape[1], W1.shape[2]
        hid = np.empty(h, dtype=obs.dtype)
        x = np.empty(d, dtype=obs.dtype)
        for t in range(t0, steps):
            if _pools_low(t, cursor, pool.shape[1], num_envs):
                return t
            for i in range(num_runs * num_envs):
                p = i // num_envs
                n = i - p * num_envs
                _policy_input(obs, i, p, use_norm, mu, istd, clip, x)
                for j in range(h):
                    acc = b1[p, j]
                    for k in range(d):
                        acc += x[k] * W1[p, k, j]
                    hid[j] = np.tanh(acc)
                mean = b2[p, 0]
                for j in range(h):
                    mean += hid[j] * W2[p, j, 0]
                action = mean + std[p, 0] * noise[p, t, n, 0]
                for k in range(d):
                    obs_buf[p, t, n, k] = obs[i, k]
                act_buf[p, t, n, 0] = action
                _env_step(kind, two, limit, t, i, p, n, action, state, elapsed, obs, pool,
                          pool_obs, cursor, rew, term, end, ret_buf, len_buf, final_buf,
                          ep_ret, ep_len)  # fmt: skip
        return steps

    @numba.njit(cache=True, nogil=True)
    def _swingup_rollout(v1, t0, limit, state, elapsed, obs, W1, b1, W2, b2, std, noise, pool,
                         pool_obs, cursor, obs_buf, act_buf, hid_buf, rew, term, end, ret_buf,
                         len_buf, final_buf, ep_ret, ep_len, use_norm, mu, istd, clip, x, z,
                         mean, call):  # fmt: skip
        """As :func:`_gaussian_rollout` for CartPoleSwingUp, computing exactly what the
        generic rollout's numpy computes: per run and step, ``np.tanh(np.matmul(x, W1) + b1)``
        and ``np.matmul(h, W2) + b2`` through numpy's own kernels (:mod:`a2c_core.npkernels`),
        then ``mean + std * noise`` in float32. The hidden activations go to hid_buf
        [P, T, N, H] (the policy update reuses them; [P, 1, N, H]: only the current step's is
        kept). x [P, N, D], z [N, H], mean [N], call [5]: scratch."""
        num_runs, steps, num_envs = noise.shape[0], noise.shape[1], noise.shape[2]
        d = obs.shape[1]
        for t in range(t0, steps):
            if _pools_low(t, cursor, pool.shape[1], num_envs):
                return t
            for p in range(num_runs):
                for n in range(num_envs):
                    i = p * num_envs + n
                    _policy_input(obs, i, p, use_norm, mu, istd, clip, x[p, n])
                    for k in range(d):
                        obs_buf[p, t, n, k] = obs[i, k]
                hid = hid_buf[p, t % hid_buf.shape[1]]
                npkernels.tanh_layer(x[p], W1[p], b1[p], z, hid, call)
                npkernels.linear_out1(hid, W2[p], b2[p], mean)
                for n in range(num_envs):
                    i = p * num_envs + n
                    action = mean[n] + std[p, 0] * noise[p, t, n, 0]
                    act_buf[p, t, n, 0] = action
                    reward, terminated = swingup.step_row(state, i, action, v1, obs, i)
                    if _record(limit, t, i, reward, terminated, elapsed, rew, term, end,
                               ret_buf, len_buf, ep_ret, ep_len):  # fmt: skip
                        for k in range(d):
                            final_buf[t, i, k] = obs[i, k]
                        _reset_row(i, p, state, obs, pool, pool_obs, cursor)
        return steps


class FusedRollout:
    """Fused rollout for one of the own classic-control pack envs with its policy. Owns the
    per-run reset pools (see module docstring)."""

    fill_at_start = True  # draw the pools before the env's first reset (else: when first needed)

    def __init__(self, env, kind: int, gaussian: bool, rngs: list[np.random.Generator],
                 pool_size: int = POOL_SIZE):  # fmt: skip
        self.env, self.kind, self.gaussian, self.rngs = env, kind, gaussian, rngs
        self.num_envs = env.num_envs
        self.pool_size = max(pool_size, 2 * env.num_envs)
        obs_dim = env.observation_space.shape[0]
        self.pool = np.zeros((env.num_runs, self.pool_size, env.state_dim))
        self.pool_obs = np.zeros((env.num_runs, self.pool_size, obs_dim), dtype=np.float32)
        self.cursor = np.full(env.num_runs, self.pool_size, dtype=np.int64)  # empty pools
        if self.fill_at_start:
            for p in range(env.num_runs):
                self._refill(p)

    def _refill(self, run: int) -> None:
        self._set_pool(run, self.env._draw(run, self.pool_size))
        self.cursor[run] = 0

    def _set_pool(self, run: int, states: np.ndarray) -> None:
        self.pool[run] = states
        self.pool_obs[run] = self.env._reset_obs(np.ascontiguousarray(states.T))

    def run(self, obs: np.ndarray, params: dict, noise: np.ndarray, bufs: dict,
            ep_ret: np.ndarray, ep_len: np.ndarray, norm: tuple | None = None) -> None:  # fmt: skip
        """One epoch. ``obs`` [PN, D] is updated in place to the next epoch's first obs.
        ``norm``: (mean [P, D], istd [P, D], clip [P]) of the pack's obs_norm runs, or None."""
        if norm is None:
            num_runs, dim = noise.shape[0], obs.shape[1]
            norm = (np.zeros((num_runs, dim), obs.dtype), np.ones((num_runs, dim), obs.dtype),
                    np.full(num_runs, np.inf, obs.dtype))  # fmt: skip
            use_norm = False
        else:
            use_norm = True
        bufs["valid"][:] = True
        kernel = self._kernel(obs, params, noise, bufs, ep_ret, ep_len, use_norm, norm)
        t = 0
        while True:
            t = kernel(t)
            if t >= noise.shape[1]:
                break
            for p in np.flatnonzero(self.pool_size - self.cursor < self.num_envs):
                self._refill(int(p))
        self.env._obs = obs

    def _kernel(self, obs, params, noise, bufs, ep_ret, ep_len, use_norm, norm):
        """``t -> t'``: the compiled rollout from step t (see :func:`_categorical_rollout`)."""
        env = self.env
        if self.gaussian:
            policy = (params["W1"], params["b1"], params["W2"], params["b2"],
                      np.exp(params["log_std"]))  # fmt: skip
            kernel = _gaussian_rollout
        else:
            policy = (params["W"], params["b"])
            kernel = _categorical_rollout
        return lambda t: kernel(
            self.kind, classic.TWO, t, env.max_episode_steps, env._state, env._elapsed, obs,
            *policy, noise, self.pool, self.pool_obs, self.cursor, bufs["obs"], bufs["act"],
            bufs["rew"], bufs["term"], bufs["end"], bufs["ret"], bufs["len"], bufs["final"],
            ep_ret, ep_len, use_norm, *norm,
        )  # fmt: skip

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        return {
            "reset_pool": self.pool[run].copy(),
            "reset_cursor": self.cursor[run : run + 1].copy(),
        }

    def set_state(self, run: int, state: dict) -> None:
        """Restore run ``run``'s pool; a pool of another shape, a cursor outside it or values
        that are not finite (a damaged or foreign checkpoint) raise ValueError instead of
        reading out of bounds."""
        found = reset_pool_of(state, self.pool.shape[2])
        if found is not None:
            pool, cursor = found
            if pool.shape != self.pool.shape[1:]:
                raise ValueError(f"checkpoint's reset pool has shape {pool.shape}, this env "
                                 f"needs {self.pool.shape[1:]}")  # fmt: skip
            self._set_pool(run, pool)
            self.cursor[run] = cursor


class SwingUpRollout(FusedRollout):
    """The fused rollout of CartPoleSwingUp with the default policy (float32 Gaussian, one
    tanh layer, one action dimension): the generic rollout's numbers, bit for bit
    (:func:`_swingup_rollout`). Its pool holds exactly the reset states the generic env would
    draw, in the same order: a refill keeps the unused states and draws the missing ones after
    them from the run's generator, which is the same stream the generic env draws from (one
    ``normal`` call per step with ends). A checkpoint without a pool (written by the generic
    rollout) therefore resumes here as it would have there. Pools are drawn when first needed,
    after the env's first reset, as the generic env draws. ``hidden`` [P, T, N, H] keeps the
    epoch's hidden activations for the policy update (within HIDDEN_BUDGET_BYTES)."""

    fill_at_start = False

    def __init__(self, env, rngs: list[np.random.Generator], pool_size: int = POOL_SIZE):
        super().__init__(env, 0, True, rngs, pool_size)
        self.hidden = np.empty((0, 0, 0, 0), np.float32)

    def _refill(self, run: int) -> None:
        used = int(self.cursor[run])
        keep = self.pool_size - used
        fresh = self.env._draw(run, used)
        self.pool[run, :keep] = self.pool[run, used:].copy()
        self.pool_obs[run, :keep] = self.pool_obs[run, used:].copy()
        self.pool[run, keep:] = fresh
        self.pool_obs[run, keep:] = self.env._reset_obs(fresh.T)  # as the env's autoreset
        self.cursor[run] = 0

    def set_state(self, run: int, state: dict) -> None:
        """The env's set_state (called first) has read and checked the checkpoint's unused
        reset states (its ``pending``; none in a checkpoint of the numpy rollout): they go to
        the end of this run's pool, to be used first; the run's generator (restored) draws
        the rest when needed."""
        unused = self.env.pending[run]
        self.env.pending[run] = np.zeros((0, unused.shape[1]))
        if len(unused) > self.pool_size:
            raise ValueError(f"checkpoint's reset pool holds {len(unused)} unused states, "
                             f"more than this pool of {self.pool_size}")  # fmt: skip
        start = self.pool_size - len(unused)
        self.cursor[run] = start
        if len(unused):
            self.pool[run, start:] = unused
            self.pool_obs[run, start:] = self.env._reset_obs(unused.T)

    def _kernel(self, obs, params, noise, bufs, ep_ret, ep_len, use_norm, norm):
        env = self.env
        runs, steps, envs = noise.shape[:3]
        width = params["W1"].shape[2]
        kept = steps if runs * steps * envs * width * 4 <= HIDDEN_BUDGET_BYTES else 1
        if self.hidden.shape != (runs, kept, envs, width):  # kept 1: one step's, reused
            self.hidden = np.empty((runs, kept, envs, width), np.float32)
        scratch = (np.empty((runs, envs, obs.shape[1]), np.float32),
                   np.empty((envs, width), np.float32), np.empty(envs, np.float32),
                   np.zeros(5, np.int64))  # fmt: skip
        std = np.exp(params["log_std"])
        return lambda t: _swingup_rollout(
            env.version == "v1", t, env.max_episode_steps, env._state, env._elapsed, obs,
            params["W1"], params["b1"], params["W2"], params["b2"], std, noise, self.pool,
            self.pool_obs, self.cursor, bufs["obs"], bufs["act"], self.hidden, bufs["rew"],
            bufs["term"], bufs["end"], bufs["ret"], bufs["len"], bufs["final"], ep_ret,
            ep_len, use_norm, *norm, *scratch,
        )  # fmt: skip


_EXACT_CHECKED: dict[tuple, bool] = {}
_WARNED: set[str] = set()


def _swingup_unexact(policy, steps: int, num_envs: int) -> str | None:
    """Why numpy's kernels cannot fuse the swing-up rollout of this policy and epoch shape
    here (None: they can). The bit-for-bit check runs once per process and shape, on at most
    65,536 rows."""
    if npkernels.problem() is not None:
        return npkernels.problem()
    key = (policy.obs_dim, policy.widths, steps, num_envs)
    if key not in _EXACT_CHECKED:
        rows = min(max(steps, 64) * num_envs, 1 << 16)  # bounded memory
        _EXACT_CHECKED[key] = npkernels.check_forward(policy, rows, num_envs)
    if not _EXACT_CHECKED[key]:
        return "numpy's kernels called from compiled code did not reproduce numpy bit for bit"
    return None


def _tanh_1(policy) -> bool:
    """The Gaussian policy the fused kernels compute: one action, one tanh hidden layer."""
    from a2c_core.policies import GaussianPolicy

    return (isinstance(policy, GaussianPolicy) and policy.action_dim == 1
            and len(policy.widths) == 1 and policy.net.activation == "tanh")  # fmt: skip


def _swingup_fusable(policy, num_envs: int) -> bool:
    """The shapes the swing-up kernel computes: :func:`_tanh_1` in float32 with 2+ envs
    (numpy takes another BLAS routine for one row)."""
    return _tanh_1(policy) and policy.dtype == np.float32 and num_envs >= 2


def swingup_slow_path_warning(config) -> str | None:
    """A line for ``a2c-sweep run`` when this machine makes a swing-up config that the fused
    kernel computes take the numpy rollout instead (same numbers, ~2x slower per epoch)."""
    from a2c_core.envs.swingup import SWINGUP_IDS, swingup_spaces
    from a2c_core.policies import make_policy

    if config.env not in SWINGUP_IDS:
        return None
    policy = make_policy(*swingup_spaces(), config.hidden, np.dtype(config.dtype),
                         policy_hidden=config.policy_hidden, activation=config.activation)  # fmt: skip
    if not _HAVE_NUMBA or not _swingup_fusable(policy, config.num_envs):
        return None
    why = _swingup_unexact(policy, config.steps_per_epoch, config.num_envs)
    if why is None:
        return None
    return (
        f"{config.env}: the fused swing-up rollout is not available here ({why}); its "
        "runs take the numpy rollout: the same numbers, about 2x slower per epoch"
    )


def make_fused_rollout(env, policy, rngs: list[np.random.Generator], steps: int = 0):
    """The fused rollout for this env/policy pair (epochs of ``steps`` steps), or None (then
    the engine steps generically)."""
    from a2c_core.policies import CategoricalPolicy

    if not _HAVE_NUMBA:
        return None
    # the kernels compute the default policies: linear logits; a one-layer tanh Gaussian mean
    linear = isinstance(policy, CategoricalPolicy) and policy.linear
    if isinstance(env, cp.CartPolePackEnv) and linear:
        return FusedRollout(env, classic.KIND_CARTPOLE, False, rngs)
    if isinstance(env, swingup.SwingUpPackEnv):
        if not _swingup_fusable(policy, env.num_envs):
            return None
        why = _swingup_unexact(policy, steps, env.num_envs)
        if why is None:
            return SwingUpRollout(env, rngs)
        if why not in _WARNED:  # once per process and reason
            _WARNED.add(why)
            warnings.warn(f"CartPoleSwingUp: fused rollout not available ({why}); using the "
                          "numpy rollout (same numbers, slower)", RuntimeWarning, stacklevel=2)  # fmt: skip
        return None
    if isinstance(env, classic.ClassicPackEnv):
        if linear:
            return FusedRollout(env, env.kind, False, rngs)
        if _tanh_1(policy):
            return FusedRollout(env, env.kind, True, rngs)
    return None
