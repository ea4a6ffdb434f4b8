"""A whole epoch's rollout of CartPole + categorical policy in one numba loop.

The generic rollout (engine) costs about 40 numpy calls per vector step; for the CartPole
grid that is most of an epoch once the value fit is fast. This kernel walks T steps x P*N
envs in compiled code: linear-policy logits, inverse-CDF sampling from the run's pre-drawn
uniforms, gymnasium's CartPole dynamics in float64 (same expression order as
``gymnasium.envs.classic_control.CartPoleEnv``, no fastmath so rounding matches), same-step
autoreset, and every buffer write.

Resets come from a per-run *pool* of initial states drawn from the run's env generator
(``pool_size`` states per draw). A pool is refilled, between steps, when fewer than N states
are left, so its refill points depend only on the run's own episodes: a run's numbers stay
independent of its pack-mates. Pool contents and cursors are part of the checkpoint.
"""

from __future__ import annotations

import numpy as np

from a2c_core.envs import cartpole as cp

try:
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - the engine then uses the generic rollout
    _HAVE_NUMBA = False

POOL_SIZE = 512

if _HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _cartpole_rollout(t0, limit, state, elapsed, obs, W, b, noise, pool, cursor,
                          obs_buf, act_buf, rew, term, end, ret_buf, len_buf, final_buf,
                          ep_ret, ep_len):  # fmt: skip
        """Steps t0..T-1; returns T when done, or the step at which a pool must be refilled.

        state [4, PN] f64, elapsed [PN], obs [PN, 4], W [P, 4, A], b [P, A], noise [P, T, N],
        pool [P, K, 4] f64, cursor [P]; buffers as in the engine (obs_buf [P, T, N, 4],
        act_buf [P, T, N], rew/term/end/ret_buf/len_buf [T, PN], final_buf [T, PN, 4]).
        """
        num_runs, steps, num_envs = noise.shape
        n_act = W.shape[2]
        pool_size = pool.shape[1]
        weights = np.empty(n_act, dtype=np.float64)
        logits = np.empty(n_act, dtype=obs.dtype)
        for t in range(t0, steps):
            for p in range(num_runs):
                if pool_size - cursor[p] < num_envs:
                    return t
            for i in range(num_runs * num_envs):
                p = i // num_envs
                n = i - p * num_envs
                # --- policy: logits = obs W + b (float32), softmax, inverse CDF
                for a in range(n_act):
                    acc = b[p, a]
                    for k in range(4):
                        acc += obs[i, k] * W[p, k, a]
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
                for k in range(4):
                    obs_buf[p, t, n, k] = obs[i, k]
                act_buf[p, t, n] = action
                # --- gymnasium CartPoleEnv.step, float64, same expression trees
                x, x_dot, theta, theta_dot = state[0, i], state[1, i], state[2, i], state[3, i]
                force = cp.FORCE_MAG if action == 1 else -cp.FORCE_MAG
                costheta = np.cos(theta)
                sintheta = np.sin(theta)
                temp = (
                    force + cp.POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta
                ) / cp.TOTAL_MASS
                thetaacc = (cp.GRAVITY * sintheta - costheta * temp) / (
                    cp.LENGTH * (4.0 / 3.0 - cp.MASSPOLE * (costheta * costheta) / cp.TOTAL_MASS)
                )
                xacc = temp - cp.POLEMASS_LENGTH * thetaacc * costheta / cp.TOTAL_MASS
                x_new = x + cp.TAU * x_dot
                x_dot_new = x_dot + cp.TAU * xacc
                theta_new = theta + cp.TAU * theta_dot
                theta_dot_new = theta_dot + cp.TAU * thetaacc
                terminated = (
                    x_new < -cp.X_THRESHOLD or x_new > cp.X_THRESHOLD
                    or theta_new < -cp.THETA_THRESHOLD or theta_new > cp.THETA_THRESHOLD
                )  # fmt: skip
                elapsed[i] += 1
                truncated = (elapsed[i] >= limit) and not terminated
                rew[t, i] = 1.0
                term[t, i] = terminated
                end[t, i] = terminated or truncated
                ep_ret[i] += 1.0
                ep_len[i] += 1
                if terminated or truncated:
                    final_buf[t, i, 0] = x_new
                    final_buf[t, i, 1] = x_dot_new
                    final_buf[t, i, 2] = theta_new
                    final_buf[t, i, 3] = theta_dot_new
                    ret_buf[t, i] = ep_ret[i]
                    len_buf[t, i] = ep_len[i]
                    ep_ret[i] = 0.0
                    ep_len[i] = 0
                    elapsed[i] = 0
                    c = cursor[p]
                    x_new, x_dot_new = pool[p, c, 0], pool[p, c, 1]
                    theta_new, theta_dot_new = pool[p, c, 2], pool[p, c, 3]
                    cursor[p] = c + 1
                state[0, i], state[1, i] = x_new, x_dot_new
                state[2, i], state[3, i] = theta_new, theta_dot_new
                obs[i, 0], obs[i, 1] = x_new, x_dot_new
                obs[i, 2], obs[i, 3] = theta_new, theta_dot_new
        return steps


