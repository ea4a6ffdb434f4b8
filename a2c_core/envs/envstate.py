"""Exact save and restore of gymnasium sub-env states, for the generic pack env.

:class:`a2c_core.envs.generic.GymnasiumPackEnv` steps any gymnasium id through a sync vector
env. For a run resumed from a checkpoint to continue bit for bit, each of its sub-envs (the
wrapper stack that ``gymnasium.make`` builds) must come back exactly as it was. Two ways of
capturing one, chosen per env id:

``mujoco`` (``env.unwrapped`` is a ``gymnasium.envs.mujoco.MujocoEnv``)
    - the simulator: ``mujoco.mj_getState`` with ``mjSTATE_INTEGRATION``, every element
      MuJoCo integrates from (time, qpos, qvel, act, history buffers, the solver's warm
      start, ctrl, applied forces, equality flags, mocap poses, userdata, plugin and plastic
      state), as float64;
    - the body positions and centres of mass (``data.xpos``, ``data.xipos``): derived
      quantities, but left by the last substep and read by some envs before they simulate
      (Ant's torso position, Humanoid's centre of mass, Reacher-v4's fingertip); every
      other derived quantity is recomputed by ``mj_step`` before anything reads it
      (HalfCheetah and Hopper read only qpos before simulating);
    - the env's own generator (``env.unwrapped.np_random``: the autoresets draw from it) and
      the seed gymnasium records with it;
    - the env's own plain attributes (``int``/``float``/``bool``/``str``/``None``: a step
      counter an env keeps for itself, say) and every wrapper's (TimeLimit's
      ``_elapsed_steps``, OrderEnforcing's ``_has_reset``, ...). PassiveEnvChecker's one-time
      checks compare the previous call's objects, which no checkpoint can hold: a restored
      checker counts them as done (they change no number).

``attrs`` (any other env, e.g. a researcher's own pure-Python env)
    the env's generator, its plain attributes and its numeric numpy arrays (its ``state``,
    say), and every wrapper's plain attributes. Envs whose state lives elsewhere (Box2D
    worlds: LunarLander, BipedalWalker, CarRacing; a tuple state) fail the round trip and
    are not captured.

Nothing is pickled: a checkpoint holds arrays and a JSON text only, so a results directory
handed to you cannot run code when a run is resumed from it.

The vector env's autoreset flags and the pack env's rows are saved by the pack env itself.

The round trip (:func:`round_trip`; ``a2c_core.envs.generic.capture_kind`` runs it once per
id and process, about 0.1 s): two sub-envs from the pack env's own vector-env factory,
reset with different seeds; the first takes
random steps (episode ends reset from its own generator), its state is captured and
restored into the second, and both take the same random steps, with a reset (no seed)
between them: observations, rewards, terminated and truncated must agree bit for bit. An
id that fails keeps the old behaviour: its runs restart their episodes from fresh resets
when resumed, and ``a2c_core.envs.state_capture`` says why.

The round trip passing is evidence, not proof: state an env reads only later than the
probe's steps (or global state such as numpy's legacy global generator) can escape it.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["ATTRS", "MUJOCO", "capture_envs", "error_line", "kind_of", "restore_envs",
           "round_trip"]  # fmt: skip

MUJOCO = "mujoco"
ATTRS = "attrs"
_ARRAY_DTYPES = {np.dtype(t) for t in ("bool", "int8", "int16", "int32", "int64", "uint8",
                                       "float32", "float64")}  # fmt: skip

_KIND_KEY = "env_capture"
_PLAIN = (bool, int, float, str, type(None))
_PROBE_WARMUP, _PROBE_COMPARE, _PROBE_AFTER_RESET = 30, 30, 10
_MJ_DERIVED = ("xpos", "xipos")  # MjData arrays [nbody, 3] kept with the state (see above)


# --------------------------------------------------------------------------- the protocol


def kind_of(env: gym.Env) -> str:
    """``"mujoco"`` for a MuJoCo env (whatever wraps it), else ``"attrs"``."""
    # a MujocoEnv instance implies its module is loaded: no import (mujoco is optional)
    module = sys.modules.get("gymnasium.envs.mujoco.mujoco_env")
    if module is not None and isinstance(env.unwrapped, module.MujocoEnv):
        return MUJOCO
    return ATTRS


def _plain(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if isinstance(v, _PLAIN)}


def _arrays(obj: Any) -> dict[str, np.ndarray]:
    return {k: v for k, v in vars(obj).items()
            if isinstance(v, np.ndarray) and v.dtype in _ARRAY_DTYPES}  # fmt: skip


def _bytes_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def _array_bytes(array: Any) -> bytes:
    return np.asarray(array, dtype=np.uint8).tobytes()


def _wrappers(env: gym.Env) -> list[gym.Wrapper]:
    """The wrapper stack, outermost first (the unwrapped env excluded)."""
    layers = []
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    return layers


def capture_envs(envs: list[gym.Env], kind: str) -> dict[str, np.ndarray]:
    """The exact state of ``envs`` (one run's sub-envs) as plain arrays, captured ``kind``'s
    way (see the module docstring). :func:`restore_envs` puts it back."""
    out = {_KIND_KEY: _bytes_array(kind.encode())}
    if kind == ATTRS:
        meta = []
        for i, env in enumerate(envs):
            base = env.unwrapped
            meta.append(_meta(env))
            for name, array in _arrays(base).items():
                out[f"attr{i}:{name}"] = array.copy()
        out["env_meta"] = _bytes_array(json.dumps({"envs": meta}).encode())
        return out
    if kind != MUJOCO:
        raise ValueError(f"unknown env capture kind {kind!r}")
    import mujoco

    sig = int(mujoco.mjtState.mjSTATE_INTEGRATION)
    sims, meta = [], []
    for env in envs:
        base = env.unwrapped
        sim = np.empty(mujoco.mj_stateSize(base.model, sig), dtype=np.float64)
        mujoco.mj_getState(base.model, base.data, sim, sig)
        sims.append(sim)
        meta.append(_meta(env))
    out["mj_state"] = np.stack(sims)
    for name in _MJ_DERIVED:  # [N, nbody, 3] each
        out[f"mj_{name}"] = np.stack([getattr(env.unwrapped.data, name) for env in envs])
    out["env_meta"] = _bytes_array(json.dumps({"sig": sig, "envs": meta}).encode())
    return out


def _meta(env: gym.Env) -> dict[str, Any]:
    """The JSON part of one sub-env's state: generator, plain attributes, wrappers'."""
    base = env.unwrapped
    return {
        "rng": base.np_random.bit_generator.state,
        "seed": getattr(base, "_np_random_seed", None),
        "attrs": _plain(base),
        "wrappers": [[type(w).__name__, _plain(w)] for w in _wrappers(env)],
    }


def _restore_meta(env: gym.Env, info: dict[str, Any]) -> None:
    base = env.unwrapped
    base.np_random.bit_generator.state = info["rng"]
    if info["seed"] is not None:
        base._np_random_seed = info["seed"]
    for key, value in info.get("attrs", {}).items():
        setattr(base, key, value)
    layers = _wrappers(env)
    names = [type(w).__name__ for w in layers]
    if names != [name for name, _ in info["wrappers"]]:
        saved = [name for name, _ in info["wrappers"]]
        raise ValueError(f"saved wrapper stack {saved} differs from this env's {names}")
    for layer, (_, attrs) in zip(layers, info["wrappers"], strict=True):
        for key, value in attrs.items():
            setattr(layer, key, value)
        if isinstance(layer, gym.wrappers.PassiveEnvChecker):
            layer.checked_reset = layer.checked_step = layer.checked_data_reuse = True
            layer._previous_data = None


def restore_envs(envs: list[gym.Env], state: dict[str, np.ndarray]) -> list[gym.Env]:
    """Put :func:`capture_envs`' state back into ``envs`` (returned). Raises ValueError (one
    line) when the state does not fit these envs. Reads arrays and JSON only (no pickle)."""
    kind = _array_bytes(state[_KIND_KEY]).decode()
    meta = json.loads(_array_bytes(state["env_meta"]).decode())
    if len(meta["envs"]) != len(envs):
        raise ValueError(f"saved env state holds {len(meta['envs'])} envs, this run has "
                         f"{len(envs)}")  # fmt: skip
    if kind == ATTRS:
        for i, (env, info) in enumerate(zip(envs, meta["envs"], strict=True)):
            base = env.unwrapped
            if kind_of(env) != ATTRS:
                raise ValueError(f"saved plain env state, but {base} is a MuJoCo env")
            for key, array in state.items():
                prefix, _, name = key.partition(":")
                if prefix == f"attr{i}":
                    current = getattr(base, name, None)
                    if not isinstance(current, np.ndarray) or current.shape != np.shape(array):
                        raise ValueError(f"saved attribute {name!r} does not fit {base}")
                    setattr(base, name, np.array(array, dtype=current.dtype))
            _restore_meta(env, info)
        return envs
    if kind != MUJOCO:
        raise ValueError(f"saved env state has an unknown capture kind {kind!r}")
    import mujoco

    sims = np.asarray(state["mj_state"], dtype=np.float64)
    if sims.shape[0] != len(envs):
        raise ValueError(f"saved env state holds {sims.shape[0]} envs, this run has {len(envs)}")
    for i, (env, sim, info) in enumerate(zip(envs, sims, meta["envs"], strict=True)):
        base = env.unwrapped
        if kind_of(env) != MUJOCO:
            raise ValueError(f"saved MuJoCo state, but {base} is not a MuJoCo env")
        size = mujoco.mj_stateSize(base.model, meta["sig"])
        if sim.size != size:
            raise ValueError(f"saved MuJoCo state has {sim.size} values, {base} needs {size}")
        mujoco.mj_setState(base.model, base.data, np.ascontiguousarray(sim), meta["sig"])
        for name in _MJ_DERIVED:
            target, saved = getattr(base.data, name), np.asarray(state[f"mj_{name}"][i])
            if saved.shape != target.shape:
                raise ValueError(f"saved MuJoCo {name} has shape {saved.shape}, {base} needs "
                                 f"{target.shape}")  # fmt: skip
            target[...] = saved
        _restore_meta(env, info)
    return envs


# --------------------------------------------------------------------------- the round trip


def error_line(exc: BaseException) -> str:
    """An exception as one short line: its type, and its message's first line if any."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _same(x: Any, y: Any) -> bool:
    """Bitwise equality of two step outputs (dtype, shape and bytes)."""
    a, b = np.asarray(x), np.asarray(y)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def round_trip(a: gym.Env, b: gym.Env, kind: str) -> str | None:
    """None when a state captured from ``a`` and restored into ``b`` (two sub-envs of one id,
    ``kind`` = :func:`kind_of`) reproduces ``a``'s steps exactly, else why not (one line).
    Both are reset and stepped here (see the module docstring)."""
    saved_np, saved_py = np.random.get_state(), random.getstate()
    try:
        return _round_trip(a, b, kind)
    finally:  # a legacy env seeding numpy's or Python's global generator changes nothing
        np.random.set_state(saved_np)
        random.setstate(saved_py)


