"""CartPoleSwingUp-v0/-v1: a gymnasium port of ``gym-cartpole-swingup`` 0.1.4 (MIT).

The original package pins ``gym<0.19`` and no longer installs, so this module re-implements it:
a single :class:`CartPoleSwingUpEnv` (registered with gymnasium by :func:`register_envs`) and a
vectorised :class:`SwingUpPackEnv` for the engine. Both must reproduce
``tests/data/cartpole_swingup_reference.npz``, recorded from the original under numpy 1.26.

Numerics note: the original keeps the state as numpy scalars and multiplies them by Python
floats. Under numpy 1.26 a float32 scalar times a Python float gave float64, so after the first
step the reference ran in float64. Under numpy 2 (NEP 50) the same code stays float32 and
drifts by up to ~5e-5 in 120 steps. This port therefore casts state and action to float64
before any arithmetic, which matches the fixture to ~2e-6.

State convention: (x, x_dot, theta, theta_dot) with theta = 0 pointing up, theta = pi hanging
down (the reset distribution is centred on hanging down).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numba
import numpy as np
from gymnasium import spaces

from a2c_core.envs.base import NumpyPackEnv, reset_pool_of

SWINGUP_IDS = ("CartPoleSwingUp-v0", "CartPoleSwingUp-v1")
_VERSIONS = {"CartPoleSwingUp-v0": "v0", "CartPoleSwingUp-v1": "v1"}

GRAVITY = 9.82
FORCE_MAG = 10.0
DT = 0.01
FRICTION = 0.1
CART_MASS = 0.5
POLE_MASS = 0.5
POLE_LENGTH = 0.6
MASS_TOTAL = CART_MASS + POLE_MASS
MPL = POLE_MASS * POLE_LENGTH
X_THRESHOLD = 2.4
MAX_EPISODE_STEPS = 500
RESET_MEAN = np.array([0.0, 0.0, np.pi, 0.0])
RESET_STD = 0.2
# Drawing sizes of the original (only used by the renderer).
CART_WIDTH, CART_HEIGHT = 1 / 3, 1 / 6
POLE_WIDTH = 0.05


def swingup_spaces() -> tuple[spaces.Box, spaces.Box]:
    """Observation space Box(-inf, inf, (5,), float32) and action space Box(-1, 1, (1,),
    float32) of one env."""
    obs_space = spaces.Box(-np.inf, np.inf, shape=(5,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    return obs_space, act_space


def swingup_dynamics(
    x: Any, x_dot: Any, theta: Any, theta_dot: Any, force: Any
) -> tuple[Any, Any, Any, Any]:
    """One explicit-Euler step of the reference equations.

    Works on float64 scalars or on arrays of any common shape; ``force`` is the clipped action
    times FORCE_MAG. Positions advance with the OLD velocities, as in the original.
    Returns (x', x_dot', theta', theta_dot').
    """
    s = np.sin(theta)
    c = np.cos(theta)
    xdot_update = (
        -2 * MPL * (theta_dot**2) * s
        + 3 * POLE_MASS * GRAVITY * s * c
        + 4 * force
        - 4 * FRICTION * x_dot
    ) / (4 * MASS_TOTAL - 3 * POLE_MASS * c**2)
    thetadot_update = (
        -3 * MPL * (theta_dot**2) * s * c
        + 6 * MASS_TOTAL * GRAVITY * s
        + 6 * (force - FRICTION * x_dot) * c
    ) / (4 * POLE_LENGTH * MASS_TOTAL - 3 * MPL * c**2)
    return (
        x + x_dot * DT,
        x_dot + xdot_update * DT,
        theta + theta_dot * DT,
        theta_dot + thetadot_update * DT,
    )


def _reward(theta: Any, version: str) -> Any:
    """v0: cos(theta'); v1: (1 + cos(theta')) / 2, of the NEXT state."""
    c = np.cos(theta)
    return c if version == "v0" else (1 + c) / 2


class CartPoleSwingUpEnv(gym.Env[np.ndarray, np.ndarray]):
    """Single CartPoleSwingUp env.

    Observation float32 [5] = (x, x_dot, cos theta, sin theta, theta_dot); action float32 [1]
    in [-1, 1] (clipped); terminated when |x'| > 2.4. The env never truncates by itself: the
    500-step limit comes from the TimeLimit wrapper that ``gymnasium.make`` adds.
    ``state`` is a settable float64 array (x, x_dot, theta, theta_dot).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, version: str = "v0", render_mode: str | None = None) -> None:
        if version not in ("v0", "v1"):
            raise ValueError(f"version must be 'v0' or 'v1', got {version!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.version = version
        self.render_mode = render_mode
        self.observation_space, self.action_space = swingup_spaces()
        self.screen_width, self.screen_height = 600, 400
        self._state: np.ndarray | None = None

    @property
    def state(self) -> np.ndarray | None:
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        # Copy and widen: callers (and the fixture) pass float32 arrays; see module docstring.
        self._state = None if value is None else np.array(value, dtype=np.float64).reshape(4)

    def _obs(self) -> np.ndarray:
        x, x_dot, theta, theta_dot = self._state
        return np.array([x, x_dot, np.cos(theta), np.sin(theta), theta_dot], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw state ~ N([0, 0, pi, 0], 0.2) from ``np_random``; return (obs [5], {})."""
        super().reset(seed=seed)
        self.state = self.np_random.normal(loc=RESET_MEAN, scale=RESET_STD, size=(4,))
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply force clip(action[0], -1, 1) * 10; return (obs [5], reward, terminated,
        False, {})."""
        assert self._state is not None, "call reset() before step()"
        # float() before scaling: keeps the force in float64 like the numpy-1.26 reference.
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        x, x_dot, theta, theta_dot = (float(v) for v in self._state)
        new = swingup_dynamics(x, x_dot, theta, theta_dot, a * FORCE_MAG)
        self._state = np.array(new, dtype=np.float64)
        reward = float(_reward(new[2], self.version))
        terminated = bool(abs(new[0]) > X_THRESHOLD)
        return self._obs(), reward, terminated, False, {}

    def render(self) -> np.ndarray | None:
        """rgb_array: uint8 [400, 600, 3] image of track, cart and pole."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        assert self._state is not None, "call reset() before render()"
        return render_swingup(self._state, self.screen_width, self.screen_height)


def render_swingup(state: np.ndarray, width: int = 600, height: int = 400) -> np.ndarray:
    """Draw one state (x, x_dot, theta, theta_dot) as a uint8 [height, width, 3] image."""
    from PIL import Image, ImageDraw  # only rendering needs Pillow

    x, _, theta, _ = (float(v) for v in state)
    # Track plus room for the pole on both sides, so a cart at the edge stays in the frame.
    world_width = 2 * (X_THRESHOLD + POLE_LENGTH + CART_WIDTH)
    scale = width / world_width
    track_y = height * 0.6  # pixels from the top; image y grows downwards

    def to_px(wx: float, wy: float) -> tuple[float, float]:
        return width / 2 + wx * scale, track_y - wy * scale

    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    # Track and its limits.
    left, _ = to_px(-X_THRESHOLD, 0.0)
    right, _ = to_px(X_THRESHOLD, 0.0)
    draw.line([(left, track_y), (right, track_y)], fill=(0, 0, 0), width=2)
    for edge in (left, right):
        draw.line([(edge, track_y - 10), (edge, track_y + 10)], fill=(200, 0, 0), width=2)
    # Cart, centred on the track.
    cx0, cy0 = to_px(x - CART_WIDTH / 2, CART_HEIGHT / 2)
    cx1, cy1 = to_px(x + CART_WIDTH / 2, -CART_HEIGHT / 2)
    draw.rectangle([cx0, cy0, cx1, cy1], fill=(80, 80, 200), outline=(0, 0, 0))
    # Pole as a rotated rectangle: theta = 0 points straight up.
    ux, uy = np.sin(theta), np.cos(theta)  # along the pole
    nx, ny = uy, -ux  # across the pole
    hw = POLE_WIDTH / 2
    corners = [
        (x + nx * hw, ny * hw),
        (x + nx * hw + ux * POLE_LENGTH, ny * hw + uy * POLE_LENGTH),
        (x - nx * hw + ux * POLE_LENGTH, -ny * hw + uy * POLE_LENGTH),
        (x - nx * hw, -ny * hw),
    ]
    draw.polygon([to_px(px, py) for px, py in corners], fill=(200, 130, 60), outline=(0, 0, 0))
    ax, ay = to_px(x, 0.0)
    r = max(2.0, hw * scale)
    draw.ellipse([ax - r, ay - r, ax + r, ay + r], fill=(40, 40, 40))
    return np.asarray(img, dtype=np.uint8)


def register_envs() -> None:
    """Register CartPoleSwingUp-v0/-v1 with gymnasium (500-step TimeLimit -> truncation).
    Idempotent: ids already in the registry are left alone."""
    for env_id in SWINGUP_IDS:
        if env_id in gym.registry:
            continue
        gym.register(
            env_id,
            entry_point="a2c_core.envs.swingup:CartPoleSwingUpEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
            kwargs={"version": _VERSIONS[env_id]},
        )


class SwingUpPackEnv(NumpyPackEnv):
    """P runs x N CartPoleSwingUp envs on a flat axis of P*N rows (row ``p*N + i``).

    Actions: float array [P*N, 1] (or [P*N]), clipped to [-1, 1]. Resets drawn as
    ``rngs[p].normal([0, 0, pi, 0], 0.2, size=(k, 4))``. See :class:`NumpyPackEnv`.
    """

    def __init__(
        self, env_id: str, num_runs: int, num_envs: int, rngs: list[np.random.Generator]
    ) -> None:
        if env_id not in SWINGUP_IDS:
            raise ValueError(f"unknown SwingUp id {env_id!r}; expected one of {SWINGUP_IDS}")
        self.env_id = env_id
        self.version = _VERSIONS[env_id]
        self.max_episode_steps = MAX_EPISODE_STEPS
        self.observation_space, self.action_space = swingup_spaces()
        super().__init__(num_runs, num_envs, rngs)
        # per run: reset states a checkpoint of the fused rollout had drawn ahead from the
        # run's generator and not used yet; they come before anything drawn now
        self.pending = [np.zeros((0, 4)) for _ in range(num_runs)]

    def _draw(self, run: int, k: int) -> np.ndarray:
        """k initial states [k, 4]: the run's pending ones first, then fresh ones from its
        generator in ONE call (the same stream as one call for all k)."""
        pending = self.pending[run]
        if len(pending) == 0:
            return self.rngs[run].normal(loc=RESET_MEAN, scale=RESET_STD, size=(k, 4))
        take, self.pending[run] = pending[:k], pending[k:]
        if len(take) == k:
            return take.copy()
        fresh = self.rngs[run].normal(loc=RESET_MEAN, scale=RESET_STD, size=(k - len(take), 4))
        return np.concatenate([take, fresh])

    def get_state(self, run: int) -> dict[str, np.ndarray]:
        """As the base env's, plus the pending reset states (as a pool with cursor 0)."""
        state = super().get_state(run)
        if len(self.pending[run]):
            state["reset_pool"] = self.pending[run].copy()
            state["reset_cursor"] = np.zeros(1, dtype=np.int64)
        return state

    def set_state(self, run: int, state: dict[str, np.ndarray]) -> None:
        """As the base env's; a checkpoint of the fused rollout also holds the reset states
        its pool had drawn ahead: they become the run's pending ones, so that this env
        continues the run as the fused rollout would have (ValueError for a damaged pool)."""
        pool = reset_pool_of(state, 4)
        super().set_state(run, state)
        self.pending[run] = np.zeros((0, 4)) if pool is None else pool[0][pool[1] :].copy()

    def _make_obs(self, state: np.ndarray) -> np.ndarray:
        """[4, M] float64 state -> [M, 5] float32 obs (x, x_dot, cos, sin, theta_dot)."""
        x, x_dot, theta, theta_dot = state
        return np.stack([x, x_dot, np.cos(theta), np.sin(theta), theta_dot], axis=1).astype(
            np.float32
        )

    def _transition(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """One compiled call per step (:func:`_transition_rows`: the same arithmetic as
        :func:`swingup_dynamics` on arrays, so the same floats; tested bitwise)."""
        actions = np.ascontiguousarray(np.asarray(actions).reshape(-1))
        return _transition_rows(self._state, self._elapsed, self.max_episode_steps, actions,
                                self.version == "v1")  # fmt: skip


# the same source compiled for float64 scalars (x ** 2 is x * x there, as np.square on arrays)
_dynamics_scalar = numba.njit(cache=True, nogil=True)(swingup_dynamics)


@numba.njit(cache=True, nogil=True)
def step_row(state, i, action, v1, obs_out, row):
    """Row i of state [4, M] one step on, in place, under ``action`` (float, widened to
    float64 before clipping): writes the new observation (float32) into ``obs_out[row]`` and
    returns (reward, terminated). :func:`swingup_dynamics` itself, compiled; shared by the
    pack env's step and the fused rollout (:mod:`a2c_core.fused`)."""
    a = np.float64(action)
    if a < -1.0:  # np.clip: NaN stays NaN
        a = -1.0
    elif a > 1.0:
        a = 1.0
    force = a * FORCE_MAG
    x, x_dot, theta, theta_dot = state[0, i], state[1, i], state[2, i], state[3, i]
    nx, nxd, nth, nthd = _dynamics_scalar(x, x_dot, theta, theta_dot, force)
    state[0, i], state[1, i], state[2, i], state[3, i] = nx, nxd, nth, nthd
    cn = np.cos(nth)
    obs_out[row, 0], obs_out[row, 1] = np.float32(nx), np.float32(nxd)
    obs_out[row, 2], obs_out[row, 3] = np.float32(cn), np.float32(np.sin(nth))
    obs_out[row, 4] = np.float32(nthd)
    reward = (1 + cn) / 2 if v1 else cn
    return reward, np.abs(nx) > X_THRESHOLD


@numba.njit(cache=True, nogil=True)
def _transition_rows(state, elapsed, limit, actions, v1):
    """Every row of state [4, M] one step on (:func:`step_row`), with the step counters:
    (reward, terminated, truncated, final_obs [M, 5] float32)."""
    m = state.shape[1]
    reward = np.empty(m)
    terminated = np.empty(m, dtype=np.bool_)
    truncated = np.empty(m, dtype=np.bool_)
    final_obs = np.empty((m, 5), dtype=np.float32)
    for i in range(m):
        reward[i], terminated[i] = step_row(state, i, actions[i], v1, final_obs, i)
        elapsed[i] += 1
        truncated[i] = elapsed[i] >= limit and not terminated[i]
    return reward, terminated, truncated, final_obs
