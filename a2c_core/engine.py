"""The packed A2C + GAE trainer: P runs in lock-step in one process.

A run's numbers depend only on its own config and seed: its parameters are initialised from,
and its env resets and action noise drawn from, generators spawned from its own seed; every
per-run computation (value fit, advantages, policy step) reads and writes only that run's
arrays, and the batched parts (policy forward, env step, GAE sweep) are column-wise.

One epoch of one run (article order, defects fixed):
  1. rollout: T vector steps of N envs (same-step autoreset; NEXT_STEP dummies masked out);
  2. value targets: discounted returns bootstrapped with the current value net at truncations
     and at the rollout end (or lambda-returns);
  3. value fit: ``value_iters`` full-batch Adam iterations on the targets;
  4. advantages: GAE(gamma, lambda) with the fitted value net, normalised per run;
  5. policy: ``policy_iters`` full-batch Adam steps on -mean(A log pi(a|s)).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from a2c_core.config import RETURN_COLUMNS, A2CConfig
from a2c_core.envs import make_pack_env
from a2c_core.fused import make_fused_rollout
from a2c_core.gae import compute_gae, discounted_returns
from a2c_core.policies import adam_step, make_policy
from a2c_core.results import to_torch
from a2c_core.valuefit import init_value_params, value_fit, value_forward

CHECKPOINT_FORMAT = 1


@dataclass
class EpochRecord:
    """One epoch of one run: the returns.csv row plus pack bookkeeping.

    ``run`` is the index of the run in the pack. ``diverged`` marks the run's last record when
    a loss or parameter became NaN/inf. ``finished`` is True on a run's last record (last
    epoch or divergence). ``checkpoint`` (when asked for) resumes the run bit-exactly after
    this epoch; ``policy`` (on the last record) holds the final policy weights.
    """

    run: int
    epoch: int
    env_steps: int
    episodes: int
    return_mean: float
    return_median: float
    return_min: float
    return_max: float
    length_mean: float
    value_loss: float
    policy_loss: float
    entropy: float
    explained_variance: float
    wall_s: float
    diverged: bool = False
    finished: bool = False
    diverged_reason: str = ""
    """what went non-finite, e.g. "value_loss is nan at epoch 3" (on a diverged record)."""
    checkpoint: dict | None = field(default=None, repr=False)
    policy: dict | None = field(default=None, repr=False)

    def row(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in RETURN_COLUMNS}


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """(init, env, action) generators of a run, all derived from its seed only."""
    init_ss, env_ss, act_ss = np.random.SeedSequence(seed).spawn(3)
    return tuple(np.random.Generator(np.random.PCG64(s)) for s in (init_ss, env_ss, act_ss))


def _finite(*arrays: Any) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


def _nonfinite(value_loss: float, policy_loss: float, policy: dict, value: dict) -> str | None:
    """None when the epoch's losses and parameters are finite, else which one is not."""
    for name, loss in (("value_loss", value_loss), ("policy_loss", policy_loss)):
        if not math.isfinite(loss):
            return f"{name} is {loss}"
    for net, params in (("policy", policy), ("value", value)):
        bad = [k for k, v in params.items() if not _finite(v)]
        if bad:
            return f"{net} parameters {', '.join(bad)} are not finite"
    return None


def _copy_arrays(arrays: dict[str, np.ndarray]) -> dict:
    """Copies of the arrays (numpy, not tensors). Checkpoints and policy states stay numpy in
    memory, so a worker never imports torch; :func:`a2c_core.results.to_torch` turns them
    into tensors when the driver saves them."""
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _from_tensors(tensors: dict) -> dict[str, np.ndarray]:
    return {
        k: np.array(v.numpy() if hasattr(v, "numpy") else v, copy=True) for k, v in tensors.items()
    }


