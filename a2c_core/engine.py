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
  5. policy: ``policy_iters`` full-batch Adam steps on -mean(A log pi(a|s)) - c * entropy
     (each step's global gradient norm clipped to ``max_grad_norm`` when set);
  6. observation statistics (``obs_norm`` runs): fold in the epoch's observations; the next
     epoch sees them normalised with the new statistics (a2c_core.obsnorm).

:func:`train_pack` is that list, one function per phase, over a :class:`PackState` (all that
evolves: parameters, optimisers, generators, env state, counters) and a :class:`Rollout`
(one epoch of experience). No computation reads a run's total epoch count: a finished run
extended to more epochs continues from its last checkpoint exactly as if trained in one go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from a2c_core import obsnorm
from a2c_core.adam import AdamState
from a2c_core.config import RETURN_COLUMNS, A2CConfig
from a2c_core.envs import make_pack_env
from a2c_core.fused import make_fused_rollout
from a2c_core.gae import compute_gae, discounted_returns
from a2c_core.policies import clip_grad_norm, make_policy
from a2c_core.results import POLICY_FORMAT, policy_state, to_torch
from a2c_core.valuefit import init_value_params, value_fit, value_forward

CHECKPOINT_FORMAT = POLICY_FORMAT


@dataclass
class EpochRecord:
    """One epoch of one run: the returns.csv row plus pack bookkeeping.

        ``run`` is the index of the run in the pack. ``diverged`` marks the run's last record when
        a loss or parameter became NaN/inf. ``finished`` is True on a run's last record (last
        epoch or divergence). ``checkpoint`` (when asked for) resumes the run bit-exactly after
        this epoch (a run's last record carries one unless it diverged, so that the run can be
    extended later); ``policy`` (on the last record) holds the final policy weights.
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
    obs_rms: dict | None = field(default=None, repr=False)
    """the run's observation statistics with its final policy (``obs_norm`` runs)."""

    def row(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in RETURN_COLUMNS}


class Rollout(NamedTuple):
    """One epoch of experience of a whole pack: T vector steps of P runs x N envs.

    Per-step arrays are [T, P*N] (column ``p*N + i`` is env i of run p); observations and
    actions are [P, T, N, ...] so that one run's batch is contiguous. ``ends`` marks steps
    after which nothing flows back (an episode ended, or a NEXT_STEP dummy follows);
    ``ep_returns`` / ``ep_lengths`` hold an ended episode's return / length at its last step,
    0 elsewhere. ``final_*`` list the episode ends (step, column, run) with their final
    observations, the true successors a truncated step bootstraps from."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    ends: np.ndarray
    valid: np.ndarray
    ep_returns: np.ndarray
    ep_lengths: np.ndarray
    final_obs: np.ndarray
    final_t: np.ndarray = np.zeros(0, dtype=np.int64)
    final_col: np.ndarray = np.zeros(0, dtype=np.int64)
    final_run: np.ndarray = np.zeros(0, dtype=np.int64)

    @classmethod
    def buffers(cls, runs: int, steps: int, envs: int, obs_dim: int, policy, dtype) -> Rollout:
        """Buffers reused by every epoch (``final_obs`` is [T, P*N, D] until collected)."""
        cols = runs * envs
        act_tail = () if policy.discrete else (policy.action_dim,)
        return cls(
            obs=np.empty((runs, steps, envs, obs_dim), dtype=dtype),
            actions=np.empty(
                (runs, steps, envs) + act_tail, dtype=np.int64 if policy.discrete else dtype
            ),  # fmt: skip
            rewards=np.empty((steps, cols), dtype=dtype),
            terminated=np.empty((steps, cols), dtype=bool),
            ends=np.empty((steps, cols), dtype=bool),
            valid=np.empty((steps, cols), dtype=bool),
            ep_returns=np.zeros((steps, cols)),
            ep_lengths=np.zeros((steps, cols), dtype=np.int64),
            final_obs=np.zeros((steps, cols, obs_dim), dtype=dtype),
        )


@dataclass
class PackState:
    """Everything that evolves while a pack trains, per run p.

    Policy parameters are stacked [P, ...] (one batched forward per rollout step; run p's
    update writes row p only); the value nets and both Adam states are per run. ``obs``,
    ``ep_return`` and ``ep_length`` are [P*N]-row arrays (the observation each env shows next,
    and its current episode's return and length so far); ``envs`` (and ``fused``, the fused
    rollout's reset pools) hold the simulators. :meth:`to_checkpoint` /
    :meth:`from_checkpoint` save and restore one run exactly."""

    configs: list[A2CConfig]
    seeds: list[int]
    envs: Any  # a2c_core.envs.base.PackEnv
    fused: Any  # a2c_core.fused.FusedRollout | None
    policy: dict[str, np.ndarray]
    policy_opt: list[AdamState]
    value: list[dict[str, np.ndarray]]
    value_opt: list[AdamState]
    rng_env: list[np.random.Generator]
    rng_action: list[np.random.Generator]
    obs: np.ndarray
    ep_return: np.ndarray
    ep_length: np.ndarray
    epoch: list[int]
    env_steps: list[int]
    active: list[bool]
    obs_rms: list[dict | None] = field(default_factory=list)
    """per run: running observation statistics (``obs_norm`` runs), else None."""
    norm_mean: np.ndarray | None = None
    """[P, D] / [P, D] / [P]: the epoch's frozen normalisation of each run (identity for runs
    without statistics); None when no run of the pack normalises."""
    norm_istd: np.ndarray | None = None
    norm_clip: np.ndarray | None = None

    @property
    def num_envs(self) -> int:
        return self.configs[0].num_envs

    def cols(self, p: int) -> slice:
        """Run p's columns of the [.., P*N] arrays."""
        return slice(p * self.num_envs, (p + 1) * self.num_envs)

    def policy_params(self, p: int) -> dict[str, np.ndarray]:
        """Run p's policy parameters as views into the stack (updates land in it)."""
        return {k: a[p] for k, a in self.policy.items()}

    def refresh_norm(self) -> None:
        """Freeze each run's observation normalisation for the next epoch."""
        if not any(r is not None for r in self.obs_rms):
            return
        dtype, dim = self.obs.dtype, self.obs.shape[1]
        self.norm_mean = np.zeros((len(self.configs), dim), dtype)
        self.norm_istd = np.ones((len(self.configs), dim), dtype)
        self.norm_clip = np.full(len(self.configs), np.inf)
        for p, stats in enumerate(self.obs_rms):
            if stats is not None and stats["count"][0] > 0:
                self.norm_mean[p], self.norm_istd[p], self.norm_clip[p] = obsnorm.frozen(
                    stats, dtype)  # fmt: skip

    def normalize(self, p: int, x: np.ndarray) -> np.ndarray:
        """Observations ``x`` [M, D] as run p's networks see them this epoch."""
        if self.norm_mean is None or self.obs_rms[p] is None:
            return x
        return obsnorm.apply(x, self.norm_mean[p], self.norm_istd[p], self.norm_clip[p])

    def normalize_pack(self, obs3: np.ndarray) -> np.ndarray:
        """[P, N, D] observations of the whole pack, each run's normalised."""
        if self.norm_mean is None:
            return obs3
        out = (obs3 - self.norm_mean[:, None, :]) * self.norm_istd[:, None, :]
        clip = self.norm_clip[:, None, None]
        return np.clip(out, -clip, clip).astype(obs3.dtype, copy=False)

    def to_checkpoint(self, p: int, diverged: bool = False) -> dict[str, Any]:
        """Run p's state (copies, numpy): :meth:`from_checkpoint` resumes it bit-exactly."""
        cols = self.cols(p)
        env_state = self.envs.get_state(p)
        if self.fused is not None:
            env_state.update(self.fused.get_state(p))
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.configs[p].to_dict(),
            "seed": self.seeds[p],
            "epoch": self.epoch[p],
            "env_steps": self.env_steps[p],
            "policy": _copy_arrays(self.policy_params(p)),
            "policy_m": _copy_arrays(self.policy_opt[p].m),
            "policy_v": _copy_arrays(self.policy_opt[p].v),
            "policy_step": self.policy_opt[p].step,
            "value": _copy_arrays(self.value[p]),
            "value_m": _copy_arrays(self.value_opt[p].m),
            "value_v": _copy_arrays(self.value_opt[p].v),
            "value_step": self.value_opt[p].step,
            "rng_env": self.rng_env[p].bit_generator.state,
            "rng_action": self.rng_action[p].bit_generator.state,
            "env": _copy_arrays(env_state),
            "obs": self.obs[cols].copy(),
            "ep_return": self.ep_return[cols].copy(),
            "ep_length": self.ep_length[cols].copy(),
            "diverged": diverged,
            **({"obs_rms": _copy_arrays(self.obs_rms[p])} if self.obs_rms[p] is not None else {}),
        }

    def from_checkpoint(self, p: int, ckpt: dict[str, Any]) -> None:
        """Restore run p from :meth:`to_checkpoint`'s dict (numpy arrays or torch tensors)."""
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint of run {p}: unknown format {ckpt.get('format')!r}")
        for k, a in _from_tensors(ckpt["policy"]).items():
            self.policy[k][p] = a
        self.value[p] = _from_tensors(ckpt["value"])
        self.policy_opt[p] = AdamState(_from_tensors(ckpt["policy_m"]),
                                       _from_tensors(ckpt["policy_v"]), int(ckpt["policy_step"]))  # fmt: skip
        self.value_opt[p] = AdamState(_from_tensors(ckpt["value_m"]),
                                      _from_tensors(ckpt["value_v"]), int(ckpt["value_step"]))  # fmt: skip
        self.epoch[p], self.env_steps[p] = int(ckpt["epoch"]), int(ckpt["env_steps"])
        self.rng_env[p].bit_generator.state = ckpt["rng_env"]
        self.rng_action[p].bit_generator.state = ckpt["rng_action"]
        env_state = _from_tensors(ckpt["env"])
        self.envs.set_state(p, env_state)
        if self.fused is not None:
            self.fused.set_state(p, env_state)
        cols = self.cols(p)
        if not env_state:  # an env whose state cannot be saved: its episodes restarted fresh
            self.obs[cols] = self.envs.current_obs()[cols]
            self.ep_return[cols], self.ep_length[cols] = 0.0, 0
        else:
            loaded = _from_tensors({"obs": ckpt["obs"], "ret": ckpt["ep_return"],
                                    "len": ckpt["ep_length"]})  # fmt: skip
            self.obs[cols], self.ep_return[cols] = loaded["obs"], loaded["ret"]
            self.ep_length[cols] = loaded["len"]
        if self.obs_rms[p] is not None:
            problem = obsnorm.stats_problem(ckpt.get("obs_rms"), self.obs.shape[1])
            if problem:
                raise ValueError(f"checkpoint of run {p} (obs_norm): {problem}")
            self.obs_rms[p] = _from_tensors(ckpt["obs_rms"])
            self.refresh_norm()
        self.active[p] = self.epoch[p] < self.configs[p].epochs


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """(init, env, action) generators of a run, all derived from its seed only."""
    init_ss, env_ss, act_ss = np.random.SeedSequence(seed).spawn(3)
    return tuple(np.random.Generator(np.random.PCG64(s)) for s in (init_ss, env_ss, act_ss))