class CartPoleFusedRollout:
    """Fused rollout for a :class:`~a2c_core.envs.cartpole.CartPolePackEnv` pack with a
    categorical policy. Owns the per-run reset pools (see module docstring)."""

    def __init__(self, env: cp.CartPolePackEnv, rngs: list[np.random.Generator],
                 pool_size: int = POOL_SIZE):  # fmt: skip
        self.env, self.rngs = env, rngs
        self.num_envs = env.num_envs
        self.pool_size = max(pool_size, 2 * env.num_envs)
        self.pool = np.empty((env.num_runs, self.pool_size, 4))
        self.cursor = np.empty(env.num_runs, dtype=np.int64)
        for p in range(env.num_runs):
            self._refill(p)

    def _refill(self, run: int) -> None:
        self.pool[run] = self.rngs[run].uniform(cp.RESET_LOW, cp.RESET_HIGH, (self.pool_size, 4))
        self.cursor[run] = 0

    def run(self, obs: np.ndarray, W: np.ndarray, b: np.ndarray, noise: np.ndarray, bufs: dict,
            ep_ret: np.ndarray, ep_len: np.ndarray) -> None:  # fmt: skip
        """One epoch. ``obs`` [PN, 4] is updated in place to the next epoch's first obs."""
        env = self.env
        t = 0
        steps = noise.shape[1]
        bufs["valid"][:] = True
        while True:
            t = _cartpole_rollout(
                t, env.max_episode_steps, env._state, env._elapsed, obs, W, b, noise,
                self.pool, self.cursor, bufs["obs"], bufs["act"], bufs["rew"], bufs["term"],
                bufs["end"], bufs["ret"], bufs["len"], bufs["final"], ep_ret, ep_len,
            )  # fmt: skip
            if t >= steps:
                break
            for p in np.flatnonzero(self.pool_size - self.cursor < self.num_envs):
                self._refill(int(p))
        env._obs = obs

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        return {
            "reset_pool": self.pool[run].copy(),
            "reset_cursor": self.cursor[run : run + 1].copy(),
        }

    def set_state(self, run: int, state: dict) -> None:
        if "reset_pool" in state:
            self.pool[run] = np.asarray(state["reset_pool"], dtype=np.float64)
            self.cursor[run] = int(np.asarray(state["reset_cursor"]).reshape(-1)[0])


def make_fused_rollout(env, policy, rngs: list[np.random.Generator]):
    """The fused rollout for this env/policy pair, or None (then the engine steps generically)."""
    from a2c_core.policies import CategoricalPolicy

    if (
        _HAVE_NUMBA
        and isinstance(env, cp.CartPolePackEnv)
        and isinstance(policy, CategoricalPolicy)
    ):
        return CartPoleFusedRollout(env, rngs)
    return None
