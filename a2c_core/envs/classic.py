"""Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0 and Pendulum-v1 as pack envs.

Each env's dynamics are one compiled function per row (``*_row``), shared by the pack env's
``_transition`` and by the fused rollout (:mod:`a2c_core.fused`), so both paths step the same
arithmetic. The functions repeat gymnasium 1.4.0's code operation for operation, including
its dtypes, so that states, observations and rewards agree with gymnasium's bit for bit:

- float64 ``sin``/``cos`` are the C library's, as numpy's and ``math``'s are on this platform;
- a numpy *scalar* ``x ** 2`` (Acrobot's ``dtheta1**2``, Pendulum's ``thdot**2``) is the C
  library's ``pow(x, 2)``, which is not always ``x * x``: the exponent reaches the compiled
  code as a run-time argument (``two``) so the compiler cannot turn it into a product;
- numpy 2 keeps a float32 scalar float32 when a Python float meets it (NEP 50): Pendulum's
  ``3.0 / (m * l**2) * u`` and ``0.001 * u**2`` are float32 products; MountainCarContinuous
  keeps its state in float32 after the first step and computes in float32 from then on.
  Its pack state therefore carries a third row, ``wide``: 1.0 while the state is the float64
  one drawn at reset (gymnasium's ``reset`` stores float64), 0.0 once a step has stored it
  as float32.
- Acrobot's reset draws float32 states, and gymnasium computes their first observation with
  float32 ``cos``/``sin``; :meth:`AcrobotPackEnv._reset_obs` does the same (numpy).

Actions: Discrete envs take int arrays [P*N]; Box envs float arrays [P*N, 1], unclipped (the
env clips as gymnasium does).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from gymnasium import spaces

from a2c_core.envs.base import NumpyPackEnv
from a2c_core.envs.cartpole import cartpole_obs_row, cartpole_row

TWO = 2.0  # passed to the compiled code at run time: see the module docstring

# --------------------------------------------------------------------------- Acrobot-v1
AC_DT = 0.2
AC_M1 = AC_M2 = 1.0
AC_L1 = 1.0
AC_LC1 = AC_LC2 = 0.5
AC_I1 = AC_I2 = 1.0
AC_G = 9.8
AC_MAX_VEL_1 = 4 * math.pi
AC_MAX_VEL_2 = 9 * math.pi
AC_TORQUES = (-1.0, 0.0, 1.0)
# gymnasium computes these from Python floats on every call; the values are the same
AC_LC1_SQ, AC_L1_SQ, AC_LC2_SQ = AC_LC1**2, AC_L1**2, AC_LC2**2


@numba.njit(cache=True, nogil=True)
def _acrobot_dsdt(t1, t2, dt1, dt2, a, two):
    """gymnasium's ``AcrobotEnv._dsdt`` ("book" dynamics) for one state."""
    m1, m2, l1, lc1, lc2, i1, i2, g = AC_M1, AC_M2, AC_L1, AC_LC1, AC_LC2, AC_I1, AC_I2, AC_G
    d1 = m1 * AC_LC1_SQ + m2 * (AC_L1_SQ + AC_LC2_SQ + 2 * l1 * lc2 * np.cos(t2)) + i1 + i2
    d2 = m2 * (AC_LC2_SQ + l1 * lc2 * np.cos(t2)) + i2
    phi2 = m2 * lc2 * g * np.cos(t1 + t2 - np.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dt2**two * np.sin(t2)
        - 2 * m2 * l1 * lc2 * dt2 * dt1 * np.sin(t2)
        + (m1 * lc1 + m2 * l1) * g * np.cos(t1 - np.pi / 2)
        + phi2
    )
    ddt2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dt1**two * np.sin(t2) - phi2) / (
        m2 * AC_LC2_SQ + i2 - d2**two / d1
    )
    ddt1 = -(d2 * ddt2 + phi1) / d1
    return dt1, dt2, ddt1, ddt2


@numba.njit(cache=True, nogil=True)
def _wrap(x, m, big):
    diff = big - m
    while x > big:
        x = x - diff
    while x < m:
        x = x + diff
    return x