def init_pack(configs: list[A2CConfig], seeds: list[int]) -> tuple[PackState, Any]:
    """Fresh state of a pack (parameters initialised from each run's own generator) and the
    policy object (forward, sampling, gradients) the pack shares."""
    cfg0 = configs[0]
    dtype = np.dtype(cfg0.dtype)
    streams = [_streams(s) for s in seeds]
    rng_init, rng_env, rng_action = (list(g) for g in zip(*streams, strict=True))
    envs = make_pack_env(cfg0.env, len(configs), cfg0.num_envs, rng_env)
    obs_dim = int(np.prod(envs.observation_space.shape))
    policy = make_policy(envs.observation_space, envs.action_space, cfg0.hidden, dtype,
                         policy_hidden=cfg0.policy_hidden, activation=cfg0.activation)  # fmt: skip
    fused = make_fused_rollout(envs, policy, rng_env, cfg0.steps_per_epoch)
    pol_runs = [policy.init_params(g, c.init_log_std)
                for g, c in zip(rng_init, configs, strict=True)]  # fmt: skip
    value = [init_value_params(obs_dim, c.value_widths(), g, dtype)
             for g, c in zip(rng_init, configs, strict=True)]  # fmt: skip
    cols = len(configs) * cfg0.num_envs
    state = PackState(
        configs=configs, seeds=seeds, envs=envs, fused=fused,
        policy={k: np.stack([p[k] for p in pol_runs]) for k in pol_runs[0]},
        policy_opt=[AdamState.zeros_like(p) for p in pol_runs],
        value=value, value_opt=[AdamState.zeros_like(v) for v in value],
        rng_env=rng_env, rng_action=rng_action,
        obs=envs.reset().astype(dtype).reshape(cols, obs_dim),
        ep_return=np.zeros(cols), ep_length=np.zeros(cols, dtype=np.int64),
        epoch=[0] * len(configs), env_steps=[0] * len(configs), active=[True] * len(configs),
        obs_rms=[obsnorm.empty_stats(obs_dim) if c.obs_norm else None for c in configs],
    )  # fmt: skip
    state.refresh_norm()
    return state, policy


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
            num_envs, steps_per_epoch, hidden, dtype, policy_hidden, activation); learning
            rates, gamma, lam, iteration and epoch counts, value nets, entropy_coef,
            max_grad_norm, init_log_std, obs_norm and seeds may differ.
        resume: per run, None or a checkpoint dict from an earlier record; the run continues
            after that checkpoint's epoch exactly as if it had never stopped (also when its
            config now asks for more epochs than when the checkpoint was taken).
        checkpoint_when: ``(run, epoch) -> bool``; when True the record carries a checkpoint.

    Records of one epoch are yielded together, in run order, after the whole pack finished
    that epoch. Runs that finish (or diverge) stop yielding; the pack ends when all have.
    """
    import a2c_core.envs.swingup as swingup

    swingup.register_envs()
    configs, seeds = list(configs), [int(s) for s in seeds]
    if not configs or len(seeds) != len(configs):
        raise ValueError("train_pack: need as many seeds as configs, at least one")
    for c in configs[1:]:
        if c.shape_key != configs[0].shape_key:
            raise ValueError(
                f"train_pack: configs differ in shape {c.shape_key} != {configs[0].shape_key}"
            )
    state, policy = init_pack(configs, seeds)
    for p, ckpt in enumerate(resume or ()):
        if ckpt is not None:
            state.from_checkpoint(p, ckpt)
    rollout = Rollout.buffers(len(configs), configs[0].steps_per_epoch, state.num_envs,
                              state.obs.shape[1], policy, state.obs.dtype)  # fmt: skip
    while any(state.active):
        t_start = time.perf_counter()
        live = [p for p in range(len(configs)) if state.active[p]]
        backup = {p: (_copy_arrays(state.policy_params(p)), _copy_arrays(state.value[p]))
                  for p in live}  # fmt: skip
        ro = collect_rollout(state, policy, rollout)
        targets = value_targets(state, ro, live)
        value_loss = {p: fit_value(state, ro, targets, p) for p in live}
        adv, values = advantages(state, ro, live)
        records = []
        for p in live:
            policy_loss, entropy = policy_step(state, policy, ro, adv, p)
            rec = epoch_record(state, ro, targets, values, p, value_loss[p], policy_loss,
                               entropy)  # fmt: skip
            if rec.diverged:  # freeze the run at its last finite parameters
                for k, a in backup[p][0].items():
                    state.policy[k][p] = a
                state.value[p] = backup[p][1]
            records.append(rec)
        update_obs_stats(state, ro, live)
        wall = time.perf_counter() - t_start
        for rec in records:
            rec.wall_s = wall
            if rec.finished:
                rec.policy = {k: a.copy() for k, a in state.policy_params(rec.run).items()}
                if state.obs_rms[rec.run] is not None:
                    rec.obs_rms = _copy_arrays(state.obs_rms[rec.run])
            asked = checkpoint_when is not None and checkpoint_when(rec.run, rec.epoch)
            if asked or (rec.finished and not rec.diverged):
                rec.checkpoint = state.to_checkpoint(rec.run, rec.diverged)
        rollout.ep_returns[:] = 0.0
        rollout.ep_lengths[:] = 0
        yield from records


# --------------------------------------------------------------------------- 1. rollout


def collect_rollout(state: PackState, policy, buf: Rollout) -> Rollout:
    """T vector steps of every env of the pack into ``buf``; ``state.obs`` and the episode
    counters move on to the next epoch's first step. Each run draws its action noise for
    the whole epoch from its own generator (finished runs step on with zero noise)."""
    cfg0 = state.configs[0]
    T, N = cfg0.steps_per_epoch, cfg0.num_envs
    noise = [policy.noise(state.rng_action[p], T, N) if state.active[p] else None
             for p in range(len(state.configs))]  # fmt: skip
    template = next(n for n in noise if n is not None)
    noise = [n if n is not None else np.zeros_like(template) for n in noise]
    if state.fused is not None:
        bufs = dict(obs=buf.obs, act=buf.actions, rew=buf.rewards, term=buf.terminated,
                    end=buf.ends, valid=buf.valid, ret=buf.ep_returns, len=buf.ep_lengths,
                    final=buf.final_obs)  # fmt: skip
        state.fused.run(state.obs, state.policy, np.stack(noise), bufs, state.ep_return,
                        state.ep_length, _fused_norm(state))  # fmt: skip
        f_t, f_col = np.nonzero(buf.ends)
        f_obs = buf.final_obs[f_t, f_col]
    else:
        f_t, f_col, f_obs = _step_generic(state, policy, buf, np.stack(noise, 1))
    return buf._replace(final_obs=f_obs, final_t=f_t, final_col=f_col, final_run=f_col // N)


def _fused_norm(state: PackState) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if state.norm_mean is None:
        return None
    return state.norm_mean, state.norm_istd, state.norm_clip.astype(state.obs.dtype)


def _step_generic(state: PackState, policy, buf: Rollout, noise: np.ndarray):
    """The rollout through the PackEnv interface (any env, any policy), one vector step at a
    time. Returns the episode ends: (step indices, columns, final observations)."""
    dtype = state.obs.dtype
    runs, _, envs, obs_dim = buf.obs.shape
    act_shape = (runs * envs,) + buf.actions.shape[3:]
    ends_t, ends_col, ends_obs = [], [], []
    ep_ret, ep_len = state.ep_return, state.ep_length
    obs = state.obs
    for t in range(noise.shape[0]):
        obs3 = obs.reshape(runs, envs, obs_dim)
        buf.obs[:, t] = obs3
        actions = policy.act(state.policy, state.normalize_pack(obs3), noise[t])
        buf.actions[:, t] = actions
        step = state.envs.step(actions.reshape(act_shape))
        buf.rewards[t] = step.reward
        buf.terminated[t] = step.terminated
        buf.valid[t] = step.valid
        done = step.terminated | step.truncated
        buf.ends[t] = done | ~step.valid
        ep_ret += step.reward
        ep_len += step.valid
        if done.any():
            idx = np.flatnonzero(done)
            ends_t.append(np.full(idx.size, t))
            ends_col.append(idx)
            ends_obs.append(step.final_obs[idx])
            buf.ep_returns[t, idx] = ep_ret[idx]
            buf.ep_lengths[t, idx] = ep_len[idx]
            ep_ret[idx] = 0.0
            ep_len[idx] = 0
        obs = step.obs.astype(dtype, copy=False).reshape(obs.shape)
    state.obs = obs
    if not ends_t:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, obs_dim), dtype),
        )
    return np.concatenate(ends_t), np.concatenate(ends_col), np.concatenate(ends_obs).astype(dtype)


# --------------------------------------------------------------------------- 2-4. values


def _run_batch(state: PackState, ro: Rollout, p: int) -> np.ndarray:
    """Run p's observations of the epoch as one [T*N, D] batch (as its networks see them)."""
    return state.normalize(p, ro.obs[p].reshape(-1, ro.obs.shape[-1]))


