"""analysis.gif: a policy.pt with random weights, recorded for both environments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_results import gif_frames, write_policy

from analysis.gif import record_gif
from analysis.load import AnalysisError

pytestmark = pytest.mark.timeout(120)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.mark.parametrize("env", ["CartPole-v0", "CartPoleSwingUp-v0"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_gif_has_one_frame_per_step_plus_reset(tmp_path: Path, env: str, deterministic: bool):
    run_dir = write_policy(tmp_path / "run", env)
    out = tmp_path / "agent.gif"
    recording = record_gif(
        run_dir, out, episodes=2, deterministic=deterministic, seed=3, max_steps=12
    )
    assert len(recording.returns) == len(recording.lengths) == 2
    assert all(1 <= n <= 12 for n in recording.lengths)
    assert recording.frames == sum(n + 1 for n in recording.lengths)
    assert out.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert gif_frames(out) == recording.frames
    if env == "CartPole-v0":  # +1 per step until the end
        assert recording.returns == [float(n) for n in recording.lengths]
    # the same seed plays the same episodes
    again = record_gif(
        run_dir,
        tmp_path / "again.gif",
        episodes=2,
        deterministic=deterministic,
        seed=3,
        max_steps=12,
    )
    assert again.returns == recording.returns and again.lengths == recording.lengths


def test_missing_or_corrupt_policy(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(AnalysisError, match="policy.pt: missing"):
        record_gif(tmp_path / "run", tmp_path / "a.gif")
    (tmp_path / "run" / "policy.pt").write_bytes(b"not a torch file")
    with pytest.raises(AnalysisError, match="policy.pt: cannot read"):
        record_gif(tmp_path / "run", tmp_path / "a.gif")
    assert not (tmp_path / "a.gif").exists()


@pytest.mark.parametrize("experiment", ["cartpole-v0-grid", "swingup"])
def test_gif_best_works_on_the_published_reference_results(tmp_path: Path, experiment: str):
    """The reference results ship their best runs' policy.pt (results/reference/
    make_policies.py), so the docs' `gif --best` commands work on a fresh clone."""
    import subprocess
    import sys

    ref = Path(__file__).resolve().parents[2] / "results" / "reference" / experiment
    out = tmp_path / "best.gif"
    proc = subprocess.run(
        [sys.executable, "-m", "runner.cli", "gif", "--best", str(ref), "-o", str(out),
         "--episodes", "1", "--max-steps", "30", "--deterministic"],
        capture_output=True, text=True, timeout=110,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "best run: " in proc.stdout
    assert out.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