@numba.njit(cache=True, nogil=True)
def _bound(x, m, big):
    """Python's ``min(max(x, m), big)``."""
    if m > x:
        x = m
    if big < x:
        x = big
    return x


@numba.njit(cache=True, nogil=True)
def acrobot_row(s, i, action, two):
    """Step row i of state [4, M] in place (rk4 over one dt); returns (reward, terminated)."""
    torque = AC_TORQUES[int(action)]
    y0, y1, y2, y3 = s[0, i], s[1, i], s[2, i], s[3, i]
    dt = AC_DT
    dt2 = dt / 2.0
    k1 = _acrobot_dsdt(y0, y1, y2, y3, torque, two)
    k2 = _acrobot_dsdt(y0 + dt2 * k1[0], y1 + dt2 * k1[1], y2 + dt2 * k1[2], y3 + dt2 * k1[3],
                       torque, two)  # fmt: skip
    k3 = _acrobot_dsdt(y0 + dt2 * k2[0], y1 + dt2 * k2[1], y2 + dt2 * k2[2], y3 + dt2 * k2[3],
                       torque, two)  # fmt: skip
    k4 = _acrobot_dsdt(y0 + dt * k3[0], y1 + dt * k3[1], y2 + dt * k3[2], y3 + dt * k3[3],
                       torque, two)  # fmt: skip
    h = dt / 6.0
    n0 = y0 + h * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    n1 = y1 + h * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    n2 = y2 + h * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
    n3 = y3 + h * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3])
    n0 = _wrap(n0, -np.pi, np.pi)
    n1 = _wrap(n1, -np.pi, np.pi)
    n2 = _bound(n2, -AC_MAX_VEL_1, AC_MAX_VEL_1)
    n3 = _bound(n3, -AC_MAX_VEL_2, AC_MAX_VEL_2)
    s[0, i], s[1, i], s[2, i], s[3, i] = n0, n1, n2, n3
    terminated = -np.cos(n0) - np.cos(n1 + n0) > 1.0
    return (0.0 if terminated else -1.0), terminated


@numba.njit(cache=True, nogil=True)
def acrobot_obs_row(s, i, obs, j):
    # observations are float32 numbers whatever obs's dtype (float64 runs too), as gymnasium's
    obs[j, 0], obs[j, 1] = np.float32(np.cos(s[0, i])), np.float32(np.sin(s[0, i]))
    obs[j, 2], obs[j, 3] = np.float32(np.cos(s[1, i])), np.float32(np.sin(s[1, i]))
    obs[j, 4], obs[j, 5] = np.float32(s[2, i]), np.float32(s[3, i])


# --------------------------------------------------------------------------- MountainCar
MC_MIN_POS, MC_MAX_POS, MC_MAX_SPEED = -1.2, 0.6, 0.07
MC_GOAL, MC_FORCE, MC_GRAVITY = 0.5, 0.001, 0.0025
MCC_GOAL, MCC_POWER = 0.45, 0.0015


@numba.njit(cache=True, nogil=True)
def mountaincar_row(s, i, action, two):
    """gymnasium's ``MountainCarEnv.step`` (float64 throughout) on row i of [2, M]."""
    position, velocity = s[0, i], s[1, i]
    velocity += (action - 1) * MC_FORCE + math.cos(3 * position) * (-MC_GRAVITY)
    velocity = _bound(velocity, -MC_MAX_SPEED, MC_MAX_SPEED)
    position += velocity
    position = _bound(position, MC_MIN_POS, MC_MAX_POS)
    if position == MC_MIN_POS and velocity < 0:
        velocity = 0.0
    s[0, i], s[1, i] = position, velocity
    return -1.0, (position >= MC_GOAL and velocity >= 0)


@numba.njit(cache=True, nogil=True)
def _f32(x):
    return np.float32(x)


@numba.njit(cache=True, nogil=True)
def _gt(x, y, wide):
    """x > y as numpy 2 computes it: in float32 unless ``wide`` (exact values either way
    when one side is a clamp constant that was just assigned: the comparison is then false)."""
    return x > y if wide else _f32(x) > _f32(y)