def _next_values(state: PackState, ro: Rollout, p: int, values: np.ndarray | None,
                 out: np.ndarray) -> None:  # fmt: skip
    """Fill run p's columns of ``out`` [T, P*N] with V(true successor of each step): the next
    row's value inside the rollout, V(next epoch's first obs) on the last row, V(final obs)
    where an episode ended. ``values`` [T, N] are run p's V(s_t) (None: not computed)."""
    cols = state.cols(p)
    act = state.configs[p].value_activation
    if values is not None:
        out[:-1, cols] = values[1:]
    out[-1, cols] = value_forward(state.normalize(p, state.obs[cols]), state.value[p], act)
    sel = ro.final_run == p
    if sel.any():
        out[ro.final_t[sel], ro.final_col[sel]] = value_forward(
            state.normalize(p, ro.final_obs[sel]), state.value[p], act)  # fmt: skip


def _per_column(state: PackState, name: str) -> np.ndarray:
    """A config field (gamma, lam) of each run, repeated over its N columns."""
    values = [getattr(c, name) for c in state.configs]
    return np.repeat(np.array(values, dtype=state.obs.dtype), state.num_envs)


def value_targets(state: PackState, ro: Rollout, live: list[int]) -> np.ndarray:
    """[T, P*N] regression targets of the value fit, from the value nets before the fit:
    discounted returns bootstrapped at truncations and at the rollout end, or, for runs with
    ``value_target: lambda_returns``, GAE advantages + V."""
    T, cols = ro.rewards.shape
    dtype = state.obs.dtype
    next_v = np.zeros((T, cols), dtype=dtype)
    values = np.zeros((T, cols), dtype=dtype)
    lam_runs = [p for p in live if state.configs[p].value_target == "lambda_returns"]
    for p in live:
        v_old = None
        if p in lam_runs:
            v_old = value_forward(_run_batch(state, ro, p), state.value[p],
                                  state.configs[p].value_activation).reshape(T, -1)  # fmt: skip
            values[:, state.cols(p)] = v_old
        _next_values(state, ro, p, v_old, next_v)
    gammas = _per_column(state, "gamma")
    targets = discounted_returns(ro.rewards, next_v, ro.terminated, ro.ends, gammas)
    if lam_runs:
        adv = compute_gae(ro.rewards, values, next_v, ro.terminated, ro.ends, gammas,
                          _per_column(state, "lam"))  # fmt: skip
        lam_targets = adv + values
        for p in lam_runs:
            targets[:, state.cols(p)] = lam_targets[:, state.cols(p)]
    return targets


