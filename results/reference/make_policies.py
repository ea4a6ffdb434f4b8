"""Ship the final policy of each reference experiment's best run (the one
`a2c-sweep gif --best` picks), so that the GIF commands of docs/results.md work on a clone.

Each policy is retrained from the run's config.json and seed with the current code, and
written only if every row of the retrained run equals the committed returns.csv (except
wall_s) to float32 rounding, so the weights belong to the published numbers. Run it from the
repository root: .venv/bin/python results/reference/make_policies.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from a2c_core import A2CConfig, policy_state, to_torch, train
from analysis import aggregate
from analysis.load import load

ROOT = Path(__file__).resolve().parent
EXPERIMENTS = ["cartpole-v0-grid", "swingup", "swingup-grid", "swingup-grid-refined", "acrobot",
               "swingup-best"]


def best_run(experiment: Path) -> str:
    frame = load(experiment)
    scores = aggregate.final_scores(frame, "return_mean")
    table = aggregate.ranking(scores, seed=0)
    return aggregate.best_run(scores, table)


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def main() -> int:
    import torch

    for name in EXPERIMENTS:
        run_dir = ROOT / name / "runs" / best_run(ROOT / name)
        meta = json.loads((run_dir / "config.json").read_text())
        cfg, seed = A2CConfig.from_dict(meta["config"]), int(meta["seed"])
        want = pd.read_csv(run_dir / "returns.csv").drop(columns="wall_s")
        got, last = [], None
        for rec in train(cfg, seed):
            got.append(rec.row())
            last = rec
        got = pd.DataFrame(got).drop(columns="wall_s")
        bitwise = got.equals(want)
        same = len(got) == len(want) and all(
            close(float(x), float(y))
            for col in want.columns
            for x, y in zip(got[col], want[col], strict=True)
        )
        print(f"{name}: best run {run_dir.name}: {len(got)} epochs, rows "
              f"{'bitwise equal' if bitwise else 'equal to float32 rounding' if same else 'DIFFER'}")  # fmt: skip
        if not same:
            return 1
        torch.save(to_torch(policy_state(cfg, seed, last.policy, last.obs_rms)), run_dir / "policy.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