def _episode_stats(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    if returns.size == 0:
        nan = float("nan")
        return dict(
            return_mean=nan, return_median=nan, return_min=nan, return_max=nan, length_mean=nan
        )
    return dict(
        return_mean=float(np.mean(returns)),
        return_median=float(np.median(returns)),
        return_min=float(np.min(returns)),
        return_max=float(np.max(returns)),
        length_mean=float(np.mean(lengths)),
    )


def train_pack(
    configs: Sequence[A2CConfig],
    seeds: Sequence[int],
    *,
    resume: Sequence[dict | None] | None = None,
    checkpoint_when: Callable[[int, int], bool] | None = None,
) -> Iterator[EpochRecord]:
    """Train P runs in lock-step; yield one :class:`EpochRecord` per run per epoch.

    Args:
        configs, seeds: one per run. All configs must share ``A2CConfig.shape_key`` (env,
            num_envs, steps_per_epoch, epochs, hidden, dtype); learning rates, gamma, lam,
            iteration counts and seeds may differ.
        resume: per run, None or a checkpoint dict from an earlier record; the run continues
            after that checkpoint's epoch exactly as if it had never stopped.
        checkpoint_when: ``(run, epoch) -> bool``; when True the record carries a checkpoint.

    Records of one epoch are yielded together, in run order, after the whole pack finished
    that epoch. Runs that finish (or diverge) stop yielding; the pack ends when all have.
    """
    import a2c_core.envs.swingup as swingup

    swingup.register_envs()
    configs, seeds = list(configs), [int(s) for s in seeds]
    num_runs = len(configs)
    if num_runs == 0 or len(seeds) != num_runs:
        raise ValueError("train_pack: need as many seeds as configs, at least one")
    shape = configs[0].shape_key
    for c in configs[1:]:
        if c.shape_key != shape:
            raise ValueError(f"train_pack: configs differ in shape {c.shape_key} != {shape}")
    resume = list(resume) if resume is not None else [None] * num_runs
    cfg0 = configs[0]
    dtype = np.dtype(cfg0.dtype)
    N, T = cfg0.num_envs, cfg0.steps_per_epoch
    PN = num_runs * N

    rngs = [_streams(s) for s in seeds]
    env = make_pack_env(cfg0.env, num_runs, N, [r[1] for r in rngs])
    obs_dim = int(np.prod(env.observation_space.shape))
    policy = make_policy(env.observation_space, env.action_space, cfg0.hidden, dtype)
    fused = make_fused_rollout(env, policy, [r[1] for r in rngs])

    # Parameters: policy stacked over runs (one batched forward per step), value per run.
    pol_runs = [policy.init_params(r[0]) for r in rngs]
    val = [init_value_params(obs_dim, cfg0.hidden, r[0], dtype) for r in rngs]
    pol = {k: np.stack([p[k] for p in pol_runs]) for k in pol_runs[0]}
    pol_m = [{k: np.zeros_like(a) for k, a in p.items()} for p in pol_runs]
    pol_v = [{k: np.zeros_like(a) for k, a in p.items()} for p in pol_runs]
    val_m = [{k: np.zeros_like(a) for k, a in p.items()} for p in val]
    val_v = [{k: np.zeros_like(a) for k, a in p.items()} for p in val]
    pol_step = [0] * num_runs
    val_step = [0] * num_runs
    epoch = [0] * num_runs
    env_steps = [0] * num_runs
    active = [True] * num_runs

    obs = env.reset().astype(dtype).reshape(PN, obs_dim)
    ep_ret = np.zeros(PN)
    ep_len = np.zeros(PN, dtype=np.int64)

    for p, state in enumerate(resume):
        if state is None:
            continue
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint of run {p}: unknown format {state.get('format')!r}")
        for k, a in _from_tensors(state["policy"]).items():
            pol[k][p] = a
        val[p] = _from_tensors(state["value"])
        pol_m[p], pol_v[p] = _from_tensors(state["policy_m"]), _from_tensors(state["policy_v"])
        val_m[p], val_v[p] = _from_tensors(state["value_m"]), _from_tensors(state["value_v"])
        pol_step[p], val_step[p] = int(state["policy_step"]), int(state["value_step"])
        epoch[p], env_steps[p] = int(state["epoch"]), int(state["env_steps"])
        rngs[p][1].bit_generator.state = state["rng_env"]
        rngs[p][2].bit_generator.state = state["rng_action"]
        cols = slice(p * N, (p + 1) * N)
        env.set_state(p, _from_tensors(state["env"]))
        if fused is not None:
            fused.set_state(p, _from_tensors(state["env"]))
        obs[cols] = _from_tensors({"o": state["obs"]})["o"]
        ep_ret[cols] = _from_tensors({"r": state["ep_return"]})["r"]
        ep_len[cols] = _from_tensors({"l": state["ep_length"]})["l"]
        active[p] = epoch[p] < cfg0.epochs

    gammas = np.repeat(np.array([c.gamma for c in configs], dtype=dtype), N)
    lams = np.repeat(np.array([c.lam for c in configs], dtype=dtype), N)
    discrete = policy.discrete
    act_shape = (PN,) if discrete else (PN, policy.action_dim)
    obs_buf = np.empty((num_runs, T, N, obs_dim), dtype=dtype)
    act_buf = np.empty((num_runs, T, N) + (() if discrete else (policy.action_dim,)),
                       dtype=np.int64 if discrete else dtype)  # fmt: skip
    rew_buf = np.empty((T, PN), dtype=dtype)
    term_buf = np.empty((T, PN), dtype=bool)
    end_buf = np.empty((T, PN), dtype=bool)
    valid_buf = np.empty((T, PN), dtype=bool)
    ret_buf = np.zeros((T, PN))
    len_buf = np.zeros((T, PN), dtype=np.int64)
    if fused is not None:
        bufs = dict(obs=obs_buf, act=act_buf, rew=rew_buf, term=term_buf, end=end_buf,
                    valid=valid_buf, ret=ret_buf, len=len_buf,
                    final=np.zeros((T, PN, obs_dim), dtype=dtype))  # fmt: skip

    while any(active):
        t_start = time.perf_counter()
        noise = [policy.noise(rngs[p][2], T, N) if active[p] else None for p in range(num_runs)]
        template = next(n for n in noise if n is not None)
        noise = [n if n is not None else np.zeros_like(template) for n in noise]
        # ---- 1. rollout -------------------------------------------------------------
        if fused is not None:
            fused.run(obs, pol["W"], pol["b"], np.stack(noise), bufs, ep_ret, ep_len)
            f_t, f_idx = np.nonzero(end_buf)
            f_obs = bufs["final"][f_t, f_idx]
        else:
            f_t, f_idx, f_obs, obs = _generic_rollout(
                env, policy, pol, obs, np.stack(noise, 1), act_shape, obs_buf, act_buf,
                rew_buf, term_buf, end_buf, valid_buf, ret_buf, len_buf, ep_ret, ep_len, dtype,
            )  # fmt: skip
        f_run = f_idx // N

        finals = (f_t, f_idx, f_obs, f_run)
        next_values = functools.partial(_fill_next_values, N=N, last_obs=obs, finals=finals)

        # ---- 2-3. value targets and fit, per run ---------------------------------------
        next_v = np.zeros((T, PN), dtype=dtype)
        values = np.zeros((T, PN), dtype=dtype)
        live = [p for p in range(num_runs) if active[p]]
        value_loss = {}
        backup = {p: ({k: pol[k][p].copy() for k in pol}, {k: a.copy() for k, a in val[p].items()})
                  for p in live}  # fmt: skip
        for p in live:
            cols = slice(p * N, (p + 1) * N)
            x = obs_buf[p].reshape(T * N, obs_dim)
            v_old = value_forward(x, val[p]).reshape(T, N) if cfg_lambda(configs[p]) else None
            next_values(p, val[p], v_old, next_v)
            values[:, cols] = 0.0 if v_old is None else v_old
        if any(cfg_lambda(configs[p]) for p in live):
            adv_old = compute_gae(rew_buf, values, next_v, term_buf, end_buf, gammas, lams)
            lam_targets = adv_old + values
        returns = discounted_returns(rew_buf, next_v, term_buf, end_buf, gammas)
        for p in live:
            cols = slice(p * N, (p + 1) * N)
            target = (lam_targets if cfg_lambda(configs[p]) else returns)[:, cols].reshape(-1)
            x = obs_buf[p].reshape(T * N, obs_dim)
            mask = valid_buf[:, cols].reshape(-1)
            if not mask.all():
                x, target = x[mask], target[mask]
            value_loss[p], val_step[p] = value_fit(
                x, np.ascontiguousarray(target), val[p], val_m[p], val_v[p], val_step[p],
                configs[p].value_lr, configs[p].value_iters,
            )  # fmt: skip
        # ---- 4. advantages with the fitted value net ---------------------------------
        for p in live:
            cols = slice(p * N, (p + 1) * N)
            v_new = value_forward(obs_buf[p].reshape(T * N, obs_dim), val[p]).reshape(T, N)
            values[:, cols] = v_new
            next_values(p, val[p], v_new, next_v)
        adv = compute_gae(rew_buf, values, next_v, term_buf, end_buf, gammas, lams)
        wall = time.perf_counter() - t_start  # per-run work below is small; counted in next
        # ---- 5. policy step, stats, records ------------------------------------------
        records = []
        for p in live:
            cfg = configs[p]
            cols = slice(p * N, (p + 1) * N)
            mask = valid_buf[:, cols].reshape(-1)
            a_p = adv[:, cols].reshape(-1)[mask]
            if cfg.normalize_advantages and a_p.size > 1:
                a_p = (a_p - a_p.mean()) / (a_p.std() + 1e-8)
            x = obs_buf[p].reshape(T * N, obs_dim)[mask]
            acts = act_buf[p].reshape((T * N,) + act_buf.shape[3:])[mask]
            params = {k: pol[k][p] for k in pol}  # views: updates land in the stack
            policy_loss = entropy = float("nan")
            for _ in range(cfg.policy_iters):
                policy_loss, entropy, grads = policy.loss_and_grads(params, x, acts, a_p)
                pol_step[p] = adam_step(
                    params, grads, pol_m[p], pol_v[p], pol_step[p], cfg.policy_lr
                )
            tgt = (lam_targets if cfg_lambda(cfg) else returns)[:, cols].reshape(-1)[mask]
            resid = tgt - values[:, cols].reshape(-1)[mask]
            var_t = float(np.var(tgt))
            ev = float(1.0 - np.var(resid) / var_t) if var_t > 0 else float("nan")
            ends = (term_buf[:, cols] | end_buf[:, cols]) & valid_buf[:, cols]
            stats = _episode_stats(ret_buf[:, cols][ends], len_buf[:, cols][ends])
            epoch[p] += 1
            env_steps[p] += int(mask.sum())
            why = _nonfinite(value_loss[p], policy_loss, params, val[p])
            diverged = why is not None
            if diverged:  # freeze the run at its last finite parameters
                for k in pol:
                    pol[k][p] = backup[p][0][k]
                val[p] = backup[p][1]
            finished = diverged or epoch[p] >= cfg.epochs
            active[p] = not finished
            records.append(EpochRecord(
                run=p, epoch=epoch[p], env_steps=env_steps[p], episodes=int(ends.sum()),
                value_loss=value_loss[p], policy_loss=policy_loss, entropy=entropy,
                explained_variance=ev, wall_s=0.0, diverged=diverged, finished=finished,
                diverged_reason=f"{why} at epoch {epoch[p]}" if diverged else "",
                **stats,
            ))  # fmt: skip
        wall = time.perf_counter() - t_start
        for rec in records:
            p = rec.run
            rec.wall_s = wall
            cols = slice(p * N, (p + 1) * N)
            if rec.finished:
                rec.policy = {k: pol[k][p].copy() for k in pol}
            if checkpoint_when is not None and checkpoint_when(p, rec.epoch):
                rec.checkpoint = {
                    "format": CHECKPOINT_FORMAT,
                    "config": configs[p].to_dict(),
                    "seed": seeds[p],
                    "epoch": epoch[p],
                    "env_steps": env_steps[p],
                    "policy": _copy_arrays({k: pol[k][p] for k in pol}),
                    "policy_m": _copy_arrays(pol_m[p]),
                    "policy_v": _copy_arrays(pol_v[p]),
                    "policy_step": pol_step[p],
                    "value": _copy_arrays(val[p]),
                    "value_m": _copy_arrays(val_m[p]),
                    "value_v": _copy_arrays(val_v[p]),
                    "value_step": val_step[p],
                    "rng_env": rngs[p][1].bit_generator.state,
                    "rng_action": rngs[p][2].bit_generator.state,
                    "env": _copy_arrays(
                        {**env.get_state(p), **(fused.get_state(p) if fused is not None else {})}
                    ),
                    "obs": _copy_arrays({"o": obs[cols]})["o"],
                    "ep_return": _copy_arrays({"r": ep_ret[cols]})["r"],
                    "ep_length": _copy_arrays({"l": ep_len[cols]})["l"],
                    "diverged": rec.diverged,
                }
        ret_buf[:] = 0.0
        len_buf[:] = 0
        yield from records


def _generic_rollout(env, policy, pol, obs, noise_all, act_shape, obs_buf, act_buf, rew_buf,
                     term_buf, end_buf, valid_buf, ret_buf, len_buf, ep_ret, ep_len, dtype):  # fmt: skip
    """One epoch of vector steps through the PackEnv interface (any env, any policy).
    Fills the buffers; returns (step indices, flat env indices, final obs) of episode ends
    and the next epoch's first observation."""
    finals_t, finals_idx, finals_obs = [], [], []
    # ---- 1. rollout -------------------------------------------------------------
    for t in range(noise_all.shape[0]):
        obs3 = obs.reshape(obs_buf.shape[0], -1, obs.shape[1])
        obs_buf[:, t] = obs3
        actions = policy.act(pol, obs3, noise_all[t])
        act_buf[:, t] = actions
        step = env.step(actions.reshape(act_shape))
        rew_buf[t] = step.reward
        term_buf[t] = step.terminated
        valid_buf[t] = step.valid
        done = step.terminated | step.truncated
        end_buf[t] = done | ~step.valid
        ep_ret += step.reward
        ep_len += step.valid
        if done.any():
            idx = np.flatnonzero(done)
            finals_t.append(np.full(idx.size, t))
            finals_idx.append(idx)
            finals_obs.append(step.final_obs[idx])
            ret_buf[t, idx] = ep_ret[idx]
            len_buf[t, idx] = ep_len[idx]
            ep_ret[idx] = 0.0
            ep_len[idx] = 0
        obs = step.obs.astype(dtype, copy=False).reshape(obs.shape)
    f_t = np.concatenate(finals_t) if finals_t else np.zeros(0, dtype=np.int64)
    f_idx = np.concatenate(finals_idx) if finals_idx else np.zeros(0, dtype=np.int64)
    f_obs = (np.concatenate(finals_obs).astype(dtype) if finals_obs
             else np.zeros((0, obs.shape[1]), dtype))  # fmt: skip
    return f_t, f_idx, f_obs, obs


def _fill_next_values(p: int, params: dict, values: np.ndarray | None, out: np.ndarray, *,
                      N: int, last_obs: np.ndarray, finals: tuple) -> None:  # fmt: skip
    """Fill run p's columns of ``out`` [T, P*N] with V(true successor of each step):
    the next row's value inside the rollout, V(last obs) on the last row, V(final obs) where
    an episode ended (``finals`` = step indices, flat env indices, final obs, run indices)."""
    f_t, f_idx, f_obs, f_run = finals
    cols = slice(p * N, (p + 1) * N)
    if values is not None:
        out[:-1, cols] = values[1:]
    out[-1, cols] = value_forward(last_obs[cols], params)
    sel = f_run == p
    if sel.any():
        out[f_t[sel], f_idx[sel]] = value_forward(f_obs[sel], params)


def cfg_lambda(cfg: A2CConfig) -> bool:
    return cfg.value_target == "lambda_returns"


def train(
    config: A2CConfig,
    seed: int,
    *,
    resume: dict | None = None,
    checkpoint_when: Callable[[int, int], bool] | None = None,
) -> Iterator[EpochRecord]:
    """One run: a pack of one."""
    return train_pack([config], [seed], resume=[resume], checkpoint_when=checkpoint_when)


def policy_state(config: A2CConfig, seed: int, params: dict) -> dict:
    """What policy.pt holds: enough to rebuild and run the policy (gif, evaluation)."""
    return {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "seed": int(seed),
            "params": _copy_arrays(params)}  # fmt: skip


__all__ = ["EpochRecord", "RETURN_COLUMNS", "train", "train_pack", "policy_state", "to_torch"]