def fit_value(state: PackState, ro: Rollout, targets: np.ndarray, p: int) -> float:
    """Run p's value net: ``value_iters`` full-batch Adam steps on its valid samples.
    Returns the loss of the last iteration."""
    cfg = state.configs[p]
    x = _run_batch(state, ro, p)
    y = targets[:, state.cols(p)].reshape(-1)
    mask = ro.valid[:, state.cols(p)].reshape(-1)
    if not mask.all():
        x, y = x[mask], y[mask]
    return value_fit(x, np.ascontiguousarray(y), state.value[p], state.value_opt[p],
                     cfg.value_lr, cfg.value_iters, cfg.value_activation,
                     cfg.max_grad_norm)  # fmt: skip


def advantages(state: PackState, ro: Rollout, live: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """GAE(gamma, lambda) advantages [T, P*N] with the fitted value nets, and V(s_t)."""
    T, cols = ro.rewards.shape
    dtype = state.obs.dtype
    next_v = np.zeros((T, cols), dtype=dtype)
    values = np.zeros((T, cols), dtype=dtype)
    for p in live:
        v_new = value_forward(_run_batch(state, ro, p), state.value[p],
                              state.configs[p].value_activation).reshape(T, -1)  # fmt: skip
        values[:, state.cols(p)] = v_new
        _next_values(state, ro, p, v_new, next_v)
    adv = compute_gae(ro.rewards, values, next_v, ro.terminated, ro.ends,
                      _per_column(state, "gamma"), _per_column(state, "lam"))  # fmt: skip
    return adv, values


# --------------------------------------------------------------------------- 5. policy


def policy_step(
    state: PackState, policy, ro: Rollout, adv: np.ndarray, p: int
) -> tuple[float, float]:
    """``policy_iters`` full-batch Adam steps of run p's policy on -mean(A log pi(a|s)) -
    entropy_coef * entropy over its valid samples (advantages normalised per run; gradients
    clipped to max_grad_norm when set). Returns (loss without the entropy term, entropy) of
    the last step."""
    cfg = state.configs[p]
    mask = ro.valid[:, state.cols(p)].reshape(-1)
    a_p = adv[:, state.cols(p)].reshape(-1)[mask]
    if cfg.normalize_advantages and a_p.size > 1:
        a_p = (a_p - a_p.mean()) / (a_p.std() + 1e-8)
    x = _run_batch(state, ro, p)[mask]
    acts = ro.actions[p].reshape((-1,) + ro.actions.shape[3:])[mask]
    params = state.policy_params(p)
    loss = entropy = float("nan")
    hidden = getattr(state.fused, "hidden", None)  # the rollout's, under these parameters
    if hidden is not None and hidden.shape[1] == ro.obs.shape[1] and mask.all():
        hidden = hidden[p].reshape(x.shape[0], -1)
    else:
        hidden = None
    for _ in range(cfg.policy_iters):
        extra = {} if hidden is None else {"hidden": hidden}
        loss, entropy, grads = policy.loss_and_grads(params, x, acts, a_p, cfg.entropy_coef,
                                                     **extra)  # fmt: skip
        hidden = None  # the next iteration's parameters differ
        clip_grad_norm(grads, cfg.max_grad_norm)
        state.policy_opt[p].update(params, grads, cfg.policy_lr)
    return loss, entropy


# --------------------------------------------------------------------------- 6. obs stats


def update_obs_stats(state: PackState, ro: Rollout, live: list[int]) -> None:
    """``obs_norm`` runs fold the epoch's valid (raw) observations into their statistics;
    the next epoch is normalised with them."""
    changed = False
    for p in live:
        if state.obs_rms[p] is None:
            continue
        mask = ro.valid[:, state.cols(p)].reshape(-1)
        obsnorm.update(state.obs_rms[p], ro.obs[p].reshape(-1, ro.obs.shape[-1])[mask])
        changed = True
    if changed:
        state.refresh_norm()


# --------------------------------------------------------------------------- records


def epoch_record(state: PackState, ro: Rollout, targets: np.ndarray, values: np.ndarray, p: int,
                 value_loss: float, policy_loss: float, entropy: float) -> EpochRecord:  # fmt: skip
    """Run p's returns.csv row of the epoch; advances its epoch and env-step counters and
    decides whether it finished (last epoch) or diverged (a loss or parameter not finite)."""
    cols = state.cols(p)
    mask = ro.valid[:, cols].reshape(-1)
    tgt = targets[:, cols].reshape(-1)[mask]
    resid = tgt - values[:, cols].reshape(-1)[mask]
    var_t = float(np.var(tgt))
    ev = float(1.0 - np.var(resid) / var_t) if var_t > 0 else float("nan")
    ends = (ro.terminated[:, cols] | ro.ends[:, cols]) & ro.valid[:, cols]
    stats = _episode_stats(ro.ep_returns[:, cols][ends], ro.ep_lengths[:, cols][ends])
    state.epoch[p] += 1
    state.env_steps[p] += int(mask.sum())
    why = _nonfinite(value_loss, policy_loss, state.policy_params(p), state.value[p])
    finished = why is not None or state.epoch[p] >= state.configs[p].epochs
    state.active[p] = not finished
    return EpochRecord(
        run=p, epoch=state.epoch[p], env_steps=state.env_steps[p], episodes=int(ends.sum()),
        value_loss=value_loss, policy_loss=policy_loss, entropy=entropy,
        explained_variance=ev, wall_s=0.0, diverged=why is not None, finished=finished,
        diverged_reason=f"{why} at epoch {state.epoch[p]}" if why else "", **stats,
    )  # fmt: skip


def train(
    config: A2CConfig,
    seed: int,
    *,
    resume: dict | None = None,
    checkpoint_when: Callable[[int, int], bool] | None = None,
) -> Iterator[EpochRecord]:
    """One run: a pack of one."""
    return train_pack([config], [seed], resume=[resume], checkpoint_when=checkpoint_when)


__all__ = ["EpochRecord", "RETURN_COLUMNS", "train", "train_pack", "policy_state", "to_torch"]
