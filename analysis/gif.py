"""Render a trained policy (a run's policy.pt) to an animated GIF.

policy.pt is ``torch.save({"format": 1, "config": A2CConfig fields, "seed": int,
"params": {name: tensor}})``; the policy is rebuilt with :func:`a2c_core.policies.make_policy`
from the env's spaces. Episodes run in a gymnasium env made with ``render_mode="rgb_array"``
(classic-control CartPole draws with pygame: ``SDL_VIDEODRIVER=dummy`` is set when unset, so
no display is needed; CartPoleSwingUp draws with Pillow). Each episode contributes its
length + 1 frames (the reset frame, then one per step).

torch is imported here lazily, only to read policy.pt.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2c_core.results import ResultsFileError, read_policy
from analysis.load import AnalysisError

__all__ = ["Episode", "Recording", "check_output", "load_policy", "record_gif", "run_episodes"]


@dataclass(frozen=True)
class Recording:
    path: Path
    returns: list[float]
    lengths: list[int]
    frames: int
    env: str


def check_output(out: str | Path) -> Path:
    """``out`` as a Path if it can take a GIF: a file name ending in .gif (any case) in an
    existing directory, not a directory. Otherwise :class:`AnalysisError`, one line."""
    out = Path(out)
    if out.is_dir():
        raise AnalysisError(f"{out}: is a directory; -o takes the GIF's file name")
    if out.suffix.lower() != ".gif":
        raise AnalysisError(f"{out}: the output must be a .gif file (GIF is the only format)")
    if not out.parent.exists():
        raise AnalysisError(f"{out.parent}: no such directory (for -o {out})")
    if not out.parent.is_dir():
        raise AnalysisError(f"{out.parent}: not a directory (for -o {out})")
    return out


def load_policy(path: str | Path) -> dict[str, Any]:
    """policy.pt (or a run directory holding one) -> {"config": dict, "seed": int,
    "params": {name: numpy array}}, read by a2c_core.results.read_policy."""
    path = Path(path)
    if path.is_dir():
        path = path / "policy.pt"
    try:
        return read_policy(path)
    except ResultsFileError as exc:
        raise AnalysisError(str(exc)) from None


def _make_env(env_id: str, max_steps: int | None) -> Any:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import gymnasium as gym

    import a2c_core  # noqa: F401  (registers CartPoleSwingUp-v0/-v1)

    kwargs: dict[str, Any] = {"render_mode": "rgb_array"}
    if max_steps is not None:
        kwargs["max_episode_steps"] = int(max_steps)
    try:
        with warnings.catch_warnings():
            # "CartPole-v0 is out of date": the run was trained on v0, so v0 it is
            warnings.simplefilter("ignore", DeprecationWarning)
            return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise AnalysisError(f"env {env_id!r}: {exc}") from None


@dataclass(frozen=True)
class Episode:
    frames: list[np.ndarray]
    """rgb_array frames [H, W, 3]: the reset frame, then one per step (length + 1)."""
    rewards: list[float]

    @property
    def total(self) -> float:
        return float(sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.rewards)


def run_episodes(
    policy_data: dict[str, Any],
    *,
    episodes: int = 1,
    deterministic: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
) -> list[Episode]:
    """Play ``episodes`` episodes with rendering.

    ``deterministic`` takes the policy's mode (argmax / Gaussian mean); otherwise actions are
    sampled with ``numpy.random.default_rng(seed)``. Env resets are seeded with ``seed`` (the
    first) and continue its stream after. ``max_steps`` overrides the env's time limit.
    """
    from a2c_core.config import A2CConfig
    from a2c_core.obsnorm import normalize_with, stats_problem
    from a2c_core.policies import make_policy

    try:  # the policy's config must be one this package can build
        config = A2CConfig.from_dict(policy_data["config"])
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"policy.pt: bad config ({exc})") from None
    env = _make_env(config.env, max_steps)
    dtype = np.dtype(config.dtype)
    policy = make_policy(env.observation_space, env.action_space, config.hidden, dtype,
                         policy_hidden=config.policy_hidden, activation=config.activation)  # fmt: skip
    want = {k: v.shape for k, v in policy.init_params(np.random.default_rng(0)).items()}
    got = {k: np.shape(v) for k, v in policy_data["params"].items()}
    problem = None
    if got != want:
        problem = (f"policy.pt: its parameters {got} do not fit the policy of its config on "
                   f"{config.env} {want}")  # fmt: skip
    stats = policy_data.get("obs_rms") if config.obs_norm else None
    if config.obs_norm and not problem:
        why = stats_problem(stats, int(np.prod(env.observation_space.shape)))
        problem = f"policy.pt of an obs_norm run: {why}" if why else None
    if problem:
        env.close()
        raise AnalysisError(problem)
    params = {k: v.astype(dtype, copy=False) for k, v in policy_data["params"].items()}
    stacked = {k: v[None] for k, v in params.items()}  # a pack of one run: [P=1, ...]
    rng = np.random.default_rng(seed)
    space = env.action_space
    played = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            frames, rewards, done = [env.render()], [], False
            while not done:
                x = normalize_with(stats, np.asarray(obs, dtype=dtype).reshape(-1))
                if deterministic:
                    action = policy.mode(params, x[None])[0]
                else:
                    noise = policy.noise(rng, 1, 1)  # [T=1, N=1(, A)] used as [P=1, N=1(, A)]
                    action = policy.act(stacked, x[None, None], noise)[0, 0]
                if policy.discrete:
                    action = int(action)
                else:
                    action = np.clip(np.asarray(action, dtype=space.dtype), space.low, space.high)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(float(reward))
                frames.append(env.render())
                done = terminated or truncated
            played.append(Episode(frames=frames, rewards=rewards))
    finally:
        env.close()
    return played


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` in its top-left corner. The changing step number also keeps
    consecutive frames distinct: Pillow's GIF writer merges identical frames."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    draw = ImageDraw.Draw(image)
    size = max(10, image.height // 25)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap font
        font = ImageFont.load_default()
    draw.text((8, 6), text, fill=(0, 0, 0), font=font)
    return np.asarray(image)


def record_gif(
    run: str | Path,
    out: str | Path,
    *,
    episodes: int = 1,
    deterministic: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    fps: int = 50,
) -> Recording:
    """Play the policy of ``run`` (a run directory or a policy.pt) and write a GIF to ``out``.

    Frames carry a caption (env, episode, step, return so far). The GIF loops forever at
    ``fps`` (50: CartPole's and SwingUp's real time). Returns the episode returns and lengths
    and the frame count (the sum of length + 1 over episodes).
    """
    import imageio.v3 as iio

    if episodes < 1:
        raise AnalysisError(f"--episodes: must be >= 1, got {episodes}")
    if max_steps is not None and max_steps < 1:
        raise AnalysisError(f"--max-steps: must be >= 1, got {max_steps}")
    out = check_output(out)
    data = load_policy(run)
    env_id = data["config"]["env"]
    played = run_episodes(
        data, episodes=episodes, deterministic=deterministic, seed=seed, max_steps=max_steps
    )
    mode = "deterministic" if deterministic else "sampled"
    frames = []
    for e, episode in enumerate(played, start=1):
        total = 0.0
        for step, frame in enumerate(episode.frames):
            if step:
                total += episode.rewards[step - 1]
            text = f"{env_id} ({mode})  episode {e}/{len(played)}  step {step}  return {total:.1f}"
            frames.append(_caption(frame, text))
    encoded = iio.imwrite(
        "<bytes>", np.stack(frames), extension=".gif", duration=1000 / fps, loop=0
    )
    check_output(out)  # again: recording took a while
    from analysis.output import write_new

    write_new(out, encoded)
    return Recording(
        path=out,
        returns=[ep.total for ep in played],
        lengths=[ep.length for ep in played],
        frames=len(frames),
        env=env_id,
    )
