"""Fixed costs of a small sweep: the demo's `a2c-sweep run` against its time inside training.

One run of this script launches the demo sweep (sweeps/demo.yaml, 16 CartPole runs, embedded
Ray) --repeats times, each in a fresh results directory, and prints per launch:

- wall: the whole command, process start to exit, as a user waits for it;
- ray start: what the CLI reports ("ray started in ...");
- submit->last: from the first pack submitted to the last result (the CLI's "trained in");
- training: the time the packs spent inside training epochs, per CPU: the sum over packs of
  their epochs' wall time (every row of one pack-epoch carries that epoch's ``wall_s``; it is
  counted once per pack) divided by the CPUs the sweep ran on;
- wall / training: the issue's figure (goal: at most 1.3).

``--checkout DIR`` adds a second code base (another git worktree, e.g. the commit before a
change) launched the same way, alternating with this one inside every repeat, so that both
are measured in the same minutes of a shared machine. Medians over the repeats are printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def training_per_cpu(sweep_dir: Path, cpus: int) -> float:
    """Sum over packs of their epochs' wall time, divided by ``cpus``."""
    seen: set[tuple[int, str]] = set()
    total = 0.0
    for path in sorted(sweep_dir.glob("runs/*/returns.csv")):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                key = (int(row["epoch"]), row["wall_s"])
                if key not in seen:  # the other runs of the pack carry the same value
                    seen.add(key)
                    total += float(row["wall_s"])
    return total / cpus


def launch(checkout: Path, sweep: Path, workdir: Path) -> dict[str, float]:
    results = Path(tempfile.mkdtemp(dir=workdir, prefix="results-"))
    env = dict(os.environ, PYTHONPATH=str(checkout))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "runner.cli", "run", str(sweep), "--results", str(results)],
        cwd=checkout, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: a2c-sweep run failed ({proc.returncode}):\n{out[-2000:]}")

    def find(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match[1]) if match else float("nan")

    cpus = int(find(r"training \d+ runs on (\d+) CPUs"))
    (sweep_dir,) = [p for p in results.iterdir() if p.is_dir()]
    training = training_per_cpu(sweep_dir, cpus)
    shutil.rmtree(results, ignore_errors=True)
    return {
        "wall": wall,
        "ray start": find(r"ray started in ([0-9.]+) s"),
        "submit->last": find(r"trained in ([0-9.]+) s"),
        "training": training,
        "wall / training": wall / training,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep", type=Path, default=ROOT / "sweeps" / "demo.yaml")
    ap.add_argument("--checkout", type=Path, action="append", default=[],
                    help="another code base to measure alongside (a git worktree)")  # fmt: skip
    args = ap.parse_args(argv)
    bases = [ROOT] + [p.resolve() for p in args.checkout]
    figures: dict[Path, list[dict[str, float]]] = {b: [] for b in bases}
    with tempfile.TemporaryDirectory(prefix="a2c-demo-bench-") as tmp:
        for rep in range(args.repeats):
            for base in bases if rep % 2 == 0 else bases[::-1]:
                got = launch(base, args.sweep.resolve(), Path(tmp))
                figures[base].append(got)
                print(f"repeat {rep + 1} {base.name}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in got.items()), flush=True)  # fmt: skip
    print(f"\n{args.sweep.name}, median of {args.repeats} launches (seconds)")
    keys = list(next(iter(figures.values()))[0])
    print(f"{'code':<28}" + "".join(f"{k:>16}" for k in keys))
    for base, rows in figures.items():
        med = [statistics.median(r[k] for r in rows) for k in keys]
        print(f"{base.name:<28}" + "".join(f"{v:>16.2f}" for v in med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