def _round_trip(a: gym.Env, b: gym.Env, kind: str) -> str | None:
    a.reset(seed=12345)
    b.reset(seed=54321)  # differs, so the restore must overwrite all of it
    space = a.action_space
    space.seed(2024)  # the space's own generator (never the global one)
    for _ in range(_PROBE_WARMUP):
        _, _, terminated, truncated, _ = a.step(space.sample())
        if terminated or truncated:
            a.reset()
    try:
        state = capture_envs([a], kind)
    except Exception as exc:  # whatever the env holds that cannot be saved
        return f"its state cannot be saved ({error_line(exc)})"
    what = "its restored attributes" if kind == ATTRS else "its restored MuJoCo state"
    try:
        (restored,) = restore_envs([b], state)
    except Exception as exc:
        return f"{what} cannot be restored ({error_line(exc)})"
    try:
        for t in range(1, _PROBE_COMPARE + _PROBE_AFTER_RESET + 1):
            if t == _PROBE_COMPARE + 1 and not _same(a.reset()[0], restored.reset()[0]):
                return f"{what} resets to another observation"  # the env's own generator
            action = space.sample()
            out_a = a.step(action)[:4]
            out_b = restored.step(action)[:4]
            for name, x, y in zip(("observation", "reward", "terminated", "truncated"),
                                  out_a, out_b, strict=True):  # fmt: skip
                if not _same(x, y):
                    return f"{what} gives another {name} {t} step(s) later"
            if out_a[2] or out_a[3]:
                a.reset(), restored.reset()
        return None
    except Exception as exc:
        return f"{what} cannot continue the episode ({error_line(exc)})"