@numba.njit(cache=True, nogil=True)
def mountaincar_continuous_row(s, i, action, two):
    """gymnasium's ``Continuous_MountainCarEnv.step`` on row i of [3, M] (position, velocity,
    wide). ``action`` is the float32 action. With ``wide`` the state is the float64 reset
    state; otherwise it is float32 and every operation mixing it with a Python float runs in
    float32 (numpy 2); the new state is stored as float32 (``wide`` = 0) as gymnasium does."""
    wide = s[2, i] != 0.0
    a = np.float32(action)
    if wide:
        cos_term = 0.0025 * math.cos(3 * s[0, i])
    else:  # 3 * position is a float32 product; math.cos takes it as a double
        cos_term = 0.0025 * math.cos(np.float64(_f32(3) * _f32(s[0, i])))
    if a < -1.0 or a > 1.0:  # min(max(a, -1.0), 1.0) returns a Python float
        dv = (-1.0 if a < -1.0 else 1.0) * MCC_POWER - cos_term  # float64
        velocity = s[1, i] + dv if wide else np.float64(_f32(s[1, i]) + _f32(dv))
    else:
        dv32 = a * _f32(MCC_POWER) - _f32(cos_term)  # float32 arithmetic
        velocity = s[1, i] + np.float64(dv32) if wide else np.float64(_f32(s[1, i]) + dv32)
    # the clamps compare in float32 when the value is a float32 scalar (numpy 2)
    if _gt(velocity, MC_MAX_SPEED, wide):
        velocity = MC_MAX_SPEED
    elif _gt(-MC_MAX_SPEED, velocity, wide):
        velocity = -MC_MAX_SPEED
    # position += velocity: float64 if wide; else float32 (velocity is float32 or 0.07)
    position = s[0, i] + velocity if wide else np.float64(_f32(s[0, i]) + _f32(velocity))
    if _gt(position, MC_MAX_POS, wide):
        position = MC_MAX_POS
    elif _gt(MC_MIN_POS, position, wide):
        position = MC_MIN_POS
    at_wall = position == MC_MIN_POS if wide else _f32(position) == _f32(MC_MIN_POS)
    terminated = (
        position >= MCC_GOAL if wide else _f32(position) >= _f32(MCC_GOAL)
    ) and velocity >= 0
    if at_wall and velocity < 0:
        velocity = 0.0
    reward = 100.0 if terminated else 0.0
    reward -= math.pow(np.float64(a), two) * 0.1
    s[0, i], s[1, i], s[2, i] = _f32(position), _f32(velocity), 0.0
    return reward, terminated


@numba.njit(cache=True, nogil=True)
def mountaincar_obs_row(s, i, obs, j):
    obs[j, 0], obs[j, 1] = np.float32(s[0, i]), np.float32(s[1, i])


# --------------------------------------------------------------------------- Pendulum-v1
PD_MAX_SPEED, PD_MAX_TORQUE, PD_DT, PD_G, PD_M, PD_L = 8, 2.0, 0.05, 10.0, 1.0, 1.0


@numba.njit(cache=True, nogil=True)
def pendulum_row(s, i, action, two):
    """gymnasium's ``PendulumEnv.step`` on row i of [2, M]; ``action`` is the float32
    torque. Never terminates (the 200-step limit truncates)."""
    th, thdot = s[0, i], s[1, i]
    u = np.float32(action)
    if u < -PD_MAX_TORQUE:
        u = np.float32(-PD_MAX_TORQUE)
    if u > PD_MAX_TORQUE:
        u = np.float32(PD_MAX_TORQUE)
    norm = ((th + np.pi) % (2 * np.pi)) - np.pi
    u_sq = u ** np.float32(two)  # a float32 scalar power: powf
    costs = norm**two + 0.1 * thdot**two + np.float64(_f32(0.001) * u_sq)
    torque_term = np.float64(_f32(3.0 / (PD_M * PD_L**2)) * u)
    newthdot = thdot + (3 * PD_G / (2 * PD_L) * np.sin(th) + torque_term) * PD_DT
    newthdot = _bound(newthdot, -PD_MAX_SPEED, PD_MAX_SPEED)
    s[0, i], s[1, i] = th + newthdot * PD_DT, newthdot
    return -costs, False


@numba.njit(cache=True, nogil=True)
def pendulum_obs_row(s, i, obs, j):
    obs[j, 0], obs[j, 1] = np.float32(np.cos(s[0, i])), np.float32(np.sin(s[0, i]))
    obs[j, 2] = np.float32(s[1, i])


# --------------------------------------------------------------------------- pack envs
KIND_CARTPOLE, KIND_ACROBOT, KIND_MOUNTAINCAR, KIND_MCC, KIND_PENDULUM = 0, 1, 2, 3, 4


@numba.njit(cache=True, nogil=True)
def step_row(kind, s, i, action, two):
    """Dispatch to the env's row step (``kind`` is a KIND_* constant)."""
    if kind == KIND_CARTPOLE:
        return cartpole_row(s, i, action, two)
    if kind == KIND_ACROBOT:
        return acrobot_row(s, i, action, two)
    if kind == KIND_MOUNTAINCAR:
        return mountaincar_row(s, i, action, two)
    if kind == KIND_MCC:
        return mountaincar_continuous_row(s, i, action, two)
    return pendulum_row(s, i, action, two)


@numba.njit(cache=True, nogil=True)
def obs_row(kind, s, i, obs, j):
    if kind == KIND_CARTPOLE:
        cartpole_obs_row(s, i, obs, j)
    elif kind == KIND_ACROBOT:
        acrobot_obs_row(s, i, obs, j)
    elif kind == KIND_PENDULUM:
        pendulum_obs_row(s, i, obs, j)
    else:
        mountaincar_obs_row(s, i, obs, j)


@numba.njit(cache=True, nogil=True)
def transition_rows(kind, state, elapsed, limit, actions, two, obs_dim):
    """One step of every row in place (state, elapsed): :meth:`NumpyPackEnv._transition` in
    one call. Returns (reward, terminated, truncated, final_obs)."""
    m = state.shape[1]
    reward = np.empty(m)
    terminated = np.empty(m, dtype=np.bool_)
    truncated = np.empty(m, dtype=np.bool_)
    final_obs = np.empty((m, obs_dim), dtype=np.float32)
    for i in range(m):
        reward[i], terminated[i] = step_row(kind, state, i, actions[i], two)
        elapsed[i] += 1
        truncated[i] = elapsed[i] >= limit and not terminated[i]
        obs_row(kind, state, i, final_obs, i)
    return reward, terminated, truncated, final_obs


@numba.njit(cache=True, nogil=True)
def _obs_rows(kind, state, obs_dim):
    m = state.shape[1]
    obs = np.empty((m, obs_dim), dtype=np.float32)
    for i in range(m):
        obs_row(kind, state, i, obs, i)
    return obs


class ClassicPackEnv(NumpyPackEnv):
    """Shared part of the four classic-control pack envs (see :class:`NumpyPackEnv`)."""

    kind: int
    env_id: str

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        super().__init__(num_runs, num_envs, rngs)

    def _make_obs(self, state: np.ndarray) -> np.ndarray:
        obs_dim = self.observation_space.shape[0]
        return _obs_rows(self.kind, np.ascontiguousarray(state), obs_dim)

    def _actions(self, actions: np.ndarray) -> np.ndarray:
        """[P*N] int64 (Discrete) or float32 (the first action dimension) for the kernels."""
        dtype = np.int64 if isinstance(self.action_space, spaces.Discrete) else np.float32
        return np.ascontiguousarray(np.asarray(actions).reshape(-1), dtype=dtype)

    def _transition(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        return transition_rows(self.kind, self._state, self._elapsed, self.max_episode_steps,
                               self._actions(actions), TWO, self.observation_space.shape[0])  # fmt: skip


class AcrobotPackEnv(ClassicPackEnv):
    """Acrobot-v1: obs float32 [6] (cos/sin of both angles, both velocities), Discrete(3)
    torques -1/0/+1, reward -1 per step and 0 on the terminating one, limit 500 steps."""

    kind, env_id, state_dim, max_episode_steps = KIND_ACROBOT, "Acrobot-v1", 4, 500

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        high = np.array([1.0, 1.0, 1.0, 1.0, AC_MAX_VEL_1, AC_MAX_VEL_2], dtype=np.float32)
        self.observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        super().__init__(num_runs, num_envs, rngs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        # gymnasium: uniform(-0.1, 0.1, size=(4,)).astype(np.float32)
        return self.rngs[run].uniform(-0.1, 0.1, size=(k, 4)).astype(np.float32).astype(float)

    def _reset_obs(self, state: np.ndarray) -> np.ndarray:
        """The first observation of fresh float32 states, in float32 as gymnasium's."""
        s = state.astype(np.float32)
        return np.stack([np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]], 1)

    def _restored_obs(self, state: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """Rows at step 0 whose state is float32 were fresh resets: observed as at reset."""
        obs = self._make_obs(state)
        fresh = (elapsed == 0) & (state.astype(np.float32) == state).all(0)
        if fresh.any():
            obs[fresh] = self._reset_obs(state[:, fresh])
        return obs


class MountainCarPackEnv(ClassicPackEnv):
    """MountainCar-v0: obs float32 [2] (position, velocity), Discrete(3) (push left, none,
    right), reward -1 per step, terminated at position >= 0.5, limit 200 steps."""

    kind, env_id, state_dim, max_episode_steps = KIND_MOUNTAINCAR, "MountainCar-v0", 2, 200

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        low = np.array([MC_MIN_POS, -MC_MAX_SPEED], dtype=np.float32)
        high = np.array([MC_MAX_POS, MC_MAX_SPEED], dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        super().__init__(num_runs, num_envs, rngs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        # gymnasium: [uniform(-0.6, -0.4), 0]
        return np.stack([self.rngs[run].uniform(-0.6, -0.4, size=k), np.zeros(k)], 1)


class MountainCarContinuousPackEnv(ClassicPackEnv):
    """MountainCarContinuous-v0: obs float32 [2], Box(-1, 1, (1,)) force, reward
    -0.1 a^2 per step plus 100 on reaching position 0.45, limit 999 steps. The pack state
    has a third row, ``wide`` (see the module docstring)."""

    kind, env_id, state_dim, max_episode_steps = KIND_MCC, "MountainCarContinuous-v0", 3, 999

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        low = np.array([MC_MIN_POS, -MC_MAX_SPEED], dtype=np.float32)
        high = np.array([MC_MAX_POS, MC_MAX_SPEED], dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        super().__init__(num_runs, num_envs, rngs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        pos = self.rngs[run].uniform(-0.6, -0.4, size=k)
        return np.stack([pos, np.zeros(k), np.ones(k)], 1)

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        """Also accepts gymnasium's two-column state: it is float64 (``wide``) unless both
        values are float32 numbers, as after any step."""
        st = np.asarray(state["state"], dtype=np.float64).reshape(self.num_envs, -1)
        if st.shape[1] == 2:
            narrow = (st.astype(np.float32).astype(np.float64) == st).all(1)
            st = np.column_stack([st, (~narrow).astype(np.float64)])
        super().set_state(run, {**state, "state": st})


class PendulumPackEnv(ClassicPackEnv):
    """Pendulum-v1: obs float32 [3] (cos, sin, angular velocity), Box(-2, 2, (1,)) torque,
    reward -(angle^2 + 0.1 vel^2 + 0.001 u^2), never terminates, limit 200 steps."""

    kind, env_id, state_dim, max_episode_steps = KIND_PENDULUM, "Pendulum-v1", 2, 200

    def __init__(self, num_runs: int, num_envs: int, rngs: list[np.random.Generator]) -> None:
        high = np.array([1.0, 1.0, PD_MAX_SPEED], dtype=np.float32)
        self.observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)
        self.action_space = spaces.Box(-PD_MAX_TORQUE, PD_MAX_TORQUE, (1,), dtype=np.float32)
        super().__init__(num_runs, num_envs, rngs)

    def _draw(self, run: int, k: int) -> np.ndarray:
        high = np.array([np.pi, 1.0])
        return self.rngs[run].uniform(low=-high, high=high, size=(k, 2))


CLASSIC_ENVS: dict[str, type[ClassicPackEnv]] = {
    cls.env_id: cls
    for cls in (AcrobotPackEnv, MountainCarPackEnv, MountainCarContinuousPackEnv, PendulumPackEnv)
}
